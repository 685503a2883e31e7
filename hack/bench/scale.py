"""Scale: what one operator replica costs, and how timely it is, with hundreds of releases.

For each N in ``--releases`` it creates, in a fresh namespace ``bench-scale-<N>``, N
ModelReleases of one replica each (pods without GPUs, so kwok's nodes hold them), each with
its own Gateway API HTTPRoute and one SLO checked against the real Prometheus every 30 s,
then runs the operator as a process under its own identity (``operator.kubeconfig``, user
``modelrelease-operator``) and measures, from outside:

- the first reconcile: from the operator's start until every release is Succeeded with its
  first version;
- at rest (a window after that): the operator's API requests per release per minute by verb
  and its status writes per minute, counted from the API server's audit log;
- after a restart: while the operator is stopped every release's generation is bumped (a
  no-op spec edit, ``revisionHistoryLimit``); the time from the new process' start until
  every release's ``status.observedGeneration`` has caught up, and the 429s meanwhile;
- in flight: a new version for every release at once, one canary step of 10 s at 50%:
  the time from the start of the patches until every release has promoted it, with the
  requests and status writes per minute meanwhile;
- the operator's RSS and CPU seconds per minute in each phase (``/proc/<pid>``);
- tick lateness, from the status the operator writes (watched by this script): an SLO
  check is due one interval after ``max(stepStartTime, the previous checks' time)`` (the
  rule of ``core/slos.py`` ``checks_due``) and its lateness is its ``checks[].time`` minus
  that; a stage's (last) step end is due at ``max(stepStartTime + duration + heldSeconds,
  the first passing check after the step started)`` and its lateness is the moment the
  watch sees the stage in ``stagesPassed`` minus that (status keeps no time for it, so the
  watch's own delay is in it).

Needs the local cluster up with the audit log, the scale limits and room for 2N pods
(110 per kwok node); `make bench-scale` brings one up like that:

    MODELRELEASE_AUDIT=1 MODELRELEASE_SCALE=1 CPU_NODES=20 hack/local-cluster.sh up
    .venv/bin/python hack/bench/scale.py --releases 100,300,1000
    .venv/bin/python hack/bench/scale.py --quick          # 20 releases, short windows

Prints one markdown table (rows: figures, columns: N); ``--record`` appends it with the
command to docs/benchmarks.md under "Scale".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kubernetes import client, watch
from kubernetes import config as kube_config

from hack.bench.audit import Tally, Window, read_requests, tally
from hack.bench.time_to_rollback import percentile
from hack.scenario import (
    KUBECONFIG,
    ROOT,
    STATE,
    Manifest,
    Scenario,
    http_route,
    kubectl,
    release,
)
from tests.waiting import wait_for

GROUP, VERSION, PLURAL = "modelrelease.dev", "v1alpha1", "modelreleases"
ROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")
OPERATOR_USER = "modelrelease-operator"
OPERATOR_KUBECONFIG = STATE / "operator.kubeconfig"
AUDIT_LOG = STATE / "audit.log"
INTERVAL_SECONDS = 30.0
STEP_SECONDS = 10.0
CANARY_WEIGHT = 50
# Templated like a real SLO (so the operator renders it per revision) but always a value:
# the operator's cost is the query, not the simulated traffic behind it.
PROBE_QUERY = 'sum(up{namespace="{{namespace}}",revision="{{revision}}"}) or vector(0)'
PODS_PER_RELEASE_IN_FLIGHT = 2  # one replica each of champion and challenger
CLIENT_THREADS = 8
RECORD_HEADING = "## Scale"
CLEAN_UP_SECONDS = 180.0


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


# --- pure: status timestamps and /proc --------------------------------------------------------


def timestamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _check_times(status: Manifest) -> set[datetime]:
    return {t for c in status.get("checks") or [] if (t := timestamp(c.get("time")))}


def _first_pass_after(statuses: Iterable[Manifest], start: datetime) -> datetime | None:
    passed = [
        t
        for status in statuses
        for c in status.get("checks") or []
        if c.get("verdict") == "Pass" and (t := timestamp(c.get("time"))) and t > start
    ]
    return min(passed, default=None)


@dataclass(frozen=True)
class Lateness:
    checks: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)


def lateness(
    before: Manifest, after: Manifest, interval: float, step: float, seen_at: datetime
) -> Lateness:
    """How late the checks and the stage end that `after` (seen at `seen_at`) shows first,
    relative to `before`, the release's previous status, started: by the due rules of the
    module's docstring, in seconds."""
    found = Lateness()
    ended = before.get("currentStage") or {}
    stage = after.get("currentStage") or ended
    step_start = timestamp(stage.get("stepStartTime"))
    if step_start is None:
        return found
    earlier = _check_times(before)
    for moment in sorted(_check_times(after) - earlier):
        if moment <= step_start:
            continue
        since = max([step_start, *(t for t in earlier if t < moment)])
        found.checks.append((moment - since).total_seconds() - interval)
    ended_start = timestamp(ended.get("stepStartTime"))
    passed = len(after.get("stagesPassed") or []) > len(before.get("stagesPassed") or [])
    if passed and ended_start is not None:
        due = ended_start.timestamp() + step + float(ended.get("heldSeconds") or 0)
        first_pass = _first_pass_after((before, after), ended_start)
        if first_pass is not None:
            due = max(due, first_pass.timestamp())
        found.steps.append(seen_at.timestamp() - due)
    return found


def rss_mib(proc_status: str) -> float:
    """VmRSS from /proc/<pid>/status, in MiB."""
    for line in proc_status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError("no VmRSS line: the process has exited")


def cpu_seconds(proc_stat: str, ticks_per_second: float) -> float:
    """User plus system CPU time from /proc/<pid>/stat (fields 14 and 15, after the
    command name, which may itself hold spaces and parentheses)."""
    fields = proc_stat[proc_stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


@dataclass(frozen=True)
class Sample:
    at: float  # time.time()
    pid: int
    rss_mib: float
    cpu_seconds: float


@dataclass(frozen=True)
class Usage:
    rss_mean: float
    rss_peak: float
    cpu_per_minute: float


def usage(samples: Iterable[Sample], start: float, end: float) -> Usage | None:
    """RSS mean and peak, and CPU seconds per minute of wall time, over [start, end];
    each process (a restart makes a new one) counts its own CPU from its first sample."""
    inside = [s for s in samples if start <= s.at <= end]
    if len(inside) < 2:
        return None
    cpu = 0.0
    for pid in {s.pid for s in inside}:
        own = [s for s in inside if s.pid == pid]
        cpu += own[-1].cpu_seconds - own[0].cpu_seconds
    rss = [s.rss_mib for s in inside]
    wall = inside[-1].at - inside[0].at
    return Usage(sum(rss) / len(rss), max(rss), cpu / wall * 60 if wall > 0 else 0.0)


# --- the cluster side ---------------------------------------------------------------------------


def scale_release(namespace: str, name: str, version: str) -> Manifest:
    """One replica, no GPU, one 10 s canary step, one SLO every 30 s, its own HTTPRoute."""
    slo = {"name": "probe", "query": PROBE_QUERY, "max": 1, "failureLimit": 0}
    stages = [{"name": "canary", "canary": {"steps": [
        {"weight": CANARY_WEIGHT, "duration": f"{STEP_SECONDS:.0f}s"}]}}]  # fmt: skip
    manifest = release(
        namespace, name, version, {}, stages, [slo], interval=f"{INTERVAL_SECONDS:.0f}s",
        replicas=1,
    )  # fmt: skip
    spec = manifest["spec"]
    for container in spec["template"]["spec"]["containers"]:
        container.pop("resources", None)
    # Timed, not failed: a slow operator should show as late, not as rolled back.
    spec["progressDeadline"] = "15m"
    return manifest


class Releases:
    """Every release's latest object, kept by a watch (as the benchmark's own user), with
    the tick lateness of each status change."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.objects: dict[str, Manifest] = {}
        self.lateness = Lateness()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Releases:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def count(self, done: Callable[[Manifest], bool]) -> int:
        with self._lock:
            return sum(1 for obj in self.objects.values() if done(obj))

    def reset_lateness(self) -> None:
        with self._lock:
            self.lateness = Lateness()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listed = cast(
                    Manifest,
                    self._custom.list_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL
                    ),
                )
                with self._lock:
                    self.objects = {o["metadata"]["name"]: o for o in listed["items"]}
                version = listed["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    version = self._watch(version)
            except Exception as error:  # a relist mends an expired or broken watch
                if not self._stop.is_set():
                    log(f"release watch restarts: {error}")
                    self._stop.wait(1)

    def _watch(self, resource_version: str) -> str:
        """Events from `resource_version` for a minute; the last version seen."""
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self._custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
            PLURAL, resource_version=resource_version, timeout_seconds=60,
        )  # fmt: skip
        for event in stream:
            obj = event["object"]
            if event["type"] == "ERROR":
                raise RuntimeError(obj)
            self._observe(event["type"], obj)
            resource_version = obj["metadata"]["resourceVersion"]
            if self._stop.is_set():
                break
        return str(resource_version)

    def _observe(self, kind: str, obj: Manifest) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self.objects.pop(name, None)
                return
            before = (self.objects.get(name) or {}).get("status") or {}
            found = lateness(
                before, obj.get("status") or {}, INTERVAL_SECONDS, STEP_SECONDS, datetime.now(UTC)
            )
            self.lateness.checks.extend(found.checks)
            self.lateness.steps.extend(found.steps)
            self.objects[name] = obj


def reconciled(obj: Manifest) -> bool:
    status = obj.get("status") or {}
    return bool(status.get("observedGeneration") == obj["metadata"].get("generation"))


def champion_is(version: str) -> Callable[[Manifest], bool]:
    def check(obj: Manifest) -> bool:
        status = obj.get("status") or {}
        return (
            reconciled(obj)
            and status.get("phase") == "Succeeded"
            and (status.get("champion") or {}).get("modelVersion") == version
        )

    return check


class Sampler:
    """The operator's RSS and CPU time once a second (whichever process the pid file names)."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.samples: list[Sample] = []
        self._ticks = float(os.sysconf("SC_CLK_TCK"))
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            with contextlib.suppress(OSError, ValueError):
                pid = int(self.pid_file.read_text())
                proc = Path(f"/proc/{pid}")
                self.samples.append(
                    Sample(
                        time.time(),
                        pid,
                        rss_mib((proc / "status").read_text()),
                        cpu_seconds((proc / "stat").read_text(), self._ticks),
                    )
                )


@dataclass
class Figures:
    releases: int
    first_reconcile: float = 0.0
    restart: float = 0.0
    promote: float = 0.0
    patch_seconds: float = 0.0
    windows: dict[str, Window] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    usage: dict[str, Usage | None] = field(default_factory=dict)
    lateness: Lateness = field(default_factory=Lateness)
    load: list[float] = field(default_factory=list)  # the machine's 1-min load, per phase


class Bench:
    """One N: namespace, releases, the operator, the phases, the clean-up."""

    def __init__(self, releases: int, args: argparse.Namespace) -> None:
        self.n = releases
        self.args = args
        self.scenario = Scenario(namespace=f"bench-scale-{releases}")
        self.names = [f"m{i:04d}" for i in range(releases)]
        api = kube_config.new_client_from_config(config_file=KUBECONFIG)  # type: ignore[no-untyped-call]
        api.configuration.connection_pool_maxsize = CLIENT_THREADS
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.figures = Figures(releases)

    # helpers
    def each(self, action: Callable[[str], object]) -> float:
        """`action` for every release, from a few threads; the seconds it took."""
        start = time.monotonic()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(action, self.names))
        return time.monotonic() - start

    def start_operator(self) -> None:
        self.scenario.start_operator(
            reconcile_interval=None,
            kubeconfig=str(OPERATOR_KUBECONFIG),
            extra_args=shlex.split(self.args.operator_args),
        )

    def wait_all(self, releases: Releases, done: Callable[[Manifest], bool], what: str) -> float:
        """Seconds until every release is `done`; exits if the operator dies meanwhile."""
        start = time.monotonic()

        def probe() -> bool:
            if not self.scenario.running("operator"):
                sys.exit(f"the operator exited; see {self.scenario.folder}/operator.log")
            return releases.count(done) == self.n

        wait_for(probe, self.args.timeout, what, interval=0.25)
        return time.monotonic() - start

    def window(self, name: str, start: float, end: float) -> None:
        self.figures.windows[name] = Window(
            datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )

    # phases
    def prepare(self) -> None:
        self.scenario.fresh_namespace()
        ns = self.scenario.namespace

        def create(name: str) -> None:
            route = http_route(ns, name, rate=0)
            self.custom.create_namespaced_custom_object(*ROUTES[:2], ns, ROUTES[2], route)
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, scale_release(ns, name, "1.0.0")
            )

        seconds = self.each(create)
        log(f"{self.n} HTTPRoutes and ModelReleases created in {seconds:.1f} s")

    def first_reconcile(self, releases: Releases) -> None:
        self.start_operator()
        seconds = self.wait_all(releases, champion_is("1.0.0"), "every first version")
        self.figures.first_reconcile = seconds
        self.figures.load.append(os.getloadavg()[0])
        log(f"first reconcile of {self.n} new releases: {seconds:.1f} s")

    def at_rest(self) -> None:
        time.sleep(self.args.settle)  # trailing writes of the last promotions are not rest
        start = time.time()
        time.sleep(self.args.rest)  # a measuring window, not a synchronisation
        self.window("rest", start, time.time())

    def restart(self, releases: Releases) -> None:
        self.scenario.stop("operator")
        ns = self.scenario.namespace
        bump = {"spec": {"revisionHistoryLimit": 3}}
        self.each(
            lambda n: self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, n, bump
            )
        )
        start = time.time()
        self.start_operator()
        seconds = self.wait_all(releases, reconciled, "every release reconciled after a restart")
        self.figures.restart = seconds
        self.figures.load.append(os.getloadavg()[0])
        self.window("restart", start, time.time())
        log(f"after a restart, every release reconciled in {seconds:.1f} s")

    def in_flight(self, releases: Releases) -> None:
        time.sleep(self.args.settle)
        releases.reset_lateness()
        ns = self.scenario.namespace
        start = time.time()

        def new_version(name: str) -> None:
            spec = scale_release(ns, name, "2.0.0")["spec"]
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name, {"spec": spec}
            )

        self.figures.patch_seconds = self.each(new_version)
        seconds = self.wait_all(releases, champion_is("2.0.0"), "every new version promoted")
        self.figures.promote = time.time() - start
        self.figures.load.append(os.getloadavg()[0])
        self.window("flight", start, time.time())
        with releases._lock:
            self.figures.lateness = releases.lateness
        log(
            f"new version promoted everywhere {seconds:.1f} s after the last patch"
            f" ({self.figures.promote:.1f} s after the first)"
        )

    def clean_up(self) -> None:
        """Releases deleted while the operator runs (their finalizer), then the namespace."""
        ns = self.scenario.namespace
        with contextlib.suppress(client.ApiException):
            self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        if self.scenario.running("operator"):

            def gone() -> bool:
                listed = cast(
                    Manifest, self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
                )
                return not listed["items"]

            with contextlib.suppress(AssertionError):  # the finalizers are removed below
                wait_for(gone, CLEAN_UP_SECONDS, "the releases deleted", interval=1)
        self.scenario.stop_processes()
        unfinalize = {"metadata": {"finalizers": None}}
        self.each(
            lambda n: _ignore_missing(
                lambda: self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, n, unfinalize
                )
            )
        )
        client.CoreV1Api(self.api).delete_namespace(ns)

    def run(self) -> Figures:
        log(f"--- {self.n} releases in namespace {self.scenario.namespace}")
        self.prepare()
        releases = Releases(self.api, self.scenario.namespace).start()
        sampler = Sampler(self.scenario.folder / "operator.pid")
        try:
            self.first_reconcile(releases)
            self.at_rest()
            self.restart(releases)
            self.in_flight(releases)
        finally:
            sampler.stop()
            releases.stop()
            self.clean_up()
        for name, window in self.figures.windows.items():
            self.figures.usage[name] = usage(
                sampler.samples, window.start.timestamp(), window.end.timestamp()
            )
        log("counting the operator's requests in the audit log")
        self.figures.tallies = tally(read_requests(AUDIT_LOG, OPERATOR_USER), self.figures.windows)
        return self.figures


def _ignore_missing(call: Callable[[], Any]) -> None:
    try:
        call()
    except client.ApiException as error:
        if error.status != 404:
            raise


# --- checks before a run, the report -------------------------------------------------------------


def preflight(largest: int) -> None:
    """The cluster has what the benchmark needs, or a message saying how to get it."""
    nodes_needed = -(-largest * PODS_PER_RELEASE_IN_FLIGHT // 110) + 1
    hint = (
        "bring the cluster up with: hack/local-cluster.sh down; MODELRELEASE_AUDIT=1 "
        f"MODELRELEASE_SCALE=1 CPU_NODES={nodes_needed} hack/local-cluster.sh up"
    )
    if not AUDIT_LOG.exists() or not OPERATOR_KUBECONFIG.exists():
        sys.exit(f"no audit log at {AUDIT_LOG} or no {OPERATOR_KUBECONFIG}: {hint}")
    api = kube_config.new_client_from_config(config_file=KUBECONFIG)  # type: ignore[no-untyped-call]
    nodes = client.CoreV1Api(api).list_node().items
    room = sum(int(((n.status and n.status.allocatable) or {}).get("pods", "0")) for n in nodes)
    pods = largest * PODS_PER_RELEASE_IN_FLIGHT
    if room < pods + 10:
        sys.exit(f"{largest} releases need about {pods} pods, the nodes hold {room}: {hint}")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/modelreleases.modelrelease.dev")


def _verbs(t: Tally, scale: float) -> str:
    return ", ".join(f"{verb} {count * scale:.1f}" for verb, count in t.by_verb.most_common())


def _usage(u: Usage | None) -> str:
    return "n/a" if u is None else f"{u.rss_mean:.0f} / {u.rss_peak:.0f} MiB"


def _cpu(u: Usage | None) -> str:
    return "n/a" if u is None else f"{u.cpu_per_minute:.1f} s"


def _spread(values: list[float]) -> str:
    if not values:
        return "none seen"
    return (
        f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f} / "
        f"{max(values):.1f} s (n={len(values)})"
    )


def report(all_figures: list[Figures]) -> str:
    """A markdown table: one row per figure, one column per N."""
    rows: list[tuple[str, Callable[[Figures], str]]] = [
        ("first reconcile of N new releases (operator start to all Succeeded)",
         lambda f: f"{f.first_reconcile:.1f} s"),
        ("at rest: API requests per release per minute",
         lambda f: f"{_per_release_minute(f, 'rest', f.tallies['rest'].requests):.1f}"),
        ("at rest: by verb, per release per minute",
         lambda f: _verbs(f.tallies["rest"], _per_release_minute(f, "rest", 1))),
        ("at rest: status writes per minute (all writes)",
         lambda f: f"{_per_minute(f, 'rest', f.tallies['rest'].status_writes):.1f}"
                   f" ({_per_minute(f, 'rest', f.tallies['rest'].writes):.1f})"),
        ("at rest: operator RSS mean / peak", lambda f: _usage(f.usage.get("rest"))),
        ("at rest: operator CPU seconds per minute", lambda f: _cpu(f.usage.get("rest"))),
        ("after a restart: every release reconciled (observedGeneration)",
         lambda f: f"{f.restart:.1f} s"),
        ("after a restart: 429 answers", lambda f: str(f.tallies["restart"].throttled)),
        ("in flight: new version promoted everywhere, from the first patch (patches took)",
         lambda f: f"{f.promote:.1f} s ({f.patch_seconds:.1f} s)"),
        ("in flight: API requests per second",
         lambda f: f"{f.tallies['flight'].requests / f.windows['flight'].seconds:.0f}"),
        ("in flight: by verb, per second",
         lambda f: _verbs(f.tallies["flight"], 1 / f.windows["flight"].seconds)),
        ("in flight: status writes per minute (all writes)",
         lambda f: f"{_per_minute(f, 'flight', f.tallies['flight'].status_writes):.0f}"
                   f" ({_per_minute(f, 'flight', f.tallies['flight'].writes):.0f})"),
        ("in flight: 429 answers", lambda f: str(f.tallies["flight"].throttled)),
        ("in flight: operator RSS mean / peak", lambda f: _usage(f.usage.get("flight"))),
        ("in flight: operator CPU seconds per minute", lambda f: _cpu(f.usage.get("flight"))),
        ("tick lateness, SLO checks: p50 / p99 / max", lambda f: _spread(f.lateness.checks)),
        ("tick lateness, step ends: p50 / p99 / max", lambda f: _spread(f.lateness.steps)),
        (f"machine load (1-min, {os.cpu_count()} cores): first reconcile / restart / flight",
         lambda f: " / ".join(f"{load:.1f}" for load in f.load)),
    ]  # fmt: skip
    lines = [
        "| releases | " + " | ".join(str(f.releases) for f in all_figures) + " |",
        "| --- |" + " ---: |" * len(all_figures),
    ]
    for label, show in rows:
        lines.append(f"| {label} | " + " | ".join(show(f) for f in all_figures) + " |")
    return "\n".join(lines)


def _per_minute(f: Figures, window: str, count: float) -> float:
    return count / f.windows[window].seconds * 60


def _per_release_minute(f: Figures, window: str, count: float) -> float:
    return _per_minute(f, window, count) / f.releases


def record(doc: Path, table: str, command: str, commit: str) -> None:
    """Appends the table, the command and the commit to `doc` (under "Scale")."""
    text = doc.read_text()
    entry = (
        f"\nMeasured on commit {commit} on {time.strftime('%Y-%m-%d')}:\n\n"
        f"    {command}\n\n{table}\n"
    )
    if RECORD_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{RECORD_HEADING}\n"
    doc.write_text(text.rstrip("\n") + "\n" + entry)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--releases", default="100,300,1000", help="comma-separated Ns")
    parser.add_argument(
        "--operator-args",
        default="",
        help="extra operator flags, e.g. '--kube-qps 50 --kube-burst 100'",
    )
    parser.add_argument("--rest", type=float, default=60.0, help="at-rest window, seconds")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after a phase before the next window starts")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="deadline of each wait, seconds")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 releases, 15 s at rest")  # fmt: skip
    parser.add_argument("--record", action="store_true",
                        help="append the table to docs/benchmarks.md")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.releases, args.rest, args.settle, args.timeout = "20", 15.0, 5.0, 600.0
    ns = [int(n) for n in args.releases.split(",")]
    preflight(max(ns))
    all_figures: list[Figures] = []
    for n in ns:
        all_figures.append(Bench(n, args).run())
        table = report(all_figures)  # after each N, so a later failure keeps the earlier ones
        print(table, flush=True)
    if args.record:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
            check=True,
        ).stdout.strip()  # fmt: skip
        command = ".venv/bin/python hack/bench/scale.py " + shlex.join(sys.argv[1:])
        record(ROOT / "docs" / "benchmarks.md", table, command, commit)


if __name__ == "__main__":
    main()
