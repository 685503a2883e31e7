"""The operator runs under the chart's ServiceAccount, in both RBAC modes, and every
request it makes is one the permission table names.

The chart is installed into the local cluster (no operator pod: replicaCount 0, the
operator runs here as a process, as in the other e2e tests) and the operator gets a
kubeconfig made from the ServiceAccount's token (`kubectl create token`). Real
scenarios run under it: a canary promoted, a canary rolled back. Then the API
server's audit log (the cluster must be up with MODELRELEASE_AUDIT=1; `make
test-cluster` does that) tells every request the ServiceAccount made: none refused,
each in ``modelrelease.kube.permissions``, and in namespaced mode none outside the
watched namespace and the operator's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from modelrelease.kube.permissions import PERMISSIONS, Scope

from hack.bench import audit
from tests.conftest import CACHE, LOCAL_STATE, ROOT
from tests.e2e import test_canary
from tests.e2e.conftest import (
    RECONCILE_INTERVAL,
    Kubectl,
    Process,
    _delete_releases,
    _report,
    free_port,
)
from tests.waiting import wait_for

CHART = ROOT / "charts" / "modelrelease-operator"
HELM = str(CACHE / "bin" / "helm")
SA_NAMESPACE = "modelrelease-rbac"  # audited by hack/local-cluster.sh (MODELRELEASE_AUDIT=1)
AUDIT_LOG = LOCAL_STATE / "audit.log"

# Real scenarios of the e2e suite, run again here under the chart's roles.
test_promotion_under_the_charts_rbac = (
    test_canary.test_healthy_challenger_is_promoted_with_route_weights_matching_each_step
)
test_rollback_under_the_charts_rbac = (
    test_canary.test_challenger_with_errors_is_rolled_back_within_the_budget
)


@dataclass(frozen=True)
class ChartIdentity:
    mode: str  # "cluster-wide" or "namespaced"
    release: str
    user: str  # the ServiceAccount's user name in the audit log
    kubeconfig: Path


def _helm(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HELM, *args, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _token_kubeconfig(admin_kubeconfig: str, token: str, path: Path) -> Path:
    """The admin kubeconfig's cluster, with the ServiceAccount's token as the user."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
                "users": [{"name": "chart-sa", "user": {"token": token}}],
                "contexts": [
                    {"name": "chart", "context": {"cluster": "local", "user": "chart-sa"}}
                ],
                "current-context": "chart",
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(params=["cluster-wide", "namespaced"])
def chart_identity(
    request: pytest.FixtureRequest,
    kubeconfig: str,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    modelrelease_crds: None,
) -> Iterator[ChartIdentity]:
    """The chart installed (its roles and ServiceAccount), and a kubeconfig of that account."""
    if kubectl("get", "namespace", SA_NAMESPACE, check=False).returncode != 0:
        kubectl("create", "namespace", SA_NAMESPACE)
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    values = [
        "installCRDs=false",  # the session's CRDs: the same files (tests/cluster/test_chart.py)
        "sloTemplates=false",  # cluster-scoped: other tests' copies would collide
        "replicaCount=0",  # the operator runs as a process of the test, under the token
        "metrics.enabled=false",
    ]
    if request.param == "namespaced":
        values.append(f"watchNamespaces[0]={namespace}")
    args = [arg for value in values for arg in ("--set", value)]
    installed = _helm(kubeconfig, "install", release, str(CHART), "-n", SA_NAMESPACE, *args)
    assert installed.returncode == 0, installed.stderr
    account = f"{release}-modelrelease-operator"
    try:
        token = kubectl(
            "create", "token", account, "-n", SA_NAMESPACE, "--duration=1h"
        ).stdout.strip()
        yield ChartIdentity(
            mode=request.param,
            release=release,
            user=f"system:serviceaccount:{SA_NAMESPACE}:{account}",
            kubeconfig=_token_kubeconfig(kubeconfig, token, tmp_path / "chart-sa.kubeconfig"),
        )
    finally:
        # --no-hooks: the uninstall hook's Job cannot run here (no container runtime);
        # tests/cluster/test_uninstall.py runs its command under its ServiceAccount.
        _helm(kubeconfig, "uninstall", release, "-n", SA_NAMESPACE, "--no-hooks")


@pytest.fixture
def operator(
    chart_identity: ChartIdentity,
    namespace: str,
    kubectl: Kubectl,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Process]:
    """The operator, as the chart would run it, under the chart's ServiceAccount only."""
    scope = ["--all-namespaces"] if chart_identity.mode == "cluster-wide" else ["-n", namespace]
    ready_port = free_port()
    command = [
        sys.executable,
        "-m",
        "modelrelease",
        "--kubeconfig",
        str(chart_identity.kubeconfig),
        *scope,
        "--liveness",
        "",
        "--readiness",
        f"http://127.0.0.1:{ready_port}/readyz",
        "--reconcile-interval",
        RECONCILE_INTERVAL,
        # The chart's leader election, so its Lease rights are exercised too.
        "--leader-elect",
        f"--leader-election-namespace={SA_NAMESPACE}",
        f"--leader-election-lease={chart_identity.release}-modelrelease-operator",
    ]
    env = {
        **os.environ,
        "KUBECONFIG": str(chart_identity.kubeconfig),
        "PYTHONUNBUFFERED": "1",
    }
    process = Process("operator", command, env, tmp_path / "operator.log")
    process.start()
    # The chart's readiness probe: Ready once every watch has listed, under these roles.
    wait_for(lambda: _ready(ready_port), 120, "the operator's readiness endpoint answering 200")
    yield process
    _delete_releases(process, kubectl, namespace)
    process.stop()
    _report(request, process)
    _check_audited_requests(chart_identity, namespace)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return int(response.status) == 200
    except OSError:  # not listening yet, or 503 while the watches list
        return False


def _audited(user: str) -> list[audit.Request]:
    if not AUDIT_LOG.exists():
        if os.environ.get("MODELRELEASE_TEST_KUBECONFIG"):
            pytest.skip("not the local cluster: no audit log to check the requests against")
        pytest.fail(
            f"{AUDIT_LOG} is missing: bring the cluster up with MODELRELEASE_AUDIT=1 "
            "(hack/local-cluster.sh down; MODELRELEASE_AUDIT=1 hack/local-cluster.sh up)",
            pytrace=False,
        )
    return list(audit.read_requests(AUDIT_LOG, user))


def _check_audited_requests(identity: ChartIdentity, namespace: str) -> None:
    requests = _audited(identity.user)
    assert requests, f"the audit log holds no request of {identity.user}"
    # A cluster-wide operator also acts on other tests' releases; writes into their
    # namespaces while those are deleted are refused by admission (403 after RBAC allowed).
    refused = {
        (r.verb, r.api_group, r.resource, r.namespace, r.code)
        for r in requests
        if r.forbidden_by_rbac
    }
    assert not refused, f"RBAC refused the operator: {sorted(refused)}"
    allowed = {(p.group, p.resource, verb): p.scope for p in PERMISSIONS for verb in p.verbs}
    used = set()
    for request in requests:
        if not request.resource or request.code == 403:
            continue  # discovery (/api, /apis) is allowed to everyone; refusals: above
        resource = (
            f"{request.resource}/{request.subresource}" if request.subresource else request.resource
        )
        key = (request.api_group, resource, request.verb)
        used.add(key)
        assert key in allowed, f"a request outside the permission table: {request}"
        scope = allowed[key]
        if identity.mode == "namespaced" and scope is Scope.WATCHED:
            assert request.namespace == namespace, (
                f"a request outside the watched namespace: {request}"
            )
        if scope is Scope.OWN_NAMESPACE:
            assert request.namespace == SA_NAMESPACE, request
    # The scenarios exercise the core of the table (writes of every owned kind, status).
    assert {
        ("apps", "deployments", "patch"),
        ("", "services", "patch"),
        ("modelrelease.dev", "modelreleases/status", "patch"),
        ("gateway.networking.k8s.io", "httproutes", "patch"),
        ("coordination.k8s.io", "leases", "update"),
    } <= used
