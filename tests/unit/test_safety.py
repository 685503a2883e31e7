"""The safety invariants at the level of plan(): gates (I2), lost writes (I1), detection (I4).

Each test is a finding of issue 8 that the operator got wrong before.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from modelrelease.api.constants import Action, Phase, Reason
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.manifests import CANARY, STABLE
from modelrelease.core.observation import Problem
from modelrelease.core.plan import plan
from modelrelease.core.pods import ContainerState, PodState
from modelrelease.core.routes import Routes

from tests.unit.test_plan import World, make_spec, settled

CANARY_STAGE = {"canary": {"steps": [{"weight": 10, "duration": "4s"}]}}
APPROVAL = {"approval": {}}


def _respec(world: World, **overrides: Any) -> None:
    raw = world.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw.update(overrides)
    world.spec = ModelReleaseSpec.model_validate(raw)


def _waiting_for_approval(world: World) -> bool:
    return world.status.message is not None and "waiting for a person" in world.status.message


# --- I2: no promotion without every gate --------------------------------------------------


def test_removing_an_earlier_stage_while_at_approval_does_not_promote() -> None:
    world = settled(make_spec(stages=[CANARY_STAGE, APPROVAL]))
    world.release("2")
    world.run_until(_waiting_for_approval)
    _respec(world, stages=[APPROVAL])  # the canary stage goes; approval-1 stays approval-1
    for _ in range(30):
        world.tick()
    assert world.status.phase is Phase.PROGRESSING
    assert world.status.challenger is not None
    assert _waiting_for_approval(world)
    world.tick(action=Action.APPROVE)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)


def test_removing_the_current_stage_goes_on_with_the_first_stage_not_passed() -> None:
    named_gate = {"name": "sign-off", "approval": {}}
    world = settled(make_spec(stages=[CANARY_STAGE, named_gate]))
    world.release("2")
    world.run_until(_waiting_for_approval)
    _respec(world, stages=[CANARY_STAGE, {"approval": {}}])  # renamed: a new, unpassed gate
    for _ in range(10):
        world.tick()
    assert world.status.challenger is not None
    assert world.status.current_stage is not None
    assert world.status.current_stage.name == "approval-1"
    assert world.status.stages_passed == ["canary-1"]


def test_a_stage_added_before_the_current_one_runs_before_promotion() -> None:
    world = settled(make_spec(stages=[CANARY_STAGE]))
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    _respec(world, stages=[APPROVAL, CANARY_STAGE])
    for _ in range(30):
        world.tick()
    assert world.status.phase is not Phase.SUCCEEDED
    assert _waiting_for_approval(world)
    world.tick(action=Action.APPROVE)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    assert world.status.history[-1].reason == Reason.PROMOTED


# --- I1: a lost status write after the promotion's last writes ------------------------------


def test_a_promotion_whose_status_was_lost_is_finished_not_undone() -> None:
    world = settled()
    new = world.release("2")
    # Run to the pass that finishes the promotion, but keep the status from before it.
    while True:
        before = world.status
        decision = world.tick()
        if world.status.phase is Phase.SUCCEEDED:
            break
    assert decision.workloads is not None
    assert decision.workloads.stable_revision == new
    world.status = before  # that pass's status write was lost
    observation = replace(
        world.observe(0.0, None, ()), selected={STABLE: new, CANARY: new}, routes=Routes(100, 0)
    )
    again = plan(world.spec, world.status, observation, world.now)
    assert again.status.champion is not None
    assert again.status.champion.revision == new
    assert again.status.challenger is None
    assert again.workloads is not None
    assert again.workloads.stable_revision == new
    assert again.routes == Routes(100, 0, 0)


# --- I4: failure detection always runs, deadlines at every wait -----------------------------


def _crash_looping(revision: str) -> tuple[PodState, ...]:
    container = ContainerState("server", restarts=5, waiting_reason="CrashLoopBackOff")
    return (PodState(name=f"chat-{revision}-x", revision=revision, containers=(container,)),)


def test_a_crash_looping_challenger_is_rolled_back_while_a_problem_holds_the_release() -> None:
    world = settled()
    new = world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    held = (Problem(Reason.TEMPLATE_NOT_FOUND, "ClusterSLOTemplate x is missing"),)
    observation = replace(world.observe(0.0, None, held), pods=_crash_looping(new))
    decision = plan(world.spec, world.status, observation, world.now)
    assert decision.status.phase is Phase.ROLLED_BACK
    assert decision.status.history[-1].reason == Reason.CRASH_LOOPING
    assert decision.routes == Routes(100, 0, 0)


def test_a_crash_looping_challenger_is_rolled_back_while_paused() -> None:
    world = settled()
    new = world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    _respec(world, paused=True)
    world.tick()
    assert world.status.phase is Phase.PAUSED
    observation = replace(world.observe(0.0, None, ()), pods=_crash_looping(new))
    decision = plan(world.spec, world.status, observation, world.now)
    assert decision.status.phase is Phase.ROLLED_BACK


def test_progress_deadline_bounds_a_later_step() -> None:
    world = settled(make_spec(progressDeadline="30s"))
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    world.ready_after = 10_000  # the 50% step's new pods never become Ready
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=60)
    assert world.status.history[-1].reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert world.routes == Routes(100, 0, 0)


def test_progress_deadline_bounds_the_final_scale_up() -> None:
    world = settled(make_spec(progressDeadline="30s"))
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 50)
    world.ready_after = 10_000
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=60)
    assert world.status.history[-1].reason == Reason.PROGRESS_DEADLINE_EXCEEDED


def test_progress_deadline_runs_on_while_a_problem_holds_the_release() -> None:
    world = settled(make_spec(progressDeadline="30s"))
    world.ready_after = 10_000
    world.release("2")
    world.tick()
    assert world.status.challenger_waiting_since is not None
    held = (Problem(Reason.SECRET_NOT_FOUND, "Secret llm/prom is missing"),)
    world.now += timedelta(seconds=31)
    decision = world.tick(problems=held)
    assert decision.status.phase is Phase.ROLLED_BACK


def test_the_waiting_clock_keeps_sub_second_precision_across_a_restart() -> None:
    world = settled(make_spec(progressDeadline="30s"))
    world.ready_after = 10_000
    world.now += timedelta(microseconds=900_000)
    world.release("2")
    world.tick()
    since = world.status.challenger_waiting_since
    assert since is not None
    assert since.microsecond == 900_000
    restored = ModelReleaseStatus.model_validate(world.status.model_dump(mode="json"))
    assert restored.challenger_waiting_since == since
