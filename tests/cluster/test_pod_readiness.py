"""Model-load time and readiness flaps of kwok pods (the stages in hack/kwok/pod-stages.yaml).

Times are read from the pods themselves (kwok writes them to the second), so a
slow test process does not shift what is measured.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime
from typing import Any

import yaml

from tests.waiting import wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Pod = dict[str, Any]

READY_AFTER = "simulator.modelrelease.dev/ready-after"
NOT_READY = "simulator.modelrelease.dev/not-ready"
LOAD_SECONDS = 5
# kwok writes times truncated to the second: a measured gap can be 1 s short.
TRUNCATION = 1.0
# How much later than asked a pod may turn Ready on a loaded 2-core machine.
LATE = 5.0


def _deployment(name: str, annotations: dict[str, str]) -> str:
    labels = {"app": name}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {
                        "nodeSelector": {"type": "kwok"},
                        "containers": [{"name": "server", "image": "vllm/vllm-openai:v0.11.0"}],
                    },
                },
            },
        }
    )


def _pod(kubectl: Kubectl, namespace: str, app: str) -> Pod | None:
    out = kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
    items: list[Pod] = json.loads(out)["items"]
    return items[0] if len(items) == 1 else None


def _ready(pod: Pod) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = pod.get("status", {}).get("conditions", [])
    return next(c for c in conditions if c["type"] == "Ready")


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _started(kubectl: Kubectl, namespace: str, app: str) -> Pod:
    def running() -> Pod | None:
        pod = _pod(kubectl, namespace, app)
        return pod if pod and pod.get("status", {}).get("phase") == "Running" else None

    return wait_for(running, 60, f"the {app} pod to run")


def _ready_status(kubectl: Kubectl, namespace: str, app: str, status: str) -> Pod:
    def reached() -> Pod | None:
        pod = _pod(kubectl, namespace, app)
        return pod if pod and _ready(pod)["status"] == status else None

    return wait_for(reached, LOAD_SECONDS + 30, f"the {app} pod's Ready condition to be {status}")


def test_a_pod_without_load_time_is_ready_at_once(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("quick", {}))
    pod = _ready_status(kubectl, namespace, "quick", "True")
    loaded = _seconds(_ready(pod)["lastTransitionTime"]) - _seconds(pod["status"]["startTime"])
    assert loaded <= TRUNCATION


def test_a_pod_is_ready_after_its_load_time_and_flaps_on_demand(
    kubectl: Kubectl, namespace: str
) -> None:
    app = "loading"
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=_deployment(app, {READY_AFTER: f"{LOAD_SECONDS}s"}),
    )
    started = _started(kubectl, namespace, app)
    assert _ready(started)["status"] == "False", "Running, but the model is still loading"
    assert started["status"]["containerStatuses"][0]["ready"] is False

    ready = _ready_status(kubectl, namespace, app, "True")
    loaded = _seconds(_ready(ready)["lastTransitionTime"]) - _seconds(ready["status"]["startTime"])
    print(f"Ready {loaded:.0f}s after the start (asked: {LOAD_SECONDS}s)")
    assert LOAD_SECONDS - TRUNCATION <= loaded <= LOAD_SECONDS + LATE
    assert ready["status"]["containerStatuses"][0]["ready"] is True

    name = ready["metadata"]["name"]
    kubectl("annotate", "pod", name, "-n", namespace, f"{NOT_READY}=true")
    flapped = _ready_status(kubectl, namespace, app, "False")
    assert flapped["metadata"]["name"] == name, "the same pod, not a replacement"
    assert flapped["status"]["containerStatuses"][0]["ready"] is False

    kubectl("annotate", "pod", name, "-n", namespace, f"{NOT_READY}-")
    back = _ready_status(kubectl, namespace, app, "True")
    assert back["metadata"]["name"] == name
    reloaded = _seconds(_ready(back)["lastTransitionTime"]) - _seconds(
        _ready(flapped)["lastTransitionTime"]
    )
    print(f"Ready again {reloaded:.0f}s after the flap")
    assert reloaded >= LOAD_SECONDS - TRUNCATION, "it loads again before it serves"


def test_a_pod_flagged_not_ready_while_loading_never_turns_ready(
    kubectl: Kubectl, namespace: str
) -> None:
    held = {READY_AFTER: "2s", NOT_READY: "true"}
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("held", held))
    _started(kubectl, namespace, "held")
    # A witness started later with a longer load time turns Ready only after
    # the held pod would have: waiting for it is the deadline, not a sleep.
    witness = {READY_AFTER: "3s"}
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("witness", witness))
    _ready_status(kubectl, namespace, "witness", "True")
    pod = _pod(kubectl, namespace, "held")
    assert pod is not None
    assert _ready(pod)["status"] == "False"
