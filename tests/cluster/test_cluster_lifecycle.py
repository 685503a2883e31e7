"""hack/local-cluster.sh starts, reuses and stops a second, private cluster."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "local-cluster.sh"

# Ports of a second cluster, apart from the shared one the other tests use.
PORTS = {
    "APISERVER_PORT": "26443",
    "ETCD_PORT": "22379",
    "ETCD_PEER_PORT": "22380",
    "CONTROLLER_MANAGER_PORT": "26257",
    "SCHEDULER_PORT": "26259",
    "KWOK_PORT": "26280",
    "PROMETHEUS_PORT": "29090",
}

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MODELRELEASE_TEST_KUBECONFIG")),
    reason="exercises the local cluster script only",
)


def run(state: Path, command: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **PORTS, "MODELRELEASE_CLUSTER_DIR": str(state), **extra}
    return subprocess.run(
        [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def pids(state: Path) -> list[int]:
    return [int(p.read_text()) for p in (state / "pids").glob("*.pid")]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "cluster"
    yield folder
    run(folder, "down")


def test_up_is_idempotent_and_down_leaves_no_process(state: Path) -> None:
    first = run(state, "up")
    assert first.returncode == 0, first.stderr
    started = pids(state)
    assert len(started) == 6
    assert all(map(running, started))

    again = run(state, "up")
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert sorted(pids(state)) == sorted(started)

    assert run(state, "status").returncode == 0
    assert run(state, "down").returncode == 0
    assert not any(map(running, started))
    assert not state.exists()
    assert run(state, "status").returncode != 0


def test_a_component_that_cannot_start_fails_up_with_its_log(state: Path) -> None:
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", int(PORTS["APISERVER_PORT"])))
        blocker.listen()
        result = run(state, "up", START_TIMEOUT="30")
    assert result.returncode != 0
    assert "kube-apiserver failed to start" in result.stderr
    assert "address already in use" in result.stderr
    assert not any(map(running, pids(state)))
