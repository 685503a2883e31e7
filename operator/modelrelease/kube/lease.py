"""The leader Lease (``coordination.k8s.io/v1``): read, create, update from a resourceVersion.

Apart from ``kube.client`` so that its writes never pass the leader's own write
guard: the Lease is what decides who may write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrelease.kube.client import HTTP_NOT_FOUND, Json, _json, _translated
from modelrelease.kube.errors import KubeError
from modelrelease.leader import LeaseRecord


class KubeLeaseStore:
    """One Lease, read and written with a request timeout shorter than the renew deadline."""

    def __init__(
        self, api_client: client.ApiClient, namespace: str, name: str, timeout: float
    ) -> None:
        self._api = client.CoordinationV1Api(api_client)
        self._namespace = namespace
        self._name = name
        self._timeout = timeout

    @property
    def where(self) -> str:
        return f"{self._namespace}/{self._name}"

    def get(self) -> LeaseRecord | None:
        try:
            with _translated(f"read the Lease {self.where}"):
                return _record(
                    _json(
                        self._api.read_namespaced_lease(
                            self._name,
                            self._namespace,
                            _preload_content=False,
                            _request_timeout=self._timeout,
                        )
                    )
                )
        except KubeError as error:
            cause = error.__cause__
            if isinstance(cause, ApiException) and cause.status == HTTP_NOT_FOUND:
                return None
            raise

    def claim(self, record: LeaseRecord) -> LeaseRecord:
        body = _manifest(self._namespace, self._name, record)
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": self._timeout}
        call: Callable[..., Any]
        if record.version:
            what, call = f"update the Lease {self.where}", self._api.replace_namespaced_lease
            args: tuple[Any, ...] = (self._name, self._namespace, body)
        else:
            what, call = f"create the Lease {self.where}", self._api.create_namespaced_lease
            args = (self._namespace, body)
        with _translated(what):
            response = call(*args, **options)
        return _record(_json(response))


def _manifest(namespace: str, name: str, record: LeaseRecord) -> Json:
    metadata: Json = {"name": name, "namespace": namespace}
    if record.version:
        metadata["resourceVersion"] = record.version  # the update's precondition
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration_seconds,
            "acquireTime": _micro_time(record.acquired),
            "renewTime": _micro_time(record.renewed),
            "leaseTransitions": record.transitions,
        },
    }


def _record(lease: Json) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=spec.get("holderIdentity") or "",
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquired=_parse_time(spec.get("acquireTime")),
        renewed=_parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        version=str(lease["metadata"]["resourceVersion"]),
    )


def _micro_time(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment is not None else None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
