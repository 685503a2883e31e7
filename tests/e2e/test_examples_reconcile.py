"""Every example in examples/ applies, with what examples/prerequisites ships, to a real
cluster, and the operator reconciles each ModelRelease to Succeeded, Available and not
Degraded (the first revision becomes the champion directly: no stage runs, so Prometheus,
Slack and the webhook gate are not called).

Each example goes, exactly as written (the examples name no namespace), into a fresh
namespace of its own, labelled the way the example's comments tell users to label theirs;
one operator watches them all. The local cluster has only so many fake GPUs, so the
examples run in batches that fit, and a batch's releases are deleted before the next.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIELD_MANAGER
from tests.e2e.conftest import PLURAL, RECONCILE_INTERVAL, Process, _env, _report
from tests.waiting import ConditionTimeoutError, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples"
PREREQUISITES = EXAMPLES_DIR / "prerequisites"
CLUSTER_PREREQUISITES = [PREREQUISITES / "gateway.yaml", EXAMPLES_DIR / "slo-templates"]
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
GPU = "nvidia.com/gpu"
# What the examples' comments tell users to run on their namespace.
NAMESPACE_LABEL = "gateway-access=model-serving"
CREDENTIALS_LABEL = "modelrelease.dev/credentials"
PLACEHOLDER_ANNOTATION = "modelrelease.dev/example-placeholder"
RECONCILE_TIMEOUT = 90.0
CLEANUP_TIMEOUT = 90.0


@dataclass
class Example:
    path: Path
    documents: list[dict[str, Any]]
    namespace: str = ""
    prerequisites: Path | None = None

    @property
    def releases(self) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == "ModelRelease"]

    @property
    def gpus(self) -> int:
        """GPUs the champions of the example's releases request."""
        total = 0
        for release in self.releases:
            spec = release["spec"]
            containers = spec["template"]["spec"]["containers"]
            per_pod = sum(
                int(((c.get("resources") or {}).get("limits") or {}).get(GPU, 0))
                for c in containers
            )
            total += int(spec.get("replicas", 1)) * per_pod
        return total


@dataclass
class Batch:
    examples: list[Example] = field(default_factory=list)
    gpus: int = 0


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _load(path: Path) -> Example:
    prerequisites = PREREQUISITES / path.name
    return Example(
        path, _documents(path), prerequisites=prerequisites if prerequisites.exists() else None
    )


def _batches(examples: list[Example], capacity: int) -> list[Batch]:
    """First fit, largest first: as few batches as the cluster's GPUs allow."""
    batches: list[Batch] = []
    for example in sorted(examples, key=lambda e: -e.gpus):
        assert example.gpus <= capacity, (
            f"{example.path.name} asks for {example.gpus} GPUs; the cluster has {capacity}"
        )
        batch = next((b for b in batches if b.gpus + example.gpus <= capacity), None)
        if batch is None:
            batch = Batch()
            batches.append(batch)
        batch.examples.append(example)
        batch.gpus += example.gpus
    return batches


def _get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return data


def _gpu_capacity(kubectl: Kubectl) -> int:
    nodes = _get_json(kubectl, "nodes")["items"]
    return sum(int((n["status"].get("allocatable") or {}).get(GPU, 0)) for n in nodes)


def _apply(kubectl: Kubectl, path: Path, namespace: str | None = None) -> None:
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
    if namespace is not None:
        args += ["-n", namespace]
    result = kubectl(*args, "-f", str(path), check=False)
    assert result.returncode == 0, (
        f"kubectl apply of {path.relative_to(ROOT)} failed:\n{result.stderr}"
    )


def _admits(
    listener: dict[str, Any], gateway_ns: str, route_ns: str, labels: dict[str, str]
) -> bool:
    """Whether a Gateway listener's allowedRoutes admits routes from ``route_ns``."""
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    source = namespaces.get("from", "Same")
    if source == "All":
        return True
    if source == "Same":
        return gateway_ns == route_ns
    selector = namespaces.get("selector") or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values") or [],
        )
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _check_routes_attach(kubectl: Kubectl, example: Example) -> list[str]:
    """Every HTTPRoute's parent Gateway exists and admits routes from the example's namespace."""
    problems = []
    labels = _get_json(kubectl, "namespace", example.namespace)["metadata"].get("labels") or {}
    for route in (d for d in example.documents if d["kind"] == "HTTPRoute"):
        for parent in route["spec"].get("parentRefs") or []:
            gateway_ns = parent.get("namespace", example.namespace)
            found = kubectl(
                "get", "gateway", parent["name"], "-n", gateway_ns, "-o", "json", check=False
            )
            if found.returncode != 0:
                problems.append(
                    f"{example.path.name}: HTTPRoute {route['metadata']['name']} names Gateway "
                    f"{gateway_ns}/{parent['name']}, which the prerequisites do not create"
                )
                continue
            listeners = json.loads(found.stdout)["spec"]["listeners"]
            if not any(_admits(lst, gateway_ns, example.namespace, labels) for lst in listeners):
                problems.append(
                    f"{example.path.name}: Gateway {gateway_ns}/{parent['name']} does not admit "
                    f"routes from namespace {example.namespace} (labels {labels})"
                )
    return problems


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def _reconciled(status: dict[str, Any]) -> bool:
    return (
        status.get("phase") == "Succeeded"
        and _condition(status, "Available").get("status") == "True"
        and _condition(status, "Degraded").get("status") != "True"
    )


def _wait_reconciled(kubectl: Kubectl, example: Example, timeout: float) -> list[str]:
    """Wait until every release of the example is reconciled; the failures, if not."""
    problems = []
    for release in example.releases:
        name = release["metadata"]["name"]
        last: dict[str, Any] = {}

        def probe(name: str = name) -> bool:
            nonlocal last
            last = _get_json(kubectl, PLURAL, name, "-n", example.namespace).get("status") or {}
            return _reconciled(last)

        try:
            wait_for(probe, timeout, f"{example.path.name}: ModelRelease {name} Succeeded")
        except ConditionTimeoutError as error:
            degraded = _condition(last, "Degraded")
            problems.append(
                f"{example.path.name}: ModelRelease {example.namespace}/{name} is not reconciled "
                f"({error}): phase {last.get('phase')!r}, message {last.get('message')!r}, "
                f"Degraded {degraded.get('reason')!r}: {degraded.get('message')!r}, "
                f"conditions {last.get('conditions')}"
            )
    return problems


def _free(kubectl: Kubectl, batch: Batch) -> None:
    """Delete a batch's releases (the operator removes its finalizers) and wait for their pods."""
    for example in batch.examples:
        if example.releases:
            kubectl("delete", PLURAL, "--all", "-n", example.namespace, "--wait=false")

    def gone() -> bool:
        return all(
            not _get_json(kubectl, "pods", "-n", e.namespace)["items"]
            and not _get_json(kubectl, PLURAL, "-n", e.namespace)["items"]
            for e in batch.examples
        )

    wait_for(gone, CLEANUP_TIMEOUT, "the batch's releases and pods deleted")


@pytest.fixture
def examples(kubectl: Kubectl) -> Iterator[list[Example]]:
    """Every example with a fresh, labelled namespace of its own."""
    run = uuid.uuid4().hex[:5]
    loaded = [_load(path) for path in EXAMPLES]
    for example in loaded:
        example.namespace = f"t-ex-{example.path.stem[:30]}-{run}".strip("-")
        kubectl("create", "namespace", example.namespace)
        kubectl("label", "namespace", example.namespace, NAMESPACE_LABEL, "--overwrite")
    yield loaded
    for example in loaded:
        names = kubectl("get", PLURAL, "-n", example.namespace, "-o", "name", check=False)
        for name in names.stdout.split():  # never leave a namespace stuck on a finalizer
            kubectl(
                "patch",
                name,
                "-n",
                example.namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        kubectl("delete", "namespace", example.namespace, "--wait=false", check=False)


@pytest.fixture
def examples_operator(
    kubeconfig: str,
    examples: list[Example],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    modelrelease_crds: None,
) -> Iterator[Process]:
    """One operator watching every example's namespace."""
    command = [
        sys.executable,
        "-m",
        "modelrelease",
        "--liveness",
        "",
        "--reconcile-interval",
        RECONCILE_INTERVAL,
    ]
    for example in examples:
        command += ["--namespace", example.namespace]
    process = Process("operator", command, _env(kubeconfig), tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()
    _report(request, process)


def _operator_secrets(documents: list[dict[str, Any]]) -> set[str]:
    """Names of the Secrets the ModelReleases' specs refer to (``...SecretRef`` fields)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.lower().endswith("secretref") and isinstance(value, dict):
                    names.add(value["name"])
                elif key != "template":  # the pods' own Secrets are not the operator's
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for document in documents:
        if document["kind"] == "ModelRelease":
            walk(document["spec"])
    return names


def test_placeholder_secrets_are_marked_and_opted_in() -> None:
    """Every Secret the prerequisites ship says it is a placeholder; those the operator
    reads (Prometheus credentials, notification receivers) carry the opt-in label."""
    secrets = [
        (path, d)
        for path in sorted(PREREQUISITES.glob("*.yaml"))
        for d in _documents(path)
        if d["kind"] == "Secret"
    ]
    assert secrets
    for path, secret in secrets:
        where = f"{path.name}: Secret {secret['metadata']['name']}"
        assert PLACEHOLDER_ANNOTATION in (secret["metadata"].get("annotations") or {}), where
        assert all("PLACEHOLDER" in v for v in secret["stringData"].values()), where
        read_by_operator = secret["metadata"]["name"] in _operator_secrets(
            _documents(EXAMPLES_DIR / path.name)
        )
        labels = secret["metadata"].get("labels") or {}
        assert (labels.get(CREDENTIALS_LABEL) == "true") == read_by_operator, where


def test_examples_apply_and_reconcile(
    kubectl: Kubectl, examples: list[Example], examples_operator: Process
) -> None:
    for path in CLUSTER_PREREQUISITES:
        _apply(kubectl, path)
    assert any(e.releases for e in examples)
    problems: list[str] = []
    for batch in _batches(examples, _gpu_capacity(kubectl)):
        for example in batch.examples:
            if example.prerequisites is not None:
                _apply(kubectl, example.prerequisites, example.namespace)
            _apply(kubectl, example.path, example.namespace)
        for example in batch.examples:
            problems += _check_routes_attach(kubectl, example)
            problems += _wait_reconciled(kubectl, example, RECONCILE_TIMEOUT)
        assert examples_operator.running, (
            "the operator exited:\n" + examples_operator.output()[-3000:]
        )
        _free(kubectl, batch)
    assert not problems, "\n".join(problems)
