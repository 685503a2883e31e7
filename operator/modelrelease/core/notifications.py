"""Which notifications a pass owes, and the outbox they wait in (pure).

A pass's transitions are read off the status it starts from and the status it
decided (:func:`transitions`): a new challenger, a stage whose clock started,
a wait for approval, a history entry saying promoted or rolled back, phase
Failed. Each becomes one :class:`PendingNotification` per receiver that wants
it, written into ``status.pendingNotifications`` by the same status write as
the transition itself (:func:`record`). The sender (``notify.sender``) delivers
what is pending in the background; a later pass removes what it reports as
settled. So:

- a transition announced is never lost: a crash before the status write loses
  the transition too (the next pass makes it again, with the same id), a crash
  after it leaves the notification pending for the next operator;
- a notification is sent at least once: a crash between the delivery and the
  pass that records it sends it again, with the same id
  (``X-ModelRelease-Delivery``), which a receiver can use to drop the repeat.

Ids are derived, not drawn: ``<uid>/<revision>/<attempt>/<type>[/<stage>]``, where
``attempt`` counts the revision's earlier history entries, so a pass that
decides the same transition again (a lost status write) gets the same id, and a
retried revision gets new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from modelrelease.api.constants import (
    ConditionType,
    NotificationType,
    Outcome,
    Phase,
    Reason,
    StageType,
    Verdict,
)
from modelrelease.api.models import (
    HistoryEntry,
    ModelReleaseStatus,
    NotificationReceiver,
    NotificationsSpec,
    PendingNotification,
)
from modelrelease.core.conditions import find
from modelrelease.core.decision import Event, EventType

MAX_PENDING = 32
"""At most this many notifications wait in status; beyond, the oldest are dropped."""
MAX_NOTIFIED = 32
"""Ids of this many settled notifications are kept in status (``notified``), newest last."""

# Reasons whose rollback names a failing SLO check.
_SLO_REASONS = frozenset({Reason.SLO_FAILED.value, Reason.SLO_INCONCLUSIVE.value})

DeliveryKey = tuple[str, str]  # (notification id, receiver name)


@dataclass(frozen=True)
class Settled:
    """What the sender reports of one delivery: sent, or given up and why."""

    delivered: bool
    message: str = ""  # why it was given up (never a URL or a key)


@dataclass(frozen=True)
class Intent:
    """A transition worth telling, before it is addressed to receivers."""

    id: str
    type: NotificationType
    time: datetime
    revision: str
    model_name: str | None = None
    model_version: str | None = None
    champion_version: str | None = None
    stage: str | None = None
    reason: str | None = None
    message: str = ""
    slo: str | None = None
    slo_value: float | None = None
    slo_min: float | None = None
    slo_max: float | None = None


def delivery_key(notification: PendingNotification) -> DeliveryKey:
    return notification.id, notification.receiver


# --- what happened in this pass ------------------------------------------------------


def transitions(
    uid: str, old: ModelReleaseStatus, new: ModelReleaseStatus, now: datetime
) -> list[Intent]:
    """The transitions from ``old`` to ``new`` that notifications announce, in order."""
    intents: list[Intent] = []
    intents += _challenger_started(uid, old, new, now)
    intents += _stage_started(uid, old, new, now)
    intents += _waiting_for_approval(uid, old, new, now)
    intents += _ended(uid, old, new)
    intents += _failed(uid, old, new, now)
    return intents


def _attempt(old: ModelReleaseStatus, revision: str) -> int:
    """How many times the revision's release ended before (0 the first time)."""
    return sum(1 for entry in old.history if entry.revision == revision)


def _id(uid: str, revision: str, attempt: int, type_: NotificationType, stage: str = "") -> str:
    return "/".join(part for part in (uid, revision, str(attempt), type_.value, stage) if part)


def _intent(
    uid: str,
    old: ModelReleaseStatus,
    new: ModelReleaseStatus,
    type_: NotificationType,
    now: datetime,
    stage: str | None = None,
    message: str = "",
) -> Intent:
    challenger = new.challenger
    assert challenger is not None
    assert challenger.revision is not None
    revision = challenger.revision
    return Intent(
        id=_id(uid, revision, _attempt(old, revision), type_, stage or ""),
        type=type_,
        time=now,
        revision=revision,
        model_name=challenger.model_name,
        model_version=challenger.model_version,
        champion_version=new.champion.model_version if new.champion else None,
        stage=stage,
        message=message or (new.message or ""),
    )


def _challenger_of(status: ModelReleaseStatus) -> str | None:
    return status.challenger.revision if status.challenger else None


def _challenger_started(
    uid: str, old: ModelReleaseStatus, new: ModelReleaseStatus, now: datetime
) -> list[Intent]:
    revision = _challenger_of(new)
    if revision is None or revision == _challenger_of(old) or revision == new.undo_revision:
        return []  # an undo brings back a former champion: its end says it all
    champion = new.champion.revision if new.champion else None
    stage = new.current_stage.name if new.current_stage else None
    message = f"revision {revision} is the challenger of revision {champion}" + (
        f"; its first stage is {stage}" if stage else ""
    )
    return [_intent(uid, old, new, NotificationType.CHALLENGER_STARTED, now, message=message)]


def _stage_started(
    uid: str, old: ModelReleaseStatus, new: ModelReleaseStatus, now: datetime
) -> list[Intent]:
    stage = new.current_stage
    if _challenger_of(new) is None or stage is None or stage.stage_start_time is None:
        return []
    if stage.type is StageType.APPROVAL:
        return []  # WaitingForApproval says it, with what to run
    before = old.current_stage
    same_run = _challenger_of(old) == _challenger_of(new)
    if same_run and before is not None and before.name == stage.name and before.stage_start_time:
        return []
    return [
        _intent(
            uid,
            old,
            new,
            NotificationType.STAGE_STARTED,
            now,
            stage=stage.name,
            message=f"stage {stage.name} ({stage.type.value}) started",
        )
    ]


def _waiting_for_approval(
    uid: str, old: ModelReleaseStatus, new: ModelReleaseStatus, now: datetime
) -> list[Intent]:
    stage = new.current_stage
    condition = find(new.conditions, ConditionType.PROGRESSING)
    if _challenger_of(new) is None or stage is None or condition is None:
        return []
    if condition.reason != Reason.WAITING_FOR_APPROVAL:
        return []
    before = find(old.conditions, ConditionType.PROGRESSING)
    waited = before is not None and before.reason == Reason.WAITING_FOR_APPROVAL
    same = waited and old.current_stage is not None and old.current_stage.name == stage.name
    if same and _challenger_of(old) == _challenger_of(new):
        return []
    return [
        _intent(
            uid,
            old,
            new,
            NotificationType.WAITING_FOR_APPROVAL,
            now,
            stage=stage.name,
            message=condition.message,
        )
    ]


def _new_entries(old: ModelReleaseStatus, new: ModelReleaseStatus) -> list[HistoryEntry]:
    """History entries this pass added (the list is bounded, so not by length)."""
    seen = {(entry.revision, entry.time, entry.outcome) for entry in old.history}
    return [e for e in new.history if (e.revision, e.time, e.outcome) not in seen]


def _ended(uid: str, old: ModelReleaseStatus, new: ModelReleaseStatus) -> list[Intent]:
    intents = []
    for entry in _new_entries(old, new):
        if entry.outcome is Outcome.PROMOTED and entry.reason == Reason.PROMOTED:
            type_ = NotificationType.PROMOTED
        elif entry.outcome is Outcome.ROLLED_BACK:
            type_ = NotificationType.ROLLED_BACK
        else:
            continue  # the first revision, a superseded or aborted one, a kept champion
        intents.append(_from_history(uid, old, new, entry, type_))
    return intents


def _from_history(
    uid: str,
    old: ModelReleaseStatus,
    new: ModelReleaseStatus,
    entry: HistoryEntry,
    type_: NotificationType,
) -> Intent:
    failing = None
    if type_ is NotificationType.ROLLED_BACK and entry.reason in _SLO_REASONS:
        failing = next(
            (c for c in new.checks if c.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE)), None
        )
    champion = (
        old.champion.model_version
        if type_ is NotificationType.PROMOTED and old.champion
        else (new.champion.model_version if new.champion else None)
    )
    return Intent(
        id=_id(uid, entry.revision, _attempt(old, entry.revision), type_),
        type=type_,
        time=entry.time,
        revision=entry.revision,
        model_name=entry.model_name,
        model_version=entry.model_version,
        champion_version=champion,
        reason=entry.reason,
        message=entry.message,
        slo=failing.name if failing else None,
        slo_value=failing.value if failing else None,
        slo_min=failing.min if failing else None,
        slo_max=failing.max if failing else None,
    )


def _failed(
    uid: str, old: ModelReleaseStatus, new: ModelReleaseStatus, now: datetime
) -> list[Intent]:
    if new.phase is not Phase.FAILED or old.phase is Phase.FAILED or new.challenger is None:
        return []
    intent = _intent(uid, old, new, NotificationType.FAILED, now)
    degraded = find(new.conditions, ConditionType.DEGRADED)
    reason = degraded.reason if degraded is not None else None
    failing = next((c for c in new.checks if c.verdict is Verdict.FAIL), None)
    if reason not in _SLO_REASONS:
        failing = None
    return [
        replace(
            intent,
            reason=reason,
            slo=failing.name if failing else None,
            slo_value=failing.value if failing else None,
            slo_min=failing.min if failing else None,
            slo_max=failing.max if failing else None,
        )
    ]


# --- the outbox -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbox:
    pending: list[PendingNotification]
    notified: list[str]
    events: list[Event]
    recorded: list[DeliveryKey]  # settled deliveries this status write records


def record(
    spec: NotificationsSpec | None,
    pending: Iterable[PendingNotification],
    intents: Iterable[Intent],
    settled: Mapping[DeliveryKey, Settled],
    problems: Iterable[str] = (),
    notified: Iterable[str] = (),
) -> Outbox:
    """The outbox after this pass: what was pending, less what the sender settled (given
    up ones with a Warning Event) and what no receiver wants any more, plus the new
    intents addressed to each receiver that wants them; bounded by :data:`MAX_PENDING`.

    ``notified`` (status) holds the ids of the latest settled notifications: a
    transition decided again later (a condition that came back, a lost status write
    after the sender forgot it) is not told again."""
    pending = list(pending)
    done = list(notified)
    receivers = {receiver.name: receiver for receiver in (spec.receivers if spec else [])}
    events = [Event(EventType.WARNING, Reason.NOTIFICATION_CONFIG_INVALID, p) for p in problems]
    # Everything settled is recorded by this status write: taken out of the outbox, and
    # not added again when this pass decides its transition once more (a lost write).
    for outcome, notification in _settled_in(pending, settled):
        if not outcome.delivered:
            events.append(_given_up(notification, outcome.message))
    kept = [
        notification
        for notification in pending
        if delivery_key(notification) not in settled
        and _wants(receivers.get(notification.receiver), notification.type)
    ]
    done += [notification.id for _, notification in _settled_in(pending, settled)]
    done = list(dict.fromkeys(reversed(done)))[:MAX_NOTIFIED][::-1]  # newest last, unique
    known = {delivery_key(n) for n in kept} | set(settled)
    for intent in intents:
        if intent.id in done:
            continue
        for receiver in receivers.values():
            addressed = _address(intent, receiver.name)
            if _wants(receiver, intent.type) and delivery_key(addressed) not in known:
                kept.append(addressed)
                known.add(delivery_key(addressed))
    dropped, kept = kept[: max(len(kept) - MAX_PENDING, 0)], kept[-MAX_PENDING:]
    events += [_given_up(n, f"more than {MAX_PENDING} were waiting") for n in dropped]
    return Outbox(kept, done, events, list(settled))


def _settled_in(
    pending: Iterable[PendingNotification], settled: Mapping[DeliveryKey, Settled]
) -> list[tuple[Settled, PendingNotification]]:
    return [(settled[delivery_key(n)], n) for n in pending if delivery_key(n) in settled]


def _wants(receiver: NotificationReceiver | None, type_: NotificationType) -> bool:
    return receiver is not None and type_ in receiver.events


def _address(intent: Intent, receiver: str) -> PendingNotification:
    return PendingNotification(
        id=intent.id,
        receiver=receiver,
        type=intent.type,
        time=intent.time,
        revision=intent.revision,
        model_name=intent.model_name,
        model_version=intent.model_version,
        champion_version=intent.champion_version,
        stage=intent.stage,
        reason=intent.reason,
        message=intent.message,
        slo=intent.slo,
        slo_value=intent.slo_value,
        slo_min=intent.slo_min,
        slo_max=intent.slo_max,
    )


def _given_up(notification: PendingNotification, why: str) -> Event:
    what = f"{notification.type.value} of revision {notification.revision}"
    return Event(
        EventType.WARNING,
        Reason.NOTIFICATION_FAILED,
        f"notification {what} to receiver {notification.receiver} was not sent: {why}. "
        "The release goes on; later notifications are still tried",
    )
