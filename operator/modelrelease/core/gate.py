"""When the webhook stage in progress should be called (pure; the call is I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelrelease.api.constants import StageType
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus, WebhookStage
from modelrelease.gates.webhook import GateLimits, GateProgress, delay_before_next_call


def gate_seed(namespace: str, release: str) -> str:
    """The backoff jitter's seed: repeatable per release."""
    return f"{namespace}/{release}"


AT_ONCE = datetime.min.replace(tzinfo=UTC)
"""A moment that has always come: a first call is due at once."""


def webhook_stage(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> WebhookStage | None:
    """The webhook stage in progress, or None."""
    current = status.current_stage
    if current is None or status.challenger is None:
        return None
    named = spec.stage_named(current.name, StageType.WEBHOOK)
    return named.webhook if named is not None else None


def next_call_at(spec: ModelReleaseSpec, status: ModelReleaseStatus, seed: str) -> datetime | None:
    """When the webhook stage in progress is next called; None: no webhook stage.

    The first call at once; then the delay ``decide`` chose
    after the last call, or the stage's deadline if that comes first (one last
    call decides the gate).
    """
    stage = webhook_stage(spec, status)
    current = status.current_stage
    if stage is None or current is None:
        return None
    if current.last_gate_time is None:
        return current.stage_start_time or AT_ONCE
    limits = GateLimits.of(stage)
    progress = GateProgress(current.gate_attempts, current.gate_consecutive_failures)
    delay = delay_before_next_call(progress, limits, seed)
    moment = current.last_gate_time + timedelta(seconds=delay)
    if current.stage_start_time is None:
        return moment
    return min(moment, current.stage_start_time + timedelta(seconds=limits.max_duration))


def webhook_due(
    spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime, seed: str
) -> WebhookStage | None:
    """The webhook stage to call in this pass, or None (no webhook stage, or not yet)."""
    stage = webhook_stage(spec, status)
    if stage is None:
        return None
    moment = next_call_at(spec, status, seed)
    return stage if moment is not None and now >= moment else None
