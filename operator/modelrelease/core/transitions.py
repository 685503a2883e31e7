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
    p.status.phase = Phase.PROGRESSING
    p.healthy()  # a verdict on an earlier revision says nothing about this one
    enter_stage(p, 0, carried_weight=0)
    p.event(
        EventType.NORMAL,
        Reason.NEW_REVISION,
        f"{describe(p, p.target)} is the challenger of {describe(p, p.champion)}; "
        f"starting {p.status.current_stage.name if p.status.current_stage else 'promotion'}",
    )


def enter_stage(p: Pass, index: int, carried_weight: int) -> None:
    """Point at stage ``index`` with its clocks stopped (they start when it can run)."""
    if index >= len(p.spec.stages):
        p.status.current_stage = None  # every stage passed: promotion
        return
    stage = p.spec.stages[index]
    p.status.current_stage = CurrentStage(
        index=index,
        type=stage.type,
        name=stage.display_name(index),
        step=0 if stage.type is StageType.CANARY else None,
        weight=carried_weight,
        mirror_percent=0,
    )


def complete_stage(p: Pass, stage: CurrentStage) -> None:
    p.event(EventType.NORMAL, Reason.STAGE_COMPLETED, f"stage {stage.name} passed")
    enter_stage(p, stage.index + 1, carried_weight=stage.weight)


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
    p.status.challenger = None
    p.status.current_stage = None
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
    """Challenger to full size, then 100% weight, then it becomes the champion."""
    challenger = p.challenger
    assert challenger is not None
    full = p.spec.replicas
    stage_weight = p.status.current_stage.weight if p.status.current_stage else None
    routes = p.observation.routes
    weight = routes.canary_weight if routes is not None else (stage_weight or 0)
    if p.ready_replicas(challenger) < full:
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


def _finish_promotion(p: Pass, challenger: str) -> None:
    previous = p.champion
    message = f"{describe(p, challenger)} replaced {describe(p, previous)}"
    p.record_history(challenger, Outcome.PROMOTED, Reason.PROMOTED, message)
    p.event(EventType.NORMAL, Reason.PROMOTED, message)
    p.status.champion = p.revision_status(challenger, p.spec.replicas)
    p.status.challenger = None
    p.status.current_stage = None
    p.status.phase = Phase.SUCCEEDED
    # The stable Service now selects the new champion; the old one scales to zero.
    p.run(steady(p.spec.replicas), stable_routes())
    p.progressing(ConditionStatus.FALSE, Reason.PROMOTED, message)
    p.healthy()
