"""Every example in examples/ is accepted by the real API server (server-side dry run,
strict field validation), Gateway API and Istio objects included."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import FIELD_MANAGER

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

ROOT = Path(__file__).resolve().parents[2]


def _namespace_free(path: Path) -> bool:
    """Whether the file names no namespace, so it can go into any (``-n``)."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return not any(d["kind"] == "Namespace" or "namespace" in d["metadata"] for d in documents)


# examples/prerequisites/gateway.yaml creates its own namespace (gateway-system), which a
# dry run cannot; tests/e2e/test_examples_reconcile.py applies it for real.
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.yaml") if _namespace_free(p))


@pytest.fixture(scope="module")
def examples_namespace(kubectl: Kubectl, modelrelease_crds: None) -> Iterator[str]:
    name = f"t-api-examples-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 10, f"expected the examples of issue 3 in examples/, found {EXAMPLES}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_example_is_accepted_by_the_api_server(
    path: Path, kubectl: Kubectl, examples_namespace: str
) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        f"--field-manager={FIELD_MANAGER}",
        "-n",
        examples_namespace,
        "-f",
        str(path),
        check=False,
    )
    assert result.returncode == 0, f"{path.relative_to(ROOT)} was rejected:\n{result.stderr}"
    applied = result.stdout.count("serverside-applied (server dry run)")
    assert applied == len(documents), (
        f"{path.relative_to(ROOT)}: {len(documents)} objects, {applied} applied:\n{result.stdout}"
    )
