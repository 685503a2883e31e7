"""The local cluster is real: scheduling, GPU capacity, GC, CRDs, RBAC, Prometheus."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.waiting import wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def gpu_deployment(name: str, replicas: int, gpus: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": "vllm/vllm-openai:latest",
                                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                            }
                        ]
                    },
                },
            },
        }
    )


def pods(kubectl: Kubectl, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_gpu_pods_are_scheduled_onto_gpu_nodes_and_become_ready(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=gpu_deployment("llm", 2, 1))

    def two_ready() -> list[dict[str, Any]] | None:
        found = pods(kubectl, namespace, "app=llm")
        return found if len(found) == 2 and all(map(is_ready, found)) else None

    ready = wait_for(two_ready, 60, "2 GPU pods Ready")
    nodes = {pod["spec"]["nodeName"] for pod in ready}
    assert nodes <= {"gpu-node-0", "gpu-node-1"}, nodes


def test_pods_asking_for_more_gpus_than_free_stay_pending_unschedulable(
    kubectl: Kubectl, namespace: str
) -> None:
    # 3 pods x 4 GPUs on 2 nodes of 4 GPUs: at most 2 fit, whatever else runs.
    kubectl("apply", "-n", namespace, "-f", "-", input=gpu_deployment("big", 3, 4))

    def an_unschedulable_pod() -> dict[str, Any] | None:
        for pod in pods(kubectl, namespace, "app=big"):
            for condition in pod.get("status", {}).get("conditions", []):
                if condition["type"] == "PodScheduled" and condition.get("reason") == (
                    "Unschedulable"
                ):
                    return pod
        return None

    pending = wait_for(an_unschedulable_pod, 60, "a pod Pending with reason Unschedulable")
    assert pending["status"]["phase"] == "Pending"
    message = next(
        c["message"] for c in pending["status"]["conditions"] if c["type"] == "PodScheduled"
    )
    assert "nvidia.com/gpu" in message
    placed = {p["spec"].get("nodeName") for p in pods(kubectl, namespace, "app=big")}
    assert not any(node and node.startswith("cpu-node") for node in placed), placed


def test_deleting_a_deployment_garbage_collects_replicasets_and_pods(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=gpu_deployment("gc", 2, 1))
    wait_for(lambda: len(pods(kubectl, namespace, "app=gc")) == 2, 60, "2 pods created")
    kubectl("delete", "deployment", "gc", "-n", namespace, "--wait=false")

    def all_gone() -> bool:
        rs = kubectl("get", "rs", "-n", namespace, "-l", "app=gc", "-o", "name").stdout.strip()
        return not rs and not pods(kubectl, namespace, "app=gc")

    wait_for(all_gone, 60, "ReplicaSets and Pods garbage-collected")


def http_route(weight: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "chat"},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "chat-stable", "port": 8000, "weight": 100 - max(weight, 0)},
                            {"name": "chat-canary", "port": 8000, "weight": weight},
                        ],
                        "filters": [
                            {
                                "type": "RequestMirror",
                                "requestMirror": {
                                    "backendRef": {"name": "chat-canary", "port": 8000},
                                    "percent": 50,
                                },
                            }
                        ],
                    }
                ],
            },
        }
    )


def test_httproute_with_weights_and_percent_mirror_is_accepted(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=http_route(20))
    stored = json.loads(kubectl("get", "httproute", "chat", "-n", namespace, "-o", "json").stdout)
    rule = stored["spec"]["rules"][0]
    assert [b["weight"] for b in rule["backendRefs"]] == [80, 20]
    assert rule["filters"][0]["requestMirror"]["percent"] == 50


def test_httproute_with_negative_weight_is_rejected(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl("apply", "-n", namespace, "-f", "-", input=http_route(-1), check=False)
    assert result.returncode != 0
    assert "weight" in result.stderr


def test_istio_virtualservice_crd_is_served(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", "--api-group", "networking.istio.io", "-o", "name")
    assert "virtualservices.networking.istio.io" in resources.stdout


def test_rbac_is_enforced_for_service_account_tokens(
    kubectl: Kubectl, namespace: str, kubeconfig: str
) -> None:
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
    ca = kubectl(
        "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority}"
    )
    url = f"{server.stdout}/api/v1/namespaces/{namespace}/pods"

    def status() -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(
            url, headers=headers, verify=ssl.create_default_context(cafile=ca.stdout)
        ).status_code

    assert status() == 403
    kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", namespace)
    kubectl(
        "create",
        "rolebinding",
        "pod-reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    wait_for(lambda: status() == 200, 30, "200 once the RoleBinding exists")


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE modelrelease_test_answer gauge\nmodelrelease_test_answer 42\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter(prometheus_targets_dir: Path) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    target_file = prometheus_targets_dir / f"test-exporter-{server.server_address[1]}.json"
    target_file.write_text(json.dumps([{"targets": [address], "labels": {"test": "exporter"}}]))
    yield address
    target_file.unlink(missing_ok=True)
    server.shutdown()


def test_prometheus_scrapes_a_file_discovered_exporter(prometheus_url: str, exporter: str) -> None:
    query = f'modelrelease_test_answer{{instance="{exporter}"}}'

    def value() -> float | None:
        answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}).json()
        results = answer["data"]["result"]
        return float(results[0]["value"][1]) if results else None

    assert wait_for(value, 30, f"Prometheus to return {query}") == 42.0
