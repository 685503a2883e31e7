"""The kubectl plugin as users run it: the real ``kubectl`` finds ``kubectl-modelrelease``
on PATH (the package's entry point in the environment's bin, after ``pip install -e .``)
and talks to the local cluster, where the operator releases for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import KUBECTL
from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
    wait_weights,
)
from tests.waiting import wait_for

BIN = Path(sys.executable).parent
WATCH_TIMEOUT = 180

Plugin = Callable[..., subprocess.CompletedProcess[str]]


def _environment() -> dict[str, str]:
    if not (BIN / "kubectl-modelrelease").exists():
        pytest.fail(
            f"{BIN}/kubectl-modelrelease is missing: install the package (pip install -e .) "
            "so its kubectl plugin entry point is on PATH",
            pytrace=False,
        )
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("KUBECONFIG", None)  # the flags below must be what counts
    return env


@pytest.fixture
def plugin(kubeconfig: str, namespace: str) -> Plugin:
    """``kubectl modelrelease ARGS -n NS --kubeconfig K``: flags after the sub-command."""
    env = _environment()

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [KUBECTL, "modelrelease", *args, "-n", namespace, "--kubeconfig", kubeconfig]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    return run


def watch(plugin: Plugin) -> subprocess.CompletedProcess[str]:
    return plugin("status", RELEASE, "--watch", timeout=WATCH_TIMEOUT)


def test_kubectl_finds_the_plugin(kubeconfig: str) -> None:
    listed = subprocess.run(
        [KUBECTL, "plugin", "list"], env=_environment(), capture_output=True, text=True
    )
    assert "kubectl-modelrelease" in listed.stdout, listed.stdout + listed.stderr


def test_status_watch_follows_a_release_to_its_end_with_the_phase_as_exit_code(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    prometheus_url: str,
    plugin: Plugin,
) -> None:
    steps = [(30, "4s")]
    cluster.apply(http_route(), model_release("1", steps=steps, prometheus=prometheus_url))
    wait_champion_version(cluster, "1", 90)

    # Started right after the apply, the watch must not stop on the old Succeeded.
    cluster.apply(model_release("2", steps=steps, prometheus=prometheus_url))
    promoted = watch(plugin)
    assert promoted.returncode == 0, promoted.stdout[-3000:] + promoted.stderr
    final = promoted.stdout.split(f"{cluster.namespace}/{RELEASE}  ")[-1]  # the last frame
    assert "Succeeded" in promoted.stdout
    assert "canary-1" in promoted.stdout  # it followed the stage on the way
    assert "ended Succeeded: exit code 0" in promoted.stderr
    assert "chat-8b 2" in final
    assert cluster.status()["champion"]["modelVersion"] == "2"

    bad = model_release("3", behaviour={"errorRatio": 0.3}, steps=steps, prometheus=prometheus_url)
    cluster.apply(bad)
    rolled_back = watch(plugin)
    assert rolled_back.returncode == 1, rolled_back.stdout[-3000:] + rolled_back.stderr
    assert "RolledBack" in rolled_back.stdout
    assert "error-ratio" in rolled_back.stdout  # the failing SLO against its threshold
    assert cluster.status()["phase"] == "RolledBack"

    as_json = plugin("status", RELEASE, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["status"]["phase"] == "RolledBack"


def test_promote_step_list_history_and_undo(
    cluster: Cluster, operator: Process, simulator: Simulator, plugin: Plugin
) -> None:
    long_steps = [(20, "1h"), (50, "1h")]
    cluster.apply(http_route(), model_release("1", steps=long_steps))
    first = wait_champion_version(cluster, "1", 90)["champion"]["revision"]
    cluster.apply(model_release("2", steps=long_steps))
    wait_weights(cluster, (80, 20), timeout=90)

    # promote: one step forward, not the whole release.
    stepped = plugin("promote", RELEASE)
    assert stepped.returncode == 0, stepped.stderr
    assert "skip-step requested" in stepped.stdout
    wait_weights(cluster, (50, 50), timeout=60)
    assert cluster.status()["challenger"]["modelVersion"] == "2"

    listed = plugin("list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "NAME", "PHASE", "STAGE", "WEIGHT", "CHAMPION", "CHALLENGER", "AGE"
    ]  # fmt: skip
    assert row.split()[:5] == [RELEASE, "Progressing", "canary-1", "step", "2"]
    assert "50%" in row
    assert f"1 ({first})" in row

    full = plugin("promote", RELEASE, "--full")
    assert full.returncode == 0, full.stderr
    second = wait_champion_version(cluster, "2", 90)["champion"]["revision"]

    history = plugin("history", RELEASE)
    assert history.returncode == 0, history.stderr
    rows = {line.split()[0]: line.split() for line in history.stdout.splitlines()[1:]}
    assert rows[first][6] == "kept"  # scaled to zero, so undo can return to it
    assert rows[second][6] == "serving"

    refused = plugin("undo", RELEASE, "--to-revision", "ffffffffff")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: revision ffffffffff is not kept")
    assert len(refused.stderr.splitlines()) == 1

    undone = plugin("undo", RELEASE)
    assert undone.returncode == 0, undone.stderr
    assert f"undo:{first} requested" in undone.stdout

    def back() -> dict[str, object] | None:
        status = cluster.status()
        champion = status.get("champion") or {}
        return status if champion.get("revision") == first else None

    wait_for(back, 90, f"revision {first} to be the champion again")
    status = wait_phase(cluster, "RolledBack", 30)
    wait_weights(cluster, (100, 0))
    assert status["history"][-1]["reason"] == "Undone"
    assert status["history"][-1]["revision"] == second
    assert cluster.wait_events("Undone")

    history = plugin("history", RELEASE)
    rows = {line.split()[0]: line.split() for line in history.stdout.splitlines()[1:]}
    assert rows[second][3:5] == ["RolledBack", "Undone"]
    assert rows[second][6] == "kept"  # and back again is one undo away
    assert rows[first][6] == "serving"


def test_errors_are_one_line_with_exit_code_2(
    plugin: Plugin, modelrelease_crds: None, namespace: str
) -> None:
    missing = plugin("status", "nope")
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: ModelRelease {namespace}/nope not found; check the name and the namespace "
        "(-n), or whether the ModelRelease CRD is installed (kubectl get crd "
        "modelreleases.modelrelease.dev)\n"
    )
    no_kubeconfig = subprocess.run(
        [KUBECTL, "modelrelease", "list", "--kubeconfig", "/nonexistent"],
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert no_kubeconfig.returncode == 2
    assert "Traceback" not in no_kubeconfig.stderr
    assert len(no_kubeconfig.stderr.splitlines()) == 1


def test_kubectl_completes_commands_and_release_names(
    cluster: Cluster, kubeconfig: str, tmp_path: Path
) -> None:
    """kubectl 1.26+ completes `kubectl modelrelease ...` through kubectl_complete-modelrelease."""
    cluster.apply(http_route(), model_release("1"))
    env = _environment()
    if not (BIN / "kubectl_complete-modelrelease").exists():
        # An environment installed before the entry point existed: the same program.
        shim = tmp_path / "kubectl_complete-modelrelease"
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m modelrelease.cli.completion "$@"\n')
        shim.chmod(0o755)
        env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"

    def complete(*words: str) -> list[str]:
        result = subprocess.run(
            [KUBECTL, "__complete", "modelrelease", *words],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.splitlines()

    assert complete("st") == ["status", ":4"]
    names = complete("status", "-n", cluster.namespace, "--kubeconfig", kubeconfig, "")
    assert names == [RELEASE, ":4"]
