"""The plugin's reads and writes, as kubectl would do them (kubeconfig, context, namespace).

Reads of routes, Deployments, Nodes and Pods go through the operator's own
``kube.KubeClient`` and routers, so the plugin reports the route's weights exactly
as the operator reads them.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from modelrelease.api.constants import (
    ANNOTATION_ACTION,
    GROUP,
    KIND_MODEL_RELEASE,
    PLURAL_MODEL_RELEASES,
    VERSION,
)
from modelrelease.api.models import ModelReleaseSpec
from modelrelease.cli.errors import CommandError
from modelrelease.cli.render import GPUView, StatusInputs, event_time
from modelrelease.core.gpu import fit, node_gpus, pod_gpus
from modelrelease.core.manifests import Owner
from modelrelease.core.observation import revision_of_object
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import ForbiddenError, KubeError
from modelrelease.routers.factory import new_router
from modelrelease.routers.router import RouterError

Json = dict[str, Any]
REQUEST_TIMEOUT_SECONDS = 15
WATCH_SECONDS = 300  # a watch is re-opened after this long (servers close them anyway)
# A quiet watch wakes its thread this often, to see a stop: the exit waits at most this.
READ_TIMEOUT_SECONDS = 2
HTTP_GONE = 410


@dataclass(frozen=True)
class Target:
    """Where the command points: kubeconfig, context and namespace, as kubectl resolves them."""

    kubeconfig: str | None
    context: str | None
    namespace: str | None


def _namespace_of_context(target: Target) -> str:
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=target.kubeconfig
    )
    if target.context:
        active = next((c for c in contexts if c.get("name") == target.context), None)
        if active is None:
            names = ", ".join(str(c.get("name")) for c in contexts)
            raise CommandError(f'context "{target.context}" is not in the kubeconfig ({names})')
    return str((active or {}).get("context", {}).get("namespace") or "default")


class Cluster:
    """One connection to the API server for one command."""

    def __init__(self, target: Target) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        path = target.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        shown = path or "~/.kube/config"
        if path is not None and not os.path.exists(path):
            raise CommandError(
                f"kubeconfig {path} does not exist; pass --kubeconfig or set KUBECONFIG"
            )
        try:
            namespace = _namespace_of_context(Target(path, target.context, None))
            self.namespace = target.namespace or namespace
            self.api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=target.context
            )
        except ConfigException as error:
            raise CommandError(
                f"cannot use kubeconfig {shown}: {error}; pass --kubeconfig or --context"
            ) from error
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.kube = KubeClient(self.api_client, faults=None)

    # --- the release --------------------------------------------------------------

    def release(self, name: str) -> Json:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL_MODEL_RELEASES,
            name,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        return dict(obj)

    def releases(self, all_namespaces: bool) -> list[Json]:
        listing: Any
        if all_namespaces:
            listing = self.custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL_MODEL_RELEASES, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        else:
            listing = self.custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL_MODEL_RELEASES,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        items: list[Json] = listing.get("items", [])
        return sorted(items, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"]))

    def request_action(self, name: str, value: str) -> None:
        """Write the action annotation; the operator consumes it on its next pass."""
        body = {"metadata": {"annotations": {ANNOTATION_ACTION: value}}}
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL_MODEL_RELEASES,
            name,
            body,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )

    def follow(self, name: str, resource_version: str) -> Follower:
        """A watch on the release from ``resource_version``; use it in a ``with``."""
        return Follower(self, name, resource_version)

    # --- what the status view adds to the release ---------------------------------------

    def status_inputs(self, release: Json, with_gpus: bool = True) -> StatusInputs:
        routes, note = self._routes(release)
        return StatusInputs(
            release=release,
            now=datetime.now(UTC),
            routes=routes,
            route_note=note,
            events=self.events(release["metadata"]["name"]),
            gpus=self._gpus(release) if with_gpus else None,
        )

    def events(self, name: str) -> list[Json]:
        """The release's Events, oldest first (empty when Events may not be read)."""
        listing: Any
        try:
            listing = self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.kind={KIND_MODEL_RELEASE},involvedObject.name={name}",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except Exception:  # the view goes on without Events
            return []
        items: list[Json] = json.loads(listing.data).get("items", [])
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(items, key=lambda e: event_time(e) or epoch)

    def _routes(self, release: Json) -> tuple[Any, str]:
        try:
            spec = ModelReleaseSpec.model_validate(release.get("spec") or {})
        except ValidationError:
            return None, "not read (this plugin cannot parse the spec)"
        if spec.traffic.none is not None:
            return None, "no router (the weight follows the ready replicas)"
        meta = release["metadata"]
        owner = Owner(meta["name"], self.namespace, str(meta.get("uid") or ""))
        try:
            router = new_router(
                spec.traffic, self.kube, self.namespace, owner.name, spec.port, owner
            )
            return router.get_routes(), ""
        except (RouterError, KubeError) as error:
            return None, f"not read ({error})"

    def _gpus(self, release: Json) -> GPUView | None:
        try:
            spec = ModelReleaseSpec.model_validate(release.get("spec") or {})
        except ValidationError:
            return None
        pod_spec = spec.template.get("spec") or {}
        per_pod = pod_gpus(pod_spec)
        if per_pod == 0:
            return None
        status = release.get("status") or {}
        pods = sum(
            int((status.get(role) or {}).get("replicas") or 0)
            for role in ("champion", "challenger")
        )
        try:
            nodes = node_gpus(self.kube.list_nodes(), self.kube.list_bound_pods())
        except ForbiddenError:
            return GPUView(
                per_pod, pods, None, "free GPUs not shown: you may not list Nodes or Pods"
            )
        except KubeError as error:
            return GPUView(per_pod, pods, None, f"free GPUs not read: {error}")
        return GPUView(per_pod, pods, fit(pod_spec, 0, nodes).total_free)

    # --- revisions ---------------------------------------------------------------------------

    def kept_revisions(self, name: str) -> list[str]:
        """Revisions of the release that still have a Deployment (any size)."""
        return sorted(
            revision
            for revision in map(
                revision_of_object, self.kube.list_deployments(self.namespace, name)
            )
            if revision
        )


class Follower:
    """A thread following a watch on one release; its new versions land on ``updates``.

    The watch is re-opened when the server closes it, and reads time out every few
    seconds so the thread sees when it should stop: leaving the ``with`` block stops
    and joins it, and an interpreter never exits under a thread still in a read.
    An error ends up on the queue, so the caller reports it.
    """

    def __init__(self, cluster: Cluster, name: str, resource_version: str) -> None:
        self.updates: queue.Queue[Json | BaseException] = queue.Queue()
        self._cluster = cluster
        self._name = name
        self._version = resource_version
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> queue.Queue[Json | BaseException]:
        self._thread.start()
        return self.updates

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=READ_TIMEOUT_SECONDS + 1)

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import ProtocolError, ReadTimeoutError

        while not self._stopped.is_set():
            try:
                self._stream()
            except (ReadTimeoutError, ProtocolError):
                continue  # a quiet watch: look at the stop flag, then watch on
            except ApiException as error:
                if error.status != HTTP_GONE:
                    self.updates.put(error)
                    return
                self._version = ""  # too old a version: start again from now
            except BaseException as error:  # handed to the caller
                self.updates.put(error)
                return

    def _stream(self) -> None:
        from kubernetes import watch

        cluster = self._cluster
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            cluster.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            cluster.namespace,
            PLURAL_MODEL_RELEASES,
            field_selector=f"metadata.name={self._name}",
            resource_version=self._version,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=(REQUEST_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        )
        for event in stream:
            if self._stopped.is_set():
                return
            obj: Json = event["object"]
            self._version = obj.get("metadata", {}).get("resourceVersion", self._version)
            if event["type"] == "DELETED":
                message = f"ModelRelease {cluster.namespace}/{self._name} was deleted"
                self.updates.put(CommandError(message))
                self._stopped.set()
                return
            self.updates.put(obj)


def iterate(updates: queue.Queue[Json | BaseException], timeout: float) -> Iterator[Json | None]:
    """Items of a watch queue; ``None`` every ``timeout`` seconds without one (a clock tick)."""
    while True:
        try:
            item = updates.get(timeout=timeout)
        except queue.Empty:
            yield None
            continue
        if isinstance(item, BaseException):
            raise item
        yield item
