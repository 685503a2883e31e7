"""The only module that talks to the API server: lists what the engine needs.

Objects are returned in their JSON shape (camelCase dicts), the same shape the
pure modules parse and the unit tests build. Route CRDs are optional: the
served version is probed (Gateway API ``v1``; Istio ``v1``, then ``v1beta1``,
then ``v1alpha3``) and a kind whose CRD is not installed is re-probed every
30 seconds instead of failing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.simulator.engine import ClusterState

log = logging.getLogger("simulator.cluster")

REPROBE_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class RouteKind:
    group: str
    plural: str
    versions: Sequence[str]  # in order of preference


HTTP_ROUTES = RouteKind("gateway.networking.k8s.io", "httproutes", ("v1", "v1beta1"))
VIRTUAL_SERVICES = RouteKind(
    "networking.istio.io", "virtualservices", ("v1", "v1beta1", "v1alpha3")
)


class ClusterReader:
    def __init__(self, api_client: client.ApiClient, namespace: str | None = None) -> None:
        self.namespace = namespace
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._version: dict[RouteKind, str | None] = {}
        self._probed_at: dict[RouteKind, float] = {}

    def read(self) -> ClusterState:
        return ClusterState(
            http_routes=self._routes(HTTP_ROUTES),
            virtual_services=self._routes(VIRTUAL_SERVICES),
            services=self._core_items("service"),
            pods=self._core_items("pod"),
        )

    def _core_items(self, kind: str) -> list[dict[str, Any]]:
        # Raw JSON instead of the client's models: the same shape as custom objects.
        options: dict[str, Any] = {
            "_preload_content": False,
            "_request_timeout": REQUEST_TIMEOUT_SECONDS,
        }
        if self.namespace:
            method = getattr(self._core, f"list_namespaced_{kind}")
            response = method(self.namespace, **options)
        else:
            method = getattr(self._core, f"list_{kind}_for_all_namespaces")
            response = method(**options)
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def _routes(self, kind: RouteKind) -> list[dict[str, Any]]:
        version = self._served_version(kind)
        if version is None:
            return []
        try:
            return self._list(kind, version)
        except ApiException as error:
            if error.status != 404:
                raise
            # The CRD went away or changed versions: probe again next time.
            self._probed_at.pop(kind, None)
            return []

    def _served_version(self, kind: RouteKind) -> str | None:
        now = time.monotonic()
        if kind in self._probed_at and (
            self._version.get(kind) is not None or now - self._probed_at[kind] < REPROBE_SECONDS
        ):
            return self._version.get(kind)
        self._probed_at[kind] = now
        found = None
        for version in kind.versions:
            try:
                self._list(kind, version, limit=1)
            except ApiException as error:
                if error.status == 404:
                    continue
                raise
            found = version
            break
        if found != self._version.get(kind) or kind not in self._version:
            if found is None:
                log.info("%s.%s: not installed; no such routes are read", kind.plural, kind.group)
            else:
                log.info("%s.%s: reading version %s", kind.plural, kind.group, found)
        self._version[kind] = found
        return found

    def _list(
        self, kind: RouteKind, version: str, limit: int | None = None
    ) -> list[dict[str, Any]]:
        options: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT_SECONDS}
        if limit is not None:
            options["limit"] = limit
        if self.namespace:
            result = self._custom.list_namespaced_custom_object(
                kind.group, version, self.namespace, kind.plural, **options
            )
        else:
            result = self._custom.list_cluster_custom_object(
                kind.group, version, kind.plural, **options
            )
        items: list[dict[str, Any]] = cast(dict[str, Any], result).get("items", [])
        return items
