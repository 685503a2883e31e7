"""What one reconcile pass decided to do, as plain data; ``handlers`` carries it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from modelrelease.api.constants import Reason
from modelrelease.api.models import ModelReleaseStatus
from modelrelease.core.routes import Routes


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: Reason
    message: str


@dataclass(frozen=True)
class Workloads:
    """Desired replicas per revision, and which revision each Service selects.

    ``apply_revision`` is the spec's own revision: its Deployment is built
    (or rebuilt) from the spec. Every other revision listed is only scaled,
    because its template is no longer in the spec.
    """

    apply_revision: str | None = None
    replicas: dict[str, int] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    stable_revision: str | None = None
    canary_revision: str | None = None


@dataclass(frozen=True)
class Decision:
    status: ModelReleaseStatus
    workloads: Workloads | None = None  # None: touch no Deployment or Service
    routes: Routes | None = None  # None: leave the route as it is
    events: tuple[Event, ...] = ()
    consume_action: bool = False
    requeue_after: float | None = None  # seconds until the next pass is useful
