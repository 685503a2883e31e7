"""`helm uninstall` frees the releases: the chart's pre-delete hook stops the operator and
removes its finalizer, under the hook's own ServiceAccount, and deleting a release
afterwards no longer hangs.

The hook's Job cannot run on the local cluster (no container runtime: kwok fakes the
pods), so the test installs the chart, applies the hook's ServiceAccount and RBAC as
rendered, and runs the Job's exact command line here as a process with a kubeconfig
made from that ServiceAccount's token (`kubectl create token`).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.test_chart import CHART, helm
from tests.e2e.conftest import model_release
from tests.e2e.test_rbac import _token_kubeconfig
from tests.waiting import wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
FINALIZER = "modelrelease.dev/finalizer"
OTHER_FINALIZER = "example.com/keep-me"


def _apply_release(kubectl: Kubectl, namespace: str, name: str, finalizers: list[str]) -> None:
    release = copy.deepcopy(model_release("1"))
    release["metadata"].update(name=name, namespace=namespace, finalizers=finalizers)
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(release))


def _release(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    found = kubectl("get", "modelrelease", name, "-n", namespace, "-o", "json", check=False)
    if found.returncode != 0:
        assert "NotFound" in found.stderr, found.stderr
        return None
    release: dict[str, Any] = json.loads(found.stdout)
    return release


def _hook_documents(release: str, values: list[str], namespace: str) -> list[dict[str, Any]]:
    rendered = helm(
        "template",
        release,
        str(CHART),
        "-n",
        namespace,
        *values,
        "--show-only",
        "templates/uninstall-hook.yaml",
    )
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def test_the_uninstall_hook_stops_the_operator_and_frees_the_releases(
    kubeconfig: str, kubectl: Kubectl, namespace: str, modelrelease_crds: None, tmp_path: Path
) -> None:
    release = f"u-{uuid.uuid4().hex[:6]}"
    values = [
        *("--set", f"watchNamespaces[0]={namespace}"),
        *("--set", "sloTemplates=false"),
        *("--set", "installCRDs=false"),
    ]
    installed = helm(
        "install", release, str(CHART), "-n", namespace, *values, kubeconfig=kubeconfig
    )
    assert installed.returncode == 0, installed.stderr
    hook = _hook_documents(release, values, namespace)
    cluster_scoped = [d for d in hook if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    try:
        deployment = f"{release}-modelrelease-operator"
        selector = (
            f"app.kubernetes.io/instance={release},app.kubernetes.io/name=modelrelease-operator"
        )

        def operator_pods() -> list[str]:
            listed = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "name")
            return listed.stdout.split()

        wait_for(lambda: len(operator_pods()) == 2, 120, "the operator's two (kwok) pods")
        # Releases the operator finalized; one carries someone else's finalizer too.
        _apply_release(kubectl, namespace, "plain", [FINALIZER])
        _apply_release(kubectl, namespace, "shared", [OTHER_FINALIZER, FINALIZER])
        _apply_release(kubectl, namespace, "deleting", [FINALIZER])
        kubectl("delete", "modelrelease", "deleting", "-n", namespace, "--wait=false")

        (job,) = [d for d in hook if d["kind"] == "Job"]
        rights = [d for d in hook if d["kind"] != "Job"]
        kubectl(
            "apply",
            "--server-side",
            "-f",
            "-",
            input=json.dumps({"kind": "List", "apiVersion": "v1", "items": rights}),
        )
        account = job["spec"]["template"]["spec"]["serviceAccountName"]
        token = kubectl("create", "token", account, "-n", namespace).stdout.strip()
        hook_kubeconfig = _token_kubeconfig(kubeconfig, token, tmp_path / "hook.kubeconfig")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        # The image's entrypoint is modelrelease-operator; the Job passes only args.
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "modelrelease",
                *container["args"],
                "--kubeconfig",
                str(hook_kubeconfig),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr

        assert operator_pods() == []  # stopped first: it would add the finalizer back
        scaled = json.loads(
            kubectl("get", "deployment", deployment, "-n", namespace, "-o", "json").stdout
        )
        assert scaled["spec"]["replicas"] == 0
        plain = _release(kubectl, namespace, "plain")
        assert plain is not None
        assert not plain["metadata"].get("finalizers")
        shared = _release(kubectl, namespace, "shared")
        assert shared is not None
        assert shared["metadata"]["finalizers"] == [OTHER_FINALIZER]
        assert "route was not given back" in ran.stderr

        def gone(name: str) -> Callable[[], bool]:
            return lambda: _release(kubectl, namespace, name) is None

        wait_for(gone("deleting"), 30, "the release deleted before uninstall is gone")
        # After the uninstall, deleting a release no longer waits for an operator.
        kubectl("delete", "modelrelease", "plain", "-n", namespace, "--wait=false")
        wait_for(gone("plain"), 30, "a release deleted after the operator stopped is gone")
        kubectl(
            "patch", "modelrelease", "shared", "-n", namespace, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}',
        )  # fmt: skip
    finally:
        helm("uninstall", release, "-n", namespace, "--no-hooks", kubeconfig=kubeconfig)
        for document in cluster_scoped:
            kubectl(
                "delete", document["kind"].lower(), document["metadata"]["name"],
                "--ignore-not-found", check=False,
            )  # fmt: skip


def test_a_second_run_finds_nothing_to_do(
    kubeconfig: str, kubectl: Kubectl, namespace: str, modelrelease_crds: None
) -> None:
    """The hook may run again (backoffLimit, a retried uninstall): releases without the
    finalizer and a Deployment already gone are fine."""
    _apply_release(kubectl, namespace, "freed", [])
    for _ in range(2):
        ran = subprocess.run(
            [
                sys.executable, "-m", "modelrelease", "remove-finalizers",
                "--kubeconfig", kubeconfig, "--namespace", namespace,
                "--stop-deployment", "no-such-operator", "--stop-namespace", namespace,
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert "0 ModelRelease(s) freed" in ran.stderr
