"""The Helm chart lints, rejects bad values, and installs into the real API server."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import CACHE

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelrelease-operator"
HELM = str(CACHE / "bin" / "helm")


def helm(*args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [HELM, *args]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_chart_lints() -> None:
    result = helm("lint", str(CHART), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_crds_are_the_generated_ones() -> None:
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert generated, "crds/ is empty: run `make crds`"
    for name in generated:
        chart_copy = CHART / "crds" / name
        assert chart_copy.exists(), f"{chart_copy} missing: run `make crds`"
        assert chart_copy.read_text() == (ROOT / "crds" / name).read_text(), (
            f"{chart_copy} differs from crds/{name}: run `make crds`"
        )


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("replicaCount=3", "replicaCount"),
        ("logFormat=xml", "logFormat"),
        ("metrics.prot=9000", "prot"),
    ],
)
def test_values_schema_rejects_bad_values(override: str, complaint: str) -> None:
    result = helm("template", "t", str(CHART), "--set", override)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_chart_ships_every_built_in_slo_template() -> None:
    rendered = helm("template", "t", str(CHART))
    assert rendered.returncode == 0, rendered.stderr
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    shipped = {d["metadata"]["name"] for d in documents if d["kind"] == "ClusterSLOTemplate"}
    examples = {
        d["metadata"]["name"]
        for path in (ROOT / "examples" / "slo-templates").glob("*.yaml")
        for d in yaml.safe_load_all(path.read_text())
        if d
    }
    assert shipped == examples
    assert {"vllm-error-ratio", "vllm-ttft-quantile"} <= shipped


def _secret_rules(*overrides: str) -> list[dict[str, object]]:
    args = [arg for override in overrides for arg in ("--set", override)]
    rendered = helm("template", "t", str(CHART), *args)
    assert rendered.returncode == 0, rendered.stderr
    roles = [
        d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] in ("ClusterRole", "Role")
    ]
    assert roles
    return [
        rule
        for role in roles
        for rule in role["rules"]
        if {"secrets", "*"} & set(rule["resources"]) and {"", "*"} & set(rule["apiGroups"])
    ]


def test_rbac_grants_only_get_on_secrets() -> None:
    # The operator reads only opted-in Secrets by name: no list or watch of every Secret.
    assert [rule["verbs"] for rule in _secret_rules()] == [["get"]]
    assert _secret_rules("rbac.secrets=false") == []


def test_chart_installs_and_uninstalls(
    kubeconfig: str, namespace: str, modelrelease_crds: None
) -> None:
    release = f"mr-{uuid.uuid4().hex[:6]}"
    installed = helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        f"watchNamespaces[0]={namespace}",
        # The built-in templates are cluster-scoped: other tests' copies would collide.
        "--set",
        "sloTemplates=false",
        # The session fixture installed the same CRDs (test above: identical files).
        "--skip-crds",
        kubeconfig=kubeconfig,
    )
    assert installed.returncode == 0, installed.stderr
    try:
        listed = helm("list", "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
        releases = {r["name"]: r["status"] for r in json.loads(listed.stdout)}
        assert releases == {release: "deployed"}
        manifest = helm("get", "manifest", release, "-n", namespace, kubeconfig=kubeconfig)
        assert f"--namespace={namespace}" in manifest.stdout
        assert "kind: ClusterRole" in manifest.stdout
    finally:
        removed = helm("uninstall", release, "-n", namespace, kubeconfig=kubeconfig)
        assert removed.returncode == 0, removed.stderr
