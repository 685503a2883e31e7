"""No traffic router: one Service over both revisions, weight from ready replicas.

Without a mesh or a gateway, the only lever on traffic is how many pods of
each revision a plain Service balances over. The operator owns a Service
named after the release that selects its pods by the release label alone, so
champion and challenger pods are both endpoints and each revision's share of
requests is its share of ready pods. Weights are therefore set by scaling
(``core.capacity.replicas_for_weight``, which the replica plan calls), not by this router:
``set_routes`` only makes sure the Service exists and refuses what cannot be
done (mirroring). ``get_routes`` reports the effective shares from the ready
pods of the revisions that ``<release>-stable`` and ``<release>-canary`` select.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from modelrelease.api.constants import LABEL_RELEASE, LABEL_REVISION, RouterType
from modelrelease.core.capacity import round_half_down
from modelrelease.core.manifests import (
    ANNOTATION_MANIFEST_HASH,
    CANARY,
    PORT_NAME,
    STABLE,
    Owner,
    manifest_hash,
    service_name,
)
from modelrelease.core.routes import FULL
from modelrelease.routers.router import MirrorUnsupportedError, RouterError, Routes

MESHLESS = RouterType.NONE.value

Json = dict[str, Any]


class ServiceStore(Protocol):
    """The few API calls this router needs (implemented in ``kube``)."""

    def get_service(self, namespace: str, name: str) -> Json | None: ...

    def apply_service(self, manifest: Json) -> None: ...

    def list_pods(self, namespace: str, release: str) -> list[Json]:
        """The pods carrying the release label, of every revision."""
        ...


class MeshlessRouter:
    """Traffic follows the ready replica ratio behind the Service ``<release>``.

    ``owner`` is the ModelRelease, needed to create the Service with its
    ownerReference; without it the router can read but not create.
    """

    def __init__(
        self,
        store: ServiceStore,
        namespace: str,
        release: str,
        port: int,
        owner: Owner | None = None,
    ):
        self._store = store
        self._namespace = namespace
        self._release = release
        self._port = port
        self._owner = owner

    @property
    def type(self) -> str:
        return MESHLESS

    def set_routes(self, stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
        check_routes(stable_weight, canary_weight, mirror_percent)
        self._ensure_service()

    def get_routes(self) -> Routes:
        stable = self._selected_revision(STABLE)
        canary = self._selected_revision(CANARY)
        ready = ready_pods_by_revision(self._store.list_pods(self._namespace, self._release))
        return routes_from_ready(ready, stable, canary)

    def finalize(self) -> None:
        """Nothing to give back: the Service keeps selecting the release's pods, and
        once the challenger is scaled down the champion alone remains behind it."""
        if self._owner is None:
            return
        if self._store.get_service(self._namespace, self._release) is not None:
            self._ensure_service()

    # --- I/O ---------------------------------------------------------------

    def _ensure_service(self) -> None:
        current = self._store.get_service(self._namespace, self._release)
        if self._owner is None:
            if current is None:
                raise RouterError(
                    f"cannot create Service {self._namespace}/{self._release} for traffic.none "
                    "without the ModelRelease's uid for its ownerReference; this is an operator "
                    "bug: pass owner= to new_router"
                )
            return
        problem = ownership_problem(current, self._owner)
        if problem is not None:
            raise RouterError(problem)
        desired = release_service_manifest(self._owner, self._port)
        if needs_apply(current, desired):
            self._store.apply_service(desired)

    def _selected_revision(self, role: str) -> str | None:
        found = self._store.get_service(self._namespace, service_name(self._release, role))
        selector = ((found or {}).get("spec") or {}).get("selector") or {}
        revision = selector.get(LABEL_REVISION)
        return str(revision) if revision else None


# --- pure helpers (unit-tested) ----------------------------------------------


def check_routes(stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
    """Refuse what one Service cannot do: mirroring, or weights that are not a split."""
    if mirror_percent > 0:
        raise MirrorUnsupportedError(
            f"mirroring {mirror_percent}% of requests was asked of traffic.none, which cannot "
            "mirror: shadow needs a router that can mirror: gatewayAPI or istio"
        )
    weights_valid = 0 <= stable_weight <= FULL and 0 <= canary_weight <= FULL
    if not weights_valid or stable_weight + canary_weight != FULL:
        raise RouterError(
            f"weights stable {stable_weight}% and canary {canary_weight}% must each be "
            "0 to 100 and add up to 100 for traffic.none, where they are a split of pods"
        )


def release_service_manifest(owner: Owner, port: int) -> Json:
    """The Service ``<release>`` selecting the pods of every revision of the release."""
    labels = {LABEL_RELEASE: owner.name}
    body: Json = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": {},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": dict(labels),
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
    body["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH] = manifest_hash(body)
    return body


def needs_apply(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether the Service must be written: missing, changed by us, or edited by hand."""
    if current is None:
        return True
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    wanted_hash = desired["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH]
    selector = (current.get("spec") or {}).get("selector")
    return bool(
        annotations.get(ANNOTATION_MANIFEST_HASH) != wanted_hash
        or selector != desired["spec"]["selector"]
    )


def ownership_problem(current: Mapping[str, Any] | None, owner: Owner) -> str | None:
    """Why the existing Service ``<release>`` must not be taken over, if it must not."""
    if current is None:
        return None
    references = (current.get("metadata") or {}).get("ownerReferences") or []
    if any(reference.get("uid") == owner.uid for reference in references):
        return None
    holders = ", ".join(
        f"{reference.get('kind')} {reference.get('name')}" for reference in references
    )
    return (
        f"Service {owner.namespace}/{owner.name} exists and is not owned by ModelRelease "
        f"{owner.name} (owned by: {holders or 'nobody'}); traffic.none needs that name for "
        "the Service over both revisions: delete or rename that Service, or route with "
        "traffic.gatewayAPI or traffic.istio instead"
    )


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Ready and not terminating: an endpoint the Service sends requests to."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_pods_by_revision(pods: list[Json]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods:
        revision = ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION)
        if revision and is_ready(pod):
            counts[revision] = counts.get(revision, 0) + 1
    return counts


def routes_from_ready(ready: Mapping[str, int], stable: str | None, canary: str | None) -> Routes:
    """The shares of requests the Service gives each side, from ready pods.

    Ready pods of other revisions (one being retired) are on the champion's
    side. A side with any ready pod gets at least 1%; with no ready pod at all,
    nothing has moved and the champion is reported at 100%.
    """
    total = sum(ready.values())
    canary_ready = ready.get(canary, 0) if canary is not None and canary != stable else 0
    if total == 0 or canary_ready == 0:
        return Routes(FULL, 0, 0)
    if canary_ready == total:
        return Routes(0, FULL, 0)
    canary_weight = min(FULL - 1, max(1, round_half_down(FULL * canary_ready, total)))
    return Routes(FULL - canary_weight, canary_weight, 0)
