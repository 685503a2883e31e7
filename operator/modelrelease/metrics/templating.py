"""Query templates: ``{{variable}}`` placeholders filled with escaped values.

Built-in variables describe the release being analysed; template arguments add
to them. Values are escaped for use inside a PromQL double-quoted label
matcher, so a namespace or argument can never break out of its string.
``{{revisionPods}}`` is the one variable that is a whole matcher: the revision's
pods by name, which every Kubernetes scrape carries without relabeling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from modelrelease.api.models import BUILTIN_QUERY_VARIABLES
from modelrelease.core.manifests import deployment_name

NAMESPACE = "namespace"
RELEASE = "release"
REVISION = "revision"
CHAMPION = "champion"
CHALLENGER = "challenger"
INTERVAL = "interval"
REVISION_PODS = "revisionPods"
BUILTIN_VARIABLES = BUILTIN_QUERY_VARIABLES
POD_LABEL = "pod"
"""The label Kubernetes service discovery setups put the pod's name in (the Prometheus
Operator's ServiceMonitor and PodMonitor, the community chart's ``kubernetes-pods`` job)."""

# How Kubernetes names a Deployment's pods: the ReplicaSet is `<deployment>-<hash>` (the
# pod template hash, 1 to 10 characters), its pods `<ReplicaSet>-<suffix>` (5 characters),
# both drawn from this alphabet (k8s.io/apimachinery/pkg/util/rand). A generated name's
# base is cut to 58 characters, so the suffix always fits in 63.
_NAME_ALPHABET = "[bcdfghjklmnpqrstvwxz2456789]"
_HASH_MAX_LENGTH = 10
_SUFFIX_LENGTH = 5
_GENERATED_BASE_MAX_LENGTH = 58
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")

# ``{{ name }}`` with optional spaces; ``args.`` is accepted as a prefix so
# templates written in the Argo Rollouts style read naturally.
_PLACEHOLDER = re.compile(r"\{\{\s*(?:args\.)?([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_OPENING = "{{"


class TemplateError(ValueError):
    """A query template cannot be rendered; the message says why and what to do."""


class UnknownVariableError(TemplateError):
    def __init__(self, variable: str, allowed: list[str]):
        self.variable = variable
        self.allowed = allowed
        super().__init__(
            f"unknown query variable {{{{{variable}}}}}; allowed variables are "
            f"{', '.join(allowed)}; fix the query or pass it as a template argument"
        )


class ArgumentShadowsBuiltinError(TemplateError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(
            f"template argument {name!r} has the name of a built-in variable "
            f"({', '.join(BUILTIN_VARIABLES)}); rename the argument"
        )


class MalformedPlaceholderError(TemplateError):
    def __init__(self, fragment: str):
        super().__init__(
            f"malformed placeholder near {fragment!r}; write variables as {{{{name}}}}"
        )


@dataclass(frozen=True)
class QueryContext:
    """The release-side values every query can use."""

    namespace: str
    release: str
    revision: str
    champion: str
    challenger: str
    interval: str

    def variables(self) -> dict[str, str]:
        """Each built-in variable as it is substituted: values escaped for a PromQL
        string, ``revisionPods`` a whole (escaped) matcher."""
        values = {
            NAMESPACE: self.namespace,
            RELEASE: self.release,
            REVISION: self.revision,
            CHAMPION: self.champion,
            CHALLENGER: self.challenger,
            INTERVAL: self.interval,
        }
        escaped = {name: escape_label_value(value) for name, value in values.items()}
        return {**escaped, REVISION_PODS: revision_pods_matcher(self.release, self.revision)}


def revision_pods_matcher(release: str, revision: str) -> str:
    """``pod=~"..."`` matching exactly the pods of the revision's Deployment."""
    pattern = pod_name_pattern(deployment_name(release, revision))
    return f'{POD_LABEL}=~"{escape_label_value(pattern)}"'


def escape_label_value(value: str) -> str:
    """Escape a value for a PromQL double-quoted string (label matcher)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def pod_name_pattern(deployment: str) -> str:
    """An RE2 pattern (PromQL anchors it) of every name Kubernetes gives the Deployment's pods.

    The exact shape (one hash, one suffix, their alphabet and lengths) keeps out the pods
    of another Deployment whose name starts with this one's, such as a release named
    ``<release>-<revision>``. Names are cut to 58 characters before the suffix as Kubernetes
    cuts them; past a 35-character release name that cut makes such pods' names ambiguous
    to anyone, this pattern included.
    """
    base = f"{deployment}-"
    room = _GENERATED_BASE_MAX_LENGTH - len(base)  # for the hash and its dash
    char = _NAME_ALPHABET
    suffix = f"{char}{{{_SUFFIX_LENGTH}}}"
    if room <= 0:
        return _re2_escape(base[:_GENERATED_BASE_MAX_LENGTH]) + suffix
    if room > _HASH_MAX_LENGTH:
        hash_part = f"{char}{{1,{_HASH_MAX_LENGTH}}}-"
    elif room == 1:
        hash_part = char
    else:  # the whole hash and its dash, or the hash cut to the room left
        hash_part = f"(?:{char}{{1,{room - 1}}}-|{char}{{{room}}})"
    return _re2_escape(base) + hash_part + suffix


def _re2_escape(text: str) -> str:
    return _RE2_SPECIAL.sub(r"\\\1", text)


def prometheus_duration(seconds: float) -> str:
    """Render seconds as a PromQL duration (``90`` -> ``1m30s``)."""
    whole = max(1, round(seconds))
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def render(template: str, context: QueryContext, args: Mapping[str, str] | None = None) -> str:
    """Fill every placeholder of ``template``; refuse unknown or malformed ones."""
    values = _merged_values(context, args or {})
    rendered = _PLACEHOLDER.sub(lambda match: _lookup(match.group(1), values), template)
    _refuse_leftover_placeholders(template)
    return rendered


def variables_in(template: str) -> list[str]:
    """The distinct variable names a template uses, in order of appearance."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def _merged_values(context: QueryContext, args: Mapping[str, str]) -> dict[str, str]:
    for name in args:
        if name in BUILTIN_VARIABLES:
            raise ArgumentShadowsBuiltinError(name)
    return {**context.variables(), **{name: escape_label_value(v) for name, v in args.items()}}


def _lookup(name: str, values: Mapping[str, str]) -> str:
    if name not in values:
        builtin = list(BUILTIN_VARIABLES)
        extra = sorted(set(values) - set(builtin))
        raise UnknownVariableError(name, builtin + extra)
    return values[name]


def _refuse_leftover_placeholders(template: str) -> None:
    # Look in the template with well-formed placeholders removed, so braces
    # inside substituted values are never mistaken for placeholders.
    remainder = _PLACEHOLDER.sub("", template)
    position = remainder.find(_OPENING)
    if position >= 0:
        raise MalformedPlaceholderError(remainder[position : position + 24])
