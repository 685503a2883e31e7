"""Approval and webhook stages end to end: the operator waits for a person, or asks
a real HTTP server (on 127.0.0.1, run by the test) whether to go on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_weights,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

WAITS_AT_LEAST = 5.0  # seconds the approval stage must be seen holding


@dataclass
class Gate:
    """A webhook answering every POST with ``status``; it keeps the bodies it got."""

    status: int
    bodies: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/gate"


@pytest.fixture
def gate() -> Iterator[Gate]:
    state = Gate(status=200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
            answer = json.dumps({"status": state.status}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()
    thread.join(timeout=5)


def gated(version: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    release = model_release(version)
    release["spec"]["stages"] = stages
    return without_gpus(release)


def without_gpus(release: dict[str, Any]) -> dict[str, Any]:
    """No GPU request: the shared local cluster's GPUs go to the tests about capacity."""
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)
    return release


def _start(cluster: Cluster, stages: list[dict[str, Any]]) -> str:
    cluster.apply(http_route(), gated("1", stages))
    status = wait_champion_version(cluster, "1", 90)
    revision: str = status["champion"]["revision"]
    return revision


def test_approval_waits_until_approved(
    cluster: Cluster, operator: Process, simulator: Simulator
) -> None:
    stages = [{"approval": {}}]
    champion = _start(cluster, stages)
    cluster.apply(gated("2", stages))
    first: list[float] = []

    def waited() -> dict[str, Any] | None:
        condition = cluster.condition("Progressing") or {}
        if condition.get("reason") != "WaitingForApproval":
            assert not first, f"stopped waiting without approval: {condition}"
            return None
        first.append(time.time())
        return condition if time.time() - first[0] >= WAITS_AT_LEAST else None

    condition = wait_for(waited, 60, f"the approval stage to hold for {WAITS_AT_LEAST}s")
    expected = f"kubectl modelrelease approve {RELEASE} -n {cluster.namespace}"
    assert expected in condition["message"]
    assert cluster.status()["champion"]["revision"] == champion
    cluster.kubectl(
        "annotate",
        "modelrelease",
        RELEASE,
        "-n",
        cluster.namespace,
        "modelrelease.dev/action=approve",
    )
    wait_champion_version(cluster, "2", 90)
    cluster.wait_events("Approved")


def test_webhook_answering_500_rolls_back(
    cluster: Cluster, operator: Process, simulator: Simulator, gate: Gate
) -> None:
    gate.status = 500
    stages = [{"webhook": {"url": gate.url, "interval": "1s", "failureLimit": 0}}]
    champion = _start(cluster, stages)
    cluster.apply(gated("2", stages))

    def rolled_back() -> dict[str, Any] | None:
        status = cluster.status()
        return status if status.get("phase") == "RolledBack" else None

    status = wait_for(rolled_back, 90, "the webhook's 500 to roll the challenger back")
    last = status["history"][-1]
    assert last["reason"] == "WebhookFailed"
    assert "HTTP 500" in last["message"]
    assert status["champion"]["revision"] == champion
    wait_weights(cluster, (100, 0))
    body = gate.bodies[0]
    assert body["namespace"] == cluster.namespace
    assert body["name"] == RELEASE
    assert body["model"]["version"] == "2"
    assert body["champion"]["revision"] == champion
    assert body["challenger"]["revision"] == last["revision"]


def test_webhook_answering_200_passes(
    cluster: Cluster, operator: Process, simulator: Simulator, gate: Gate
) -> None:
    gate.status = 200
    stages = [{"webhook": {"url": gate.url, "interval": "1s"}}]
    _start(cluster, stages)
    cluster.apply(gated("2", stages))
    status = wait_champion_version(cluster, "2", 90)
    assert status["history"][-1]["outcome"] == "Promoted"
    assert len(gate.bodies) == 1
    cluster.wait_events("WebhookPassed", containing="passed")
