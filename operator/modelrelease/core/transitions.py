"""Moves of the release between its states: start, stage changes, promotion, rollback."""

from __future__ import annotations

from modelrelease.api.constants import (
    ConditionStatus,
    Outcome,
    Phase,
    Reason,
    StageType,
)
from modelrelease.api.models import CurrentStage
from modelrelease.core.capacity import (
    ReplicaPlan,
    replica_plan,
    steady,
    weight_plan,
    while_loading,
)
from modelrelease.core.context import FULL, Pass, stable_routes
from modelrelease.core.decision import EventType
from modelrelease.core.manifests import STABLE
from modelrelease.core.routes import Routes


def describe(p: Pass, revision: str | None) -> str:
    """``revision 3f2a9c01de (chat-8b 2.1.0)`` for messages."""
    model = p.model_of(revision)
    what = f" ({model.name} {model.version})" if model else ""
    return f"revision {revision}{what}"


def start_challenger(p: Pass) -> None:
    """The spec's revision becomes the challenger and starts the first stage."""
    p.status.challenger = p.revision_status(p.target, 0)
    p.status.checks = []
    p.status.comparison = []
    p.status.stages_passed = []
    p.status.challenger_waiting_since = None
    p.status.phase = Phase.PROGRESSING
    p.healthy()  # a verdict on an earlier revision says nothing about this one
    enter_stage(p, 0, carried_weight=0)
    p.event(
        EventType.NORMAL,
        Reason.NEW_REVISION,
        f"{describe(p, p.target)} is the challenger of {describe(p, p.champion)}; "
        f"starting {p.status.current_stage.name if p.status.current_stage else 'promotion'}",
    )


def enter_stage(p: Pass, index: int | None, carried_weight: int) -> None:
    """Point at stage ``index`` with its clocks stopped (they start when it can run).

    ``None`` (or past the end) means every stage passed: the promotion comes next.
    """
    if index is None or index >= len(p.spec.stages):
        p.status.current_stage = None
        return
    stage = p.spec.stages[index]
    p.status.current_stage = CurrentStage(
        index=index,
        type=stage.type,
        name=p.stage_names[index],
        step=0 if stage.type is StageType.CANARY else None,
        weight=carried_weight,
        mirror_percent=0,
    )


def complete_stage(p: Pass, stage: CurrentStage) -> None:
    """Record the stage as passed (by name) and go to the first stage not passed yet."""
    p.event(EventType.NORMAL, Reason.STAGE_COMPLETED, f"stage {stage.name} passed")
    if stage.name not in p.status.stages_passed:
        p.status.stages_passed = [*p.status.stages_passed, stage.name]
    upcoming = p.next_stage()
    enter_stage(p, upcoming, carried_weight=stage.weight)
    # The next stage starts in the next pass; promotion (no next stage) in this one.
    p.next_stage_at_once = upcoming is not None


def rollback(p: Pass, reason: Reason, message: str) -> None:
    """Traffic and mirror to the champion at once, capacity back, challenger gone."""
    challenger = p.challenger
    assert challenger is not None
    if not p.spec.rollback.automatic:
        _stop_failed(p, reason, message)
        return
    text = f"rolled back {describe(p, challenger)}: {message}"
    p.record_history(challenger, Outcome.ROLLED_BACK, reason, message)
    p.event(EventType.WARNING, Reason.ROLLED_BACK, text)
    p.status.rejected_revision = challenger
    _drop_challenger(p)
    p.status.phase = Phase.ROLLED_BACK
    p.progressing(ConditionStatus.FALSE, Reason.ROLLED_BACK, text)
    p.degraded(reason, text)


def abort(p: Pass, outcome: Outcome, reason: Reason, message: str) -> None:
    """End the in-flight challenger without judging it (superseded, or by a user)."""
    challenger = p.challenger
    assert challenger is not None
    p.record_history(challenger, outcome, reason, message)
    p.event(EventType.NORMAL, reason, f"{describe(p, challenger)}: {message}")
    _drop_challenger(p)


def _drop_challenger(p: Pass) -> None:
    _clear_challenger(p)
    p.run(steady(p.spec.replicas), stable_routes())


def _stop_failed(p: Pass, reason: Reason, message: str) -> None:
    """``rollback.automatic: false``: stop where it is and let a person decide."""
    text = (
        f"{describe(p, p.challenger)} failed: {message}; automatic rollback is off, "
        "abort or promote it (kubectl modelrelease abort|promote)"
    )
    if p.status.phase is not Phase.FAILED:
        p.event(EventType.WARNING, reason, text)
    p.status.phase = Phase.FAILED
    p.progressing(ConditionStatus.FALSE, reason, text)
    p.degraded(reason, text)


def hold_traffic(p: Pass) -> None:
    """Keep the challenger's current share and size; move nothing."""
    stage = p.status.current_stage
    weight = stage.weight if stage else 0
    mirror = stage.mirror_percent if stage else 0
    share = max(weight, mirror)
    if stage is None and p.status.challenger is not None:
        share = FULL  # promotion was under way: keep the challenger at full size
    p.run(replicas_for(p, share), Routes(FULL - weight, weight, mirror))


def replicas_for(p: Pass, share: int) -> ReplicaPlan:
    """Champion and challenger sizes while the challenger takes ``share`` percent."""
    capacity = p.spec.capacity
    if p.spec.traffic.none is not None:
        return weight_plan(p.spec.replicas, share)
    return replica_plan(capacity.mode, p.spec.replicas, capacity.max_surge, share)


def replicas_while_loading(p: Pass, share: int) -> ReplicaPlan:
    """:func:`replicas_for` while the challenger's pods for ``share`` are not Ready yet."""
    capacity = p.spec.capacity
    plan = replicas_for(p, share)
    current = p.deployment(p.champion)
    champion_now = current.replicas if current is not None else plan.champion
    return while_loading(capacity.mode, p.spec.replicas, capacity.max_surge, plan, champion_now)


def promote(p: Pass) -> None:
    """Challenger to full size, then 100% weight, then it becomes the champion.

    Three passes, each writing status before it acts (``handlers``), with the
    writes of each ordered by ``core.actuation``. The states a crash, a failed
    write or a lost status write can leave, and what the next pass does:

    1. challenger scaled up, not all Ready: traffic unchanged; it waits (within
       ``progressDeadline``, counted from ``challengerWaitingSince``).
    2. route at 0/100: the canary Service (challenger, all Ready) serves all;
       the next pass sees 100% on the canary and finishes.
    3. finishing: stable Service repointed to the challenger (it carries 0%
       at this point), route 100/0, old champion scaled to 0. Whatever prefix
       of these happened, stable and canary both select the Ready challenger
       or carry no traffic. If the status saying so was lost, the next pass
       still sees the stable Service on the challenger and finishes again
       (:func:`adopt_promotion`) instead of pointing it back at an old
       champion with no Ready pods.
    """
    challenger = p.challenger
    assert challenger is not None
    full = p.spec.replicas
    stage_weight = p.status.current_stage.weight if p.status.current_stage else None
    routes = p.observation.routes
    weight = routes.canary_weight if routes is not None else (stage_weight or 0)
    if p.ready_replicas(challenger) < full:
        p.waiting = True
        p.run(replicas_while_loading(p, FULL), Routes(FULL - weight, weight, 0))
        _promoting(
            p,
            f"waiting for {describe(p, challenger)} to have {full} ready replicas "
            f"(has {p.ready_replicas(challenger)})",
        )
        return
    if weight < FULL and routes is not None:
        p.run(replicas_for(p, FULL), Routes(0, FULL, 0))
        _promoting(p, f"sending all traffic to {describe(p, challenger)}")
        return
    _finish_promotion(p, challenger)


def _promoting(p: Pass, message: str) -> None:
    p.status.phase = Phase.PROGRESSING
    p.progressing(ConditionStatus.TRUE, Reason.PROMOTING, message)


def adopt_promotion(p: Pass) -> bool:
    """Finish a promotion whose last writes happened but whose status was lost.

    The stable Service is pointed at the challenger only by the promotion's
    last pass, so seeing it there while status still says "promoting" means
    the promotion is done: finish it in status rather than undo it.
    """
    challenger = p.challenger
    promoting = challenger is not None and p.status.current_stage is None
    if not promoting or p.observation.selected.get(STABLE) != challenger:
        return False
    assert challenger is not None
    _finish_promotion(p, challenger)
    return True


def _finish_promotion(p: Pass, challenger: str) -> None:
    previous = p.champion
    message = f"{describe(p, challenger)} replaced {describe(p, previous)}"
    p.record_history(challenger, Outcome.PROMOTED, Reason.PROMOTED, message)
    p.event(EventType.NORMAL, Reason.PROMOTED, message)
    p.status.champion = p.revision_status(challenger, p.spec.replicas)
    _clear_challenger(p)
    p.status.phase = Phase.SUCCEEDED
    # The stable Service now selects the new champion; the old one scales to zero.
    p.run(steady(p.spec.replicas), stable_routes())
    p.progressing(ConditionStatus.FALSE, Reason.PROMOTED, message)
    p.healthy()


def _clear_challenger(p: Pass) -> None:
    p.status.challenger = None
    p.status.current_stage = None
    p.status.stages_passed = []
    p.status.challenger_waiting_since = None
