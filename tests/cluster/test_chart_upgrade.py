"""Upgrading the chart updates the CRDs, uninstall keeps them, and the documented
steps of docs/operations.md (adopting 0.1.0's CRDs, dropping finalizers) work.

These tests change the cluster's ModelRelease CRDs on purpose; each restores the
generated ones at the end (tests run one at a time against the local cluster).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CACHE, ROOT, install_crds
from tests.waiting import wait_for

CHART = ROOT / "charts" / "modelrelease-operator"
HELM = str(CACHE / "bin" / "helm")
OPERATIONS = ROOT / "docs" / "operations.md"
CRDS = ("modelreleases", "slotemplates", "clusterslotemplates")
MODELRELEASES_CRD = "modelreleases.modelrelease.dev"
VALUES = ["sloTemplates=false", "replicaCount=0", "metrics.enabled=false", "rbac.create=false"]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def _helm(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    values = [] if args[0] == "uninstall" else [a for value in VALUES for a in ("--set", value)]
    return subprocess.run(
        [HELM, *args, *values, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _bash_block(containing: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", OPERATIONS.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return str(block)


def _run_documented(script: str, kubeconfig: str, **env: str) -> None:
    environment = {
        **os.environ,
        **env,
        "KUBECONFIG": kubeconfig,
        "PATH": f"{CACHE / 'bin'}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,  # the block names the chart as charts/modelrelease-operator
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _chart_copy(tmp_path: Path, name: str, version: str) -> Path:
    chart = tmp_path / name / "modelrelease-operator"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = version
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return chart


def _edit_crd(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        edit(document)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def _columns(kubectl: Kubectl) -> list[str]:
    crd = json.loads(kubectl("get", "crd", MODELRELEASES_CRD, "-o", "json").stdout)
    return [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def _previous_chart(tmp_path: Path) -> Path:
    """Chart 0.1.0's layout: the CRDs in crds/ (never upgraded by Helm), no keep
    annotation, and an older ModelRelease CRD (without the Desired column)."""
    chart = _chart_copy(tmp_path, "previous", "0.1.0")
    (chart / "templates" / "crds.yaml").unlink()
    shutil.move(chart / "files" / "crds", chart / "crds")

    def older(crd: dict[str, Any]) -> None:
        crd["metadata"].pop("annotations", None)
        for version in crd["spec"]["versions"]:
            columns = version["additionalPrinterColumns"]
            version["additionalPrinterColumns"] = [c for c in columns if c["name"] != "Desired"]

    for path in (chart / "crds").glob("*.yaml"):
        _edit_crd(path, older)
    return chart


def _next_chart(tmp_path: Path) -> Path:
    """A later chart whose ModelRelease CRD has one more printer column."""
    chart = _chart_copy(tmp_path, "next", "0.3.0")

    def newer(crd: dict[str, Any]) -> None:
        for version in crd["spec"]["versions"]:
            version["additionalPrinterColumns"].append(
                {"name": "Next", "type": "string", "jsonPath": ".spec.model.name", "priority": 1}
            )

    _edit_crd(chart / "files" / "crds" / "modelrelease.dev_modelreleases.yaml", newer)
    return chart


@pytest.fixture
def restored_crds(kubectl: Kubectl, modelrelease_crds: None) -> Iterator[None]:
    yield
    # The generated CRDs again, without Helm's ownership (another test's release would
    # otherwise be refused them).
    for name in CRDS:
        crd = f"{name}.modelrelease.dev"
        kubectl("label", "crd", crd, "app.kubernetes.io/managed-by-", check=False)
        kubectl(
            "annotate",
            "crd",
            crd,
            "meta.helm.sh/release-name-",
            "meta.helm.sh/release-namespace-",
            "helm.sh/resource-policy-",
            check=False,
        )
    kubectl("replace", "-f", str(ROOT / "crds"))
    install_crds(kubectl)


def test_upgrade_from_0_1_0_updates_the_crds_and_uninstall_keeps_them(
    kubeconfig: str, kubectl: Kubectl, namespace: str, tmp_path: Path, restored_crds: None
) -> None:
    previous = _previous_chart(tmp_path)
    kubectl("replace", "-f", str(previous / "crds"))
    assert "Desired" not in _columns(kubectl)
    release = f"up-{uuid.uuid4().hex[:6]}"
    installed = _helm(kubeconfig, "install", release, str(previous), "-n", namespace)
    assert installed.returncode == 0, installed.stderr

    # Helm does not take over CRDs it did not create: the documented step is needed.
    refused = _helm(kubeconfig, "upgrade", release, str(CHART), "-n", namespace)
    assert refused.returncode != 0
    assert "ownership" in refused.stderr or "imported" in refused.stderr, refused.stderr
    # The documented block, as it is, but for the first line (the user's names).
    first, *rest = _bash_block("meta.helm.sh/release-name").splitlines()
    assert first.startswith("RELEASE=")
    _run_documented("\n".join(rest), kubeconfig, RELEASE=release, NAMESPACE=namespace)
    listed = subprocess.run(
        [HELM, "list", "-n", namespace, "-o", "json", "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=True,
    )
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    assert [(r["name"], r["status"], r["chart"]) for r in json.loads(listed.stdout)] == [
        (release, "deployed", f"modelrelease-operator-{version}")
    ]
    assert "Desired" in _columns(kubectl)
    crd = json.loads(kubectl("get", "crd", MODELRELEASES_CRD, "-o", "json").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    # From now on every upgrade carries the CRDs along.
    next_chart = str(_next_chart(tmp_path))
    following = _helm(kubeconfig, "upgrade", release, next_chart, "-n", namespace)
    assert following.returncode == 0, following.stderr
    assert "Next" in _columns(kubectl)

    removed = _helm(kubeconfig, "uninstall", release, "-n", namespace)
    assert removed.returncode == 0, removed.stderr
    for name in CRDS:
        kubectl("get", "crd", f"{name}.modelrelease.dev")  # kept: check=True fails otherwise


def test_the_documented_finalizer_removal_frees_releases_without_an_operator(
    kubeconfig: str, kubectl: Kubectl, namespace: str, modelrelease_crds: None
) -> None:
    from tests.e2e.conftest import model_release

    release = copy.deepcopy(model_release("1"))
    release["metadata"]["finalizers"] = ["modelrelease.dev/finalizer"]
    release["metadata"]["namespace"] = namespace
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(release))
    name = release["metadata"]["name"]
    kubectl("delete", "modelrelease", name, "-n", namespace, "--wait=false")
    stuck = json.loads(kubectl("get", "modelrelease", name, "-n", namespace, "-o", "json").stdout)
    assert stuck["metadata"]["deletionTimestamp"]  # held by the finalizer, no operator

    _run_documented(_bash_block('"finalizers":null'), kubeconfig)

    def gone() -> bool:
        found = kubectl("get", "modelrelease", name, "-n", namespace, check=False)
        return found.returncode != 0 and "NotFound" in found.stderr

    wait_for(gone, 30, "the release deleted once its finalizer is dropped")
