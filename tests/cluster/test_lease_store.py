"""The Lease store against the real API server: absent, created, updated only from
the version it was read at."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from kubernetes import client
from modelrelease.kube.errors import WriteConflictError
from modelrelease.kube.lease import KubeLeaseStore
from modelrelease.leader import LeaseRecord

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def test_lease_store_round_trip_and_optimistic_concurrency(
    api_client: client.ApiClient, namespace: str
) -> None:
    store = KubeLeaseStore(api_client, namespace, "modelrelease-operator", timeout=10)
    assert store.get() is None

    created = store.claim(LeaseRecord("a_1", 15, NOW, NOW, 0))
    assert created.version
    assert store.get() == created
    assert (created.holder, created.duration_seconds, created.renewed) == ("a_1", 15, NOW)
    with pytest.raises(WriteConflictError):
        store.claim(LeaseRecord("b_2", 15, NOW, NOW, 0))  # created meanwhile by another

    taken = store.claim(replace(created, holder="b_2", transitions=1))
    assert (taken.holder, taken.transitions) == ("b_2", 1)
    with pytest.raises(WriteConflictError):
        store.claim(replace(created, renewed=NOW))  # a renewal from a version now stale
    assert store.get() == taken
