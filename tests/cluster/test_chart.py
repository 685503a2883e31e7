"""The Helm chart lints, rejects bad values, and installs into the real API server."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelrelease.api.constants import OnErrorAction
from modelrelease.api.models import BUILT_IN_ANALYSIS_DEFAULTS, AnalysisDefaults
from modelrelease.settings import parse_args

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
    generated = {
        d["metadata"]["name"]: d
        for path in (ROOT / "crds").glob("*.yaml")
        for d in yaml.safe_load_all(path.read_text())
        if d
    }
    assert generated, "crds/ is empty: run `make crds`"
    rendered = {
        d["metadata"]["name"]: d for d in _render() if d["kind"] == "CustomResourceDefinition"
    }
    for document in rendered.values():
        assert document["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert rendered == generated
    assert not [d for d in _render("installCRDs=false") if d["kind"] == "CustomResourceDefinition"]


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("replicaCount=2,leaderElection.enabled=false", "replicaCount"),
        ("leaderElection.leaseDuration=15", "leaseDuration"),
        ("logFormat=xml", "logFormat"),
        ("metrics.prot=9000", "prot"),
        ("metrics.serviceMonitor.interval=90", "interval"),
        ("watchNamespaces[0]=Team_A", "watchNamespaces"),
        ("reconcile.workerLimit=0", "workerLimit"),
        ("analysisDefaults.onError.action=ignore", "action"),
        ("analysisDefaults.interval=30", "interval"),
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
    """The chart's objects, without the uninstall hook's (tests/cluster/test_chart_rbac.py)."""
    args = [arg for override in overrides for arg in ("--set", override)]
    rendered = helm("template", "t", str(CHART), "-n", "ops", *args)
    assert rendered.returncode == 0, rendered.stderr
    return [
        d
        for d in yaml.safe_load_all(rendered.stdout)
        if d and "helm.sh/hook" not in (d["metadata"].get("annotations") or {})
    ]


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
        "--lease-duration=12s",
        "--renew-deadline=8s",
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
    cluster_roles = [d for d in documents if d["kind"] == "ClusterRole"]
    assert not [r for c in cluster_roles for r in c["rules"] if "leases" in r["resources"]]
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
        "--set",
        "installCRDs=false",
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
        # --no-hooks: the uninstall hook's Job cannot run here (no container runtime);
        # tests/cluster/test_uninstall.py runs its command under its ServiceAccount.
        removed = helm("uninstall", release, "-n", namespace, "--no-hooks", kubeconfig=kubeconfig)
        assert removed.returncode == 0, removed.stderr


def test_values_a_subchart_and_openshift_need_are_accepted() -> None:
    documents = _render(
        "global.imageRegistry=registry.example",
        "podSecurityContext.runAsUser=null",
        "metrics.serviceMonitor.interval=1m30s",
        "metrics.serviceMonitor.enabled=true",
    )
    pod = _one(documents, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert _one(documents, "ServiceMonitor")["spec"]["endpoints"][0]["interval"] == "1m30s"
    no_contexts = _one(_render("podSecurityContext=null", "securityContext=null"), "Deployment")
    pod = no_contexts["spec"]["template"]["spec"]
    assert "securityContext" not in pod
    assert "securityContext" not in pod["containers"][0]


def test_pod_settings_reach_the_deployment() -> None:
    deployment = _one(
        _render(
            "extraArgs={--verbose}",
            "extraEnv[0].name=HTTPS_PROXY",
            "extraEnv[0].value=http://proxy:3128",
            "priorityClassName=system-cluster-critical",
            "podLabels.team=ml",
            "podAnnotations.note=x",
            "reconcile.interval=5",
            "reconcile.workerLimit=8",
        ),
        "Deployment",
    )
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert {"--verbose", "--reconcile-interval=5", "--worker-limit=8"} <= set(container["args"])
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in container["env"]
    assert template["spec"]["priorityClassName"] == "system-cluster-critical"
    assert template["metadata"]["labels"]["team"] == "ml"
    assert template["metadata"]["annotations"] == {"note": "x"}
    # The selector stays the chart's: extra labels never break upgrades.
    assert "team" not in deployment["spec"]["selector"]["matchLabels"]


def test_analysis_defaults_reach_the_operators_flags() -> None:
    def defaults(*overrides: str) -> AnalysisDefaults:
        (container,) = _one(_render(*overrides), "Deployment")["spec"]["template"]["spec"][
            "containers"
        ]
        return parse_args(container["args"]).analysis_defaults

    assert defaults() == BUILT_IN_ANALYSIS_DEFAULTS
    assert defaults(
        "analysisDefaults.interval=1m30s",
        "analysisDefaults.maxInconclusive=4",
        "analysisDefaults.onError.action=hold",
        "analysisDefaults.onError.after=15m",
    ) == AnalysisDefaults("1m30s", 4, OnErrorAction.HOLD, "15m")


def test_the_readiness_probe_asks_the_operators_readiness_endpoint() -> None:
    (container,) = _one(_render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--readiness=http://0.0.0.0:8081/readyz" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ready"}
    assert {"name": "ready", "containerPort": 8081} in container["ports"]


def test_the_chart_declares_the_kubernetes_version_the_crds_need() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.29.0-0"
    too_old = helm("template", "t", str(CHART), "--kube-version", "1.28.0")
    assert too_old.returncode != 0
    assert "kubeVersion" in too_old.stderr or "incompatible" in too_old.stderr
