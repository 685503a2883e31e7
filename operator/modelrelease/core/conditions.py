"""``metav1.Condition`` bookkeeping: set a condition, keep its transition time honest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelrelease.api.constants import MAX_MESSAGE_LENGTH, ConditionStatus, ConditionType, Reason
from modelrelease.api.models import Condition


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    now: datetime,
    generation: int,
) -> list[Condition]:
    """A copy of ``conditions`` with ``type_`` set.

    The transition time changes only when the status does, as Kubernetes
    conventions require; reason and message follow the latest pass.
    """
    previous = find(conditions, type_)
    changed = previous is None or previous.status != status
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:MAX_MESSAGE_LENGTH],
        last_transition_time=now if changed or previous is None else previous.last_transition_time,
        observed_generation=generation,
    )
    others = [c for c in conditions if c.type != type_]
    return sorted([*others, condition], key=lambda c: _ORDER.get(c.type, len(_ORDER)))


def find(conditions: list[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


_ORDER: dict[str, int] = {
    ConditionType.AVAILABLE: 0,
    ConditionType.PROGRESSING: 1,
    ConditionType.DEGRADED: 2,
}


def degraded_patch(
    raw_status: dict[str, Any], reason: Reason, message: str, now: datetime
) -> dict[str, Any]:
    """A status merge patch that sets Degraded and the message, from raw status alone.

    For when the status itself may not parse: every other condition is kept as it is.
    """
    conditions = [
        c
        for c in raw_status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") != ConditionType.DEGRADED
    ]
    degraded = {
        "type": ConditionType.DEGRADED.value,
        "status": ConditionStatus.TRUE.value,
        "reason": reason.value,
        "message": message[:MAX_MESSAGE_LENGTH],
        "lastTransitionTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"message": message[:MAX_MESSAGE_LENGTH], "conditions": [*conditions, degraded]}
