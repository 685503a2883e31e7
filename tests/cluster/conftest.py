"""Fixtures of the cluster suites: the ModelRelease CRDs installed once per session."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from modelrelease.api.constants import (
    GROUP,
    PLURAL_CLUSTER_SLO_TEMPLATES,
    PLURAL_MODEL_RELEASES,
    PLURAL_SLO_TEMPLATES,
)

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

ROOT = Path(__file__).resolve().parents[2]
FIELD_MANAGER = "modelrelease-tests"


def install_crds(kubectl: Kubectl) -> None:
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
def modelrelease_crds(kubectl: Kubectl) -> None:
    """The ModelRelease, SLOTemplate and ClusterSLOTemplate CRDs, served by the cluster."""
    install_crds(kubectl)
