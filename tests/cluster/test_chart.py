"""The Helm chart lints, rejects bad values, and installs into the real API server."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

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
        ("replicaCount=2,leaderElection.enabled=false", "replicaCount"),
        ("leaderElection.leaseDuration=15", "leaseDuration"),
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


def _render(*overrides: str) -> list[dict[str, Any]]:
    args = [arg for override in overrides for arg in ("--set", override)]
    rendered = helm("template", "t", str(CHART), "-n", "ops", *args)
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def _secret_rules(*overrides: str) -> list[dict[str, object]]:
    roles = [d for d in _render(*overrides) if d["kind"] in ("ClusterRole", "Role")]
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


def _one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found


def test_two_replicas_elect_a_leader_by_default() -> None:
    documents = _render()
    deployment = _one(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    # A new pod stands by while the old leader finishes and releases the Lease.
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {
        "--leader-elect",
        "--leader-election-namespace=ops",
        "--leader-election-lease=t-modelrelease-operator",
        "--lease-duration=15s",
        "--renew-deadline=10s",
        "--retry-period=2s",
    } <= set(container["args"])
    env = {item["name"]: item["valueFrom"]["fieldRef"]["fieldPath"] for item in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    spread = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spread[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _one(documents, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_leases_are_granted_in_the_release_namespace_only() -> None:
    documents = _render()
    role = _one(documents, "Role")
    assert role["metadata"]["namespace"] == "ops"
    lease_rules = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert {verb for rule in lease_rules for verb in rule["verbs"]} == {"create", "get", "update"}
    assert all(
        rule.get("resourceNames") == ["t-modelrelease-operator"]
        for rule in lease_rules
        if rule["verbs"] != ["create"]
    )
    cluster_role = _one(documents, "ClusterRole")
    assert not [r for r in cluster_role["rules"] if "leases" in r["resources"]]
    binding = _one(documents, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_one_replica_without_leader_election_is_recreated_and_has_no_budget() -> None:
    documents = _render("replicaCount=1", "leaderElection.enabled=false")
    deployment = _one(documents, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--no-leader-elect" in container["args"]
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    kinds = {d["kind"] for d in documents}
    assert not kinds & {"PodDisruptionBudget", "Role", "RoleBinding"}


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
