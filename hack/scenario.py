"""Shared by `make demo` and the benchmarks: a release scenario on the local cluster.

A :class:`Scenario` owns one namespace with an HTTPRoute that the traffic
simulator sends requests through, runs the simulator and the operator as
processes (their logs and PIDs in ``.local-cluster/<name>/``), applies
ModelRelease manifests built by :func:`release`, and watches their status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MODELRELEASE_CLUSTER_DIR", ROOT / ".local-cluster"))
CACHE = Path(os.environ.get("MODELRELEASE_CACHE", Path.home() / ".cache" / "modelrelease"))
KUBECTL = str(CACHE / "bin" / "kubectl")
KUBECONFIG = str(STATE / "kubeconfig")
PROMETHEUS = f"http://127.0.0.1:{os.environ.get('PROMETHEUS_PORT', '19090')}"
BEHAVIOUR = "simulator.modelrelease.dev/behaviour"
RATE = "simulator.modelrelease.dev/rate"
READY_AFTER = "simulator.modelrelease.dev/ready-after"
FAULT_INJECTION = "MODELRELEASE_FAULT_INJECTION"  # see operator/modelrelease/kube/faults.py
REVISION_SELECTOR = 'namespace="{{namespace}}",{{revisionPods}}'

Manifest = dict[str, Any]


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", KUBECONFIG, *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def apply(manifest: Manifest) -> None:
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(manifest)
    )


# --- manifests ------------------------------------------------------------------------------
def http_route(namespace: str, name: str, rate: float) -> Manifest:
    """An HTTPRoute whose one rule the operator will weight; the simulator sends `rate` req/s."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "annotations": {RATE: str(rate)}},
        "spec": {
            "parentRefs": [{"name": "inference-gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [{"name": f"{name}-stable", "port": 8000}],
                }
            ],
        },
    }


def error_ratio_slo(max_ratio: float, failure_limit: int, min_requests: int = 20) -> Manifest:
    return {
        "name": "error-ratio",
        "templateRef": {"kind": "ClusterSLOTemplate", "name": "vllm-error-ratio"},
        "max": max_ratio,
        "failureLimit": failure_limit,
        "minRequests": min_requests,
    }


def ttft_slo(max_seconds: float, failure_limit: int, window: str = "{{interval}}") -> Manifest:
    return {
        "name": "ttft-p95",
        "query": (
            "histogram_quantile(0.95, sum by (le) (rate("
            f"vllm:time_to_first_token_seconds_bucket{{{REVISION_SELECTOR}}}[{window}])))"
        ),
        "max": max_seconds,
        "failureLimit": failure_limit,
    }


def slow_ttft_slo(bound: str, max_share: float, failure_limit: int) -> Manifest:
    """At most ``max_share`` of requests with a TTFT above the bucket bound ``bound``: the
    counter form of a latency limit, which the sequential guard can read."""
    return {
        "name": "slow-ttft",
        "templateRef": {"kind": "ClusterSLOTemplate", "name": "vllm-slow-ttft-ratio"},
        "args": {"le": bound},
        "max": max_share,
        "failureLimit": failure_limit,
    }


def errors_comparison() -> Manifest:
    """A ratio comparison of failed among finished requests, per arm."""
    return {
        "name": "errors",
        "kind": "ratio",
        "bad": f'vllm:request_success_total{{{REVISION_SELECTOR},finished_reason="error"}}',
        "total": f"vllm:request_success_total{{{REVISION_SELECTOR}}}",
        "better": "lower",
    }


def release(
    namespace: str,
    name: str,
    version: str,
    behaviour: Manifest,
    stages: list[Manifest],
    slos: list[Manifest],
    interval: str,
    replicas: int = 2,
) -> Manifest:
    """A ModelRelease of a vLLM chat model whose simulated behaviour is `behaviour`."""
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {
                "name": "chat-8b",
                "version": version,
                "uri": f"s3://models/chat-8b/{version}",
                "metadata": {"dataset": "2026-10"},
            },
            "replicas": replicas,
            "template": {
                "metadata": {"annotations": {BEHAVIOUR: json.dumps(behaviour)}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": ["--model", f"/models/chat-8b/{version}"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            },
            "port": 8000,
            "progressDeadline": "2m",
            "capacity": {"mode": "conserve", "maxSurge": 1},
            "traffic": {"gatewayAPI": {"httpRoute": name}},
            "analysis": {"prometheus": {"address": PROMETHEUS}, "interval": interval, "slos": slos},
            "stages": stages,
            "rollback": {"automatic": True},
            "revisionHistoryLimit": 2,
        },
    }


# --- processes --------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@dataclass
class Scenario:
    """One namespace, its simulator and operator, and the release under test."""

    namespace: str
    name: str = "chat"
    rate: float = 40.0
    seed: int = 7

    @property
    def folder(self) -> Path:
        return STATE / self.namespace

    @property
    def stats_file(self) -> Path:
        return self.folder / "stats.json"

    def start(self, process: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / f"{process}.log").open("a")
        child = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "KUBECONFIG": KUBECONFIG, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=ROOT,
        )
        (self.folder / f"{process}.pid").write_text(str(child.pid))

    def start_operator(
        self,
        faults: str = "",
        reconcile_interval: float | None = 1.0,
        kubeconfig: str = KUBECONFIG,
        extra_args: Sequence[str] = (),
    ) -> None:
        """The operator for this namespace; `faults` sets its fault-injection mode; a
        `reconcile_interval` of None leaves the operator's default."""
        interval = (
            [] if reconcile_interval is None else [f"--reconcile-interval={reconcile_interval}"]
        )
        self.start(
            "operator",
            [sys.executable, "-m", "modelrelease", "--namespace", self.namespace,
             "--liveness", "", *interval, *extra_args],
            # KUBECONFIG, not --kubeconfig: the Kubernetes client reads the variable when it is
            # imported, before the operator parses its flags.
            {FAULT_INJECTION: faults, "KUBECONFIG": kubeconfig},
        )  # fmt: skip

    def running(self, process: str) -> bool:
        pid_file = self.folder / f"{process}.pid"
        return pid_file.exists() and _alive(int(pid_file.read_text()))

    def stop(self, process: str, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop one process (SIGKILL: no clean-up at all) and wait until it is gone."""
        pid_file = self.folder / f"{process}.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()

    def stop_processes(self) -> None:
        for pid_file in sorted(self.folder.glob("*.pid")):
            self.stop(pid_file.stem)

    def up(self, reconcile_interval: float = 1.0) -> None:
        """CRDs, built-in templates, the namespace, a fresh simulator and operator, the route."""
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "crd/modelreleases.modelrelease.dev")
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "examples/slo-templates"),
        )
        self.fresh_namespace()
        self.stop_processes()
        self.start_operator(reconcile_interval=reconcile_interval)
        # A release left by an earlier run is finalized by the fresh operator.
        kubectl("delete", "mrel", "--all", "-n", self.namespace, "--wait=true", "--timeout=60s")
        self.start_simulator()
        apply(http_route(self.namespace, self.name, self.rate))

    def start_simulator(self) -> None:
        """A simulator for this namespace, with a fresh stats file."""
        if self.stats_file.exists():
            self.stats_file.unlink()
        self.start(
            "simulator",
            [sys.executable, "-m", "hack.simulator", "--namespace", self.namespace,
             "--kubeconfig", KUBECONFIG, "--targets-dir", str(STATE / "prometheus" / "targets"),
             "--stats-file", str(self.stats_file), "--seed", str(self.seed)],
        )  # fmt: skip

    def fresh_namespace(self) -> None:
        """The namespace, Active: one still terminating from an earlier run is waited out."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            phase = kubectl(
                "get", "namespace", self.namespace, "-o", "jsonpath={.status.phase}", check=False
            )
            if phase == "Active":
                return
            if not phase:
                kubectl("create", "namespace", self.namespace, check=False)
            time.sleep(0.5)
        sys.exit(f"namespace {self.namespace} did not become Active within 120 s")

    def down(self) -> None:
        """Delete the releases while the operator still runs, then stop the processes."""
        if self.folder.exists():
            kubectl("delete", "mrel", "--all", "-n", self.namespace, "--timeout=60s", check=False)
            self.stop_processes()
        kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)

    def get(self) -> Manifest:
        out = kubectl("get", "mrel", self.name, "-n", self.namespace, "-o", "json", check=False)
        return json.loads(out) if out else {}

    def route_weights(self) -> dict[str, int]:
        """Backend name -> weight in the route's first rule."""
        out = kubectl("get", "httproute", self.name, "-n", self.namespace, "-o", "json")
        rule = json.loads(out)["spec"]["rules"][0]
        return {ref["name"]: ref.get("weight", 1) for ref in rule.get("backendRefs", [])}


# --- watching ---------------------------------------------------------------------------------
def describe(status: Manifest) -> str:
    """One line: phase, stage, weights and each check's value against its threshold."""
    stage = status.get("currentStage") or {}
    parts = [f"{status.get('phase', 'Pending'):<11}"]
    if stage:
        step = f" step {stage['step'] + 1}" if stage.get("step") is not None else ""
        parts.append(f"{stage.get('name', stage.get('type'))}{step}")
        parts.append(f"weight {stage.get('weight', 0):>3}%")
        if stage.get("mirrorPercent"):
            parts.append(f"mirror {stage['mirrorPercent']}%")
    for check in status.get("checks") or []:
        value = check.get("value")
        shown = "n/a" if value is None else f"{value:.3f}"
        limit = check.get("max") if check.get("max") is not None else check.get("min")
        parts.append(f"{check['name']} {shown}/{limit} {check.get('verdict', '')}")
    for metric in status.get("comparison") or []:
        estimate = metric.get("estimate")
        if estimate is not None:
            parts.append(
                f"{metric['metric']} ratio {estimate:.2f}"
                f" [{metric.get('lower') or 0:.2f}, {metric.get('upper') or 0:.2f}]"
                f" {metric.get('verdict')}"
            )
    return " | ".join(parts)


@dataclass
class Watch:
    """Polls the release every second, printing a line when what a person sees changes."""

    scenario: Scenario
    quiet: bool = False
    last_line: str = ""
    started: float = field(default_factory=time.monotonic)

    def until(self, done: Callable[[Manifest], bool], timeout: float, what: str) -> Manifest:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            obj = self.scenario.get()
            line = describe(obj.get("status") or {})
            if line != self.last_line and not self.quiet:
                print(f"  [{time.monotonic() - self.started:5.0f}s] {line}", flush=True)
            self.last_line = line
            if obj and done(obj):
                return obj
            time.sleep(1)
        raise TimeoutError(
            f"{what} did not happen within {timeout:.0f}s; see {self.scenario.folder}/operator.log"
        )


def champion_is(version: str) -> Callable[[Manifest], bool]:
    def check(obj: Manifest) -> bool:
        status = obj.get("status") or {}
        return bool(
            status.get("observedGeneration") == obj.get("metadata", {}).get("generation")
            and (status.get("champion") or {}).get("modelVersion") == version
            and status.get("phase") == "Succeeded"
        )

    return check


def rolled_back(obj: Manifest) -> bool:
    return (obj.get("status") or {}).get("phase") == "RolledBack"


def challenger_ready(obj: Manifest) -> bool:
    challenger = (obj.get("status") or {}).get("challenger") or {}
    return bool(challenger.get("readyReplicas", 0) > 0)
