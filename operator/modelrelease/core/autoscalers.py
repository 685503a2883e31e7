"""HorizontalPodAutoscalers aimed at a release's Deployments instead of the release.

The operator sets the replicas of every Deployment it owns; an HPA whose
``scaleTargetRef`` names one of them would fight it over ``spec.replicas``. The
operator keeps deciding (the autoscaler's changes are undone) and says once, per
autoscaler, where to aim it: at the ModelRelease, whose ``scale`` subresource
takes the total that the release splits between champion and challenger.

Pure: the views parse the targets (``scale_target``) and the pass reports them
(``report_misdirected_autoscalers``), remembering in status which ones it has
told about, so an Event is posted when the set changes, not on every pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelrelease.api.constants import API_VERSION, KIND_MODEL_RELEASE, Reason
from modelrelease.api.models import MisdirectedAutoscaler
from modelrelease.core.decision import EventType

if TYPE_CHECKING:
    from modelrelease.core.context import Pass

Json = dict[str, Any]

DEPLOYMENT_GROUP = "apps"
DEPLOYMENT_KIND = "Deployment"


def scale_target(autoscaler: Json) -> str | None:
    """The name of the Deployment an HPA scales; None when it scales anything else."""
    target = (autoscaler.get("spec") or {}).get("scaleTargetRef") or {}
    group = str(target.get("apiVersion") or "").partition("/")[0]
    if target.get("kind") != DEPLOYMENT_KIND or group != DEPLOYMENT_GROUP:
        return None
    name = target.get("name")
    return str(name) if name else None


def misdirected(
    autoscalers: Iterable[Json], deployments: Iterable[str]
) -> tuple[MisdirectedAutoscaler, ...]:
    """The HPAs among ``autoscalers`` that scale one of ``deployments``, by name."""
    owned = set(deployments)
    found = {
        (str((hpa.get("metadata") or {}).get("name")), target)
        for hpa in autoscalers
        if (target := scale_target(hpa)) is not None and target in owned
    }
    return tuple(
        MisdirectedAutoscaler(name=name, deployment=deployment)
        for name, deployment in sorted(found)
    )


def report_misdirected_autoscalers(p: Pass) -> None:
    """Keep ``status.misdirectedAutoscalers`` as seen; a Warning Event for each new entry.

    An entry is new when the HPA was not listed, or listed with another Deployment
    (aimed at the challenger after the champion). Nothing changes when the views
    could not see HPAs (None: the operator may not list them).
    """
    seen = p.observation.autoscalers
    if seen is None:
        return
    told = {(entry.name, entry.deployment) for entry in p.status.misdirected_autoscalers}
    for entry in seen:
        if (entry.name, entry.deployment) not in told:
            p.event(EventType.WARNING, Reason.HPA_TARGETS_OWNED_DEPLOYMENT, _message(p, entry))
    p.status.misdirected_autoscalers = [entry.model_copy() for entry in seen]


def _message(p: Pass, entry: MisdirectedAutoscaler) -> str:
    return (
        f"HorizontalPodAutoscaler {entry.name} targets Deployment {entry.deployment}, which "
        f"ModelRelease {p.release} owns: the operator sets that Deployment's replicas and "
        "undoes the autoscaler's changes. Point its scaleTargetRef at the ModelRelease: "
        f"apiVersion {API_VERSION}, kind {KIND_MODEL_RELEASE}, name {p.release}; the release "
        "splits the replicas the autoscaler asks for between champion and challenger"
    )
