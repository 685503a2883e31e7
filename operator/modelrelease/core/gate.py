"""When the webhook stage in progress should be called (pure; the call is I/O)."""

from __future__ import annotations

from datetime import datetime

from modelrelease.api.constants import StageType
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus, WebhookStage
from modelrelease.gates.webhook import GateLimits, GateProgress, is_call_due


def gate_seed(namespace: str, release: str) -> str:
    """The backoff jitter's seed: repeatable per release."""
    return f"{namespace}/{release}"


def webhook_due(
    spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime, seed: str
) -> WebhookStage | None:
    """The webhook stage to call in this pass, or None (no webhook stage, or not yet)."""
    current = status.current_stage
    if current is None or status.challenger is None:
        return None
    named = spec.stage_named(current.name, StageType.WEBHOOK)
    stage = named.webhook if named is not None else None
    if stage is None:
        return None
    start = current.stage_start_time
    elapsed = 0.0 if start is None else (now - start).total_seconds()
    last = current.last_gate_time
    since_last = None if last is None else (now - last).total_seconds()
    progress = GateProgress(current.gate_attempts, current.gate_consecutive_failures)
    if is_call_due(progress, GateLimits.of(stage), elapsed, since_last, seed):
        return stage
    return None
