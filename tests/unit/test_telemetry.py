"""The operator's metrics: status to samples (pure), and the series following real passes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from modelrelease import telemetry
from modelrelease.api.constants import Phase, StageType, Verdict
from modelrelease.api.models import (
    CheckStatus,
    ComparisonStatus,
    CurrentStage,
    ModelReleaseStatus,
    RevisionStatus,
)
from modelrelease.core.routes import Routes
from prometheus_client import REGISTRY

from tests.unit.test_plan import ERRORS, World, make_spec, settled

T = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NS = "metrics-ns"


def value(name: str, release: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, "release": release, **labels})


def names_of(release: str) -> set[str]:
    """Every sample name a release has in the registry now."""
    found: set[str] = set()
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.labels.get("namespace") == NS and sample.labels.get("release") == release:
                found.add(sample.name)
    return found


def by_gauge(samples: list[telemetry.Sample]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.gauge._name, s.labels): s.value for s in samples}


def canary_status(**extra: Any) -> ModelReleaseStatus:
    return ModelReleaseStatus(
        phase=Phase.PROGRESSING,
        champion=RevisionStatus(revision="aaa", model_version="1", replicas=4, ready_replicas=4),
        challenger=RevisionStatus(revision="bbb", model_version="2", replicas=1, ready_replicas=0),
        current_stage=CurrentStage(
            index=0,
            type=StageType.CANARY,
            name="canary-1",
            step=1,
            weight=50,
            stage_start_time=T,
            step_start_time=T.replace(minute=5),
        ),
        checks=[
            CheckStatus(
                name=ERRORS,
                value=0.02,
                max=0.01,
                verdict=Verdict.FAIL,
                consecutive_failures=1,
            )
        ],
        **extra,
    )


# --- the mapping (pure) ----------------------------------------------------------------------


def test_one_phase_is_1_and_every_other_phase_is_0() -> None:
    samples = by_gauge(telemetry.release_samples(canary_status(), None, None))
    phases = {labels[0]: v for (name, labels), v in samples.items() if name == "modelrelease_phase"}
    assert phases == {phase.value: float(phase is Phase.PROGRESSING) for phase in Phase}


def test_a_canary_step_maps_to_weights_stage_clocks_slos_and_revisions() -> None:
    spec = make_spec("2")
    samples = by_gauge(telemetry.release_samples(canary_status(), spec, Routes(50, 50, 0)))
    assert samples[("modelrelease_canary_weight_percent", ())] == 50
    assert samples[("modelrelease_mirror_percent", ())] == 0
    assert samples[("modelrelease_stage_info", ("canary-1", "canary", "0"))] == 1
    assert samples[("modelrelease_stage_start_timestamp_seconds", ())] == T.timestamp()
    assert samples[("modelrelease_step_start_timestamp_seconds", ())] == T.timestamp() + 300
    assert samples[("modelrelease_step_expected_duration_seconds", ())] == 6  # the 2nd step
    assert samples[("modelrelease_slo_value", (ERRORS,))] == 0.02
    assert samples[("modelrelease_slo_threshold", (ERRORS, "max"))] == 0.01
    assert (("modelrelease_slo_threshold", (ERRORS, "min"))) not in samples
    assert samples[("modelrelease_slo_consecutive_failures", (ERRORS,))] == 1
    assert samples[("modelrelease_slo_verdict", (ERRORS, "Fail"))] == 1
    assert samples[("modelrelease_slo_verdict", (ERRORS, "Pass"))] == 0
    assert samples[("modelrelease_revision_info", ("challenger", "bbb", "2"))] == 1
    assert samples[("modelrelease_revision_info", ("champion", "aaa", "1"))] == 1
    assert samples[("modelrelease_replicas", ("challenger",))] == 1
    assert samples[("modelrelease_ready_replicas", ("challenger",))] == 0


def test_a_comparison_maps_estimate_bounds_e_value_and_verdict() -> None:
    status = canary_status(
        comparison=[
            ComparisonStatus(
                metric="errors",
                estimate=0.8,
                lower=0.5,
                upper=1.3,
                e_value=2.5,
                verdict=Verdict.INCONCLUSIVE,
            ),
            ComparisonStatus(metric="slow", verdict=Verdict.INCONCLUSIVE),  # no data yet
        ]
    )
    samples = by_gauge(telemetry.release_samples(status, None, None))
    assert samples[("modelrelease_comparison_estimate", ("errors",))] == 0.8
    assert samples[("modelrelease_comparison_lower_bound", ("errors",))] == 0.5
    assert samples[("modelrelease_comparison_upper_bound", ("errors",))] == 1.3
    assert samples[("modelrelease_comparison_e_value", ("errors",))] == 2.5
    assert samples[("modelrelease_comparison_verdict", ("errors", "Inconclusive"))] == 1
    assert ("modelrelease_comparison_estimate", ("slow",)) not in samples  # absent, not 0
    assert samples[("modelrelease_comparison_verdict", ("slow", "Inconclusive"))] == 1


@pytest.mark.parametrize(
    ("stage", "current_type", "step", "expected"),
    [
        ({"shadow": {"mirrorPercent": 50, "duration": "10m"}}, StageType.SHADOW, None, 600.0),
        (
            {
                "canary": {
                    "steps": [{"weight": 5, "duration": "1m"}, {"weight": 50, "duration": "2m"}]
                }
            },
            StageType.CANARY,
            1,
            120.0,
        ),
        (
            {
                "championChallenger": {
                    "weight": 50,
                    "maxDuration": "1h",
                    "metrics": [{"name": "e", "kind": "ratio", "bad": "b", "total": "t"}],
                }
            },
            StageType.CHAMPION_CHALLENGER,
            None,
            3600.0,
        ),
        ({"webhook": {"url": "http://gate", "maxDuration": "5m"}}, StageType.WEBHOOK, None, 300.0),
        ({"approval": {}}, StageType.APPROVAL, None, None),
    ],
)
def test_the_expected_step_duration_comes_from_the_spec(
    stage: dict[str, Any], current_type: StageType, step: int | None, expected: float | None
) -> None:
    spec = make_spec("2", stages=[{"name": "s", **stage}])
    current = CurrentStage(index=0, type=current_type, name="s", step=step)
    assert telemetry.expected_step_seconds(spec, current) == expected


def test_routes_come_from_status_before_the_operator_has_set_any() -> None:
    assert telemetry.routes_in_status(canary_status()) == Routes(50, 50, 0)
    assert telemetry.routes_in_status(ModelReleaseStatus(phase=Phase.SUCCEEDED)) == Routes(
        100, 0, 0
    )
    promoting = canary_status()
    promoting.current_stage = None
    assert telemetry.routes_in_status(promoting) is None  # the route knows, status does not


# --- series following real passes -------------------------------------------------------------


def record_passes(world: World, release: str) -> None:
    spec = world.spec
    for decision in world.decisions:
        telemetry.record(NS, release, decision, "ok", spec)
    world.decisions.clear()


def test_series_follow_a_release_to_promotion_and_disappear_on_deletion() -> None:
    release = "promoted"
    world = settled()
    record_passes(world, release)
    timed = "modelrelease_time_to_promote_seconds_count"
    before = REGISTRY.get_sample_value(timed, {"namespace": NS}) or 0
    world.release("2")
    world.run_until(lambda w: w.status.current_stage is not None and w.status.checks, value=0.0)
    record_passes(world, release)
    assert value("modelrelease_phase", release, phase="Progressing") == 1
    assert value("modelrelease_slo_value", release, slo=ERRORS) == 0.0
    assert value("modelrelease_slo_threshold", release, slo=ERRORS, bound="max") == 0.01
    assert value("modelrelease_canary_weight_percent", release) == 10
    assert value("modelrelease_step_start_timestamp_seconds", release) is not None
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED, value=0.0)
    record_passes(world, release)
    assert value("modelrelease_phase", release, phase="Succeeded") == 1
    assert value("modelrelease_phase", release, phase="Progressing") == 0
    assert value("modelrelease_promotions_total", release) == 1  # not the first revision
    assert value("modelrelease_rollbacks_total", release) == 0
    assert REGISTRY.get_sample_value(timed, {"namespace": NS}) == before + 1
    assert value("modelrelease_canary_weight_percent", release) == 0
    # A finished release has no stage: those series went with it.
    assert value("modelrelease_step_start_timestamp_seconds", release) is None
    assert value("modelrelease_stage_start_timestamp_seconds", release) is None
    champion = world.status.champion.revision if world.status.champion else ""
    assert (
        value(
            "modelrelease_revision_info",
            release,
            role="champion",
            revision=champion,
            model_version="2",
        )
        == 1
    )
    last = world.status.history[-1]
    assert (
        value(
            "modelrelease_last_outcome_timestamp_seconds",
            release,
            outcome="Promoted",
            reason=last.reason,
        )
        == last.time.timestamp()
    )
    # Status keeps the last checks until the next challenger starts; so do the series.
    assert value("modelrelease_slo_value", release, slo=ERRORS) == 0.0
    world.release("3")
    record_passes(world, release)
    assert world.status.checks == []
    assert value("modelrelease_slo_value", release, slo=ERRORS) is None
    assert value("modelrelease_slo_verdict", release, slo=ERRORS, verdict="Pass") is None
    telemetry.forget(NS, release)
    assert names_of(release) == set()


def test_a_rollback_is_counted_timed_and_shown_in_the_phase() -> None:
    release = "rolled"
    world = settled()
    record_passes(world, release)
    before = REGISTRY.get_sample_value(
        "modelrelease_time_to_rollback_seconds_count", {"namespace": NS}
    )
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=0.5)
    record_passes(world, release)
    assert value("modelrelease_phase", release, phase="RolledBack") == 1
    assert value("modelrelease_rollbacks_total", release) == 1
    assert value("modelrelease_events_total", release, reason="RolledBack") == 1
    assert value(
        "modelrelease_last_outcome_timestamp_seconds",
        release,
        outcome="RolledBack",
        reason="SLOFailed",
    ) == (world.status.history[-1].time.timestamp())
    after = REGISTRY.get_sample_value(
        "modelrelease_time_to_rollback_seconds_count", {"namespace": NS}
    )
    assert after == (before or 0) + 1
    telemetry.forget(NS, release)
    assert names_of(release) == set()


def test_a_failed_pass_keeps_the_gauges_and_counts_the_error() -> None:
    release = "failing"
    world = settled()
    record_passes(world, release)
    telemetry.record(NS, release, None, "error")
    assert value("modelrelease_reconcile_total", release, result="error") == 1
    assert value("modelrelease_phase", release, phase="Succeeded") == 1
    telemetry.forget(NS, release)
    assert names_of(release) == set()


def test_build_info_names_the_version() -> None:
    from modelrelease import __version__

    assert (
        REGISTRY.get_sample_value(
            "modelrelease_build_info",
            {"version": __version__, "python_version": __import__("platform").python_version()},
        )
        == 1
    )


def test_a_replica_that_stops_leading_drops_every_release_series() -> None:
    world = settled()
    record_passes(world, "one")
    record_passes(settled(), "two")
    assert names_of("one")
    assert names_of("two")
    telemetry.forget_all()
    assert names_of("one") == set()
    assert names_of("two") == set()
