"""Pods of a revision as observed, and whether they show a failure worth a rollback (pure).

A challenger that cannot start should be rolled back in seconds, not at its
progress deadline: pods the scheduler has refused for longer than a short
grace, containers waiting in CrashLoopBackOff, image pull errors or a broken
container configuration, and containers that keep restarting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelrelease.api.constants import LABEL_REVISION, Reason
from modelrelease.core.gpu import GPU_RESOURCE

Json = dict[str, Any]

UNSCHEDULABLE_GRACE_SECONDS = 30.0
"""How long the scheduler may refuse a pod before the revision is rolled back
(room can appear: a pod of the champion terminating, a node coming back)."""
RESTART_LIMIT = 3
"""A container restarted more often than this is crash-looping, whatever it waits in."""

WAITING_REASONS: dict[str, Reason] = {
    "CrashLoopBackOff": Reason.CRASH_LOOPING,
    "ImagePullBackOff": Reason.IMAGE_PULL_FAILED,
    "ErrImagePull": Reason.IMAGE_PULL_FAILED,
    "InvalidImageName": Reason.IMAGE_PULL_FAILED,
    "CreateContainerConfigError": Reason.CONTAINER_CONFIG_ERROR,
    "CreateContainerError": Reason.CONTAINER_CONFIG_ERROR,
}

_HINTS: dict[Reason, str] = {
    Reason.CRASH_LOOPING: "see its logs (kubectl logs {pod} -c {container} --previous)",
    Reason.IMAGE_PULL_FAILED: "check the image name, tag and imagePullSecrets",
    Reason.CONTAINER_CONFIG_ERROR: (
        "check the ConfigMaps, Secrets and volumes the container refers to"
    ),
}


@dataclass(frozen=True)
class ContainerState:
    name: str
    restarts: int = 0
    waiting_reason: str | None = None
    waiting_message: str = ""


@dataclass(frozen=True)
class PodState:
    """One pod as observed."""

    name: str
    revision: str | None
    phase: str = "Pending"
    terminating: bool = False  # deleted, still shutting down: it holds its GPUs until gone
    unschedulable_since: datetime | None = None
    scheduler_message: str = ""
    containers: tuple[ContainerState, ...] = ()


@dataclass(frozen=True)
class PodFailure:
    reason: Reason
    message: str


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod_state(obj: Json) -> PodState:
    """Parse a Pod."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    unschedulable_since, scheduler_message = None, ""
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            unschedulable_since = _time(condition.get("lastTransitionTime"))
            scheduler_message = str(condition.get("message") or "")
    containers = []
    for item in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (item.get("state") or {}).get("waiting") or {}
        containers.append(
            ContainerState(
                name=str(item.get("name", "")),
                restarts=int(item.get("restartCount") or 0),
                waiting_reason=waiting.get("reason"),
                waiting_message=str(waiting.get("message") or ""),
            )
        )
    return PodState(
        name=str(meta.get("name", "")),
        revision=(meta.get("labels") or {}).get(LABEL_REVISION),
        phase=str(status.get("phase") or "Pending"),
        terminating=bool(meta.get("deletionTimestamp")),
        unschedulable_since=unschedulable_since,
        scheduler_message=scheduler_message,
        containers=tuple(containers),
    )


def pod_states(objects: Iterable[Json]) -> tuple[PodState, ...]:
    return tuple(sorted((pod_state(obj) for obj in objects), key=lambda s: s.name))


def _container_failure(pod: PodState, container: ContainerState) -> PodFailure | None:
    reason = WAITING_REASONS.get(container.waiting_reason or "")
    if reason is None and container.restarts > RESTART_LIMIT:
        reason = Reason.CRASH_LOOPING
    if reason is None:
        return None
    state = container.waiting_reason or "restarting"
    detail = f": {container.waiting_message}" if container.waiting_message else ""
    restarts = f" after {container.restarts} restarts" if container.restarts else ""
    hint = _HINTS[reason].format(pod=pod.name, container=container.name)
    return PodFailure(
        reason,
        f"pod {pod.name}: container {container.name} is {state}{restarts}{detail}; {hint}",
    )


def pod_failure(
    pods: Iterable[PodState],
    revision: str,
    now: datetime,
    grace_seconds: float = UNSCHEDULABLE_GRACE_SECONDS,
    gpus_free_now: bool = False,
) -> PodFailure | None:
    """The first failure the pods of ``revision`` show, or None.

    ``gpus_free_now``: the nodes have room for one more pod of the revision, so a
    pod the scheduler refused for GPUs is placed on its next try.
    """
    observed = tuple(pods)
    for pod in _running(observed, revision):
        for container in pod.containers:
            failure = _container_failure(pod, container)
            if failure is not None:
                return failure
        if not _room_on_its_way(pod, observed, gpus_free_now):
            failure = _unschedulable(pod, now, grace_seconds)
            if failure is not None:
                return failure
    return None


def unschedulable_grace_ends(
    pods: Iterable[PodState],
    revision: str,
    grace_seconds: float = UNSCHEDULABLE_GRACE_SECONDS,
    gpus_free_now: bool = False,
) -> datetime | None:
    """When the first refused pod of ``revision`` runs out of grace (then
    :func:`pod_failure` reports it); None when no pod waits on the scheduler."""
    if math.isinf(grace_seconds):
        return None
    observed = tuple(pods)
    moments = [
        pod.unschedulable_since + timedelta(seconds=grace_seconds)
        for pod in _running(observed, revision)
        if pod.unschedulable_since is not None
        and not _room_on_its_way(pod, observed, gpus_free_now)
    ]
    return min(moments, default=None)


def _running(pods: tuple[PodState, ...], revision: str) -> list[PodState]:
    """The pods of ``revision`` that still count: not finished, not shutting down."""
    return [
        pod
        for pod in pods
        if pod.revision == revision
        and not pod.terminating
        and pod.phase not in ("Succeeded", "Failed")
    ]


def _room_on_its_way(pod: PodState, pods: tuple[PodState, ...], gpus_free_now: bool) -> bool:
    """Whether an Unschedulable pod is only waiting for room that is being freed.

    In conserve mode a challenger pod takes the place of a champion pod, which may
    take its termination grace period (model servers drain) to give its GPUs back;
    and the scheduler retries a refused pod only after a back-off.
    """
    if any(other.terminating for other in pods):
        return True
    return gpus_free_now and f"Insufficient {GPU_RESOURCE}" in pod.scheduler_message


def _unschedulable(pod: PodState, now: datetime, grace_seconds: float) -> PodFailure | None:
    since = pod.unschedulable_since
    if since is None or (now - since).total_seconds() < grace_seconds:
        return None
    waited = int((now - since).total_seconds())
    why = pod.scheduler_message or "no node fits it"
    return PodFailure(
        Reason.UNSCHEDULABLE,
        f"pod {pod.name} could not be scheduled for {waited}s: {why}; check its "
        "resource requests, nodeSelector, affinity and tolerations against the nodes",
    )
