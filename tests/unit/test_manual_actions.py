"""Actions a person asks for beyond the stages: skip-step and undo (core.manual), driven
through plan() in the in-memory world of test_plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from modelrelease.api.constants import Action, Outcome, Phase, Reason
from modelrelease.core.decision import Decision
from modelrelease.core.manifests import CANARY, STABLE
from modelrelease.core.observation import action_argument, parse_action
from modelrelease.core.plan import plan
from modelrelease.routers.router import Routes

from tests.unit.test_plan import World, canary_weights, make_spec, settled


def request(world: World, action: Action, argument: str | None = None) -> Decision:
    observation = replace(world.observe(0.0, action, ()), action_argument=argument)
    decision = plan(world.spec, world.status, observation, world.now)
    world.apply(decision)
    world.now += timedelta(seconds=1)
    return decision


def reasons(world: World) -> list[Reason]:
    return [event.reason for decision in world.decisions for event in decision.events]


def champion(world: World) -> str | None:
    return world.status.champion.revision if world.status.champion else None


def promoted(world: World, version: str) -> str:
    new = world.release(version)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED and champion(w) == new)
    return new


# --- skip-step ------------------------------------------------------------------------------


def test_skip_step_moves_one_canary_step_then_past_the_stage() -> None:
    spec = make_spec(
        stages=[
            {
                "canary": {
                    "steps": [{"weight": 10, "duration": "1h"}, {"weight": 50, "duration": "1h"}]
                }
            }
        ]
    )
    world = settled(spec)
    new = world.release("2")
    world.run_until(lambda w: w.routes == Routes(90, 10, 0))
    request(world, Action.SKIP_STEP)
    world.run_until(lambda w: w.routes == Routes(50, 50, 0), limit=10)
    stage = world.status.current_stage
    assert stage is not None
    assert stage.step == 1
    assert world.status.challenger is not None  # one step, not the whole release
    request(world, Action.SKIP_STEP)
    world.run_until(lambda w: champion(w) == new, limit=10)
    assert canary_weights(world) == [0, 10, 50, 100, 0]  # no step jumped over in the route
    assert reasons(world).count(Reason.STEP_SKIPPED) == 2


def test_skip_step_passes_an_approval_stage() -> None:
    spec = make_spec(stages=[{"approval": {}}])
    world = settled(spec)
    new = world.release("2")
    world.tick()
    assert world.status.current_stage is not None
    request(world, Action.SKIP_STEP)
    world.run_until(lambda w: champion(w) == new, limit=10)


# --- undo -------------------------------------------------------------------------------------


def test_undo_scales_the_kept_revision_up_before_it_gets_traffic() -> None:
    world = settled(ready_after=3)
    first = champion(world)
    assert first is not None
    second = promoted(world, "2")
    assert world.deployments[first].replicas == 0  # kept for a quick return
    world.route_history.clear()

    request(world, Action.UNDO, first)
    assert world.status.undo_revision == first
    world.run_until(lambda w: champion(w) == first, limit=30)

    # Traffic moved only once the kept revision was Ready, all at once, and came back
    # to the stable Service.
    assert canary_weights(world) == [0, 100, 0]
    assert world.routes == Routes(100, 0, 0)
    assert world.status.phase is Phase.ROLLED_BACK
    assert world.status.undo_revision is None
    assert world.status.rejected_revision == second
    history = [(h.revision, h.outcome, h.reason) for h in world.status.history[-2:]]
    assert history == [
        (first, Outcome.PROMOTED, Reason.PROMOTED),
        (second, Outcome.ROLLED_BACK, Reason.UNDONE),
    ]
    # The spec still names the second revision: it is not released again by itself...
    for _ in range(5):
        world.tick()
    assert champion(world) == first
    assert world.status.challenger is None
    assert world.deployments[second].replicas == 0  # ...and kept, so undo can return to it
    # ...until a retry asks for it.
    request(world, Action.RETRY)
    world.run_until(lambda w: champion(w) == second)


def test_undo_without_a_revision_goes_to_the_newest_kept_one() -> None:
    world = settled()
    promoted(world, "2")
    second = champion(world)
    promoted(world, "3")
    request(world, Action.UNDO)
    assert world.status.undo_revision == second


def test_undo_to_a_revision_that_is_not_kept_is_refused_and_changes_nothing() -> None:
    world = settled(make_spec(revisionHistoryLimit=0))
    first = champion(world)
    promoted(world, "2")
    world.tick()
    assert first not in world.deployments
    before = world.status.model_copy(deep=True)
    decision = request(world, Action.UNDO, first)
    assert [e.reason for e in decision.events] == [Reason.UNDO_REFUSED]
    assert f"revision {first} is not kept" in decision.events[0].message
    assert world.status.challenger is None
    assert world.status.undo_revision is None
    assert world.status.champion == before.champion
    assert world.routes == Routes(100, 0, 0)


def test_undo_during_a_release_is_refused() -> None:
    world = settled()
    first = champion(world)
    promoted(world, "2")
    third = world.release("3")
    decision = request(world, Action.UNDO, first)
    refusals = [e.message for e in decision.events if e.reason is Reason.UNDO_REFUSED]
    assert len(refusals) == 1
    assert "abort it first" in refusals[0]
    assert world.status.challenger is not None
    assert world.status.challenger.revision == third


def test_an_undo_whose_last_status_write_was_lost_is_finished_not_restarted() -> None:
    world = settled()
    first = champion(world)
    second = promoted(world, "2")
    request(world, Action.UNDO, first)
    world.run_until(lambda w: w.routes == Routes(0, 100, 0), limit=20)
    # The finishing pass pointed the stable Service at the kept revision, then its
    # status write was lost: status still says "undoing", the cluster says "done".
    assert world.status.undo_revision == first
    observation = replace(world.observe(0.0, None, ()), selected={STABLE: first, CANARY: first})
    decision = plan(world.spec, world.status, observation, world.now)
    assert decision.status.champion is not None
    assert decision.status.champion.revision == first
    assert decision.status.challenger is None
    assert decision.status.undo_revision is None
    assert decision.status.rejected_revision == second  # not released again by itself
    assert decision.status.history[-1].reason == Reason.UNDONE


def test_a_new_spec_during_an_undo_abandons_it_for_the_new_revision() -> None:
    world = settled(ready_after=5)
    first = champion(world)
    promoted(world, "2")
    request(world, Action.UNDO, first)
    fourth = world.release("4")
    assert world.status.undo_revision is None
    world.run_until(lambda w: champion(w) == fourth)


def test_a_kept_revision_that_never_gets_ready_is_rolled_back_at_the_deadline() -> None:
    world = settled(make_spec(progressDeadline="10s"))
    first = champion(world)
    second = promoted(world, "2")
    world.ready_after = 1000  # the kept revision's pods never get Ready
    request(world, Action.UNDO, first)
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=30)
    assert champion(world) == second
    assert world.routes == Routes(100, 0, 0)
    assert world.status.history[-1].reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    world.tick()
    assert world.status.undo_revision is None


# --- the annotation -----------------------------------------------------------------------------


def test_only_undo_takes_an_argument() -> None:
    assert parse_action("undo:3f2a9c01de") == (Action.UNDO, None)
    assert action_argument("undo:3f2a9c01de") == "3f2a9c01de"
    assert parse_action("undo") == (Action.UNDO, None)
    assert action_argument("undo") is None
    assert parse_action("skip-step") == (Action.SKIP_STEP, None)
    assert parse_action("promote:3f2a") == (None, "promote:3f2a")
