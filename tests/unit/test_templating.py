"""Query templating: variables, escaping, and the errors a user sees."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.metrics.templating import (
    ArgumentShadowsBuiltinError,
    MalformedPlaceholderError,
    QueryContext,
    UnknownVariableError,
    escape_label_value,
    pod_name_pattern,
    prometheus_duration,
    render,
    variables_in,
)

CONTEXT = QueryContext(
    namespace="llm",
    release="chat",
    revision="abc123def0",
    champion="0123456789",
    challenger="abc123def0",
    interval="30s",
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('x{namespace="{{namespace}}"}', 'x{namespace="llm"}'),
        ('x{revision="{{ revision }}"}', 'x{revision="abc123def0"}'),
        ("rate(x[{{interval}}])", "rate(x[30s])"),
        (
            "{{release}}/{{champion}}/{{challenger}}",
            "chat/0123456789/abc123def0",
        ),
        ('no placeholders {a=~"b"}', 'no placeholders {a=~"b"}'),
    ],
)
def test_builtin_variables_are_filled(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


def test_template_arguments_are_filled_with_or_without_args_prefix() -> None:
    rendered = render("{{code}} {{ args.code }}", CONTEXT, {"code": "5.."})
    assert rendered == "5.. 5.."


def test_unknown_variable_names_it_and_the_allowed_ones() -> None:
    with pytest.raises(UnknownVariableError) as caught:
        render('x{pod="{{pod}}"}', CONTEXT, {"code": "5"})
    assert caught.value.variable == "pod"
    message = str(caught.value)
    assert "{{pod}}" in message
    for allowed in ("namespace", "release", "revision", "champion", "challenger", "interval"):
        assert allowed in message
    assert "code" in message


def test_argument_may_not_shadow_a_builtin() -> None:
    with pytest.raises(ArgumentShadowsBuiltinError):
        render("{{namespace}}", CONTEXT, {"namespace": "other"})


@pytest.mark.parametrize("template", ["x{{namespace", "{{ 9bad }}", "{{}}"])
def test_malformed_placeholders_are_refused(template: str) -> None:
    with pytest.raises(MalformedPlaceholderError):
        render(template, CONTEXT)


def test_braces_inside_values_are_not_placeholders() -> None:
    assert render('"{{v}}"', CONTEXT, {"v": "{{x}}"}) == '"{{x}}"'


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ('\\"', '\\\\\\"'),
    ],
)
def test_escape_label_value(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


@given(st.text())
def test_escaped_value_cannot_end_the_string_and_round_trips(value: str) -> None:
    escaped = escape_label_value(value)
    # Every double quote left is preceded by an odd number of backslashes.
    for match in re.finditer('"', escaped):
        backslashes = len(escaped[: match.start()]) - len(escaped[: match.start()].rstrip("\\"))
        assert backslashes % 2 == 1
    assert "\n" not in escaped
    assert _unescape(escaped) == value


def test_variables_in_lists_each_once_in_order() -> None:
    assert variables_in("{{a}} {{ b }} {{a}} {{args.c}}") == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("seconds", "duration"),
    [(30, "30s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (3725, "1h2m5s"), (0.2, "1s")],
)
def test_prometheus_duration(seconds: float, duration: str) -> None:
    assert prometheus_duration(seconds) == duration


# --- {{revisionPods}}: the revision's pods by the names Kubernetes gives them -------------------

# Kubernetes' name alphabet (k8s.io/apimachinery/pkg/util/rand): no vowels, no 0, 1, 3.
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
HEX = "0123456789abcdef"
release_names = st.from_regex(r"[a-z]([-a-z0-9]{0,50}[a-z0-9])?", fullmatch=True)
revisions = st.text(HEX, min_size=10, max_size=10)
pod_hashes = st.text(NAME_CHARS, min_size=1, max_size=10)
suffixes = st.text(NAME_CHARS, min_size=5, max_size=5)


def kubernetes_pod_name(deployment: str, pod_hash: str, suffix: str) -> str:
    """What the Deployment and ReplicaSet controllers name a pod (names.SimpleNameGenerator
    cuts a generateName base to 58 characters before the 5 random ones)."""
    return f"{deployment}-{pod_hash}-"[:58] + suffix


def test_revision_pods_is_a_whole_matcher() -> None:
    rendered = render('x{namespace="{{namespace}}",{{ revisionPods }}}', CONTEXT)
    chars = f"[{NAME_CHARS}]"
    assert rendered == f'x{{namespace="llm",pod=~"chat-abc123def0-{chars}{{1,10}}-{chars}{{5}}"}}'


@given(release_names, revisions, pod_hashes, suffixes)
def test_revision_pods_matches_every_pod_of_the_revision(
    release: str, revision: str, pod_hash: str, suffix: str
) -> None:
    pattern = pod_name_pattern(f"{release}-{revision}")
    assert re.fullmatch(pattern, kubernetes_pod_name(f"{release}-{revision}", pod_hash, suffix))


@given(release_names, revisions, revisions, pod_hashes, suffixes)
def test_revision_pods_matches_no_pod_of_another_revision_or_release(
    release: str, revision: str, other: str, pod_hash: str, suffix: str
) -> None:
    pattern = pod_name_pattern(f"{release}-{revision}")
    if other != revision and len(release) <= 46:  # longer names cut the revision itself
        assert not re.fullmatch(
            pattern, kubernetes_pod_name(f"{release}-{other}", pod_hash, suffix)
        )
    # A release named `<release>-<revision>` has Deployments that start with this one's name;
    # its pods are told apart while Kubernetes does not cut their names.
    longer = f"{release}-{revision}-{other}"
    if len(release) <= 35:
        assert not re.fullmatch(pattern, kubernetes_pod_name(longer, pod_hash, suffix))


def test_revision_pods_follows_the_cut_of_long_names() -> None:
    release = "r" * 52  # the longest release name: its pods' names hold 5 revision characters
    pattern = pod_name_pattern(f"{release}-abc123def0")
    assert pattern == f"{release}-abc12[{NAME_CHARS}]{{5}}"
    assert re.fullmatch(pattern, kubernetes_pod_name(f"{release}-abc123def0", "b" * 10, "zzzzz"))


# --- SLOs: templates, arguments, and what a user sees when one is wrong ------------------------

from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from modelrelease.api.constants import Reason, TemplateKind  # noqa: E402
from modelrelease.api.models import AnalysisSpec, CurrentStage, ModelReleaseStatus  # noqa: E402
from modelrelease.core.slos import checks_due, resolve_slos, template_keys  # noqa: E402


def _analysis(*slos: dict[str, Any]) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {"prometheus": {"address": "http://p:9090"}, "interval": "10s", "slos": list(slos)}
    )


TEMPLATE = {
    "spec": {
        "query": 'sum(rate(x{namespace="{{namespace}}",code="{{code}}"}[{{window}}]))',
        "requestsQuery": 'sum(increase(x{revision="{{revision}}"}[{{window}}]))',
        "args": [{"name": "code"}, {"name": "window", "default": "1m"}],
    }
}
REF = {"kind": "ClusterSLOTemplate", "name": "errors"}


def test_inline_slo_is_rendered_with_its_policy() -> None:
    analysis = _analysis({"name": "e", "query": 'x{r="{{revision}}"}', "max": 1, "failureLimit": 2})
    (slo,), problems = resolve_slos(analysis, {}, CONTEXT)
    assert problems == []
    assert slo.query == 'x{r="abc123def0"}'
    assert slo.policy.failure_limit == 2
    assert slo.policy.max_inconclusive == analysis.max_inconclusive
    assert slo.thresholds.maximum == 1


def test_template_with_arguments_and_defaults() -> None:
    analysis = _analysis(
        {"name": "e", "templateRef": REF, "args": {"code": "5xx"}, "max": 1, "minRequests": 10}
    )
    templates = {(TemplateKind.CLUSTER_SLO_TEMPLATE, "errors"): TEMPLATE}
    (slo,), problems = resolve_slos(analysis, templates, CONTEXT)
    assert problems == []
    assert slo.query == 'sum(rate(x{namespace="llm",code="5xx"}[1m]))'
    assert slo.requests_query == 'sum(increase(x{revision="abc123def0"}[1m]))'
    assert template_keys(analysis) == [(TemplateKind.CLUSTER_SLO_TEMPLATE, "errors")]


@pytest.mark.parametrize(
    ("slo", "templates", "reason", "words"),
    [
        (
            {"name": "e", "templateRef": REF, "max": 1},
            {},
            Reason.TEMPLATE_NOT_FOUND,
            ["ClusterSLOTemplate 'errors'", "does not exist", "create it or fix templateRef"],
        ),
        (
            {"name": "e", "templateRef": REF, "max": 1},
            {(TemplateKind.CLUSTER_SLO_TEMPLATE, "errors"): TEMPLATE},
            Reason.INVALID_SPEC,
            ["needs argument 'code'", "set it in args"],
        ),
        (
            {"name": "e", "templateRef": REF, "args": {"code": "1", "zone": "a"}, "max": 1},
            {(TemplateKind.CLUSTER_SLO_TEMPLATE, "errors"): TEMPLATE},
            Reason.INVALID_SPEC,
            ["no argument 'zone'", "code, window"],
        ),
        (
            {"name": "e", "query": 'x{pod="{{pod}}"}', "max": 1},
            {},
            Reason.UNKNOWN_QUERY_VARIABLE,
            ["SLO 'e' query", "{{pod}}", "namespace, release, revision"],
        ),
        (
            {"name": "e", "templateRef": REF, "max": 1},
            {(TemplateKind.CLUSTER_SLO_TEMPLATE, "errors"): {"spec": {"args": []}}},
            Reason.INVALID_SPEC,
            ["is invalid"],
        ),
    ],
)
def test_slo_problems_name_the_cause(
    slo: dict[str, Any], templates: dict[Any, Any], reason: Reason, words: list[str]
) -> None:
    resolved, problems = resolve_slos(_analysis(slo), templates, CONTEXT)
    assert resolved == []
    (problem,) = problems
    assert problem.reason is reason
    for word in words:
        assert word in problem.message


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _status(step_start: datetime | None, check_time: datetime | None) -> ModelReleaseStatus:
    return ModelReleaseStatus.model_validate(
        {
            "challenger": {"revision": "abc"},
            "currentStage": CurrentStage(
                index=0, type="canary", name="c", step=0, step_start_time=step_start
            ).model_dump(by_alias=True),
            "checks": (
                [{"name": "e", "verdict": "Pass", "time": check_time}] if check_time else []
            ),
        }
    )


@pytest.mark.parametrize(
    ("step_start", "check_time", "now", "due"),
    [
        (None, None, 100, False),  # the step has not started
        (0, None, 5, False),  # one interval after the step starts
        (0, None, 10, True),
        (0, 10, 15, False),
        (0, 10, 20, True),
        (30, 10, 35, False),  # a new step: counted from its start
    ],
)
def test_checks_due(step_start: int | None, check_time: int | None, now: int, due: bool) -> None:
    def at(seconds: int | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    analysis = _analysis({"name": "e", "query": "x", "max": 1})
    status = _status(at(step_start), at(check_time))
    assert checks_due(analysis, status, T0 + timedelta(seconds=now)) is due
    assert not checks_due(None, status, T0 + timedelta(seconds=now))
