"""Against the peers: ModelRelease, Flagger and Argo Rollouts on one cluster, traffic, faults.

For each tool, one at a time, on the local cluster (its Prometheus with a 1 s
scrape, the traffic simulator at 40 user requests/s through the tool's HTTPRoute),
a challenger is released N times per scenario:

- ``errors-20``: 20% of its requests fail from 20 s after its pods are Ready;
- ``errors-3``: 1% fail from the start, 3% from 20 s after Ready;
- ``latency``: TTFT p95 0.3 s, then 1.2 s from 20 s after Ready;
- ``healthy``: no fault (time to full promotion, false rollbacks).

All tools judge the same two measurements from the same Prometheus: the share of
5xx answers (``http_requests_total``) and the p95 of ``vllm:time_to_first_token``,
with the same limits (2% and 0.6 s). ModelRelease uses its built-in template
``vllm-error-ratio`` and the TTFT query of hack/scenario.py, plus the guard's form of
the latency limit (``vllm-slow-ttft-ratio``: at most 5% of requests above 0.75 s, the
bucket bound above 0.6 s, which the p95 limit implies); Flagger uses
MetricTemplates with the same PromQL, selecting its canary pods by name (Flagger
knows no revision label). Flagger runs as a process with its Gateway API
provider; the simulator sends traffic through the HTTPRoute Flagger generates
(the rate annotation is added to that route once it exists: Flagger keeps the
annotations other controllers put on it). Argo Rollouts runs as a process with
its built-in Istio routing (its Gateway API plugin is not served by the Go module
proxy here): the benchmark writes the VirtualService, with the rate annotation,
whose weights Argo Rollouts sets, and an AnalysisTemplate with the same PromQL.

Settings:

- ``defaults``: Flagger as its docs describe a canary (docs/gitbook/usage/
  deployment-strategies.md of v1.44.0: interval 1m, threshold 10, maxWeight 50,
  stepWeight 2); Argo Rollouts as its docs' background-analysis example
  (docs/features/analysis.md of v1.10.2: setWeight 20/40/60/80 with 10-minute
  pauses, analysis from step 2, interval 5m, failureLimit 3); ModelRelease with
  its CRD defaults (interval 30s, failureLimit 0, minRequests 0) over Flagger's
  steps (its steps have no default: 2% to 50% in steps of 2, one minute each).
- ``matched``: all at interval 10s, steps 10% to 50% (10 s each), one failed
  check tolerated (Flagger threshold 2, Argo Rollouts and ModelRelease failureLimit 1).

Per run: seconds from the fault's start (the challenger's first pod Ready + 20 s)
to the canary's route weight back at 0, the user requests the challenger served
after the fault and how many of them failed; for ``healthy``, seconds from
applying the new version to full promotion. A rollback of a healthy version, or
of a faulty one before its fault starts, is a false rollback.

Every setting and scenario of one tool runs at the same time, each in its own
namespace with its own simulator and controller process (about 30 minutes for
ModelRelease and Flagger: a healthy release at the defaults takes 25 one-minute
steps, and Flagger takes up to 21 minutes to roll back the 1% -> 3% fault at its
defaults; Argo Rollouts' example needs 40 minutes to promote and 25 to roll back).

    make bench-peers                       # everything, about 2 hours
    .venv/bin/python hack/bench/peers.py --quick      # about 5 minutes
    .venv/bin/python hack/bench/peers.py --tools flagger --settings matched --record runs.jsonl
    .venv/bin/python hack/bench/peers.py --table runs.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modelrelease.api.models import MAX_CANARY_STEPS

from hack.bench.time_to_rollback import percentile
from hack.scenario import (
    CACHE,
    KUBECONFIG,
    PROMETHEUS,
    RATE,
    Manifest,
    Scenario,
    Watch,
    apply,
    champion_is,
    error_ratio_slo,
    kubectl,
    release,
    slow_ttft_slo,
    ttft_slo,
)
from hack.simulator.behaviour import BEHAVIOUR_ANNOTATION
from hack.simulator.stats import read_stats, served
from hack.simulator.topology import RELEASE_LABEL, REVISION_LABEL, pod_from_object
from tests.waiting import wait_for

NAME = "chat"
CANARY_BACKEND = f"{NAME}-canary"  # every tool calls the challenger's Service so
STABLE_BACKEND = f"{NAME}-stable"  # Argo Rollouts' stable Service (Flagger's is chat-primary)
FAULT_AFTER_SECONDS = 20.0
MAX_ERROR_RATIO = 0.02
MAX_TTFT_P95 = 0.6
# The sequential guard reads counters, not a quantile: ModelRelease also guards the share
# of requests slower than the first TTFT bucket bound at or above MAX_TTFT_P95 (vLLM's
# bounds: 0.5, 0.75). More than 5% above 0.75 s puts the p95 above 0.75 s > 0.6 s, so the
# guard rolls back only a version the p95 check would also fail on the same requests.
SLOW_TTFT_BOUND = "0.75"
SLOW_TTFT_MAX_SHARE = 0.05
FLAGGER_VERSION = "v1.44.0"
# Flagger's HTTP port (metrics, health), one per Flagger process from this one up.
FLAGGER_FIRST_PORT = int(os.environ.get("FLAGGER_PORT", "18081"))
ARGO_ROLLOUTS_VERSION = "v1.10.2"
# Argo Rollouts' metrics and health ports, two per controller process from this one up.
ARGO_ROLLOUTS_FIRST_PORT = int(os.environ.get("ARGO_ROLLOUTS_PORT", "18281"))
POLL_SECONDS = 0.5
RECORD_LOCK = threading.Lock()

HEALTHY: Manifest = {"errorRatio": 0.0, "ttft": {"p50": 0.1, "p95": 0.3}}
SLOW_TTFT = {"p50": 0.4, "p95": 1.2}


@dataclass(frozen=True)
class Fault:
    name: str
    behaviour: Manifest
    faulty: bool
    description: str
    # What a user suffers: "failed" requests, or every request the bad version "served"
    # (a slow first token is not an error, but each of them is a worse answer).
    harm: str = "failed"


FAULTS = {
    f.name: f
    for f in (
        Fault(
            "errors-20",
            {**HEALTHY, "after": {"seconds": FAULT_AFTER_SECONDS, "errorRatio": 0.2}},
            True,
            "0% -> 20% errors",
        ),
        Fault(
            "errors-3",
            {
                **HEALTHY,
                "errorRatio": 0.01,
                "after": {"seconds": FAULT_AFTER_SECONDS, "errorRatio": 0.03},
            },
            True,
            "1% -> 3% errors",
        ),
        Fault(
            "latency",
            {**HEALTHY, "after": {"seconds": FAULT_AFTER_SECONDS, "ttft": SLOW_TTFT}},
            True,
            "TTFT p95 0.3 s -> 1.2 s",
            harm="served",
        ),
        Fault("healthy", HEALTHY, False, "healthy"),
    )
}


@dataclass(frozen=True)
class ArgoSetting:
    """An Argo Rollouts canary: setWeight/pause steps and a background analysis."""

    weights: tuple[int, ...]
    pause_seconds: int
    interval_seconds: int  # the analysis' measurement interval
    failure_limit: int  # failed measurements tolerated (the analysis fails on one more)
    starting_step: int = 0  # the step index the background analysis starts at

    def describe(self) -> str:
        start = f", analysis from step {self.starting_step}" if self.starting_step else ""
        return (
            f"interval {self.interval_seconds}s, failureLimit {self.failure_limit}, steps"
            f" {self.weights[0]}..{self.weights[-1]}% every {self.pause_seconds}s{start}"
        )


@dataclass(frozen=True)
class Setting:
    name: str
    step_weight: int
    max_weight: int
    step_seconds: int  # how long a step holds; Flagger's interval
    flagger_threshold: int
    modelrelease_interval: int
    modelrelease_failure_limit: int
    argo: ArgoSetting

    @property
    def weights(self) -> list[int]:
        return list(range(self.step_weight, self.max_weight + 1, self.step_weight))

    def describe(self, tool: str) -> str:
        steps = f"steps {self.step_weight}..{self.max_weight}% every {self.step_seconds}s"
        if tool == "flagger":
            return f"interval {self.step_seconds}s, threshold {self.flagger_threshold}, {steps}"
        if tool == "argo-rollouts":
            return self.argo.describe()
        return (
            f"interval {self.modelrelease_interval}s, failureLimit"
            f" {self.modelrelease_failure_limit}, {steps}"
        )

    def timeout(self, tool: str = "") -> float:
        """Longest a run may take: every step, every tolerated failure, and start-up."""
        if tool == "argo-rollouts":
            argo = self.argo
            before_analysis = argo.starting_step // 2 * argo.pause_seconds
            steps = len(argo.weights) * argo.pause_seconds
            failures = (argo.failure_limit + 2) * argo.interval_seconds
            return float(max(steps, before_analysis + failures) + 240)
        checks = len(self.weights) + self.flagger_threshold + 4
        return float(checks * self.step_seconds + 240)


SETTINGS = {
    "matched": Setting(
        "matched", 10, 50, 10, 2, 10, 1, ArgoSetting((10, 20, 30, 40, 50), 10, 10, 1)
    ),
    # Argo Rollouts' own documented example of a background analysis (docs/features/
    # analysis.md of v1.10.2): 20% more every 10 minutes, a measurement every 5 minutes,
    # failureLimit 3, the analysis starting at step 2 (setWeight 40).
    "defaults": Setting(
        "defaults", 2, 50, 60, 10, 30, 0, ArgoSetting((20, 40, 60, 80), 600, 300, 3, 2)
    ),
}
TOOLS = ("modelrelease", "flagger", "argo-rollouts")


# --- results (pure) ----------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    tool: str
    setting: str
    fault: str
    outcome: str  # "rolled back", "promoted", "timeout" or "error: ..."
    seconds: float | None  # fault -> weight 0, or apply -> promotion (healthy)
    bad_requests: int = 0  # user requests the challenger served after the fault started
    failed_requests: int = 0  # of them, failed
    early: bool = False  # rolled back before its fault started (or healthy and rolled back)


@dataclass(frozen=True)
class Row:
    setting: str
    fault: str
    tool: str
    runs: int
    rolled_back: int
    promoted: int
    false_rollbacks: int
    seconds_p50: float | None
    seconds_p95: float | None
    bad_p50: float | None
    failed_p50: float | None
    failed_max: int | None


def aggregate(runs: Iterable[Run]) -> list[Row]:
    """One row per setting, fault and tool, in the order of SETTINGS, FAULTS and TOOLS."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.setting, run.fault, run.tool), []).append(run)
    order = {name: i for names in (SETTINGS, FAULTS, TOOLS) for i, name in enumerate(names)}
    rows = []
    for (setting, fault, tool), group in sorted(
        groups.items(), key=lambda item: tuple(order.get(name, 99) for name in item[0])
    ):
        healthy = not FAULTS[fault].faulty
        wanted = "promoted" if healthy else "rolled back"
        timed = [r.seconds for r in group if r.outcome == wanted and not r.early and r.seconds]
        judged = [r for r in group if r.outcome in ("rolled back", "promoted")]
        rows.append(
            Row(
                setting=setting,
                fault=fault,
                tool=tool,
                runs=len(group),
                rolled_back=sum(r.outcome == "rolled back" for r in group),
                promoted=sum(r.outcome == "promoted" for r in group),
                false_rollbacks=sum(r.early for r in group),
                seconds_p50=statistics.median(timed) if timed else None,
                seconds_p95=percentile(timed, 0.95) if timed else None,
                bad_p50=statistics.median(r.bad_requests for r in judged) if judged else None,
                failed_p50=statistics.median(r.failed_requests for r in judged) if judged else None,
                failed_max=max((r.failed_requests for r in judged), default=None),
            )
        )
    return rows


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.1f}{unit}" if unit else f"{value:.0f}"


def markdown(rows: Sequence[Row], settings: Mapping[str, Setting]) -> str:
    lines = [
        "| setting | fault | tool | runs | rolled back / promoted | false rollbacks"
        " | fault to weight 0 (healthy: to promotion) p50 | p95"
        " | requests to the bad version p50 | failed p50 | failed max |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        setting = settings[row.setting].describe(row.tool) if row.setting in settings else ""
        healthy = not FAULTS[row.fault].faulty
        lines.append(
            f"| {row.setting} ({setting}) | {FAULTS[row.fault].description} | {row.tool}"
            f" | {row.runs} | {row.rolled_back} / {row.promoted} | {row.false_rollbacks}"
            f" | {_number(row.seconds_p50, ' s')} | {_number(row.seconds_p95, ' s')}"
            f" | {'-' if healthy else _number(row.bad_p50)}"
            f" | {'-' if healthy else _number(row.failed_p50)}"
            f" | {'-' if healthy else _number(row.failed_max)} |"
        )
    return "\n".join(lines)


PEER_NAMES = {"flagger": "Flagger", "argo-rollouts": "Argo Rollouts"}


def target_verdicts(rows: Sequence[Row], peer: str = "flagger") -> list[str]:
    """Issue 13's targets against one peer, one line each: met, missed, or not measured.

    At the defaults, ModelRelease's failed user requests (median; for the latency fault
    the requests its slow version served) are at most a tenth of the peer's on every
    fault; at matched settings they are no more than the peer's and there are no more
    false rollbacks. The issue sets them against Flagger; Argo Rollouts gets the same.
    """
    by_key = {(r.setting, r.fault, r.tool): r for r in rows}
    them = PEER_NAMES.get(peer, peer)
    possessive = them + ("'" if them.endswith("s") else "'s")
    against = "" if peer == "flagger" else f" (against {them})"
    lines = []
    for setting, fault in dict.fromkeys((r.setting, r.fault) for r in rows):
        ours = by_key.get((setting, fault, "modelrelease"))
        theirs = by_key.get((setting, fault, peer))
        where = f"{setting}, {FAULTS[fault].description}{against}"
        if ours is None or theirs is None:
            lines.append(f"- {where}: not measured for both tools")
            continue
        if not (ours.rolled_back + ours.promoted) or not (theirs.rolled_back + theirs.promoted):
            lines.append(f"- {where}: no finished run for both tools")
            continue
        problems = []
        if FAULTS[fault].faulty:
            harm = FAULTS[fault].harm
            mine, other = (
                (ours.failed_p50, theirs.failed_p50)
                if harm == "failed"
                else (ours.bad_p50, theirs.bad_p50)
            )
            if mine is None or other is None:
                lines.append(f"- {where}: no finished run for both tools")
                continue
            limit = other / 10 if setting == "defaults" else other
            if mine > limit:
                rule = "a tenth of" if setting == "defaults" else "no more than"
                problems.append(
                    f"{harm} requests {mine:.0f}, wanted {rule} {possessive} {other:.0f}"
                )
        if setting != "defaults" and ours.false_rollbacks > theirs.false_rollbacks:
            problems.append(
                f"false rollbacks {ours.false_rollbacks}, {them} {theirs.false_rollbacks}"
            )
        lines.append(f"- {where}: " + ("MISSED: " + "; ".join(problems) if problems else "met"))
    return lines


def read_runs(lines: Iterable[str]) -> list[Run]:
    """Runs recorded with --record, one JSON object a line (blank lines skipped)."""
    return [Run(**json.loads(line)) for line in lines if line.strip()]


def fault_start(pods: Iterable[Manifest], revision: str) -> float | None:
    """When the fault starts: the revision's first pod to be Ready, plus the fault delay."""
    ready = [
        pod.ready_since
        for pod in map(pod_from_object, pods)
        if pod.revision == revision and pod.ready_since is not None
    ]
    return min(ready) + FAULT_AFTER_SECONDS if ready else None


def flagger_phase(canary: Manifest) -> str:
    """`rolled back`, `promoted` or "" (still going) from a Flagger Canary's status."""
    phase = (canary.get("status") or {}).get("phase", "")
    return {"Failed": "rolled back", "Succeeded": "promoted"}.get(phase, "")


def modelrelease_phase(obj: Manifest, version: str) -> str:
    status = obj.get("status") or {}
    if status.get("phase") == "RolledBack":
        return "rolled back"
    return "promoted" if champion_is(version)(obj) else ""


# --- the tools -----------------------------------------------------------------------------
class Tool(Protocol):
    name: str

    def setup(self, scenario: Scenario, setting: Setting, index: int) -> None: ...

    def release(self, scenario: Scenario, setting: Setting, version: str, fault: Fault) -> str:
        """Apply a new version; its revision label once the tool is rolling it out."""
        ...

    def outcome(self, scenario: Scenario, version: str) -> str: ...

    def canary_weight(self, scenario: Scenario) -> int:
        """The challenger's weight in the route the tool writes."""
        ...

    def teardown(self, scenario: Scenario) -> None: ...


def get_json(*args: str) -> Manifest:
    out = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(out) if out else {}


def canary_phase(namespace: str) -> str:
    return str(get_json("canary", NAME, "-n", namespace).get("status", {}).get("phase", ""))


class ModelReleaseTool:
    name = "modelrelease"

    def manifest(
        self, scenario: Scenario, setting: Setting, version: str, fault: Fault
    ) -> Manifest:
        steps = [{"weight": w, "duration": f"{setting.step_seconds}s"} for w in setting.weights]
        # A stage holds at most MAX_CANARY_STEPS steps: the defaults' 25 take two stages.
        stages = [
            {"canary": {"steps": steps[i : i + MAX_CANARY_STEPS]}}
            for i in range(0, len(steps), MAX_CANARY_STEPS)
        ]
        limit = setting.modelrelease_failure_limit
        slos = [
            error_ratio_slo(MAX_ERROR_RATIO, limit, min_requests=0),
            ttft_slo(MAX_TTFT_P95, limit),
            slow_ttft_slo(SLOW_TTFT_BOUND, SLOW_TTFT_MAX_SHARE, limit),
        ]
        manifest = release(
            scenario.namespace,
            NAME,
            version,
            fault.behaviour,
            stages,
            slos,
            interval=f"{setting.modelrelease_interval}s",
        )
        # No GPU limits for either tool: eight scenarios at once would need more than the
        # local cluster's eight GPUs, and GPU capacity is not what is compared here.
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            container.pop("resources", None)
        return manifest

    def setup(self, scenario: Scenario, setting: Setting, index: int) -> None:
        scenario.up()
        apply(self.manifest(scenario, setting, "1.0.0", FAULTS["healthy"]))
        Watch(scenario, quiet=True).until(champion_is("1.0.0"), 180, "the champion")

    def release(self, scenario: Scenario, setting: Setting, version: str, fault: Fault) -> str:
        apply(self.manifest(scenario, setting, version, fault))
        obj = Watch(scenario, quiet=True).until(
            lambda o: (
                ((o.get("status") or {}).get("challenger") or {}).get("modelVersion") == version
                and bool(o["status"]["challenger"].get("revision"))
            ),
            180,
            "the challenger starting",
        )
        return str(obj["status"]["challenger"]["revision"])

    def canary_weight(self, scenario: Scenario) -> int:
        return scenario.route_weights().get(CANARY_BACKEND, 0)

    def outcome(self, scenario: Scenario, version: str) -> str:
        return modelrelease_phase(scenario.get(), version)

    def teardown(self, scenario: Scenario) -> None:
        scenario.down()


def revision_label(version: str) -> str:
    return "v" + version.replace(".", "-")


def pod_template(version: str, fault: Fault) -> Manifest:
    """The model server's pods as the peers deploy them (no GPU limits, like ModelRelease's)."""
    labels = {"app": NAME, RELEASE_LABEL: NAME, REVISION_LABEL: revision_label(version)}
    return {
        "metadata": {
            "labels": labels,
            "annotations": {BEHAVIOUR_ANNOTATION: json.dumps(fault.behaviour)},
        },
        "spec": {
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "args": ["--model", f"/models/chat-8b/{version}"],
                    "ports": [{"containerPort": 8000}],
                }
            ]
        },
    }


class FlaggerTool:
    name = "flagger"

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def deployment(self, scenario: Scenario, version: str, fault: Fault) -> Manifest:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": scenario.namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": NAME}},
                "template": pod_template(version, fault),
            },
        }

    def metric_templates(self, namespace: str) -> list[Manifest]:
        # The built-in vllm-error-ratio and TTFT queries, with Flagger's canary pods
        # (<target>-<hash>-<id>; the primary's are <target>-primary-...) instead of a revision.
        pods = 'namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-z]+-[0-9a-z]+"'
        queries = {
            "vllm-error-ratio": (
                f'(sum(rate(http_requests_total{{{pods},status=~"5.."}}[{{{{ interval }}}}]))'
                f" or vector(0)) / sum(rate(http_requests_total{{{pods}}}[{{{{ interval }}}}]))"
            ),
            "vllm-ttft-p95": (
                "histogram_quantile(0.95, sum by (le) (rate("
                f"vllm:time_to_first_token_seconds_bucket{{{pods}}}[{{{{ interval }}}}])))"
            ),
        }
        return [
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "MetricTemplate",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"provider": {"type": "prometheus", "address": PROMETHEUS}, "query": q},
            }
            for name, q in queries.items()
        ]

    def canary(self, namespace: str, setting: Setting) -> Manifest:
        interval = f"{setting.step_seconds}s"
        return {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": NAME, "namespace": namespace},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                "progressDeadlineSeconds": 180,
                "service": {
                    "port": 8000,
                    "gatewayRefs": [{"name": "inference-gateway", "namespace": namespace}],
                },
                "analysis": {
                    "interval": interval,
                    "threshold": setting.flagger_threshold,
                    "maxWeight": setting.max_weight,
                    "stepWeight": setting.step_weight,
                    "metrics": [
                        {
                            "name": "error-ratio",
                            "templateRef": {"name": "vllm-error-ratio"},
                            "thresholdRange": {"max": MAX_ERROR_RATIO},
                            "interval": interval,
                        },
                        {
                            "name": "ttft-p95",
                            "templateRef": {"name": "vllm-ttft-p95"},
                            "thresholdRange": {"max": MAX_TTFT_P95},
                            "interval": interval,
                        },
                    ],
                },
            },
        }

    def setup(self, scenario: Scenario, setting: Setting, index: int) -> None:
        namespace = scenario.namespace
        scenario.fresh_namespace()
        scenario.stop_processes()
        scenario.start(
            "flagger",
            [str(self.binary), "-kubeconfig", KUBECONFIG, "-namespace", namespace,
             "-mesh-provider", "gatewayapi:v1", "-metrics-server", PROMETHEUS,
             "-port", str(FLAGGER_FIRST_PORT + index), "-log-level", "info",
             "-zap-encoding", "console"],
        )  # fmt: skip
        scenario.start_simulator()
        for template in self.metric_templates(namespace):
            apply(template)
        apply(self.deployment(scenario, "1.0.0", FAULTS["healthy"]))
        apply(self.canary(namespace, setting))
        wait_for(
            lambda: canary_phase(namespace) == "Initialized",
            240,
            f"{namespace}: Flagger initializing the canary",
            interval=1.0,
        )
        # The simulator's entry point: the HTTPRoute Flagger made (Flagger keeps it).
        kubectl(
            "annotate",
            "--overwrite",
            "-n",
            namespace,
            f"httproute/{NAME}",
            f"{RATE}={scenario.rate}",
        )

    def release(self, scenario: Scenario, setting: Setting, version: str, fault: Fault) -> str:
        apply(self.deployment(scenario, version, fault))
        wait_for(
            lambda: canary_phase(scenario.namespace) == "Progressing",
            max(180.0, 3.0 * setting.step_seconds),
            f"{scenario.namespace}: Flagger starting the canary",
            interval=1.0,
        )
        return revision_label(version)

    def canary_weight(self, scenario: Scenario) -> int:
        return scenario.route_weights().get(CANARY_BACKEND, 0)

    def outcome(self, scenario: Scenario, version: str) -> str:
        return flagger_phase(get_json("canary", NAME, "-n", scenario.namespace))

    def teardown(self, scenario: Scenario) -> None:
        kubectl("delete", "canary", "--all", "-n", scenario.namespace, "--timeout=60s", check=False)
        scenario.stop_processes()
        kubectl("delete", "namespace", scenario.namespace, "--wait=false", check=False)


def argo_phase(rollout: Manifest, pod_hash: str) -> str:
    """`rolled back`, `promoted` or "" for the Rollout's revision with this pod hash."""
    status = rollout.get("status") or {}
    if status.get("currentPodHash") != pod_hash:
        return ""
    if status.get("abort"):
        return "rolled back"
    return "promoted" if status.get("stableRS") == pod_hash else ""


class ArgoRolloutsTool:
    """Argo Rollouts' controller with its built-in Istio traffic routing.

    The Gateway API traffic-router plugin is not used: the Go module proxy refuses
    github.com/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi (403 for its
    version list and for every version tried), so the canary's weight lives in an
    Istio VirtualService, which the simulator follows like an HTTPRoute.
    """

    name = "argo-rollouts"

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.pod_hashes: dict[str, str] = {}  # namespace -> the revision under release

    def services(self, namespace: str) -> list[Manifest]:
        # Argo Rollouts adds the pod-template-hash of each side to these selectors.
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "selector": {"app": NAME},
                    "ports": [{"name": "http", "port": 8000, "targetPort": 8000}],
                },
            }
            for name in (STABLE_BACKEND, CANARY_BACKEND)
        ]

    def virtual_service(self, scenario: Scenario) -> Manifest:
        """The route Argo Rollouts writes the weights of; the simulator's entry point."""
        return {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "VirtualService",
            "metadata": {
                "name": NAME,
                "namespace": scenario.namespace,
                "annotations": {RATE: str(scenario.rate)},
            },
            "spec": {
                "hosts": [NAME],
                "http": [
                    {
                        "name": "primary",
                        "route": [
                            {"destination": {"host": STABLE_BACKEND}, "weight": 100},
                            {"destination": {"host": CANARY_BACKEND}, "weight": 0},
                        ],
                    }
                ],
            },
        }

    def analysis_template(self, namespace: str, setting: Setting) -> Manifest:
        # The built-in vllm-error-ratio and TTFT queries over the canary's pods, which
        # Argo Rollouts names <rollout>-<pod-template-hash>-<id>.
        argo = setting.argo
        window = f"{argo.interval_seconds}s"
        pods = f'namespace="{namespace}",pod=~"{NAME}-{{{{args.canary-hash}}}}-[0-9a-z]+"'
        queries = {
            "error-ratio": (
                f'(sum(rate(http_requests_total{{{pods},status=~"5.."}}[{window}]))'
                f" or vector(0)) / sum(rate(http_requests_total{{{pods}}}[{window}]))",
                MAX_ERROR_RATIO,
            ),
            "ttft-p95": (
                "histogram_quantile(0.95, sum by (le) (rate("
                f"vllm:time_to_first_token_seconds_bucket{{{pods}}}[{window}])))",
                MAX_TTFT_P95,
            ),
        }
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "vllm", "namespace": namespace},
            "spec": {
                "args": [{"name": "canary-hash"}],
                "metrics": [
                    {
                        "name": name,
                        "interval": window,
                        "failureLimit": argo.failure_limit,
                        # No answers yet (an empty vector, or 0/0) is no evidence of a fault:
                        # the pattern of Argo Rollouts' docs ("NaN and Infinity").
                        "successCondition": (
                            f"len(result) == 0 || isNaN(result[0]) || result[0] <= {limit}"
                        ),
                        "provider": {"prometheus": {"address": PROMETHEUS, "query": query}},
                    }
                    for name, (query, limit) in queries.items()
                ],
            },
        }

    def rollout(self, namespace: str, setting: Setting, version: str, fault: Fault) -> Manifest:
        argo = setting.argo
        steps: list[Manifest] = []
        for weight in argo.weights:
            steps += [{"setWeight": weight}, {"pause": {"duration": f"{argo.pause_seconds}s"}}]
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": NAME, "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": NAME}},
                "template": pod_template(version, fault),
                "strategy": {
                    "canary": {
                        "canaryService": CANARY_BACKEND,
                        "stableService": STABLE_BACKEND,
                        "trafficRouting": {
                            "istio": {"virtualService": {"name": NAME, "routes": ["primary"]}}
                        },
                        "analysis": {
                            "templates": [{"templateName": "vllm"}],
                            "startingStep": argo.starting_step,
                            "args": [
                                {
                                    "name": "canary-hash",
                                    "valueFrom": {"podTemplateHashValue": "Latest"},
                                }
                            ],
                        },
                        "steps": steps,
                    }
                },
            },
        }

    def get(self, namespace: str) -> Manifest:
        return get_json("rollout", NAME, "-n", namespace)

    def setup(self, scenario: Scenario, setting: Setting, index: int) -> None:
        namespace = scenario.namespace
        scenario.fresh_namespace()
        scenario.stop_processes()
        port = ARGO_ROLLOUTS_FIRST_PORT + 2 * index
        scenario.start(
            "argo-rollouts",
            [str(self.binary), "--kubeconfig", KUBECONFIG, "--namespaced", "--namespace",
             namespace, "--leader-elect=false", "--metricsPort", str(port),
             "--healthzPort", str(port + 1), "--loglevel", "info"],
        )  # fmt: skip
        scenario.start_simulator()
        for manifest in [
            *self.services(namespace),
            self.virtual_service(scenario),
            self.analysis_template(namespace, setting),
            self.rollout(namespace, setting, "1.0.0", FAULTS["healthy"]),
        ]:
            apply(manifest)

        def stable() -> bool:
            status = self.get(namespace).get("status") or {}
            return bool(status.get("stableRS")) and status.get("phase") == "Healthy"

        wait_for(stable, 240, f"{namespace}: Argo Rollouts making 1.0.0 stable", interval=1.0)

    def release(self, scenario: Scenario, setting: Setting, version: str, fault: Fault) -> str:
        namespace = scenario.namespace
        before = (self.get(namespace).get("status") or {}).get("currentPodHash", "")
        apply(self.rollout(namespace, setting, version, fault))

        def started() -> str:
            status = self.get(namespace).get("status") or {}
            pod_hash = str(status.get("currentPodHash") or "")
            return pod_hash if pod_hash not in ("", before) else ""

        wait_for(started, 180, f"{namespace}: Argo Rollouts starting the canary", interval=1.0)
        self.pod_hashes[namespace] = started()
        return revision_label(version)

    def outcome(self, scenario: Scenario, version: str) -> str:
        phase = argo_phase(self.get(scenario.namespace), self.pod_hashes[scenario.namespace])
        # An abort is done once the route sends the canary nothing.
        if phase == "rolled back" and self.canary_weight(scenario) > 0:
            return ""
        return phase

    def canary_weight(self, scenario: Scenario) -> int:
        service = get_json("virtualservice", NAME, "-n", scenario.namespace)
        weights = {
            str(route.get("destination", {}).get("host")): int(route.get("weight", 0))
            for route in (service.get("spec", {}).get("http") or [{}])[0].get("route", [])
        }
        return weights.get(CANARY_BACKEND, 0)

    def teardown(self, scenario: Scenario) -> None:
        scenario.stop_processes()
        kubectl("delete", "namespace", scenario.namespace, "--wait=false", check=False)


# --- one run --------------------------------------------------------------------------------
@dataclass
class Counter:
    """The revision's user requests, total and failed, at one moment."""

    total: int = 0
    failed: int = 0

    @classmethod
    def read(cls, scenario: Scenario, revision: str) -> Counter:
        if not scenario.stats_file.exists():
            return cls()
        stats = read_stats(scenario.stats_file)
        return cls(served(stats, revision), served(stats, revision, outcome="error"))


def one_run(tool: Tool, scenario: Scenario, setting: Setting, fault: Fault, number: int) -> Run:
    version = f"2.{number}.0"
    applied_at = time.time()
    revision = tool.release(scenario, setting, version, fault)
    deadline = time.monotonic() + setting.timeout(tool.name)
    fault_at: float | None = None
    at_fault: Counter | None = None
    weight_zero_since: float | None = None
    while time.monotonic() < deadline:
        now = time.time()
        if fault.faulty and fault_at is None:
            pods = get_json("pods", "-n", scenario.namespace).get("items", [])
            fault_at = fault_start(pods, revision)
        if fault_at is not None and at_fault is None and now >= fault_at:
            at_fault = Counter.read(scenario, revision)
        weight = tool.canary_weight(scenario)
        if weight > 0:
            weight_zero_since = None
        elif weight_zero_since is None:
            weight_zero_since = now
        outcome = tool.outcome(scenario, version)
        if outcome:
            time.sleep(2)  # the stats file is rewritten every second
            final = Counter.read(scenario, revision)
            if not fault.faulty:
                seconds = now - applied_at if outcome == "promoted" else None
                return Run(tool.name, setting.name, fault.name, outcome, seconds,
                           early=outcome == "rolled back")  # fmt: skip
            zero_at = weight_zero_since if weight_zero_since is not None else now
            early = outcome == "rolled back" and (fault_at is None or zero_at < fault_at)
            start = at_fault or final
            return Run(
                tool.name,
                setting.name,
                fault.name,
                outcome,
                zero_at - fault_at if fault_at is not None and not early else None,
                bad_requests=final.total - start.total,
                failed_requests=final.failed - start.failed,
                early=early,
            )
        time.sleep(POLL_SECONDS)
    return Run(tool.name, setting.name, fault.name, "timeout", None)


@dataclass
class Lane:
    """One tool, setting and fault in its own namespace: set-up, N runs, tear-down."""

    tool: Tool
    setting: Setting
    fault: Fault
    runs: int
    index: int
    record: Path | None = None
    results: list[Run] = field(default_factory=list)

    def keep(self, run: Run) -> None:
        self.results.append(run)
        if self.record is not None:
            with RECORD_LOCK, self.record.open("a") as stream:
                stream.write(json.dumps(dataclasses.asdict(run)) + "\n")

    def __call__(self) -> None:
        namespace = f"peers-{self.tool.name[:2]}-{self.setting.name[:3]}-{self.fault.name}"
        scenario = Scenario(namespace=namespace, name=NAME)
        try:
            self.tool.setup(scenario, self.setting, self.index)
            for number in range(1, self.runs + 1):
                run = one_run(self.tool, scenario, self.setting, self.fault, number)
                print(f"  {namespace} run {number}: {run}", flush=True)
                self.keep(run)
        except (Exception, SystemExit) as error:
            print(f"  {namespace}: stopped: {error}", flush=True)
            self.keep(
                Run(self.tool.name, self.setting.name, self.fault.name, f"error: {error}", None)
            )
        finally:
            self.tool.teardown(scenario)


def plan(
    settings: Sequence[str], faults: Sequence[str], runs: int, default_runs: int
) -> list[tuple[str, str, int]]:
    """(setting, fault, runs) per lane. A healthy release at the defaults takes 25
    one-minute steps with either tool, so it runs once whatever `default_runs` says."""
    lanes = []
    for setting in settings:
        for fault in faults:
            count = runs if setting != "defaults" else default_runs
            if setting == "defaults" and not FAULTS[fault].faulty:
                count = min(count, 1)
            lanes.append((setting, fault, count))
    return lanes


def argo_rollouts_binary() -> Path:
    path = CACHE / "bin" / f"rollouts-controller-{ARGO_ROLLOUTS_VERSION}"
    if not path.exists():
        sys.exit(f"{path} is missing: run `hack/tools.sh argo-rollouts` (or `make bench-peers`)")
    return path


def flagger_binary() -> Path:
    path = CACHE / "bin" / f"flagger-{FLAGGER_VERSION}"
    if not path.exists():
        sys.exit(f"{path} is missing: run `hack/tools.sh flagger` (or `make bench-peers`)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per fault at matched settings (default 3)"
    )
    parser.add_argument(
        "--default-runs", type=int, default=2, help="runs per fault at the defaults (default 2)"
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    parser.add_argument("--settings", default="matched,defaults", help="comma-separated")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 run, matched settings, errors-20"
    )
    parser.add_argument(
        "--record", type=Path, default=None, help="append every run to this file (JSON lines)"
    )
    parser.add_argument(
        "--table",
        type=Path,
        nargs="+",
        default=None,
        help="run nothing: print the table of the runs recorded in these files",
    )
    args = parser.parse_args()
    if args.table:
        report([run for path in args.table for run in read_runs(path.read_text().splitlines())])
        return
    if args.quick:
        args.runs, args.settings, args.faults = 1, "matched", "errors-20,healthy"
        args.default_runs = 1
    tools: dict[str, Tool] = {"modelrelease": ModelReleaseTool()}
    if "flagger" in args.tools.split(","):
        tools["flagger"] = FlaggerTool(flagger_binary())
        kubectl("apply", "--server-side", "--force-conflicts", "-f",
                str(CACHE / "crds" / "flagger.yaml"))  # fmt: skip
    if "argo-rollouts" in args.tools.split(","):
        tools["argo-rollouts"] = ArgoRolloutsTool(argo_rollouts_binary())
        kubectl("apply", "--server-side", "--force-conflicts", "-f",
                str(CACHE / "crds" / "argo-rollouts.yaml"))  # fmt: skip
    versions = kubectl("version", "-o", "json", check=False)
    server = json.loads(versions).get("serverVersion", {}).get("gitVersion") if versions else "?"
    print(f"Kubernetes {server}, Flagger {FLAGGER_VERSION}, Argo Rollouts {ARGO_ROLLOUTS_VERSION}")
    results: list[Run] = []
    for tool_name in args.tools.split(","):
        # Every setting and fault of one tool at once, each in its own namespace.
        lanes = [
            Lane(tools[tool_name], SETTINGS[s], FAULTS[f], runs, index, args.record)
            for index, (s, f, runs) in enumerate(
                plan(args.settings.split(","), args.faults.split(","), args.runs, args.default_runs)
            )
        ]
        for setting_name in args.settings.split(","):
            print(
                f"{tool_name}, {setting_name}: {SETTINGS[setting_name].describe(tool_name)}",
                flush=True,
            )
        threads = [threading.Thread(target=lane, name=str(i)) for i, lane in enumerate(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results.extend(run for lane in lanes for run in lane.results)
    report(results)


def report(results: Sequence[Run]) -> None:
    rows = aggregate(results)
    print()
    print(markdown(rows, SETTINGS))
    print()
    print("Targets (issue 13):")
    measured = {row.tool for row in rows}
    for peer in PEER_NAMES:
        if peer in measured:
            print("\n".join(target_verdicts(rows, peer)))


if __name__ == "__main__":
    main()
