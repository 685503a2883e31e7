"""Fixtures shared by every suite.

Cluster tests run against the local control plane of ``hack/local-cluster.sh``
(brought up on first use, reused when already up). Set
``MODELRELEASE_TEST_KUBECONFIG`` to run the same tests against another cluster
(kind, a real one); ``MODELRELEASE_TEST_PROMETHEUS`` then names its Prometheus.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from modelrelease.api.constants import (
    GROUP,
    PLURAL_CLUSTER_SLO_TEMPLATES,
    PLURAL_MODEL_RELEASES,
    PLURAL_SLO_TEMPLATES,
)

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MODELRELEASE_CACHE", Path.home() / ".cache" / "modelrelease"))
LOCAL_STATE = Path(os.environ.get("MODELRELEASE_CLUSTER_DIR", ROOT / ".local-cluster"))
LOCAL_PROMETHEUS = f"http://127.0.0.1:{os.environ.get('PROMETHEUS_PORT', '19090')}"


def _tool(name: str) -> str:
    candidate = CACHE / "bin" / name
    return str(candidate) if candidate.exists() else name


KUBECTL = _tool("kubectl")


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Path of the kubeconfig the cluster tests use (the local cluster by default)."""
    external = os.environ.get("MODELRELEASE_TEST_KUBECONFIG")
    if external:
        return external
    script = ROOT / "hack" / "local-cluster.sh"
    up = subprocess.run([str(script), "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        pytest.fail(
            "could not start the local cluster (hack/local-cluster.sh up):\n"
            f"{up.stderr[-4000:]}\nRun `make tools` first if the binaries are missing.",
            pytrace=False,
        )
    return str(LOCAL_STATE / "kubeconfig")


@pytest.fixture(scope="session")
def prometheus_url(kubeconfig: str) -> str:
    """Base URL of the Prometheus server that scrapes the cluster's workloads."""
    return os.environ.get("MODELRELEASE_TEST_PROMETHEUS", LOCAL_PROMETHEUS)


@pytest.fixture(scope="session")
def prometheus_targets_dir(kubeconfig: str) -> Path:
    """Folder whose ``*.json`` files the local Prometheus reads as scrape targets."""
    if os.environ.get("MODELRELEASE_TEST_KUBECONFIG"):
        pytest.skip("file-based scrape targets exist only on the local cluster")
    return LOCAL_STATE / "prometheus" / "targets"


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[object]:
    """A ``kubernetes.client.ApiClient`` for the test cluster (admin credentials)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run kubectl against the test cluster: ``kubectl("get", "pods", check=True)``."""

    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def namespace(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    base = request.node.name.lower().replace("_", "-")
    name = "t-" + "".join(c for c in base if c.isalnum() or c == "-")[:40].strip("-")
    name = f"{name}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


FIELD_MANAGER = "modelrelease-tests"


def install_crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Apply the generated CRDs and wait until the API server serves them."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        str(ROOT / "crds"),
    )
    for plural in (PLURAL_MODEL_RELEASES, PLURAL_SLO_TEMPLATES, PLURAL_CLUSTER_SLO_TEMPLATES):
        kubectl("wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=60s")
    # Refresh kubectl's discovery cache, which may hold an older copy of the CRDs' names.
    kubectl("api-resources", f"--api-group={GROUP}")


@pytest.fixture(scope="session")
def modelrelease_crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The ModelRelease, SLOTemplate and ClusterSLOTemplate CRDs, served by the cluster."""
    install_crds(kubectl)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder so `-m "not cluster"` selects the pure suite."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "cluster" in parts:
            item.add_marker(pytest.mark.cluster)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.cluster)
