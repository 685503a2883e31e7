"""What a pass must read before it can plan: one pure answer, so observing and
planning cannot disagree (a paused release was still queried when each I/O
call decided on its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelrelease.api.constants import Action, Phase
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus, WebhookStage
from modelrelease.core.comparison import comparison_due
from modelrelease.core.gate import webhook_due
from modelrelease.core.guard import guard_on
from modelrelease.core.revision import revision_of
from modelrelease.core.slos import checks_due

IDLE_PHASES = frozenset({Phase.FAILED, Phase.ROLLED_BACK, Phase.SUCCEEDED})


@dataclass(frozen=True)
class Needs:
    slos: bool = False  # query the SLOs
    comparison: bool = False  # read the comparison counters
    gate: WebhookStage | None = None  # call this webhook
    releasing: bool = False  # the release's pods and the GPU view
    guard: bool = False  # read the sequential guard's counters

    @property
    def metrics(self) -> bool:
        return self.slos or self.comparison or self.guard


def needs(spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime, seed: str) -> Needs:
    releasing = _releasing(spec, status)
    if quiet(spec, status):
        # Invariant I6: paused and finished releases make no metric or webhook calls.
        return Needs(releasing=releasing)
    return Needs(
        slos=checks_due(spec.analysis, status, now),
        comparison=comparison_due(spec, status, now),
        gate=webhook_due(spec, status, now, seed),
        releasing=releasing,
        guard=guard_on(spec, status),
    )


def quiet(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> bool:
    """Paused (by the spec or a pause action), or Failed, RolledBack or Succeeded."""
    if spec.paused or status.last_action == Action.PAUSE.value:
        return True
    return status.phase in IDLE_PHASES


def _releasing(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> bool:
    """A challenger is in flight, or the spec's revision is about to become one."""
    if status.challenger is not None:
        return True
    champion = status.champion.revision if status.champion else None
    return champion is not None and revision_of(spec.model, spec.template) != champion
