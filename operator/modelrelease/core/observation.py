"""What one reconcile pass saw, as plain data (parsed from API objects here, purely)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelrelease.analysis.checks import Measurement
from modelrelease.api.constants import (
    ACTION_ARGUMENT_SEPARATOR,
    LABEL_REVISION,
    Action,
    Reason,
)
from modelrelease.api.models import MisdirectedAutoscaler, ModelSpec
from modelrelease.core.comparison import MetricReading
from modelrelease.core.gpu import NodeGPUs
from modelrelease.core.manifests import ANNOTATION_MANIFEST_HASH, Owner, model_from_annotations
from modelrelease.core.pods import PodState
from modelrelease.core.routes import Routes
from modelrelease.gates.webhook import CallResult

if TYPE_CHECKING:
    from modelrelease.core.guard import GuardQueries, GuardReading
    from modelrelease.core.slos import ResolvedSLO

Json = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """Something in the spec or the cluster that stops the release from moving."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class DeploymentState:
    """One revision's Deployment as observed."""

    name: str
    revision: str
    replicas: int  # spec.replicas
    ready_replicas: int
    updated_replicas: int
    created: datetime | None
    manifest_hash: str | None
    model: ModelSpec | None

    @property
    def ready(self) -> bool:
        return self.ready_replicas >= self.replicas and self.updated_replicas >= self.replicas


@dataclass(frozen=True)
class SLOResult:
    """One SLO's measurement in this pass, with the request count when one is asked for."""

    measurement: Measurement
    requests: float | None = None


@dataclass(frozen=True)
class Observation:
    owner: Owner
    generation: int = 0
    deployments: Mapping[str, DeploymentState] = field(default_factory=dict)  # by revision
    routes: Routes | None = None  # None: no router, or it could not be read
    problems: tuple[Problem, ...] = ()
    slo_results: Mapping[str, SLOResult] | None = None  # None: no check ran this pass
    action: Action | None = None
    action_argument: str | None = None  # ``undo:<revision>``: the revision
    invalid_action: str | None = None  # an annotation value that is no known action
    slos: tuple[ResolvedSLO, ...] = ()  # the SLO queries as rendered for this pass
    # GPU view of the nodes (None: not read this pass, so no GPU check is made).
    gpu_nodes: tuple[NodeGPUs, ...] | None = None
    pods: tuple[PodState, ...] = ()  # the release's pods (for failing-challenger checks)
    # Comparison counters read this pass, by metric (None: no comparison was due).
    comparison: Mapping[str, MetricReading] | None = None
    gate_result: CallResult | None = None  # the webhook's answer, when it was called this pass
    # The sequential guard's subqueries and what they read, by SLO (None: not read this pass).
    guard_queries: tuple[GuardQueries, ...] = ()
    guard: Mapping[str, GuardReading] | None = None
    # The revision each owned Service selects now (stable, canary); None: no such Service.
    selected: Mapping[str, str | None] = field(default_factory=dict)
    # HPAs aimed at the release's Deployments (None: not known, the operator may not list HPAs).
    autoscalers: tuple[MisdirectedAutoscaler, ...] | None = None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def revision_of_object(obj: Json) -> str:
    """The revision label of an owned object ("" when it has none)."""
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION) or "")


def selected_revision(service: Json | None) -> str | None:
    """The revision an owned Service's selector picks; None for no Service or no such label."""
    if service is None:
        return None
    selector = (service.get("spec") or {}).get("selector") or {}
    revision = selector.get(LABEL_REVISION)
    return str(revision) if revision else None


def deployment_state(obj: Json) -> DeploymentState | None:
    """Parse a Deployment; None when it carries no revision label."""
    meta = obj.get("metadata") or {}
    revision = revision_of_object(obj)
    if not revision:
        return None
    status = obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    return DeploymentState(
        name=str(meta.get("name", "")),
        revision=str(revision),
        replicas=int((obj.get("spec") or {}).get("replicas", 1)),
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        created=_time(meta.get("creationTimestamp")),
        manifest_hash=annotations.get(ANNOTATION_MANIFEST_HASH),
        model=model_from_annotations(annotations),
    )


def deployments_by_revision(objects: Iterable[Json]) -> dict[str, DeploymentState]:
    states = (deployment_state(obj) for obj in objects)
    return {state.revision: state for state in states if state is not None}


def parse_action(value: str | None) -> tuple[Action | None, str | None]:
    """The action an annotation asks for, or the invalid text it holds."""
    if value is None:
        return None, None
    name, _, argument = value.partition(ACTION_ARGUMENT_SEPARATOR)
    try:
        action = Action(name.strip().lower())
    except ValueError:
        return None, value
    if argument and action is not Action.UNDO:
        return None, value  # only undo takes an argument
    return action, None


def action_argument(value: str | None) -> str | None:
    """The argument of an annotation's action (``undo:<revision>``), if any."""
    if value is None or ACTION_ARGUMENT_SEPARATOR not in value:
        return None
    return value.partition(ACTION_ARGUMENT_SEPARATOR)[2].strip() or None
