"""The chart grants exactly what the operator uses (kube/permissions.py), in both modes.

Rendered with `helm template` (no cluster needed); the e2e suite (tests/e2e/test_rbac.py)
then runs the operator under these roles and checks its audited requests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelrelease.kube.permissions import PERMISSIONS, UNINSTALL_PERMISSIONS, Permission, Scope

from tests.conftest import CACHE

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelrelease-operator"
HELM = str(CACHE / "bin" / "helm")
RELEASE_NAMESPACE = "ops"
SERVICE_ACCOUNT = "t-modelrelease-operator"
Triple = tuple[str, str, str]


def render(*overrides: str, hooks: bool = False) -> list[dict[str, Any]]:
    """The chart's objects; with ``hooks``, only the uninstall hook's (its own identity)."""
    args = [arg for override in overrides for arg in ("--set", override)]
    result = subprocess.run(
        [HELM, "template", "t", str(CHART), "-n", RELEASE_NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    return [d for d in documents if is_hook(d) == hooks]


def is_hook(document: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (document["metadata"].get("annotations") or {})


def granted_to_the_operator(
    documents: list[dict[str, Any]], service_account: str = SERVICE_ACCOUNT
) -> dict[str, set[Triple]]:
    """(group, resource, verb) granted to the chart's ServiceAccount, by where: "*"
    for cluster-wide (a ClusterRoleBinding), else the namespace of the RoleBinding."""
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in documents
        if d["kind"] in ("ClusterRole", "Role")
    }
    grants: dict[str, set[Triple]] = {}
    for binding in (d for d in documents if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        subjects = binding["subjects"]
        assert subjects == [
            {"kind": "ServiceAccount", "name": service_account, "namespace": RELEASE_NAMESPACE}
        ]
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
        where = "*" if binding["kind"] == "ClusterRoleBinding" else namespace
        for rule in role["rules"]:
            grants.setdefault(where, set()).update(
                (group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            )
    return grants


def table(
    *scopes: Scope, off: tuple[str, ...] = (), permissions: tuple[Permission, ...] = PERMISSIONS
) -> set[Triple]:
    return {
        (p.group, p.resource, verb)
        for p in permissions
        if p.scope in scopes and p.option not in off
        for verb in p.verbs
    }


OPTIONS_OFF = ("rbac.secrets", "rbac.gatewayAPI", "rbac.istio", "leaderElection.enabled")
OFF_VALUES = (
    "rbac.secrets=false",
    "rbac.gatewayAPI=false",
    "rbac.istio=false",
    "leaderElection.enabled=false",
    "replicaCount=1",
)


@pytest.mark.parametrize("off", [False, True], ids=["defaults", "options-off"])
def test_cluster_wide_mode_grants_exactly_the_table(off: bool) -> None:
    offs = OPTIONS_OFF if off else ()
    grants = granted_to_the_operator(render(*(OFF_VALUES if off else ())))
    assert grants.pop("*") == table(Scope.CLUSTER, Scope.WATCHED, off=offs)
    assert grants.pop(RELEASE_NAMESPACE, set()) == table(Scope.OWN_NAMESPACE, off=offs)
    assert grants == {}


@pytest.mark.parametrize("off", [False, True], ids=["defaults", "options-off"])
def test_namespaced_mode_grants_the_watched_rules_only_in_the_watched_namespaces(
    off: bool,
) -> None:
    offs = OPTIONS_OFF if off else ()
    grants = granted_to_the_operator(
        render("watchNamespaces={team-a,team-b}", *(OFF_VALUES if off else ()))
    )
    assert grants.pop("*") == table(Scope.CLUSTER, Scope.NAMESPACE_LIST, off=offs)
    for namespace in ("team-a", "team-b"):
        assert grants.pop(namespace) == table(Scope.WATCHED, off=offs)
    assert grants.pop(RELEASE_NAMESPACE, set()) == table(Scope.OWN_NAMESPACE, off=offs)
    assert grants == {}


def test_a_glob_needs_the_cluster_wide_rules_and_namespaces() -> None:
    grants = granted_to_the_operator(render("watchNamespaces={team-*}"))
    assert grants.pop("*") == table(Scope.CLUSTER, Scope.WATCHED, Scope.NAMESPACE_LIST)


def test_a_namespace_watched_by_name_and_the_release_namespace_may_coincide() -> None:
    grants = granted_to_the_operator(render(f"watchNamespaces={{{RELEASE_NAMESPACE}}}"))
    assert grants[RELEASE_NAMESPACE] == table(Scope.WATCHED, Scope.OWN_NAMESPACE)


def test_the_lease_rights_are_limited_to_its_name() -> None:
    (role,) = [d for d in render() if d["kind"] == "Role"]
    named = [rule for rule in role["rules"] if "resourceNames" in rule]
    assert {verb for rule in named for verb in rule["verbs"]} == {"get", "update"}
    assert all(rule["resourceNames"] == [SERVICE_ACCOUNT] for rule in named)


def test_every_permission_says_why() -> None:
    assert all(len(permission.why) > 20 for permission in PERMISSIONS + UNINSTALL_PERMISSIONS)


HOOK = f"{SERVICE_ACCOUNT}-uninstall"


def uninstall_table(*scopes: Scope) -> set[Triple]:
    return table(*scopes, permissions=UNINSTALL_PERMISSIONS)


@pytest.mark.parametrize("watch", [(), ("team-*",)], ids=["all", "glob"])
def test_the_uninstall_hook_grants_exactly_its_table_cluster_wide(watch: tuple[str, ...]) -> None:
    overrides = [f"watchNamespaces={{{','.join(watch)}}}"] if watch else []
    grants = granted_to_the_operator(render(*overrides, hooks=True), HOOK)
    assert grants.pop("*") == uninstall_table(Scope.WATCHED)
    assert grants.pop(RELEASE_NAMESPACE) == uninstall_table(Scope.OWN_NAMESPACE)
    assert grants == {}


def test_the_uninstall_hook_grants_the_releases_only_in_the_watched_namespaces() -> None:
    grants = granted_to_the_operator(render("watchNamespaces={team-a,team-b}", hooks=True), HOOK)
    for namespace in ("team-a", "team-b"):
        assert grants.pop(namespace) == uninstall_table(Scope.WATCHED)
    assert grants.pop(RELEASE_NAMESPACE) == uninstall_table(Scope.OWN_NAMESPACE)
    assert grants == {}


def test_the_uninstall_hook_is_a_pre_delete_job_that_stops_the_operator_first() -> None:
    documents = render("watchNamespaces={team-a}", hooks=True)
    for document in documents:
        annotations = document["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-delete"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        # Its ServiceAccount and rights exist before its Job starts.
        weight = int(annotations["helm.sh/hook-weight"])
        assert weight == (0 if document["kind"] == "Job" else -10)
    (job,) = [d for d in documents if d["kind"] == "Job"]
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert pod["spec"]["serviceAccountName"] == HOOK
    assert container["args"] == [
        "remove-finalizers",
        f"--stop-deployment={SERVICE_ACCOUNT}",
        f"--stop-namespace={RELEASE_NAMESPACE}",
        "--timeout=120",
        "--namespace=team-a",
    ]
    (deployment,) = [d for d in render() if d["kind"] == "Deployment"]
    operator_selector = deployment["spec"]["selector"]["matchLabels"].items()
    # The hook waits for the operator's pods to be gone: never for its own.
    assert not operator_selector <= pod["metadata"]["labels"].items()
    (role,) = [d for d in documents if d["kind"] == "Role"]
    (scaling,) = [rule for rule in role["rules"] if "deployments" in rule["resources"]]
    assert scaling["resourceNames"] == [deployment["metadata"]["name"]]


def test_the_uninstall_hook_can_be_turned_off() -> None:
    assert render("uninstall.removeFinalizers=false", hooks=True) == []
    assert render("rbac.create=false", hooks=True) == []


def test_aggregated_roles_let_namespace_users_manage_releases() -> None:
    documents = render()
    aggregated = {
        label.removeprefix("rbac.authorization.k8s.io/aggregate-to-"): d
        for d in documents
        if d["kind"] == "ClusterRole"
        for label in d["metadata"]["labels"]
        if label.startswith("rbac.authorization.k8s.io/aggregate-to-")
    }
    assert set(aggregated) == {"admin", "edit", "view"}
    for role in ("admin", "edit"):
        (writable,) = [r for r in aggregated[role]["rules"] if "create" in r["verbs"]]
        assert set(writable["resources"]) == {"modelreleases", "slotemplates"}
    assert {verb for r in aggregated["view"]["rules"] for verb in r["verbs"]} == {
        "get",
        "list",
        "watch",
    }
    assert not [d for d in render("rbac.aggregate=false") if "aggregate" in d["metadata"]["name"]]


def test_namespace_users_with_edit_or_view_get_releases_through_aggregation(
    kubeconfig: str, kubectl: Any, namespace: str
) -> None:
    """The API server's aggregation controller folds the chart's roles into the
    built-in edit and view roles: a RoleBinding to them is all a team needs."""
    from tests.waiting import wait_for

    release = f"agg-{namespace[-5:]}"
    values = ["installCRDs=false", "sloTemplates=false", "replicaCount=0", "metrics.enabled=false"]
    args = [arg for value in values for arg in ("--set", value)]
    helm = [HELM, "--kubeconfig", kubeconfig]
    installed = subprocess.run(
        [*helm, "install", release, str(CHART), "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    try:
        kubectl(
            "create",
            "rolebinding",
            "alice-edit",
            "--clusterrole=edit",
            "--user=alice",
            "-n",
            namespace,
        )
        kubectl(
            "create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", namespace
        )

        def can(user: str, verb: str, resource: str) -> bool:
            resource, _, subresource = resource.partition("/")
            extra = [f"--subresource={subresource}"] if subresource else []
            answer = kubectl(
                "auth",
                "can-i",
                verb,
                f"{resource}.modelrelease.dev",
                "-n",
                namespace,
                "--as",
                user,
                *extra,
                check=False,
            )
            return answer.stdout.strip() == "yes"

        wait_for(
            lambda: can("alice", "create", "modelreleases"), 30, "edit users may create releases"
        )
        assert can("alice", "delete", "slotemplates")
        assert not can("alice", "patch", "modelreleases/status")  # status is the operator's
        wait_for(lambda: can("bob", "list", "modelreleases"), 30, "view users may list releases")
        assert not can("bob", "create", "modelreleases")
    finally:
        subprocess.run(
            # --no-hooks: the uninstall hook's Job cannot run here (no container runtime).
            [*helm, "uninstall", release, "-n", namespace, "--no-hooks"],
            capture_output=True,
            timeout=120,
            check=False,
        )
