"""The pydantic models of the API: examples parse, invalid cases fail, names and defaults."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api import models
from modelrelease.api.constants import (
    KIND_CLUSTER_SLO_TEMPLATE,
    KIND_MODEL_RELEASE,
    KIND_SLO_TEMPLATE,
    CapacityMode,
    MetricKind,
    NoDataPolicy,
    Phase,
    RouterType,
    StageType,
    Verdict,
)
from modelrelease.api.durations import DURATION_PATTERN, format_duration, parse_duration
from modelrelease.api.models import (
    ClusterSLOTemplate,
    ModelRelease,
    ModelReleaseStatus,
    SLOTemplate,
    Stage,
)
from modelrelease.metrics.templating import QueryContext, render
from pydantic import BaseModel, ValidationError

from tests.cluster.invalid import InvalidCase, load_catalog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = sorted((ROOT / "examples").rglob("*.yaml"))
API_KINDS: dict[str, type[BaseModel]] = {
    KIND_MODEL_RELEASE: ModelRelease,
    KIND_SLO_TEMPLATE: SLOTemplate,
    KIND_CLUSTER_SLO_TEMPLATE: ClusterSLOTemplate,
}
OTHER_KINDS = {
    "HTTPRoute",
    "VirtualService",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    # examples/prerequisites/
    "Namespace",
    "Gateway",
    "Secret",
    "Service",
}
CATALOG = load_catalog()
CONTEXT = QueryContext(
    namespace="llm",
    release="chat",
    revision="abc123def0",
    champion="0123456789",
    challenger="abc123def0",
    interval="30s",
)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def example_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in EXAMPLE_FILES:
        for doc in documents(path):
            name = f"{path.relative_to(ROOT)}:{doc['kind']}/{doc['metadata']['name']}"
            found.append((name, doc))
    return found


EXAMPLES = example_objects()


def parsed(kind: type[BaseModel]) -> list[Any]:
    return [kind.model_validate(doc) for _, doc in EXAMPLES if API_KINDS.get(doc["kind"]) is kind]


# --- examples ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "doc"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_every_example_object_parses(name: str, doc: dict[str, Any]) -> None:
    if doc["kind"] in OTHER_KINDS:
        return
    assert doc["kind"] in API_KINDS, f"{name}: unexpected kind in examples/"
    API_KINDS[doc["kind"]].model_validate(doc)


def test_the_examples_cover_the_use_cases_of_the_issue() -> None:
    releases: list[ModelRelease] = parsed(ModelRelease)
    routers = {release.spec.traffic.router_type for release in releases}
    assert routers == set(RouterType)
    stage_types = {stage.type for release in releases for stage in release.spec.stages}
    assert stage_types == set(StageType)
    kinds = {
        metric.kind
        for release in releases
        for stage in release.spec.stages
        if stage.champion_challenger is not None
        for metric in stage.champion_challenger.metrics
    }
    assert kinds == set(MetricKind)
    templates = {t.metadata["name"] for t in parsed(ClusterSLOTemplate)}
    for server in ("vllm", "tgi", "triton", "kserve", "http", "dcgm"):
        assert any(name.startswith(f"{server}-") for name in templates), server


def test_builtin_templates_use_the_servers_metric_names() -> None:
    queries = " ".join(t.spec.query for t in parsed(ClusterSLOTemplate))
    for metric in (
        "vllm:time_to_first_token_seconds",
        "vllm:e2e_request_latency_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
        "vllm:request_success_total",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "tgi_request_duration",
        "nv_inference_request_success",
        "request_predict_seconds",
        "http_requests_total",
    ):
        assert metric in queries, f"no built-in template queries {metric}"


def _templates() -> dict[tuple[str, str], models.SLOTemplateSpec]:
    found: dict[tuple[str, str], models.SLOTemplateSpec] = {}
    for kind in (SLOTemplate, ClusterSLOTemplate):
        for template in parsed(kind):
            found[(template.kind, template.metadata["name"])] = template.spec
    return found


def test_every_template_reference_resolves_with_its_arguments() -> None:
    templates = _templates()
    for release in parsed(ModelRelease):
        for slo in release.spec.analysis.slos if release.spec.analysis else []:
            if slo.template_ref is None:
                continue
            key = (slo.template_ref.kind.value, slo.template_ref.name)
            assert key in templates, f"{release.metadata['name']}/{slo.name}: no template {key}"
            declared = {arg.name: arg for arg in templates[key].args}
            unknown = set(slo.args) - set(declared)
            assert not unknown, f"{slo.name}: arguments {unknown} not declared by {key}"
            missing = [n for n, a in declared.items() if a.default is None and n not in slo.args]
            assert not missing, f"{slo.name}: required arguments {missing} of {key} not given"


def test_every_query_renders_with_known_variables() -> None:
    for (kind, name), spec in _templates().items():
        args = {arg.name: arg.default or "x" for arg in spec.args}
        for query in (spec.query, spec.requests_query):
            if query is not None:
                assert "{{" not in render(query, CONTEXT, args), f"{kind}/{name}"
    for release in parsed(ModelRelease):
        spec = release.spec
        for slo in spec.analysis.slos if spec.analysis else []:
            for query in (slo.query, slo.requests_query):
                if query is not None:
                    render(query, CONTEXT)
        for stage in spec.stages:
            comparison = stage.champion_challenger or (stage.shadow and stage.shadow.comparison)
            for metric in comparison.metrics if comparison else []:
                for query in (metric.bad, metric.total, metric.query):
                    if query is not None:
                        render(query, CONTEXT)


# --- the invalid catalog ----------------------------------------------------

MESSAGES = [value for name, value in vars(models).items() if name.startswith("MSG_")]


def test_the_catalog_has_the_cases_the_issue_requires() -> None:
    names = {case.name for case in CATALOG}
    required = {
        "canary-weight-above-100",
        "canary-weight-negative",
        "canary-weights-decrease",
        "stages-empty",
        "two-routers",
        "shadow-without-mirroring-router",
        "mirror-percent-zero",
        "mirror-percent-above-100",
        "duration-malformed",
        "replicas-negative",
        "duplicate-stage-names",
        "stage-without-type",
        "stage-with-two-types",
        "failure-limit-negative",
        "alpha-zero",
        "alpha-above-half",
        "slo-neither-query-nor-template",
        "slo-query-and-template",
        "slo-min-greater-than-max",
        "unknown-field",
        "revision-history-limit-negative",
        "webhook-without-url",
        "webhook-ftp-url",
    }
    assert required <= names, f"missing cases: {sorted(required - names)}"
    assert len(CATALOG) >= 30


@pytest.mark.parametrize("case", CATALOG, ids=[case.name for case in CATALOG])
def test_the_models_reject_every_invalid_case_too(case: InvalidCase) -> None:
    """What the API server refuses, the operator's parser refuses, with the same words."""
    doc = case.document
    with pytest.raises(ValidationError) as error:
        API_KINDS[doc["kind"]].model_validate(doc)
    ours = [fragment for fragment in case.expected if fragment in MESSAGES]
    for fragment in ours:
        assert fragment in str(error.value), f"{case.name}: pydantic said {error.value}"


# --- durations --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("2h0m5s", 7205),
        ("90s", 90),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "1d", "-5m", "0s", "0m0s", "m", "5M", "1h-5m"])
def test_bad_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="such as 30s, 5m"):
        parse_duration(text)


@given(st.floats(min_value=0.001, max_value=10 * 24 * 3600))
def test_formatted_durations_parse_back(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == pytest.approx(round(seconds * 1000) / 1000, abs=1e-6)


def test_the_duration_pattern_is_usable_in_a_cel_string_literal() -> None:
    assert "\\" not in DURATION_PATTERN
    assert "'" not in DURATION_PATTERN


# --- models -----------------------------------------------------------------

MINIMAL: dict[str, Any] = {
    "apiVersion": "modelrelease.dev/v1alpha1",
    "kind": "ModelRelease",
    "metadata": {"name": "chat"},
    "spec": {
        "model": {"name": "chat-8b", "version": "2.1.0"},
        "template": {"spec": {"containers": [{"name": "server", "image": "vllm"}]}},
        "traffic": {"none": {}},
        "stages": [{"canary": {"steps": [{"weight": 50, "duration": "5m"}]}}],
    },
}


def test_defaults_match_the_crd_defaults() -> None:
    spec = ModelRelease.model_validate(MINIMAL).spec
    assert spec.replicas == 1
    assert spec.port == 8000
    assert spec.progress_deadline == "20m"
    assert spec.capacity.mode is CapacityMode.CONSERVE
    assert spec.capacity.max_surge == 1
    assert spec.rollback.automatic is True
    assert spec.revision_history_limit == 2
    assert spec.paused is False


def test_snake_case_and_camel_case_both_parse_and_dumps_are_camel_case() -> None:
    by_name = models.SLO(name="ttft", query="q", max=1, failure_limit=2, no_data="pass")
    by_alias = models.SLO.model_validate(
        {"name": "ttft", "query": "q", "max": 1, "failureLimit": 2, "noData": "pass"}
    )
    assert by_name == by_alias
    assert by_alias.no_data is NoDataPolicy.PASS
    dumped = by_alias.model_dump(mode="json", exclude_defaults=True)
    assert dumped == {"name": "ttft", "query": "q", "max": 1.0, "failureLimit": 2, "noData": "pass"}


def test_gateway_api_keeps_its_spelling() -> None:
    traffic = models.TrafficSpec.model_validate({"gatewayAPI": {"httpRoute": "chat", "rule": 1}})
    assert traffic.router_type is RouterType.GATEWAY_API
    assert traffic.can_mirror
    assert traffic.model_dump(exclude_none=True) == {"gatewayAPI": {"httpRoute": "chat", "rule": 1}}


def test_stage_type_and_names_count_by_type() -> None:
    stages = [
        Stage.model_validate(raw)
        for raw in (
            {"canary": {"steps": [{"weight": 5, "duration": "1m"}]}},
            {"approval": {}},
            {"canary": {"steps": [{"weight": 50, "duration": "1m"}]}},
            {"name": "sign-off", "approval": {}},
            {"approval": {}},
        )
    ]
    assert stages[1].type is StageType.APPROVAL
    assert models.stage_names(stages) == [
        "canary-1",
        "approval-1",
        "canary-2",
        "sign-off",
        "approval-2",
    ]
    # Removing a stage of another type keeps an unnamed stage's identity.
    assert models.stage_names(stages[1:])[0] == "approval-1"


def test_spec_models_refuse_unknown_fields_with_the_field_name() -> None:
    with pytest.raises(ValidationError, match="revisionHistoryLimt"):
        ModelRelease.model_validate(
            {**MINIMAL, "spec": {**MINIMAL["spec"], "revisionHistoryLimt": 3}}
        )


def test_status_round_trips_and_writes_kubernetes_timestamps() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=timezone(timedelta(hours=2)))
    status = ModelReleaseStatus(
        phase=Phase.PROGRESSING,
        current_stage=models.CurrentStage(
            index=1, type=StageType.CANARY, name="canary-2", step=0, weight=5, step_start_time=when
        ),
        checks=[models.CheckStatus(name="ttft", value=0.4, max=0.75, verdict=Verdict.PASS)],
        conditions=[
            models.Condition(
                type="Progressing", status="True", reason="StepAdvanced", last_transition_time=when
            )
        ],
    )
    written = status.model_dump(mode="json", exclude_none=True)
    assert written["phase"] == "Progressing"
    # Sub-second precision survives a round trip: clocks that decide must not lose it.
    assert written["currentStage"]["stepStartTime"] == "2026-01-02T01:04:05.678000Z"
    assert written["conditions"][0]["lastTransitionTime"] == "2026-01-02T01:04:05.678000Z"
    again = ModelReleaseStatus.model_validate(written)
    assert again.current_stage is not None
    assert again.current_stage.step_start_time == when
    whole = ModelReleaseStatus(last_action_time=when.replace(microsecond=0))
    assert whole.model_dump(mode="json", exclude_none=True)["lastActionTime"] == (
        "2026-01-02T01:04:05Z"
    )


def test_status_ignores_fields_it_does_not_know() -> None:
    status = ModelReleaseStatus.model_validate({"phase": "Succeeded", "fromTheFuture": 1})
    assert status.phase is Phase.SUCCEEDED


# --- release names ------------------------------------------------------------


def test_release_name_budget_leaves_room_for_every_derived_name() -> None:
    from modelrelease.core.manifests import deployment_name, service_name
    from modelrelease.core.revision import REVISION_LENGTH

    longest = "a" * models.RELEASE_NAME_MAX_LENGTH
    derived = [
        deployment_name(longest, "f" * REVISION_LENGTH),
        service_name(longest, "stable"),
        service_name(longest, "canary"),
    ]
    assert max(len(name) for name in derived) == models.DNS_LABEL_MAX_LENGTH


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 53, models.MSG_RELEASE_NAME_LENGTH),
        ("chat.v2", models.MSG_RELEASE_NAME_FORMAT),
        ("2chat", models.MSG_RELEASE_NAME_FORMAT),
        ("chat-", models.MSG_RELEASE_NAME_FORMAT),
    ],
)
def test_release_names_that_cannot_name_owned_objects_are_refused(name: str, message: str) -> None:
    doc = yaml.safe_load((ROOT / "tests/cluster/invalid/replicas-zero.yaml").read_text())
    doc["spec"]["replicas"] = 1
    doc["metadata"]["name"] = name
    with pytest.raises(ValidationError, match=re.escape(message)):
        ModelRelease.model_validate(doc)
    doc["metadata"]["name"] = "a" * 52
    ModelRelease.model_validate(doc)


def test_builtin_error_ratio_templates_give_the_guard_its_counters() -> None:
    """The sequential guard needs raw counters; every built-in error ratio has them,
    without rate() (the guard takes exact differences itself)."""
    templates = {t.metadata["name"]: t.spec for t in parsed(ClusterSLOTemplate)}
    for name in (
        "vllm-error-ratio",
        "vllm-aborted-ratio",
        "vllm-slow-ttft-ratio",
        "http-error-ratio",
        "tgi-error-ratio",
        "triton-error-ratio",
    ):
        spec = templates[name]
        assert spec.bad is not None, name
        assert spec.total is not None, name
        assert "rate(" not in spec.bad + spec.total, name
