"""`make demo`: a release promoted, and a bad one rolled back, on the local cluster.

Brings up (the Makefile has already started the cluster and Prometheus) the
traffic simulator and the operator, then:

1. applies version 1 of a chat model: it becomes the champion directly;
2. applies version 2 (healthy, fewer errors): shadow at 50%, a canary in steps,
   a champion-challenger bake-off, promoted;
3. applies version 3 (a bad model: 20% errors, slow first tokens): rolled back
   automatically, and the summary says how fast and how many requests it served.

`python hack/demo.py --down` stops the simulator and the operator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MODELRELEASE_CLUSTER_DIR", ROOT / ".local-cluster"))
DEMO = STATE / "demo"
CACHE = Path(os.environ.get("MODELRELEASE_CACHE", Path.home() / ".cache" / "modelrelease"))
KUBECTL = str(CACHE / "bin" / "kubectl")
KUBECONFIG = str(STATE / "kubeconfig")
PROMETHEUS = f"http://127.0.0.1:{os.environ.get('PROMETHEUS_PORT', '19090')}"
NAMESPACE = "demo"
RELEASE = "chat"
RATE = 40  # user requests per second through the HTTPRoute

sys.path.insert(0, str(ROOT))
from hack.simulator.stats import read_stats, served  # noqa: E402

HEALTHY_V1 = {"errorRatio": 0.02, "ttft": {"p50": 0.15, "p95": 0.4}}
HEALTHY_V2 = {"errorRatio": 0.005, "ttft": {"p50": 0.12, "p95": 0.3}}
BAD_V3 = {"errorRatio": 0.2, "ttft": {"p50": 0.9, "p95": 2.5}}


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", KUBECONFIG, *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        sys.exit(f"demo: kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def http_route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": RELEASE,
            "namespace": NAMESPACE,
            "annotations": {"simulator.modelrelease.dev/rate": str(RATE)},
        },
        "spec": {
            "parentRefs": [{"name": "inference-gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [{"name": f"{RELEASE}-stable", "port": 8000}],
                }
            ],
        },
    }


def release(version: str, behaviour: dict[str, Any]) -> dict[str, Any]:
    revision_selector = 'namespace="{{namespace}}",revision="{{revision}}"'
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": RELEASE, "namespace": NAMESPACE},
        "spec": {
            "model": {
                "name": "chat-8b",
                "version": version,
                "uri": f"s3://models/chat-8b/{version}",
                "metadata": {"dataset": "2026-10", "trainedBy": "demo"},
            },
            "replicas": 2,
            "template": {
                "metadata": {
                    "annotations": {"simulator.modelrelease.dev/behaviour": json.dumps(behaviour)}
                },
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": ["--model", "/models/chat-8b"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            },
            "port": 8000,
            "progressDeadline": "2m",
            "capacity": {"mode": "conserve", "maxSurge": 1},
            "traffic": {"gatewayAPI": {"httpRoute": RELEASE}},
            "analysis": {
                "prometheus": {"address": PROMETHEUS},
                "interval": "5s",
                "slos": [
                    {
                        "name": "error-ratio",
                        "templateRef": {"kind": "ClusterSLOTemplate", "name": "vllm-error-ratio"},
                        "max": 0.05,
                        "failureLimit": 1,
                        "minRequests": 20,
                    },
                    {
                        "name": "ttft-p95",
                        "query": (
                            "histogram_quantile(0.95, sum by (le) (rate("
                            f"vllm:time_to_first_token_seconds_bucket{{{revision_selector}}}[10s])))"
                        ),
                        "max": 0.75,
                        "failureLimit": 1,
                    },
                ],
            },
            "stages": [
                {"name": "shadow", "shadow": {"mirrorPercent": 50, "duration": "20s"}},
                {
                    "name": "canary",
                    "canary": {
                        "steps": [
                            {"weight": 10, "duration": "15s"},
                            {"weight": 30, "duration": "15s"},
                        ]
                    },
                },
                {
                    "name": "bake-off",
                    "championChallenger": {
                        "weight": 50,
                        "maxDuration": "3m",
                        "alpha": 0.05,
                        "decision": "nonInferiority",
                        "margin": 0.5,
                        "metrics": [
                            {
                                "name": "errors",
                                "kind": "ratio",
                                "bad": (
                                    "vllm:request_success_total{"
                                    f'{revision_selector},finished_reason="error"}}'
                                ),
                                "total": f"vllm:request_success_total{{{revision_selector}}}",
                                "better": "lower",
                            }
                        ],
                    },
                },
            ],
            "rollback": {"automatic": True},
            "revisionHistoryLimit": 2,
        },
    }


# --- processes --------------------------------------------------------------
def start(name: str, command: list[str]) -> None:
    DEMO.mkdir(parents=True, exist_ok=True)
    log = (DEMO / f"{name}.log").open("a")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "KUBECONFIG": KUBECONFIG},
        cwd=ROOT,
    )
    (DEMO / f"{name}.pid").write_text(str(process.pid))
    print(f"  started {name} (pid {process.pid}, log {DEMO / (name + '.log')})")


def stop_all() -> None:
    for pid_file in sorted(DEMO.glob("*.pid")):
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()
        print(f"  stopped {pid_file.stem}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


# --- watching -----------------------------------------------------------------
@dataclass
class Watch:
    """Prints a line whenever the release's visible state changes."""

    last_line: str = ""
    first_seen: dict[str, float] = field(default_factory=dict)

    def get(self) -> dict[str, Any]:
        out = kubectl("get", "mrel", RELEASE, "-n", NAMESPACE, "-o", "json", check=False)
        return json.loads(out) if out else {}

    def describe(self, status: dict[str, Any]) -> str:
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

    def until(self, done: Any, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        start = time.monotonic()
        while time.monotonic() < deadline:
            obj = self.get()
            status = obj.get("status") or {}
            line = self.describe(status)
            if line != self.last_line:
                print(f"  [{time.monotonic() - start:5.0f}s] {line}", flush=True)
                self.last_line = line
            if done(obj):
                return obj
            time.sleep(1)
        sys.exit(f"demo: {what} did not happen within {timeout:.0f}s; see {DEMO}/operator.log")


def applied(version: str) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        champion = status.get("champion") or {}
        return bool(
            status.get("observedGeneration") == obj.get("metadata", {}).get("generation")
            and champion.get("modelVersion") == version
            and status.get("phase") == "Succeeded"
        )

    return check


def rolled_back(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "RolledBack"


def apply(manifest: dict[str, Any]) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest))


# --- the story ------------------------------------------------------------------
def up() -> None:
    t0 = time.monotonic()
    print("== setting up")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/modelreleases.modelrelease.dev")
    kubectl("apply", "--server-side", "-f", str(ROOT / "examples" / "slo-templates"))
    kubectl("create", "namespace", NAMESPACE, check=False)
    kubectl("delete", "mrel", RELEASE, "-n", NAMESPACE, "--ignore-not-found", "--wait=true")
    stop_all()
    python = sys.executable
    stats = DEMO / "stats.json"
    start(
        "simulator",
        [
            python,
            "-m",
            "hack.simulator",
            "--namespace",
            NAMESPACE,
            "--stats-file",
            str(stats),
            "--seed",
            "7",
        ],
    )
    start(
        "operator",
        [
            python,
            "-m",
            "modelrelease",
            "--namespace",
            NAMESPACE,
            "--liveness",
            "",
            "--reconcile-interval",
            "1",
        ],
    )
    apply(http_route())
    watch = Watch()

    print(f"\n== version 1.0.0: the first revision becomes champion ({RATE} req/s)")
    apply(release("1.0.0", HEALTHY_V1))
    watch.until(applied("1.0.0"), 120, "version 1 becoming champion")

    print("\n== version 2.0.0 (healthy, fewer errors): shadow -> canary -> bake-off")
    apply(release("2.0.0", HEALTHY_V2))
    promoted = watch.until(applied("2.0.0"), 420, "version 2 being promoted")
    print(f"  promoted: {promoted['status'].get('message', '')}")

    print("\n== version 3.0.0 (bad: 20% errors, TTFT p95 ~2.5 s): expect a rollback")
    apply(release("3.0.0", BAD_V3))
    challenger = watch.until(
        lambda o: ((o.get("status") or {}).get("challenger") or {}).get("readyReplicas", 0) > 0,
        180,
        "version 3's pods becoming Ready",
    )
    bad_revision = challenger["status"]["challenger"]["revision"]
    ready_at = time.time()
    final = watch.until(rolled_back, 300, "version 3 being rolled back")
    rolled_back_at = time.time()

    snapshot = read_stats(stats)
    history = final["status"].get("history") or []
    print("\n== summary")
    print(f"  champion now: {final['status']['champion'].get('modelVersion')}")
    if history:
        last = history[-1]
        print(f"  version 3 outcome: {last.get('outcome')}: {last.get('reason')}")
        print(f"    {last.get('message', '')}")
    print(f"  time from version 3 Ready to rollback: {rolled_back_at - ready_at:.0f}s")
    print(
        f"  requests version 3 served: users {served(snapshot, bad_revision)},"
        f" mirrored copies {served(snapshot, bad_revision, kind='mirror')}"
    )
    print(f"  demo took {time.monotonic() - t0:.0f}s. `make demo-down` stops everything.")
    print(
        f"  Look around: KUBECONFIG={KUBECONFIG} kubectl get mrel -n {NAMESPACE};"
        f" Prometheus at {PROMETHEUS}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down", action="store_true", help="stop the simulator and operator")
    args = parser.parse_args()
    if args.down:
        stop_all()
        return
    up()


if __name__ == "__main__":
    main()
