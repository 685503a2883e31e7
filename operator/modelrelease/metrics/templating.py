"""Query templates: ``{{variable}}`` placeholders filled with escaped values.

Built-in variables describe the release being analysed; template arguments add
to them. Values are escaped for use inside a PromQL double-quoted label
matcher, so a namespace or argument can never break out of its string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

NAMESPACE = "namespace"
RELEASE = "release"
REVISION = "revision"
CHAMPION = "champion"
CHALLENGER = "challenger"
INTERVAL = "interval"
BUILTIN_VARIABLES = (NAMESPACE, RELEASE, REVISION, CHAMPION, CHALLENGER, INTERVAL)

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
        return {
            NAMESPACE: self.namespace,
            RELEASE: self.release,
            REVISION: self.revision,
            CHAMPION: self.champion,
            CHALLENGER: self.challenger,
            INTERVAL: self.interval,
        }


def escape_label_value(value: str) -> str:
    """Escape a value for a PromQL double-quoted string (label matcher)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
    return {**context.variables(), **args}


def _lookup(name: str, values: Mapping[str, str]) -> str:
    if name not in values:
        builtin = list(BUILTIN_VARIABLES)
        extra = sorted(set(values) - set(builtin))
        raise UnknownVariableError(name, builtin + extra)
    return escape_label_value(values[name])


def _refuse_leftover_placeholders(template: str) -> None:
    # Look in the template with well-formed placeholders removed, so braces
    # inside substituted values are never mistaken for placeholders.
    remainder = _PLACEHOLDER.sub("", template)
    position = remainder.find(_OPENING)
    if position >= 0:
        raise MalformedPlaceholderError(remainder[position : position + 24])
