"""End-to-end fixtures: the real operator and the traffic simulator as processes.

Each test gets a fresh namespace, an operator process watching only that
namespace, and (when asked for) a simulator sending traffic through it. Helpers
read the API with the Kubernetes client; waiting is done with ``wait_for``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from tests.conftest import CACHE
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "modelrelease.dev", "v1alpha1", "modelreleases"
ROUTE_GROUP, ROUTE_VERSION, ROUTE_PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
RELEASE = "chat"
INTERVAL = "2s"
RECONCILE_INTERVAL = "1"
STOP_TIMEOUT = 15

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


# --- processes -----------------------------------------------------------------------------


@dataclass
class Process:
    """A child process with its output in a file (shown when a test fails)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} runs"
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"--- start {self.starts} at {time.time():.1f}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last status write."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    """A TCP port nothing listens on now (for an operator's metrics)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env(kubeconfig: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def operator_args() -> list[str]:
    """Extra flags of the operator; a test module overrides this fixture to set some."""
    return []


@pytest.fixture
def operator(
    kubeconfig: str,
    namespace: str,
    kubectl: Kubectl,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    modelrelease_crds: None,
    operator_args: list[str],
) -> Iterator[Process]:
    """The operator (``python -m modelrelease``) watching the test's namespace."""
    command = [
        sys.executable,
        "-m",
        "modelrelease",
        "--namespace",
        namespace,
        "--liveness",
        "",
        "--reconcile-interval",
        RECONCILE_INTERVAL,
        *operator_args,
    ]
    process = Process("operator", command, _env(kubeconfig), tmp_path / "operator.log")
    process.start()
    yield process
    _delete_releases(process, kubectl, namespace)
    process.stop()
    _report(request, process)


def _delete_releases(process: Process, kubectl: Kubectl, namespace: str) -> None:
    """Delete the releases while an operator runs, so their finalizers are honoured."""
    if not process.running:
        process.start()
    deleted = kubectl(
        "delete", PLURAL, "--all", "-n", namespace, "--wait=true", "--timeout=30s", check=False
    )
    if deleted.returncode != 0:  # never leave a namespace stuck on a finalizer
        names = kubectl("get", PLURAL, "-n", namespace, "-o", "name", check=False).stdout.split()
        for name in names:
            kubectl(
                "patch",
                name,
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )


@pytest.fixture
def simulator(
    kubeconfig: str,
    namespace: str,
    prometheus_targets_dir: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Simulator]:
    """The traffic simulator for the test's namespace; its stats file is readable."""
    stats = tmp_path / "stats.json"
    command = [
        sys.executable,
        "-m",
        "hack.simulator",
        "--namespace",
        namespace,
        "--kubeconfig",
        kubeconfig,
        "--targets-dir",
        str(prometheus_targets_dir),
        "--stats-file",
        str(stats),
        "--seed",
        "7",
        "--id",
        f"e2e-{namespace}",
    ]
    process = Process("simulator", command, _env(kubeconfig), tmp_path / "simulator.log")
    process.start()
    yield Simulator(process, stats)
    process.stop()
    _report(request, process)


# prometheus-adapter's rule for the external metrics API: a series with a namespace label
# is an external metric of that namespace, summed over the series the HPA's selector
# picks (<<.LabelMatchers>> holds the namespace and that selector).
EXTERNAL_METRICS = "external.metrics.k8s.io"
ADAPTER_SERVICE = "prometheus-adapter"
ADAPTER_RULES = """
externalRules:
  - seriesQuery: '{__name__="vllm:num_requests_waiting",namespace!=""}'
    resources:
      overrides:
        namespace: {resource: namespace}
    metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
"""


@pytest.fixture
def metrics_adapter(
    kubeconfig: str,
    namespace: str,
    kubectl: Kubectl,
    prometheus_url: str,
    prometheus_targets_dir: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Process]:
    """prometheus-adapter (hack/tools.sh prometheus-adapter) registered as the cluster's
    ``external.metrics.k8s.io`` API: the HPA controller reads Prometheus through it.

    Local cluster only (``prometheus_targets_dir`` skips otherwise): the APIService is
    cluster-wide, and a real cluster has its own. Removed before the adapter stops, so
    discovery (and namespace deletion) never waits on an API that does not answer.
    """
    binary = CACHE / "bin" / "prometheus-adapter"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `hack/tools.sh prometheus-adapter` (or make tools)")
    port = free_port()
    certs = tmp_path / "metrics-adapter"
    certs.mkdir()
    cert, key = _certificate(certs, f"{ADAPTER_SERVICE}.{namespace}.svc")
    rules = tmp_path / "adapter-rules.yaml"
    rules.write_text(ADAPTER_RULES)
    command = [
        str(binary),
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        # Its lists, and the delegated authentication and authorisation of the requests
        # the aggregator proxies (front-proxy client certificate + X-Remote-User).
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--prometheus-url={prometheus_url}",
        f"--config={rules}",
        "--metrics-relist-interval=2s",
        "--v=2",
    ]
    process = Process("metrics-adapter", command, _env(kubeconfig), tmp_path / "adapter.log")
    process.start()
    apiservice = f"v1beta1.{EXTERNAL_METRICS}"
    try:
        state = wait_for(
            lambda: ("up" if _accepts(port) else None) if process.running else "exited",
            60,
            f"the metrics adapter to listen on {port}",
        )
        if state == "exited":
            pytest.fail(f"the metrics adapter exited:\n{process.output()[-3000:]}")
        objects = _registration(namespace, port, cert.read_bytes())
        document = {"apiVersion": "v1", "kind": "List", "items": objects}
        kubectl("apply", "-f", "-", input=json.dumps(document))
        wait_for(
            lambda: _available(kubectl, apiservice),
            60,
            f"APIService {apiservice} Available (the aggregator reaches the adapter)",
        )
        yield process
    finally:
        kubectl("delete", "apiservice", apiservice, "--ignore-not-found", check=False)
        process.stop()
        _report(request, process)


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for ``name``, the name the aggregator checks
    (``<service>.<namespace>.svc``), and localhost."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={ADAPTER_SERVICE}"),
            *("-addext", f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _registration(namespace: str, port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """The Service and APIService that send external metrics requests to the adapter.

    The Service is an ExternalName ``localhost``: the aggregator then dials
    ``https://localhost:<port>`` itself, so a process on this host serves an aggregated
    API with no cluster network (no Endpoints, which may not hold loopback addresses).
    """
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": ADAPTER_SERVICE, "namespace": namespace},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"v1beta1.{EXTERNAL_METRICS}"},
            "spec": {
                "group": EXTERNAL_METRICS,
                "version": "v1beta1",
                "service": {"name": ADAPTER_SERVICE, "namespace": namespace, "port": port},
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _available(kubectl: Kubectl, apiservice: str) -> bool:
    found = kubectl("get", "apiservice", apiservice, "-o", "json", check=False)
    if found.returncode != 0:
        return False
    conditions = json.loads(found.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


@dataclass
class Simulator:
    process: Process
    stats_path: Path

    def stats(self) -> dict[str, Any]:
        if not self.stats_path.exists():
            return {}
        data: dict[str, Any] = json.loads(self.stats_path.read_text())
        return data

    def revision(self, revision: str) -> dict[str, Any] | None:
        return next(
            (r for r in self.stats().get("revisions", []) if r["revision"] == revision), None
        )

    def served(self, revision: str) -> int:
        entry = self.revision(revision) or {}
        user = entry.get("user") or {}
        return int(user.get("success", 0)) + int(user.get("error", 0))


def _report(request: pytest.FixtureRequest, process: Process) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        tail = process.output()[-6000:]
        print(f"\n===== {process.name} output (last 6000 characters) =====\n{tail}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


# --- the API ---------------------------------------------------------------------------------


@dataclass
class Cluster:
    """Reads and writes of the objects the tests look at."""

    api_client: client.ApiClient
    namespace: str
    kubectl: Kubectl

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    def apply(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            obj.setdefault("metadata", {})["namespace"] = self.namespace
        document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.kubectl("apply", "-f", "-", input=json.dumps(document))

    def release(self, name: str = RELEASE) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return obj

    def status(self, name: str = RELEASE) -> dict[str, Any]:
        status: dict[str, Any] = self.release(name).get("status") or {}
        return status

    def route(self, name: str = RELEASE) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            ROUTE_GROUP, ROUTE_VERSION, self.namespace, ROUTE_PLURAL, name
        )
        return obj

    def weights(self, name: str = RELEASE) -> tuple[int, int]:
        """(stable, canary) weights of the operator's backends in the route."""
        return _route_weights(self.route(name))

    def deployments(self) -> list[str]:
        apps = client.AppsV1Api(self.api_client)
        items = apps.list_namespaced_deployment(
            self.namespace, label_selector=f"modelrelease.dev/release={RELEASE}"
        ).items
        return sorted(item.metadata.name for item in items)

    def condition(self, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status().get("conditions", []) if c["type"] == type_), None)

    def events(self, reason: str) -> list[str]:
        core = client.CoreV1Api(self.api_client)
        items = core.list_namespaced_event(self.namespace).items
        return [e.message for e in items if e.reason == reason]

    def wait_events(self, reason: str, containing: str = "", timeout: float = 15) -> list[str]:
        """The messages of the Events with ``reason`` (and ``containing``), once there is one.

        kopf posts Events in the background after the pass, so the status that
        announces something is usually there before its Event.
        """

        def probe() -> list[str]:
            return [message for message in self.events(reason) if containing in message]

        what = f"a {reason} Event" + (f" saying {containing!r}" if containing else "")
        return wait_for(probe, timeout, what)


def _route_weights(route: dict[str, Any]) -> tuple[int, int]:
    """(stable, canary) weights of the operator's backends in ``route``."""
    stable = canary = 0
    for rule in route["spec"]["rules"]:
        for ref in rule.get("backendRefs") or []:
            if ref["name"] == f"{RELEASE}-stable":
                stable = int(ref.get("weight", 1))
            elif ref["name"] == f"{RELEASE}-canary":
                canary = int(ref.get("weight", 1))
    return stable, canary


@pytest.fixture
def cluster(
    api_client: client.ApiClient, namespace: str, kubectl: Kubectl, modelrelease_crds: None
) -> Cluster:
    return Cluster(api_client, namespace, kubectl)


# --- manifests -------------------------------------------------------------------------------


def http_route(rate: float | None = 40.0) -> dict[str, Any]:
    """An HTTPRoute with an unrelated rule first, and the release's rule second."""
    annotations = {"simulator.modelrelease.dev/rate": str(rate)} if rate else {}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": RELEASE, "annotations": annotations},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "backendRefs": [{"name": "admin", "port": 80, "weight": 1}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [{"name": f"{RELEASE}-stable", "port": 8000}],
                },
            ],
        },
    }


ERROR_RATIO = (
    'sum(rate(vllm:request_success_total{{namespace="{{{{namespace}}}}",'
    '{{{{revisionPods}}}},finished_reason="error"}}[{window}]))'
    ' / sum(rate(vllm:request_success_total{{namespace="{{{{namespace}}}}",'
    "{{{{revisionPods}}}}}}[{window}]))"
)
TTFT_P95 = (
    "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket"
    '{{namespace="{{{{namespace}}}}",{{{{revisionPods}}}}}}[{window}])))'
)
WINDOW = "10s"


def error_ratio_slo(**extra: Any) -> dict[str, Any]:
    return {
        "name": "error-ratio",
        "query": ERROR_RATIO.format(window=WINDOW),
        "max": 0.05,
        "failureLimit": 1,
        **extra,
    }


def ttft_slo(**extra: Any) -> dict[str, Any]:
    return {
        "name": "ttft-p95",
        "query": TTFT_P95.format(window=WINDOW),
        "max": 0.5,
        "failureLimit": 1,
        **extra,
    }


def model_release(
    version: str,
    behaviour: dict[str, Any] | None = None,
    steps: list[tuple[int, str]] | None = None,
    slos: list[dict[str, Any]] | None = None,
    prometheus: str = "",
    replicas: int = 2,
    max_inconclusive: int = 10,
    route: str = RELEASE,
    on_error: dict[str, str] | None = None,
) -> dict[str, Any]:
    annotations = (
        {"simulator.modelrelease.dev/behaviour": json.dumps(behaviour)} if behaviour else {}
    )
    spec: dict[str, Any] = {
        "model": {
            "name": "chat-8b",
            "version": version,
            "uri": f"s3://models/chat-8b/{version}",
            "metadata": {"dataset": "2026-10"},
        },
        "replicas": replicas,
        "template": {
            "metadata": {"annotations": annotations},
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": "vllm/vllm-openai:v0.11.0",
                        "resources": {"limits": {"nvidia.com/gpu": 1}},
                    }
                ]
            },
        },
        "port": 8000,
        "capacity": {"mode": "surge"},
        "traffic": {"gatewayAPI": {"httpRoute": route}},
        "stages": [
            {"canary": {"steps": [{"weight": w, "duration": d} for w, d in steps or [(50, "6s")]]}}
        ],
    }
    if prometheus:
        spec["analysis"] = {
            "prometheus": {"address": prometheus, "timeout": "2s"},
            "interval": INTERVAL,
            "maxInconclusive": max_inconclusive,
            "slos": slos if slos is not None else [error_ratio_slo()],
        }
        if on_error is not None:
            spec["analysis"]["onError"] = on_error
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRelease",
        "metadata": {"name": RELEASE},
        "spec": spec,
    }


# --- watching ----------------------------------------------------------------------------------


@dataclass
class Sample:
    time: float
    stable: int
    canary: int
    phase: str | None
    step: int | None
    step_weight: int | None


def follow(
    cluster: Cluster,
    what: tuple[str, str, str, str],
    changed: Callable[[dict[str, Any]], None],
    stop: threading.Event,
) -> threading.Thread:
    """A thread calling ``changed`` with every version of one custom object (group,
    version, plural, name) in the test's namespace, from a watch, until ``stop``."""
    group, version, plural, name = what

    def run() -> None:
        while not stop.is_set():
            try:  # short watches, so stopping is prompt
                for event in watch.Watch().stream(
                    cluster.custom.list_namespaced_custom_object,
                    group,
                    version,
                    cluster.namespace,
                    plural,
                    field_selector=f"metadata.name={name}",
                    timeout_seconds=1,
                ):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        changed(event["object"])
                    if stop.is_set():
                        return
            except Exception:  # the API server restarts in some tests; watch again
                stop.wait(0.25)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@dataclass
class RouteRecorder:
    """Records route weights and release status in the background, from watches: every
    version of the route and of the release is seen, however briefly it lasted."""

    cluster: Cluster
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _weights: tuple[int, int] | None = None
    _status: dict[str, Any] | None = None

    def start(self) -> RouteRecorder:
        targets = (
            (ROUTE_GROUP, ROUTE_VERSION, ROUTE_PLURAL, RELEASE, self._route_changed),
            (GROUP, VERSION, PLURAL, RELEASE, self._release_changed),
        )
        for group, version, plural, name, changed in targets:
            self._threads.append(
                follow(self.cluster, (group, version, plural, name), changed, self._stop)
            )
        wait_for(lambda: self.samples, 15, "the recorder's first sample")
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _route_changed(self, route: dict[str, Any]) -> None:
        with self._lock:
            self._weights = _route_weights(route)
            self._sample()

    def _release_changed(self, release: dict[str, Any]) -> None:
        with self._lock:
            self._status = release.get("status") or {}
            self._sample()

    def _sample(self) -> None:
        if self._weights is None or self._status is None:
            return
        stage = self._status.get("currentStage") or {}
        running = stage.get("stepStartTime") is not None
        sample = Sample(
            time=time.time(),
            stable=self._weights[0],
            canary=self._weights[1],
            phase=self._status.get("phase"),
            step=stage.get("step") if running else None,
            step_weight=stage.get("weight") if running else None,
        )
        self.samples.append(sample)

    def canary_weights(self) -> list[int]:
        """Distinct consecutive canary weights seen, in order."""
        seen: list[int] = []
        for sample in self.samples:
            if not seen or seen[-1] != sample.canary:
                seen.append(sample.canary)
        return seen

    def first_time(self, predicate: Callable[[Sample], bool], after: float = 0.0) -> float | None:
        return next((s.time for s in self.samples if s.time >= after and predicate(s)), None)


@pytest.fixture
def recorder(cluster: Cluster) -> Iterator[RouteRecorder]:
    recording = RouteRecorder(cluster)
    yield recording
    recording.stop()


def wait_phase(cluster: Cluster, phase: str, timeout: float, what: str = "") -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = cluster.status()
        return status if status.get("phase") == phase else None

    return wait_for(probe, timeout, what or f"phase {phase}")


def wait_champion_version(cluster: Cluster, version: str, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = cluster.status()
        champion = status.get("champion") or {}
        ready = champion.get("readyReplicas", 0) > 0
        succeeded = status.get("phase") == "Succeeded"
        return status if champion.get("modelVersion") == version and ready and succeeded else None

    return wait_for(probe, timeout, f"version {version} to be the ready champion")


def wait_weights(cluster: Cluster, expected: tuple[int, int], timeout: float = 15) -> None:
    """Wait for the route's (stable, canary) weights.

    A pass writes its status before it acts on it (crash safety), so the route
    follows a status change by the few milliseconds of the pass's writes.
    """
    wait_for(lambda: cluster.weights() == expected, timeout, f"the route at {expected}")
