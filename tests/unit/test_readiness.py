"""The readiness endpoint answers 503 with what is still listing, then 200."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from modelrelease import readiness


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_ready_only_once_nothing_is_missing() -> None:
    missing = ["Pods", "Deployments in team-a"]
    port = _free_port()
    server = readiness.serve(f"http://127.0.0.1:{port}/readyz", lambda: list(missing))
    try:
        code, text = _get(f"http://127.0.0.1:{port}/readyz")
        assert code == 503
        assert "Deployments in team-a" in text
        missing.clear()
        assert _get(f"http://127.0.0.1:{port}/readyz") == (200, "ok\n")
        assert _get(f"http://127.0.0.1:{port}/other")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("endpoint", ["https://0.0.0.0:8081/readyz", "http://0.0.0.0/readyz"])
def test_an_endpoint_without_http_or_a_port_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="expected http://HOST:PORT/PATH"):
        readiness.address(endpoint)


def test_readiness_is_served_only_when_asked_for() -> None:
    # Off by default: operators run side by side (tests, a workstation) must not
    # contend for one port; the chart passes --readiness.
    from modelrelease.settings import parse_args

    assert parse_args([]).readiness_endpoint is None
    endpoint = "http://0.0.0.0:8081/readyz"
    assert parse_args(["--readiness", endpoint]).readiness_endpoint == endpoint
