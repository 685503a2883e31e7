"""What a pass reads (needs), how failing passes back off, and errors in status (I6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.constants import Action, Phase, Reason, StageType
from modelrelease.api.models import CurrentStage, ModelReleaseStatus, RevisionStatus
from modelrelease.backoff import Backoff
from modelrelease.core.conditions import degraded_patch
from modelrelease.core.needs import needs
from modelrelease.core.revision import revision_of
from modelrelease.kube.errors import WriteConflictError
from modelrelease.routers import router

from tests.unit.test_plan import make_spec

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WEBHOOK = {"name": "gate", "webhook": {"url": "http://gate.example/check"}}


def _in_flight(phase: Phase, stage_type: StageType = StageType.CANARY) -> ModelReleaseStatus:
    spec = make_spec()
    name = "gate" if stage_type is StageType.WEBHOOK else "canary-1"
    return ModelReleaseStatus(
        phase=phase,
        champion=RevisionStatus(revision="champion"),
        challenger=RevisionStatus(revision=revision_of(spec.model, spec.template)),
        current_stage=CurrentStage(
            index=0,
            type=stage_type,
            name=name,
            step=0,
            weight=10,
            step_start_time=T0,
            stage_start_time=T0,
        ),
    )


def test_a_running_step_needs_its_slo_checks() -> None:
    wanted = needs(make_spec(), _in_flight(Phase.PROGRESSING), T0 + timedelta(seconds=5), "x")
    assert wanted.slos
    assert wanted.releasing


@pytest.mark.parametrize("phase", [Phase.FAILED, Phase.ROLLED_BACK, Phase.SUCCEEDED])
def test_idle_releases_read_no_metrics_and_call_no_webhook(phase: Phase) -> None:
    spec = make_spec(stages=[WEBHOOK])
    for status in (_in_flight(phase), _in_flight(phase, StageType.WEBHOOK)):
        wanted = needs(spec, status, T0 + timedelta(hours=1), "x")
        assert not wanted.slos
        assert not wanted.comparison
        assert wanted.gate is None


def test_paused_by_spec_or_action_calls_no_webhook() -> None:
    later = T0 + timedelta(hours=1)
    status = _in_flight(Phase.PROGRESSING, StageType.WEBHOOK)
    assert needs(make_spec(stages=[WEBHOOK]), status, later, "x").gate is not None
    assert needs(make_spec(stages=[WEBHOOK], paused=True), status, later, "x").gate is None
    status.last_action = Action.PAUSE.value
    assert needs(make_spec(stages=[WEBHOOK]), status, later, "x").gate is None


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(base=2.0, cap=60.0, jitter=lambda: 1.0)
    key = ("llm", "chat")
    delays = [backoff.failed(key, 0.0) for _ in range(8)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert not backoff.ready(key, 59.0)
    assert backoff.ready(key, 60.0)
    backoff.succeeded(key)
    assert backoff.ready(key, 0.0)
    assert backoff.failed(key, 0.0) == 2.0


def test_a_users_change_cuts_the_backoff_short_and_keeps_the_count() -> None:
    backoff = Backoff(base=2.0, cap=300.0, jitter=lambda: 1.0)
    key = ("llm", "chat")
    for _ in range(9):
        backoff.failed(key, 0.0, (3, ""))
    assert backoff.remaining(key, 10.0, (3, "")) == 290.0
    assert not backoff.ready(key, 10.0, (3, ""))
    assert backoff.ready(key, 10.0, (4, ""))  # the spec was edited
    assert backoff.ready(key, 10.0, (3, "abort"))  # an action was requested
    # The failures are still counted: the same failure after the change waits the cap.
    assert backoff.failed(key, 10.0, (3, "abort")) == 300.0
    assert not backoff.ready(key, 20.0, (3, "abort"))
    assert backoff.ready(key, 20.0, (3, ""))


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_backoff_jitter_stays_between_half_and_all_of_the_delay(draws: list[float]) -> None:
    values = iter(draws)
    backoff = Backoff(base=2.0, cap=300.0, jitter=lambda: next(values))
    for failures, _ in enumerate(draws, start=1):
        full = min(300.0, 2.0 * 2 ** (failures - 1))
        assert full / 2 <= backoff.failed(("ns", "r"), 0.0) <= full


def test_an_unreadable_status_becomes_degraded_and_keeps_other_conditions() -> None:
    raw = {
        "phase": "NotAPhase",
        "conditions": [
            {"type": "Available", "status": "True", "reason": "Stable"},
            {"type": "Degraded", "status": "False", "reason": "Stable"},
        ],
    }
    patch = degraded_patch(raw, Reason.RECONCILE_ERROR, "status.phase: bad", T0)
    assert patch["message"] == "status.phase: bad"
    types = [(c["type"], c["status"]) for c in patch["conditions"]]
    assert types == [("Available", "True"), ("Degraded", "True")]
    assert patch["conditions"][-1]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_route_writes_retry_conflicts_with_growing_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(router.time, "sleep", pauses.append)
    calls: list[int] = []

    def conflicting_twice() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise WriteConflictError("the route changed")

    router.write_with_retries(conflicting_twice)
    assert len(calls) == 3
    assert len(pauses) == 2
    assert pauses[0] < pauses[1] * 2  # grows (with jitter)
    assert all(pause > 0 for pause in pauses)

    def always() -> None:
        raise WriteConflictError("the route changed")

    with pytest.raises(WriteConflictError):
        router.write_with_retries(always)
