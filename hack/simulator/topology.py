"""Services, pods and which ready pods stand behind each Service (pure).

Works on the JSON shape of Kubernetes objects, the way kube-proxy does:
a Service selects the pods of its namespace whose labels include its selector;
only pods whose Ready condition is True and that are not terminating receive
requests. A Service without a selector selects nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hack.simulator.behaviour import BEHAVIOUR_ANNOTATION
from hack.simulator.routing import ServiceRef

RELEASE_LABEL = "modelrelease.dev/release"
REVISION_LABEL = "modelrelease.dev/revision"


@dataclass(frozen=True)
class PodInfo:
    uid: str
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    terminating: bool = False
    # When the Ready condition last became True (Unix seconds), if it is True.
    ready_since: float | None = None
    behaviour_text: str | None = None

    @property
    def release(self) -> str:
        return self.labels.get(RELEASE_LABEL, "")

    @property
    def revision(self) -> str:
        return self.labels.get(REVISION_LABEL, "")

    @property
    def serving(self) -> bool:
        """Whether a Service sends it requests."""
        return self.ready and not self.terminating


@dataclass(frozen=True)
class ServiceInfo:
    namespace: str
    name: str
    selector: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> ServiceRef:
        return ServiceRef(self.namespace, self.name)

    def selects(self, pod: PodInfo) -> bool:
        if not self.selector or pod.namespace != self.namespace:
            return False
        return all(pod.labels.get(key) == value for key, value in self.selector.items())


def pod_from_object(obj: Mapping[str, Any]) -> PodInfo:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    ready_condition = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
    )
    ready = ready_condition is not None and ready_condition.get("status") == "True"
    ready_since = None
    if ready and ready_condition is not None and ready_condition.get("lastTransitionTime"):
        ready_since = parse_time(str(ready_condition["lastTransitionTime"]))
    annotations = meta.get("annotations") or {}
    return PodInfo(
        uid=str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"),
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        ready=ready,
        terminating=meta.get("deletionTimestamp") is not None,
        ready_since=ready_since,
        behaviour_text=annotations.get(BEHAVIOUR_ANNOTATION),
    )


def service_from_object(obj: Mapping[str, Any]) -> ServiceInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return ServiceInfo(
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name", "")),
        selector=dict(spec.get("selector") or {}),
    )


def endpoints(
    services: Iterable[ServiceInfo], pods: Iterable[PodInfo]
) -> dict[ServiceRef, tuple[PodInfo, ...]]:
    """Every Service's serving pods, in name order (so seeded runs repeat)."""
    serving = sorted((pod for pod in pods if pod.serving), key=lambda p: (p.namespace, p.name))
    return {
        service.ref: tuple(pod for pod in serving if service.selects(pod)) for service in services
    }


def parse_time(text: str) -> float:
    """RFC 3339 time as written by the API server, in Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
