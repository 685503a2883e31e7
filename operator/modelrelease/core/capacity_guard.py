"""Capacity checks on a plan: GPUs for the challenger's new pods, and failing pods.

Both run inside ``plan``. The GPU guard runs after the lifecycle decided what
to scale: a scale-up whose new pods do not fit on free GPUs is held with the
numbers in status (no pod created, no traffic moved) and tried again every
pass. Failing challenger pods roll the challenger back long before its
progress deadline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from modelrelease.api.constants import (
    CapacityMode,
    ConditionStatus,
    ConditionType,
    Phase,
    Reason,
)
from modelrelease.api.models import ModelReleaseStatus
from modelrelease.core.context import Pass
from modelrelease.core.decision import EventType, Workloads
from modelrelease.core.gpu import GPU_RESOURCE, GPUFit, fit
from modelrelease.core.pods import (
    UNSCHEDULABLE_GRACE_SECONDS,
    pod_failure,
    unschedulable_grace_ends,
)
from modelrelease.core.transitions import rollback


def surge_pods(wanted: Mapping[str, int], current: Mapping[str, int], revision: str) -> int:
    """New pods of ``revision`` the plan adds beyond what the release already holds.

    Pods the same plan takes away from the release's other revisions offset
    the growth (the release's total is what competes for GPUs); growth of
    other revisions is not checked here.
    """
    grow = wanted.get(revision, 0) - current.get(revision, 0)
    if grow <= 0:
        return 0
    revisions = set(current) | set(wanted)
    net = sum(wanted.get(r, 0) for r in revisions) - sum(current.get(r, 0) for r in revisions)
    return max(0, min(grow, net))


def guard_gpus(p: Pass, before: ModelReleaseStatus) -> None:
    """Hold a challenger's scale-up whose new pods do not fit on free GPUs.

    A hold keeps every revision at its current size and leaves the route
    alone. A pod no candidate node could ever hold rolls the challenger back
    at once. Rollbacks, aborts and a release without a challenger are not
    held: traffic going back to the champion never waits for GPUs.
    """
    nodes, workloads = p.observation.gpu_nodes, p.workloads
    if nodes is None or workloads is None or p.challenger != p.target:
        return
    if p.spec.capacity.autoscaled_nodes:
        return  # the autoscaler needs Pending pods to add nodes for
    current = {rev: state.replicas for rev, state in p.observation.deployments.items()}
    pods = surge_pods(workloads.replicas, current, p.target)
    if pods == 0:
        return
    answer = fit(p.spec.template.get("spec") or {}, pods, nodes)
    if answer.fits:
        return
    if answer.never_fits:
        rollback(p, Reason.INSUFFICIENT_GPU, _never_fits(answer))
        if p.challenger is not None:  # rollback.automatic is off: stopped, and no pods
            _keep_sizes(p, workloads, current)
        return
    _keep_sizes(p, workloads, current)
    if p.status.phase is Phase.PAUSED:
        return  # the Paused condition stays: resuming reads it
    message = answer.shortage("challenger", _hint(p))
    _restore_conditions(p, before)
    previous = next((c for c in before.conditions if c.type == ConditionType.DEGRADED), None)
    if previous is None or previous.reason != Reason.INSUFFICIENT_GPU:
        p.event(EventType.WARNING, Reason.INSUFFICIENT_GPU, message)
    p.progressing(ConditionStatus.FALSE, Reason.INSUFFICIENT_GPU, f"holding: {message}")
    p.degraded(Reason.INSUFFICIENT_GPU, message)


def _keep_sizes(p: Pass, workloads: Workloads, current: Mapping[str, int]) -> None:
    """Every revision at its current size, and the route left alone."""
    held = {rev: current.get(rev, 0) for rev in workloads.replicas}
    p.workloads = replace(workloads, replicas=held)
    p.routes = None
    for revision_status in (p.status.champion, p.status.challenger):
        if revision_status is not None and revision_status.revision is not None:
            revision_status.replicas = held.get(revision_status.revision, 0)


def _hint(p: Pass) -> str:
    capacity = p.spec.capacity
    if capacity.mode is CapacityMode.SURGE:
        return "Free GPUs, lower replicas or maxSurge, or use capacity.mode conserve"
    return (
        f"Free GPUs, or lower capacity.maxSurge (now {capacity.max_surge}; 0 replaces "
        "champion pods one by one)"
    )


def _never_fits(answer: GPUFit) -> str:
    unit = f"{answer.per_pod} {GPU_RESOURCE}"
    if not answer.free:
        where = (
            f"no Ready, schedulable node matching the template (nodeSelector, node affinity, "
            f"tolerations) has {GPU_RESOURCE}"
        )
    else:
        where = (
            f"the largest node matching the template has {answer.largest} allocatable "
            f"({', '.join(answer.free)})"
        )
    return (
        f"each challenger pod asks for {unit}, but {where}: it can never be scheduled. "
        f"Lower the template's {GPU_RESOURCE}, or fix its nodeSelector, affinity or tolerations"
    )


def _restore_conditions(p: Pass, before: ModelReleaseStatus) -> None:
    """Progressing and Degraded as they were before this pass, so a lasting hold keeps
    its transition time even when a step on the way set them otherwise."""
    types = (ConditionType.PROGRESSING, ConditionType.DEGRADED)
    kept = [c for c in p.status.conditions if c.type not in types]
    p.status.conditions = kept + [c.model_copy() for c in before.conditions if c.type in types]


def roll_back_failing_pods(p: Pass) -> bool:
    """Roll the challenger back when its pods show a failure; True when it did."""
    challenger = p.challenger
    if challenger is None:
        return False
    failure = pod_failure(p.observation.pods, challenger, p.now, _grace(p), _room_for_one(p))
    if failure is None:
        return False
    rollback(p, failure.reason, failure.message)
    return True


def pod_grace_ends(p: Pass) -> datetime | None:
    """When :func:`roll_back_failing_pods` would next find a pod refused for too long."""
    challenger = p.challenger
    if challenger is None:
        return None
    return unschedulable_grace_ends(p.observation.pods, challenger, _grace(p), _room_for_one(p))


def _grace(p: Pass) -> float:
    # With autoscaled nodes an Unschedulable pod waits for its node (progressDeadline).
    return math.inf if p.spec.capacity.autoscaled_nodes else UNSCHEDULABLE_GRACE_SECONDS


def _room_for_one(p: Pass) -> bool:
    """Whether the nodes have free GPUs for one more pod of the spec's template."""
    nodes = p.observation.gpu_nodes
    return nodes is not None and fit(p.spec.template.get("spec") or {}, 1, nodes).fits
