"""In-memory views of what a reconcile pass reads, fed by list-and-watch streams.

A pass reads the release's Deployments, Pods and Services, its route, its SLO
templates and the GPU view from here, never from the API server: at rest a
release costs no API request, and a pass never lists Nodes or Pods. Writes
still go through ``KubeClient``.

Own watch streams rather than kopf indexes, because:
- the GPU view needs every bound Pod and every Node of the cluster, whatever
  namespaces the operator serves (a Pod of another team holds GPUs too); kopf
  watches namespaced kinds only in the operator's namespaces;
- kopf watches a whole kind and filters in the client; here the API server
  filters (``modelrelease.dev/release`` on Deployments and Services);
- a change must wake the releases it concerns at once (``on_change``), which
  an index does not do by itself.
What kopf indexes give, these give too: each stream lists (in pages), then
watches from the list's resourceVersion with bookmarks, lists again when the
version is gone (410), and ``synced`` is set only after every stream's first
list, so a pass after a start waits rather than act on partial data.

A pass reads its own writes: what a write returns is put into the views at once
(``remember``), and an older event never replaces it, so the next pass does not
decide from a state older than the last one's writes (as it could not when it
read the API server).

HorizontalPodAutoscalers are watched to find those aimed at a release's Deployment
(``core.autoscalers``): an HPA carries no release label, so a change is routed to
the release that owns the Deployment its ``scaleTargetRef`` names. Refused by
RBAC, that stream stays empty and the check is off (as the GPU check is without
Nodes).

Secrets are not watched: RBAC cannot grant list/watch on Secrets by label, so a
watch would need read access to every Secret of the cluster (invariant I7 keeps
the operator at ``get``). A pass reads a release's credential Secrets by name,
and only while it queries Prometheus.

Each stream runs in a daemon thread (the Kubernetes client is synchronous); one
lock guards the stores. Only small parts of Pods that belong to no release are
kept: the GPUs they hold, by node.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from modelrelease.api.constants import (
    GROUP,
    LABEL_RELEASE,
    PLURAL_CLUSTER_SLO_TEMPLATES,
    PLURAL_SLO_TEMPLATES,
    VERSION,
)
from modelrelease.api.models import MisdirectedAutoscaler
from modelrelease.core.autoscalers import misdirected, scale_target
from modelrelease.core.gpu import NodeGPUs, gpus_in_use, node_gpus
from modelrelease.kube.client import Collection, KubeClient, StoredSecret, WatchExpiredError
from modelrelease.kube.errors import ForbiddenError, KubeError, WriteConflictError
from modelrelease.routers import gatewayapi, istio

Json = dict[str, Any]
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds

logger = logging.getLogger(__name__)

RETRY_SECONDS = (1.0, 30.0)  # first and longest wait before a failed stream lists again

DEPLOYMENTS = Collection("Deployments", "apps", "v1", "deployments", LABEL_RELEASE)
SERVICES = Collection("Services", "", "v1", "services", LABEL_RELEASE)
PODS = Collection("Pods", "", "v1", "pods")  # all of them: GPUs held, and release pods
NODES = Collection("Nodes", "", "v1", "nodes")
SLO_TEMPLATES = Collection("SLOTemplates", GROUP, VERSION, PLURAL_SLO_TEMPLATES)
CLUSTER_SLO_TEMPLATES = Collection(
    "ClusterSLOTemplates", GROUP, VERSION, PLURAL_CLUSTER_SLO_TEMPLATES
)
AUTOSCALERS = Collection(
    "HorizontalPodAutoscalers", "autoscaling", "v2", "horizontalpodautoscalers"
)
HTTP_ROUTES = Collection("HTTPRoutes", gatewayapi.GROUP, gatewayapi.VERSION, gatewayapi.PLURAL)
VIRTUAL_SERVICES = "VirtualServices"  # its version is the one the installed CRD serves
GPU = "GPU"  # the kind of a Change to the GPU view
CLUSTER_STREAMS = 3  # Pods, Nodes, ClusterSLOTemplates: always in all namespaces
# Deployments, Services, SLOTemplates, HorizontalPodAutoscalers, HTTPRoutes, VirtualServices
NAMESPACED_STREAMS = 6
# Optional streams: refused by RBAC, what is off (the view stays empty and counts as synced).
OFF_WHEN_FORBIDDEN = {
    NODES.kind: "the GPU check is off",
    AUTOSCALERS.kind: "HorizontalPodAutoscalers aimed at a release's Deployments go unreported",
}


def stream_count(namespaces: tuple[str, ...] = ()) -> int:
    """Watches open at once, at most: a namespaced kind has one per served namespace
    when they are named (see ``Views``), else one in all namespaces."""
    return CLUSTER_STREAMS + NAMESPACED_STREAMS * len(exact_namespaces(namespaces) or ("",))


def exact_namespaces(namespaces: tuple[str, ...]) -> tuple[str, ...] | None:
    """The namespaces to list namespaced kinds in, one by one; None: all namespaces
    (none named, or a glob such as ``team-*`` among them)."""
    if not namespaces or any(is_glob(namespace) for namespace in namespaces):
        return None
    return tuple(namespaces)


@dataclass(frozen=True)
class Change:
    """An object of ``kind`` changed (or the GPU view did); ``release`` from its label."""

    kind: str
    namespace: str = ""
    name: str = ""
    release: str | None = None


def is_glob(namespace: str) -> bool:
    """Whether a --namespace value is a pattern (``team-*``) rather than a name."""
    return any(char in namespace for char in "*?[!")


def object_key(obj: Json) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def release_of(obj: Json | None) -> str | None:
    if obj is None:
        return None
    release = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_RELEASE)
    return str(release) if release else None


def _version(obj: Json | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


def _newer(after: Json, before: Json) -> bool:
    """Whether ``after`` is a later version of an object than ``before``.

    resourceVersions are etcd revisions, integers that only grow; they are compared
    only so that an event older than a write the operator made (and remembered)
    does not replace it. Versions that are no integers count as newer when different.
    """
    new, old = _version(after), _version(before)
    try:
        return int(str(new)) > int(str(old))
    except ValueError:
        return new != old


def listed(page: Json) -> list[Json]:
    """A list page's items, each with the ``kind`` and ``apiVersion`` a watch event's
    object has (a list names them once, for the list): an object in a view looks the
    same whether it came from a list, a watch or the operator's own write."""
    kind = str(page.get("kind") or "").removesuffix("List")
    api_version = page.get("apiVersion")
    items: list[Json] = page.get("items") or []
    return [
        item if "kind" in item else {"kind": kind, "apiVersion": api_version, **item}
        for item in items
    ]


def _trimmed(obj: Json) -> Json:
    """The object without managedFields, which no pass reads (a third of a Pod's size)."""
    meta = obj.get("metadata") or {}
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


# --- stores (pure, unit-tested) ------------------------------------------------------------


Pair = tuple[Json | None, Json | None]  # (before, after) of one object; None: absent


class Store:
    """Objects of one kind by (namespace, name), optionally grouped for lookups
    (``group`` returns an object's group, or None to leave it ungrouped)."""

    def __init__(self, group: Callable[[Json], Hashable | None] | None = None) -> None:
        self._group = group
        self._objects: dict[ObjectKey, Json] = {}
        self._groups: dict[Hashable, dict[ObjectKey, Json]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: ObjectKey) -> Json | None:
        return self._objects.get(key)

    def grouped(self, group: Hashable) -> list[Json]:
        return list(self._groups.get(group, {}).values())

    def apply(self, event_type: str, obj: Json) -> Pair | None:
        """One watch event; the change it made, or None when it made none."""
        key = object_key(obj)
        before = self._objects.get(key)
        if event_type == "DELETED":
            if before is None:
                return None
            self._remove(key, before)
            return before, None
        after = _trimmed(obj)
        if before is not None and not _newer(after, before):
            return None  # seen already, or older than what the operator wrote
        if before is not None:
            self._remove(key, before)
        self._add(key, after)
        return before, after

    def replace(self, items: Iterable[Json], namespace: str | None = None) -> list[Pair]:
        """A fresh list: what changed against what was held (gone ones included); of
        one namespace only when ``namespace`` is given (a stream per namespace)."""
        fresh = {object_key(item): _trimmed(item) for item in items}
        changes: list[Pair] = []
        for key, gone in list(self._objects.items()):
            if namespace is not None and key[0] != namespace:
                continue
            if key not in fresh:
                self._remove(key, gone)
                changes.append((gone, None))
        for key, after in fresh.items():
            before = self._objects.get(key)
            if before is not None and _version(before) == _version(after):
                continue
            if before is not None:
                self._remove(key, before)
            self._add(key, after)
            changes.append((before, after))
        return changes

    def _add(self, key: ObjectKey, obj: Json) -> None:
        self._objects[key] = obj
        group = self._group(obj) if self._group else None
        if group is not None:
            self._groups.setdefault(group, {})[key] = obj

    def _remove(self, key: ObjectKey, obj: Json) -> None:
        del self._objects[key]
        group = self._group(obj) if self._group else None
        if group is not None:
            members = self._groups.get(group, {})
            members.pop(key, None)
            if not members:
                self._groups.pop(group, None)


def by_release(obj: Json) -> tuple[str, str] | None:
    """Group of an owned object: (namespace, release), from its label."""
    release = release_of(obj)
    return None if release is None else (object_key(obj)[0], release)


def by_target(obj: Json) -> tuple[str, str] | None:
    """Group of an HPA: (namespace, Deployment) it scales; None when it scales no Deployment."""
    target = scale_target(obj)
    return None if target is None else (object_key(obj)[0], target)


class GPUAccount:
    """GPU Nodes and the GPUs bound Pods hold, kept up to date one event at a time.

    A Pod holds ``pod_gpus`` of its spec on its node from the moment it is bound
    until it terminates (Succeeded or Failed) or is gone; a deleted Pod that is
    still shutting down keeps holding them, as the scheduler counts it.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, NodeGPUs] = {}  # nodes with allocatable GPUs; used left 0
        self._held: dict[ObjectKey, tuple[str, int]] = {}  # pod -> (node, GPUs)
        self._used: dict[str, int] = {}  # node -> GPUs held there

    def nodes(self) -> tuple[NodeGPUs, ...]:
        """The GPU view, as ``core.gpu.node_gpus`` gives it from full lists."""
        return tuple(
            NodeGPUs(
                name=node.name,
                allocatable=node.allocatable,
                used=self._used.get(node.name, 0),
                labels=node.labels,
                taints=node.taints,
                ready=node.ready,
                unschedulable=node.unschedulable,
            )
            for _, node in sorted(self._nodes.items())
        )

    def used(self, node: str) -> int:
        return self._used.get(node, 0)

    def pod(self, event_type: str, pod: Json) -> bool:
        """Account one Pod event; True when GPUs held changed."""
        key = object_key(pod)
        held = None if event_type == "DELETED" else _holding(pod)
        before = self._held.get(key)
        if held == before:
            return False
        if before is not None:
            node, gpus = before
            self._used[node] -= gpus
            if not self._used[node]:
                del self._used[node]
            del self._held[key]
        if held is not None:
            node, gpus = held
            self._used[node] = self._used.get(node, 0) + gpus
            self._held[key] = held
        return True

    def node(self, event_type: str, node: Json) -> bool:
        """Account one Node event; True when what the GPU check reads of it changed."""
        name = object_key(node)[1]
        parsed = None if event_type == "DELETED" else node_gpus([node], [])[0]
        if parsed is not None and parsed.allocatable <= 0:
            parsed = None  # no GPUs: never a candidate for a pod that needs them
        before = self._nodes.get(name)
        if parsed == before:
            return False
        if parsed is None:
            del self._nodes[name]
        else:
            self._nodes[name] = parsed
        return True

    def replace_pods(self, pods: Iterable[Json]) -> bool:
        fresh = {object_key(pod): pod for pod in pods}
        changed = False
        for key in [key for key in self._held if key not in fresh]:
            changed |= self.pod("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
        for pod in fresh.values():
            changed |= self.pod("MODIFIED", pod)
        return changed

    def replace_nodes(self, nodes: Iterable[Json]) -> bool:
        fresh = {object_key(node)[1]: node for node in nodes}
        changed = False
        for name in [name for name in self._nodes if name not in fresh]:
            changed |= self.node("DELETED", {"metadata": {"name": name}})
        for node in fresh.values():
            changed |= self.node("MODIFIED", node)
        return changed


def _holding(pod: Json) -> tuple[str, int] | None:
    held = gpus_in_use([pod])  # {node: GPUs} for a bound, non-terminated pod
    for node, gpus in held.items():
        if gpus > 0:
            return node, gpus
    return None


# --- the views ----------------------------------------------------------------------------


@dataclass
class _Stream:
    collection: Collection
    optional: bool = False  # forbidden to list: the view stays empty and counts as synced
    # (what is off then: OFF_WHEN_FORBIDDEN)
    synced: threading.Event = field(default_factory=threading.Event)
    forbidden: bool = False


class Views:
    """Every store, the GPU account, the streams that feed them, and their sync state."""

    def __init__(self, kube: KubeClient, namespaces: tuple[str, ...] = ()) -> None:
        self._kube = kube
        # Namespaced kinds are listed per namespace when the operator serves named
        # namespaces (namespaced RBAC grants nothing in all namespaces); with none, or
        # with a glob such as ``team-*``, in all namespaces.
        self._namespaces = exact_namespaces(namespaces)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.on_change: Callable[[Change], None] = lambda change: None
        self.deployments = Store(by_release)
        self.services = Store()
        self.pods = Store(by_release)
        self.gpus = GPUAccount()
        self.slo_templates = Store()
        self.cluster_slo_templates = Store()
        self.autoscalers = Store(by_target)
        self.http_routes: Store | None = None  # None: the CRD is not installed
        self.virtual_services: Store | None = None
        self.virtual_service_version: str | None = None
        self._streams: dict[str, _Stream] = {}

    # --- reads (any thread) ---

    def started(self) -> bool:
        return bool(self._streams)

    def synced(self) -> bool:
        return all(stream.synced.is_set() for stream in self._streams.values())

    def unsynced(self) -> list[str]:
        return [kind for kind, stream in self._streams.items() if not stream.synced.is_set()]

    def wait_synced(self, timeout: float) -> bool:
        """Whether every stream has listed, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        return all(
            stream.synced.wait(max(deadline - time.monotonic(), 0.0))
            for stream in self._streams.values()
        )

    def group(self, store: Store, group: Hashable) -> list[Json]:
        with self._lock:
            return store.grouped(group)

    def get(self, store: Store, key: ObjectKey) -> Json | None:
        with self._lock:
            return store.get(key)

    def remember(self, written: Json) -> None:
        """An object as a write of the operator returned it: the next pass reads it
        even before the write's own event arrives (a pass sees its own writes, as it
        did when it read the API server). That event then changes nothing, and wakes
        no pass."""
        store = self._written_store(written)
        if store is not None:
            with self._lock:
                store.apply("MODIFIED", written)

    def _written_store(self, written: Json) -> Store | None:
        kind, api_version = written.get("kind"), written.get("apiVersion")
        if kind in ("Deployment", "Service") and release_of(written) is None:
            return None  # not selected by the watch: it would never be updated
        if kind == "Deployment":
            return self.deployments
        if kind == "Service":
            return self.services
        if kind == "HTTPRoute":
            return self.http_routes
        if kind == "VirtualService" and self.virtual_service_version is not None:
            watched = f"{istio.GROUP}/{self.virtual_service_version}"
            return self.virtual_services if api_version == watched else None
        return None

    def gpu_nodes(self) -> tuple[NodeGPUs, ...] | None:
        """The GPU view; None (no check) when the operator may not list Nodes or Pods."""
        if any(self._streams[kind].forbidden for kind in (PODS.named(), NODES.named())):
            return None
        with self._lock:
            return self.gpus.nodes()

    def misdirected_autoscalers(
        self, namespace: str, release: str
    ) -> tuple[MisdirectedAutoscaler, ...] | None:
        """HPAs aimed at the release's Deployments; None (no check) when the operator may
        not list HPAs in the namespace."""
        if any(
            stream.forbidden and stream.collection.namespace in (None, namespace)
            for stream in self._streams.values()
            if stream.collection.kind == AUTOSCALERS.kind
        ):
            return None
        with self._lock:
            names = [object_key(d)[1] for d in self.deployments.grouped((namespace, release))]
            aimed = [hpa for name in names for hpa in self.autoscalers.grouped((namespace, name))]
        return misdirected(aimed, names)

    # --- start and stop ---

    def start(self) -> None:
        """Start a stream per watched kind (routes only where their CRD is installed)."""
        # Pods and Nodes of the whole cluster: a Pod of any namespace holds GPUs.
        streams = [_Stream(PODS), _Stream(NODES, optional=True), _Stream(CLUSTER_SLO_TEMPLATES)]
        namespaced = [DEPLOYMENTS, SERVICES, SLO_TEMPLATES, AUTOSCALERS]
        if self._kube.get_http_route_crd() is not None:
            self.http_routes = Store()
            namespaced.append(HTTP_ROUTES)
        crd = self._kube.get_virtual_service_crd()
        version = istio.served_version(crd) if crd is not None else None
        if version is not None:
            self.virtual_services = Store()
            self.virtual_service_version = version
            namespaced.append(Collection(VIRTUAL_SERVICES, istio.GROUP, version, istio.PLURAL))
        for collection in namespaced:
            optional = collection.kind in OFF_WHEN_FORBIDDEN
            if self._namespaces is None:
                streams.append(_Stream(collection, optional))
            else:
                streams.extend(
                    _Stream(replace(collection, namespace=namespace), optional)
                    for namespace in self._namespaces
                )
        for stream in streams:
            self._streams[stream.collection.named()] = stream
        for stream in streams:
            name = f"watch-{stream.collection.named()}"
            threading.Thread(target=self._run, args=(stream,), name=name, daemon=True).start()

    def stop(self) -> None:
        """Streams end at their next event or timeout (their threads are daemons)."""
        self._stopped.set()

    def _run(self, stream: _Stream) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                version = self._list(stream)
                failures = 0
                while not self._stopped.is_set():
                    version = self._watch(stream, version)
            except WatchExpiredError:
                continue  # list again
            except ForbiddenError as error:
                if stream.optional:
                    off = OFF_WHEN_FORBIDDEN[stream.collection.kind]
                    logger.warning(f"{error}; {off} (grant list/watch on it)")
                    stream.forbidden = True
                    stream.synced.set()
                    return
                logger.error(f"{error}; grant list and watch on it to the operator")
                failures += 1
            except (KubeError, OSError, ValueError) as error:
                logger.warning(
                    f"watching {stream.collection.named()} failed, listing again: {error}"
                )
                failures += 1
            except Exception:
                logger.exception(f"watching {stream.collection.named()} failed, listing again")
                failures += 1
            delay = min(RETRY_SECONDS[1], RETRY_SECONDS[0] * 2 ** min(failures, 8))
            self._stopped.wait(delay * (0.5 + random.random() / 2))

    def _list(self, stream: _Stream) -> str:
        items: list[Json] = []
        page = self._kube.list_page(stream.collection)
        items.extend(listed(page))
        while (page.get("metadata") or {}).get("continue"):
            page = self._kube.list_page(stream.collection, page["metadata"]["continue"])
            items.extend(listed(page))
        with self._lock:
            changes = self._replace(stream.collection.kind, items, stream.collection.namespace)
        stream.synced.set()
        self._tell(changes)
        return str((page.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, stream: _Stream, version: str) -> str:
        """Apply events until the API server ends the watch; the last version seen."""
        for event in self._kube.watch(stream.collection, version):
            obj = event.get("object") or {}
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event.get("type") == "BOOKMARK":
                continue
            with self._lock:
                changes = self._apply(stream.collection.kind, str(event.get("type")), obj)
            self._tell(changes)
            if self._stopped.is_set():
                break
        return version

    def _tell(self, changes: list[Change]) -> None:
        for change in changes:
            self.on_change(change)

    # --- applying (under the lock) ---

    def _store(self, kind: str) -> Store:
        stores = {
            DEPLOYMENTS.kind: self.deployments,
            SERVICES.kind: self.services,
            PODS.kind: self.pods,
            SLO_TEMPLATES.kind: self.slo_templates,
            CLUSTER_SLO_TEMPLATES.kind: self.cluster_slo_templates,
            AUTOSCALERS.kind: self.autoscalers,
            HTTP_ROUTES.kind: self.http_routes,
            VIRTUAL_SERVICES: self.virtual_services,
        }
        store = stores[kind]
        assert store is not None  # only kinds with a stream get here
        return store

    def _apply(self, kind: str, event_type: str, obj: Json) -> list[Change]:
        """One watch event: the changes it makes (kept pure of I/O for the unit tests)."""
        if kind == NODES.kind:
            return [Change(GPU)] if self.gpus.node(event_type, obj) else []
        changes: list[Change] = []
        if kind == PODS.kind:
            if self.gpus.pod(event_type, obj):
                changes.append(Change(GPU))
            if release_of(obj) is None:
                return changes  # not a release's pod: only its GPUs are kept
        pair = self._store(kind).apply(event_type, obj)
        return changes + ([] if pair is None else self._changes(kind, [pair]))

    def _replace(self, kind: str, items: list[Json], namespace: str | None = None) -> list[Change]:
        if kind == NODES.kind:
            return [Change(GPU)] if self.gpus.replace_nodes(items) else []
        changes: list[Change] = []
        if kind == PODS.kind:
            if self.gpus.replace_pods(items):
                changes.append(Change(GPU))
            items = [item for item in items if release_of(item) is not None]
        return changes + self._changes(kind, self._store(kind).replace(items, namespace))

    def _changes(self, kind: str, pairs: list[Pair]) -> list[Change]:
        """One Change per release an object belonged to before or after: by its label,
        or for an HPA, the release owning the Deployment it scales."""
        owner = self._release_scaled_by if kind == AUTOSCALERS.kind else release_of
        changes: list[Change] = []
        for before, after in pairs:
            namespace, name = object_key(after or before or {})
            releases = {owner(before), owner(after)} - {None} or {None}
            changes.extend(Change(kind, namespace, name, release) for release in releases)
        return changes

    def _release_scaled_by(self, autoscaler: Json | None) -> str | None:
        """The release owning the Deployment an HPA scales (None: no release's)."""
        group = None if autoscaler is None else by_target(autoscaler)
        return None if group is None else release_of(self.deployments.get(group))


# --- the reader a pass uses --------------------------------------------------------------


class ViewReader:
    """The read methods of ``KubeClient`` a pass and the routers use, answered from
    the views; writes (and what no view holds) go to the API server.

    A write that fails on a stale resourceVersion means the view of that route is
    behind: the retry re-reads it from the API server, once.
    """

    def __init__(self, views: Views, kube: KubeClient) -> None:
        self._views = views
        self._kube = kube
        self._stale: set[tuple[str, str, str]] = set()  # (kind, namespace, name)

    # --- owned objects ---

    def list_deployments(self, namespace: str, release: str) -> list[Json]:
        return self._views.group(self._views.deployments, (namespace, release))

    def list_pods(self, namespace: str, release: str) -> list[Json]:
        return self._views.group(self._views.pods, (namespace, release))

    def get_service(self, namespace: str, name: str) -> Json | None:
        return self._views.get(self._views.services, (namespace, name))

    def apply_service(self, manifest: Json) -> None:
        self._kube.apply_service(manifest)

    def gpu_nodes(self) -> tuple[NodeGPUs, ...] | None:
        return self._views.gpu_nodes()

    def misdirected_autoscalers(
        self, namespace: str, release: str
    ) -> tuple[MisdirectedAutoscaler, ...] | None:
        return self._views.misdirected_autoscalers(namespace, release)

    # --- configuration ---

    def get_slo_template(self, namespace: str, name: str) -> Json | None:
        return self._views.get(self._views.slo_templates, (namespace, name))

    def get_cluster_slo_template(self, name: str) -> Json | None:
        return self._views.get(self._views.cluster_slo_templates, ("", name))

    def get_secret(self, namespace: str, name: str) -> StoredSecret | None:
        return self._kube.get_secret(namespace, name)  # not watched: see the module docstring

    # --- routes ---

    def get_http_route(self, namespace: str, name: str) -> Json | None:
        store = self._views.http_routes
        if store is None or self._fresh_read("HTTPRoute", namespace, name):
            return self._kube.get_http_route(namespace, name)
        return self._views.get(store, (namespace, name))

    def patch_http_route(self, namespace: str, name: str, operations: list[Json]) -> Json:
        try:
            return self._kube.patch_http_route(namespace, name, operations)
        except WriteConflictError:
            self._stale.add(("HTTPRoute", namespace, name))
            raise

    def apply_http_route(self, manifest: Json) -> Json:
        return self._kube.apply_http_route(manifest)

    def get_http_route_crd(self) -> Json | None:
        return self._kube.get_http_route_crd()

    def get_virtual_service(self, namespace: str, name: str, version: str) -> Json | None:
        store = self._views.virtual_services
        watched = store is not None and version == self._views.virtual_service_version
        if store is None or not watched or self._fresh_read("VirtualService", namespace, name):
            return self._kube.get_virtual_service(namespace, name, version)
        return self._views.get(store, (namespace, name))

    def apply_virtual_service(self, version: str, manifest: Json) -> Json:
        return self._kube.apply_virtual_service(version, manifest)

    def patch_virtual_service(
        self, namespace: str, name: str, version: str, operations: list[Json]
    ) -> Json:
        try:
            return self._kube.patch_virtual_service(namespace, name, version, operations)
        except WriteConflictError:
            self._stale.add(("VirtualService", namespace, name))
            raise

    def get_virtual_service_crd(self) -> Json | None:
        return self._kube.get_virtual_service_crd()

    def _fresh_read(self, kind: str, namespace: str, name: str) -> bool:
        """Whether to read from the API (once) because a write found the view stale."""
        key = (kind, namespace, name)
        if key in self._stale:
            self._stale.discard(key)
            return True
        return False
