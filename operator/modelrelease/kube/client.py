"""The one place that talks to the Kubernetes API server (apart from kopf itself).

Everything here is synchronous (the official client is); the reconcile pass
runs it in a worker thread. Objects go in and come out as plain JSON-shaped
dicts with the API's own field names, so the pure core never sees client
library types. Errors become the few types of ``kube.errors``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from modelrelease.api.constants import (
    GROUP,
    LABEL_RELEASE,
    PLURAL_CLUSTER_SLO_TEMPLATES,
    PLURAL_MODEL_RELEASES,
    PLURAL_SLO_TEMPLATES,
    VERSION,
)
from modelrelease.kube.errors import ForbiddenError, KubeError, WriteConflictError
from modelrelease.kube.faults import FaultInjection
from modelrelease.routers import gatewayapi, istio

Json = dict[str, Any]

FIELD_MANAGER = "modelrelease-operator"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT_SECONDS = 15.0
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409
HTTP_GONE = 410
HTTP_UNPROCESSABLE = 422
PATCH_NOT_APPLICABLE = "the server rejected our request due to an error in our request"
"""The API server's whole message when a JSON patch does not apply (a ``test`` failed,
or a path is gone); schema errors say which field instead."""
LIST_PAGE_SIZE = 500
WATCH_SECONDS = 300
"""How long the API server keeps one watch request open (then it is reopened)."""


@dataclass(frozen=True)
class StoredSecret:
    """A Secret as read: labels, and data as the API returns it (base64)."""

    labels: dict[str, str]
    encoded: dict[str, str] = field(repr=False)

    def decoded(self) -> dict[str, str]:
        return {key: base64.b64decode(value).decode() for key, value in self.encoded.items()}


@dataclass(frozen=True)
class Collection:
    """Objects of one kind, as ``kube.views`` lists and watches them: in all
    namespaces, or in one (``namespace``) when the operator may read only there."""

    kind: str  # for messages: "Pods", "HTTPRoutes"
    group: str  # "" for the core group
    version: str
    plural: str
    label_selector: str | None = None
    namespace: str | None = None  # None: all namespaces (or a cluster-scoped kind)

    def named(self) -> str:
        """The stream's name in messages: ``Deployments`` or ``Deployments in team-a``."""
        return self.kind if self.namespace is None else f"{self.kind} in {self.namespace}"


class WatchExpiredError(KubeError):
    """The version a watch starts from is gone (HTTP 410): list again."""


def new_api_client(
    kubeconfig: str | None = None, connections: int | None = None
) -> client.ApiClient:
    """An API client for the in-cluster service account, or the kubeconfig; with a
    pool of ``connections`` kept open (the client's default when None)."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        detail = f"{what}: HTTP {error.status} {error.reason}: {_message(error)}"
        if error.status == HTTP_CONFLICT:
            raise WriteConflictError(detail) from error
        if error.status == HTTP_GONE:
            raise WatchExpiredError(detail) from error
        if error.status == HTTP_FORBIDDEN:
            raise ForbiddenError(detail) from error
        raise KubeError(detail) from error


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message", error.body))
    except ValueError:
        return str(error.body)


def _json(response: Any) -> Json:
    data: Json = json.loads(response.data)
    return data


def _release_selector(release: str) -> str:
    return f"{LABEL_RELEASE}={release}"


class KubeClient:
    """Typed-at-the-edge access to the objects the operator reads and writes."""

    def __init__(
        self,
        api_client: client.ApiClient,
        faults: FaultInjection | None = None,
        write_guard: Callable[[str], None] | None = None,
    ) -> None:
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._extensions = client.ApiextensionsV1Api(api_client)
        self._faults = faults if faults is not None else FaultInjection.from_env()
        # Told every object a write returns, so the views read the operator's own writes.
        self.written: Callable[[Json], None] = lambda obj: None
        # Raises to refuse a write: leader election's fencing (``leader.LeaderElector``).
        self._write_guard = write_guard

    # --- pass boundaries (fault injection for the chaos suite; no-ops otherwise) ---

    def begin_pass(self) -> None:
        if self._faults is not None:
            self._faults.begin_pass()

    @contextmanager
    def _write(self, what: str) -> Iterator[None]:
        """One write: the guard, translated errors, and the injected fault when configured."""
        if self._write_guard is not None:
            self._write_guard(what)
        if self._faults is not None:
            self._faults.before_write(what)
        with _translated(what):
            yield
        if self._faults is not None:
            self._faults.after_write(what)

    # --- generic helpers ------------------------------------------------------

    def _get_or_none(self, what: str, call: Any, *args: Any) -> Json | None:
        try:
            with _translated(what):
                return _json(
                    call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS)
                )
        except KubeError as error:
            cause = error.__cause__
            if isinstance(cause, ApiException) and cause.status == HTTP_NOT_FOUND:
                return None
            raise

    # --- lists and watches (kube.views) ----------------------------------------

    def list_page(self, collection: Collection, continue_token: str | None = None) -> Json:
        """One page of a list: ``items``, and ``metadata.resourceVersion`` and ``continue``."""
        options: Json = {"limit": LIST_PAGE_SIZE}
        if continue_token:
            options["_continue"] = continue_token
        with _translated(f"list {collection.named()}"):
            response = self._list_call(collection)(
                **options, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        return _json(response)

    def list_all(self, collection: Collection) -> list[Json]:
        """Every object of ``collection``, page after page (one-off reads, not the views)."""
        items: list[Json] = []
        token: str | None = None
        while True:
            page = self.list_page(collection, token)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def watch(self, collection: Collection, resource_version: str) -> Iterator[Json]:
        """The watch events after ``resource_version`` (``type``, ``object``), bookmarks
        included, until the API server ends the request; WatchExpiredError on 410."""
        with _translated(f"watch {collection.named()}"):
            response = self._list_call(collection)(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT_SECONDS, WATCH_SECONDS + 30),
            )
        with closing(response):
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                event: Json = json.loads(line)
                failure = event.get("object") or {}
                if event.get("type") == "ERROR" and failure.get("code") == HTTP_GONE:
                    raise WatchExpiredError(f"watch {collection.named()}: {failure.get('message')}")
                if event.get("type") == "ERROR":
                    raise KubeError(f"watch {collection.named()}: {failure.get('message')}")
                yield event

    def _list_call(self, collection: Collection) -> Callable[..., Any]:
        """The client call that lists (or, with watch=True, watches) ``collection``."""
        selector: Json = {}
        if collection.label_selector is not None:
            selector["label_selector"] = collection.label_selector
        if collection.namespace is not None:
            return self._namespaced_list_call(collection, selector)
        typed: dict[tuple[str, str], Callable[..., Any]] = {
            ("", "pods"): self._core.list_pod_for_all_namespaces,
            ("", "services"): self._core.list_service_for_all_namespaces,
            ("", "nodes"): self._core.list_node,
            ("apps", "deployments"): self._apps.list_deployment_for_all_namespaces,
        }
        call = typed.get((collection.group, collection.plural)) or partial(
            self._custom.list_cluster_custom_object,
            collection.group,
            collection.version,
            collection.plural,
        )
        return lambda **options: call(**selector, **options)

    def _namespaced_list_call(self, collection: Collection, selector: Json) -> Callable[..., Any]:
        """The list call of ``collection`` in its one namespace (namespaced RBAC: a Role
        grants list and watch there, not in all namespaces)."""
        namespace = str(collection.namespace)
        typed: dict[tuple[str, str], Callable[..., Any]] = {
            ("", "pods"): self._core.list_namespaced_pod,
            ("", "services"): self._core.list_namespaced_service,
            ("apps", "deployments"): self._apps.list_namespaced_deployment,
        }
        known = typed.get((collection.group, collection.plural))
        if known is not None:
            return lambda **options: known(namespace, **selector, **options)
        return partial(
            self._custom.list_namespaced_custom_object,
            collection.group,
            collection.version,
            namespace,
            collection.plural,
            **selector,
        )

    # --- workloads ------------------------------------------------------------

    # One-off reads for the kubectl plugin; the operator's passes read kube.views.
    def list_deployments(self, namespace: str, release: str) -> list[Json]:
        with _translated(f"list Deployments of {namespace}/{release}"):
            response = self._apps.list_namespaced_deployment(
                namespace,
                label_selector=_release_selector(release),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        items: list[Json] = _json(response).get("items", [])
        return items

    def list_nodes(self) -> list[Json]:
        with _translated("list Nodes"):
            response = self._core.list_node(
                _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        items: list[Json] = _json(response).get("items", [])
        return items

    def list_bound_pods(self) -> list[Json]:
        """Every non-terminated pod bound to a node, in all namespaces (GPU accounting)."""
        with _translated("list Pods bound to Nodes"):
            response = self._core.list_pod_for_all_namespaces(
                field_selector="spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        items: list[Json] = _json(response).get("items", [])
        return items

    def list_pods(self, namespace: str, release: str) -> list[Json]:
        with _translated(f"list Pods of {namespace}/{release}"):
            response = self._core.list_namespaced_pod(
                namespace,
                label_selector=_release_selector(release),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        items: list[Json] = _json(response).get("items", [])
        return items

    def get_service(self, namespace: str, name: str) -> Json | None:
        return self._get_or_none(
            f"get Service {namespace}/{name}", self._core.read_namespaced_service, name, namespace
        )

    def apply_deployment(self, manifest: Json) -> None:
        self._apply("Deployment", self._apps.patch_namespaced_deployment, manifest)

    def apply_service(self, manifest: Json) -> None:
        self._apply("Service", self._core.patch_namespaced_service, manifest)

    def _apply(self, kind: str, patch: Callable[..., Any], manifest: Json) -> Json:
        """Server-side apply of an owned object, taking over fields others hold; the
        object as stored. ``patch(name, namespace, body, **options)``."""
        meta = manifest["metadata"]
        with self._write(f"apply {kind} {meta['namespace']}/{meta['name']}"):
            response = patch(
                meta["name"],
                meta["namespace"],
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        applied = _json(response)
        self.written(applied)
        return applied

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Set ``spec.replicas`` alone (the Deployment's template is left untouched)."""
        with self._write(f"scale Deployment {namespace}/{name} to {replicas}"):
            response = self._apps.patch_namespaced_deployment(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        self.written(_json(response))

    def get_deployment(self, namespace: str, name: str) -> Json | None:
        return self._get_or_none(
            f"get Deployment {namespace}/{name}",
            self._apps.read_namespaced_deployment,
            name,
            namespace,
        )

    def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            with self._write(f"delete Deployment {namespace}/{name}"):
                self._apps.delete_namespaced_deployment(
                    name,
                    namespace,
                    propagation_policy="Background",
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                )
        except KubeError as error:
            cause = error.__cause__
            if not (isinstance(cause, ApiException) and cause.status == HTTP_NOT_FOUND):
                raise

    # --- the ModelRelease itself ---------------------------------------------------

    def patch_release_status(
        self, namespace: str, name: str, status: Json, resource_version: str
    ) -> str:
        """Merge-patch the status, only if the object is still at ``resource_version``.

        A pass that decided from a stale copy gets a :class:`WriteConflictError`
        instead of writing over what a later pass wrote. Returns the new version.
        """
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        if self._faults is not None:
            self._faults.before_status()
        return self._patch_release(
            f"write the status of ModelRelease {namespace}/{name}",
            self._custom.patch_namespaced_custom_object_status,
            namespace,
            name,
            body,
        )

    def remove_release_annotation(
        self, namespace: str, name: str, key: str, resource_version: str
    ) -> str:
        """Remove one annotation, only if the object is still at ``resource_version``."""
        body = {"metadata": {"resourceVersion": resource_version, "annotations": {key: None}}}
        return self._patch_release(
            f"remove annotation {key} of ModelRelease {namespace}/{name}",
            self._custom.patch_namespaced_custom_object,
            namespace,
            name,
            body,
        )

    def get_release(self, namespace: str, name: str) -> Json | None:
        return self._get_or_none(
            f"get ModelRelease {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL_MODEL_RELEASES,
            name,
        )

    def set_release_finalizers(
        self, namespace: str, name: str, finalizers: list[str], resource_version: str
    ) -> str:
        """Replace the finalizers, only if the object is still at ``resource_version``."""
        body = {"metadata": {"resourceVersion": resource_version, "finalizers": finalizers}}
        return self._patch_release(
            f"set the finalizers of ModelRelease {namespace}/{name}",
            self._custom.patch_namespaced_custom_object,
            namespace,
            name,
            body,
        )

    def _patch_release(
        self, what: str, call: Callable[..., Any], namespace: str, name: str, body: Json
    ) -> str:
        with self._write(what):
            response = call(
                GROUP,
                VERSION,
                namespace,
                PLURAL_MODEL_RELEASES,
                name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        return str(_json(response)["metadata"]["resourceVersion"])

    # --- configuration the spec points at ---------------------------------------

    def get_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """The Secret's labels, and its data still encoded: decode only after the opt-in check."""
        secret = self._get_or_none(
            f"get Secret {namespace}/{name}", self._core.read_namespaced_secret, name, namespace
        )
        if secret is None:
            return None
        labels: dict[str, str] = (secret.get("metadata") or {}).get("labels") or {}
        return StoredSecret(labels=labels, encoded=secret.get("data") or {})

    def get_slo_template(self, namespace: str, name: str) -> Json | None:
        return self._get_or_none(
            f"get SLOTemplate {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL_SLO_TEMPLATES,
            name,
        )

    def get_cluster_slo_template(self, name: str) -> Json | None:
        return self._get_or_none(
            f"get ClusterSLOTemplate {name}",
            self._custom.get_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL_CLUSTER_SLO_TEMPLATES,
            name,
        )

    # --- Gateway API (routers.gatewayapi.HTTPRouteStore) -------------------------

    def get_http_route(self, namespace: str, name: str) -> Json | None:
        return self._get_or_none(
            f"get HTTPRoute {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            gatewayapi.GROUP,
            gatewayapi.VERSION,
            namespace,
            gatewayapi.PLURAL,
            name,
        )

    def patch_http_route(self, namespace: str, name: str, operations: list[Json]) -> Json:
        return self._json_patch_custom(
            f"patch HTTPRoute {namespace}/{name}",
            (gatewayapi.GROUP, gatewayapi.VERSION, gatewayapi.PLURAL),
            namespace,
            name,
            operations,
        )

    def apply_http_route(self, manifest: Json) -> Json:
        """Server-side apply of an HTTPRoute the operator owns."""
        resource = (gatewayapi.GROUP, gatewayapi.VERSION, gatewayapi.PLURAL)
        return self._apply_custom(resource, "HTTPRoute", manifest)

    def _apply_custom(self, resource: tuple[str, str, str], kind: str, manifest: Json) -> Json:
        """Server-side apply of an owned custom object (see ``_apply``)."""
        group, version, plural = resource

        def patch(name: str, namespace: str, body: Json, **options: Any) -> Any:
            return self._custom.patch_namespaced_custom_object(
                group, version, namespace, plural, name, body, **options
            )

        return self._apply(kind, patch, manifest)

    def get_http_route_crd(self) -> Json | None:
        return self._get_or_none(
            f"get CustomResourceDefinition {gatewayapi.CRD_NAME}",
            self._extensions.read_custom_resource_definition,
            gatewayapi.CRD_NAME,
        )

    # --- Istio (routers.istio.VirtualServiceStore) -------------------------------

    def get_virtual_service(self, namespace: str, name: str, version: str) -> Json | None:
        return self._get_or_none(
            f"get VirtualService {namespace}/{name} ({istio.GROUP}/{version})",
            self._custom.get_namespaced_custom_object,
            istio.GROUP,
            version,
            namespace,
            istio.PLURAL,
            name,
        )

    def apply_virtual_service(self, version: str, manifest: Json) -> Json:
        """Server-side apply of a VirtualService the operator owns."""
        return self._apply_custom((istio.GROUP, version, istio.PLURAL), "VirtualService", manifest)

    def patch_virtual_service(
        self, namespace: str, name: str, version: str, operations: list[Json]
    ) -> Json:
        return self._json_patch_custom(
            f"patch VirtualService {namespace}/{name}",
            (istio.GROUP, version, istio.PLURAL),
            namespace,
            name,
            operations,
        )

    def _json_patch_custom(
        self,
        what: str,
        resource: tuple[str, str, str],
        namespace: str,
        name: str,
        operations: list[Json],
    ) -> Json:
        """JSON-patch a custom object. A patch that does not apply (HTTP 422 without a
        field error: its ``test`` failed because the part of the object it was computed
        from changed) is a WriteConflictError, so it is retried from a fresh read."""
        group, version, plural = resource
        try:
            with self._write(what):
                response = self._custom.patch_namespaced_custom_object(
                    group,
                    version,
                    namespace,
                    plural,
                    name,
                    operations,
                    field_manager=FIELD_MANAGER,
                    _content_type=JSON_PATCH,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                )
        except KubeError as error:
            cause = error.__cause__
            not_applicable = (
                isinstance(cause, ApiException)
                and cause.status == HTTP_UNPROCESSABLE
                and _message(cause) == PATCH_NOT_APPLICABLE
            )
            if not_applicable:
                raise WriteConflictError(f"{error} (changed since it was read)") from cause
            raise
        patched = _json(response)
        self.written(patched)
        return patched

    def get_virtual_service_crd(self) -> Json | None:
        return self._get_or_none(
            f"get CustomResourceDefinition {istio.CRD_NAME}",
            self._extensions.read_custom_resource_definition,
            istio.CRD_NAME,
        )
