"""The cluster's analysis defaults (operator flags, the chart's analysisDefaults) apply
to a release that leaves the field out: the API server stores nothing for it, and the
operator's default decides."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    Cluster,
    Process,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
    wait_weights,
)
from tests.e2e.test_canary import UNREACHABLE_PROMETHEUS


@pytest.fixture
def operator_args() -> list[str]:
    # The built-in onError.after is 5m: a rollback within the test's 120 s is this flag's.
    return ["--default-on-error-after=15s"]


def test_a_release_without_on_error_follows_the_clusters_default(
    cluster: Cluster, operator: Process
) -> None:
    steps = [(20, "4s"), (50, "4s")]
    cluster.apply(http_route(rate=None), model_release("1", steps=steps))
    wait_champion_version(cluster, "1", 90)
    cluster.apply(model_release("2", steps=steps, prometheus=UNREACHABLE_PROMETHEUS))
    stored = cluster.release()
    assert "onError" not in stored["spec"]["analysis"]  # no CRD default filled it in
    status = wait_phase(cluster, "RolledBack", 120, "the cluster's 15s onError.after to pass")
    entry = status["history"][-1]
    assert (entry["outcome"], entry["reason"]) == ("RolledBack", "MetricsUnavailable")
    assert status["champion"]["modelVersion"] == "1"
    wait_weights(cluster, (100, 0))
