"""Notifications end to end: the real operator tells a receiver on 127.0.0.1 (as Slack,
Teams and a signed webhook) about a promotion and a rollback, through operator restarts,
once per transition; a receiver whose Secret is missing only costs Warning Events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from modelrelease.notify import webhook

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
)
from tests.notify_receiver import Receiver, running_receiver
from tests.unit.test_notifications import check_block_kit, check_teams_envelope
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SIGNING_KEY = "e2e-signing-key"
PATHS = {"oncall": "/slack", "ml-team": "/teams", "audit": "/audit"}
OPT_IN = {"modelrelease.dev/credentials": "true"}
PROMOTION = ["ChallengerStarted", "StageStarted", "WaitingForApproval", "Promoted"]
ROLLBACK = ["ChallengerStarted", "StageStarted", "RolledBack"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": OPT_IN},
        "stringData": data,
    }


def notified(
    version: str, prometheus: str, steps: list[tuple[int, str]], **extra: Any
) -> dict[str, Any]:
    release = model_release(version, steps=steps, prometheus=prometheus, **extra)
    release["spec"]["stages"].append({"name": "sign-off", "approval": {}})
    for container in release["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)  # the cluster's GPUs go to the capacity tests
    release["spec"]["notifications"] = {
        "receivers": [
            {"name": "oncall", "slack": {"secretRef": {"name": "slack-oncall"}}},
            {"name": "ml-team", "teams": {"secretRef": {"name": "teams-ml"}}},
            {"name": "audit", "webhook": {"secretRef": {"name": "audit-hook"}}},
            # No such Secret: Warning Events, and nothing else changes.
            {"name": "broken", "slack": {"secretRef": {"name": "not-there"}}},
        ]
    }
    return release


def delivered_types(receiver: Receiver, path: str) -> list[str]:
    """Kinds of the notifications answered 2xx at ``path``, in the order received."""
    return [
        (request.header("X-ModelRelease-Delivery") or "").split("/")[3]
        for request in receiver.delivered(path)
    ]


def pending(cluster: Cluster) -> list[dict[str, Any]]:
    notifications: list[dict[str, Any]] = cluster.status().get("pendingNotifications") or []
    return notifications


def wait_delivered(receiver: Receiver, cluster: Cluster, expected: list[str], what: str) -> None:
    """Until every working receiver got ``expected`` and status has recorded it."""

    def done() -> bool:
        got = all(
            delivered_types(receiver, path)[: len(expected)] == expected
            and len(delivered_types(receiver, path)) >= len(expected)
            for path in PATHS.values()
        )
        return got and not pending(cluster)

    wait_for(done, 120, what)


def test_a_promotion_and_a_rollback_are_told_once_through_operator_restarts(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    receiver: Receiver,
    prometheus_url: str,
) -> None:
    cluster.apply(
        secret("slack-oncall", {"url": receiver.url("/slack")}),
        secret("teams-ml", {"url": receiver.url("/teams")}),
        secret("audit-hook", {"url": receiver.url("/audit"), "signingKey": SIGNING_KEY}),
    )
    quick = [(50, "4s")]
    cluster.apply(http_route(), notified("1", prometheus_url, quick))
    wait_champion_version(cluster, "1", 90)
    invalid = cluster.wait_events("NotificationConfigInvalid", "not-there", timeout=30)
    assert "does not exist" in invalid[0]
    assert receiver.received == []  # the first revision is no transition worth telling

    # The audit webhook is down when version 2 starts: its notification waits in status.
    receiver.down.add("/audit")
    cluster.apply(notified("2", prometheus_url, quick))

    def audit_alone_pending() -> bool:
        waiting = pending(cluster)
        tried = bool(receiver.at("/audit"))
        return tried and bool(waiting) and {n["receiver"] for n in waiting} == {"audit"}

    wait_for(audit_alone_pending, 60, "the audit notification pending, the others recorded")
    operator.kill()  # SIGKILL while it is pending
    receiver.down.clear()
    operator.start()
    wait_delivered(receiver, cluster, PROMOTION[:3], "the notifications up to the approval")
    assert cluster.condition("Progressing")["reason"] == "WaitingForApproval"

    # Restarted with nothing pending: nothing is told again.
    operator.kill()
    operator.start()
    cluster.kubectl(
        "annotate",
        "modelrelease",
        RELEASE,
        "-n",
        cluster.namespace,
        "modelrelease.dev/action=approve",
    )
    wait_champion_version(cluster, "2", 90)
    wait_delivered(receiver, cluster, PROMOTION, "the promotion told")

    bad = notified("3", prometheus_url, [(50, "60s")], behaviour={"errorRatio": 0.5})
    cluster.apply(bad)
    wait_phase(cluster, "RolledBack", 120, "version 3 rolled back")
    wait_delivered(receiver, cluster, PROMOTION + ROLLBACK, "the rollback told")

    for name, path in PATHS.items():
        got = delivered_types(receiver, path)
        assert got == PROMOTION + ROLLBACK, f"{name}: {got}"
        ids = [request.header("X-ModelRelease-Delivery") for request in receiver.delivered(path)]
        assert len(ids) == len(set(ids)), f"{name} got a notification twice: {ids}"
    # The audit webhook got its first notification only after the restart, as often as
    # it was refused before it (at least once), and never twice with a 2xx answer.
    assert receiver.at("/audit")[0].status == 503

    for request in receiver.delivered("/slack"):
        check_block_kit(request.json)
    waiting = receiver.delivered("/slack")[2].json["blocks"][1]["text"]["text"]
    assert f"kubectl modelrelease approve {RELEASE} -n {cluster.namespace}" in waiting
    for request in receiver.delivered("/teams"):
        check_teams_envelope(request.json)
    uid = cluster.release()["metadata"]["uid"]
    for request in receiver.delivered("/audit"):
        timestamp = request.header(webhook.HEADER_TIMESTAMP) or ""
        signature = request.header(webhook.HEADER_SIGNATURE) or ""
        assert webhook.verify(SIGNING_KEY.encode(), request.body, timestamp, signature, time.time())
        assert request.json["id"] == request.header(webhook.HEADER_DELIVERY)
        assert request.json["id"].startswith(f"{uid}/")
    rolled_back = receiver.delivered("/audit")[-1].json
    assert (rolled_back["type"], rolled_back["reason"]) == ("RolledBack", "SLOFailed")
    assert rolled_back["model"]["version"] == "3"
    slo = rolled_back["slo"]
    assert slo["name"] == "error-ratio"
    assert slo["value"] > slo["max"] == 0.05
    promoted = receiver.delivered("/audit")[3].json
    assert (promoted["type"], promoted["championVersion"]) == ("Promoted", "1")
    slack_fields = " ".join(
        field["text"] for field in receiver.delivered("/slack")[-1].json["blocks"][2]["fields"]
    )
    assert "*Failing SLO*\nerror-ratio = " in slack_fields

    # The broken receiver cost Warning Events, never a condition.
    failed = cluster.wait_events("NotificationFailed", "receiver broken")
    assert "Secret" in failed[0]
    degraded = cluster.condition("Degraded") or {}
    assert degraded.get("reason") == "SLOFailed"  # the rollback's, not the notifications'
