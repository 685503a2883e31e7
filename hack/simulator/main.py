"""Command line and main loop of the traffic simulator.

    .venv/bin/python -m hack.simulator [--namespace NS] [--seed N] ...

A reader thread lists routes, Services and pods every ``--poll-interval``
seconds; the main loop advances the traffic every ``--tick`` seconds, keeps one
metrics endpoint per simulated pod, rewrites the Prometheus target file when
pods come and go, and writes the stats file every second. SIGTERM or SIGINT
stops it: endpoints close, the target file is removed, the stats file stays.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from types import FrameType

from kubernetes import config as kube_config

from hack.simulator.cluster import ClusterReader
from hack.simulator.engine import ClusterState, PodState, TrafficEngine
from hack.simulator.metrics import FamiliesCollector, MetricsServer, pod_metric_families
from hack.simulator.stats import simulator_metric_families, write_json_atomically
from hack.simulator.targets import TargetsFile, remove_stale, target_group

log = logging.getLogger("simulator")

REPO = Path(__file__).resolve().parents[2]
LOCAL_CLUSTER = REPO / ".local-cluster"
STATS_INTERVAL_SECONDS = 1.0
ERROR_REPEAT_SECONDS = 30.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hack.simulator",
        description="Simulated data plane and GPU pods: sends Poisson traffic through the"
        " cluster's routes and exposes vLLM metrics per pod for Prometheus.",
    )
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG") or str(LOCAL_CLUSTER / "kubeconfig"),
        help="kubeconfig file (default: $KUBECONFIG, else the local cluster's)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument(
        "--namespace", default=None, help="only this namespace (default: all namespaces)"
    )
    parser.add_argument(
        "--targets-dir",
        type=Path,
        default=LOCAL_CLUSTER / "prometheus" / "targets",
        help="folder of Prometheus file_sd target files (default: %(default)s)",
    )
    parser.add_argument(
        "--stats-file",
        type=Path,
        default=LOCAL_CLUSTER / "simulator" / "stats.json",
        help="JSON snapshot of request counts, rewritten every second (default: %(default)s)",
    )
    parser.add_argument(
        "--tick", type=float, default=0.1, help="seconds between traffic steps (default: 0.1)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between reads of the cluster (default: 0.5)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random generator")
    parser.add_argument(
        "--id",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="value of the `simulator` target label (default: <host>-<pid>)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the metrics endpoints")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    if args.tick <= 0 or args.poll_interval <= 0:
        parser.error("--tick and --poll-interval must be positive")
    return args


class Poller(threading.Thread):
    """Reads the cluster in the background; the newest state wins."""

    def __init__(self, reader: ClusterReader, interval: float, stop: threading.Event) -> None:
        super().__init__(name="cluster-poller", daemon=True)
        self._reader = reader
        self._interval = interval
        self._stopping = stop
        self._lock = threading.Lock()
        self._state: ClusterState | None = None
        self._version = 0

    def latest(self) -> tuple[int, ClusterState | None]:
        with self._lock:
            return self._version, self._state

    def run(self) -> None:
        failing_since: float | None = None
        reported_at = 0.0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                state = self._reader.read()
            except Exception as error:  # any failure: keep the last state
                now = time.monotonic()
                if failing_since is None or now - reported_at >= ERROR_REPEAT_SECONDS:
                    log.warning("reading the cluster failed (keeping the last state): %s", error)
                    reported_at = now
                failing_since = failing_since or now
            else:
                if failing_since is not None:
                    log.info("reading the cluster works again")
                    failing_since = None
                with self._lock:
                    self._state = state
                    self._version += 1
            self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))


class PodServers:
    """One metrics endpoint per simulated pod, in step with the engine's pods."""

    def __init__(self, engine: TrafficEngine, simulator: str, host: str) -> None:
        self._engine = engine
        self._simulator = simulator
        self._host = host
        self._servers: dict[str, tuple[PodState, MetricsServer]] = {}

    def sync(self) -> bool:
        """Start and stop endpoints; True when the set of pods changed."""
        states = {state.info.uid: state for state in self._engine.pod_states()}
        changed = False
        for uid in [uid for uid in self._servers if uid not in states]:
            state, server = self._servers.pop(uid)
            server.close()
            changed = True
        for uid, state in states.items():
            if uid in self._servers:
                continue
            collector = FamiliesCollector(
                self._engine.lock, partial(pod_metric_families, state.metrics)
            )
            server = MetricsServer(collector, self._host)
            log.info(
                "pod %s/%s: metrics on http://%s/metrics",
                state.info.namespace,
                state.info.name,
                server.address,
            )
            self._servers[uid] = (state, server)
            changed = True
        return changed

    def target_groups(self) -> list[dict[str, object]]:
        groups = []
        for state, server in self._servers.values():
            labels = {
                "namespace": state.info.namespace,
                "pod": state.info.name,
                "release": state.info.release,
                "revision": state.info.revision,
                "simulator": self._simulator,
            }
            groups.append(target_group(server.address, labels))
        return groups

    def close(self) -> None:
        for _, server in self._servers.values():
            server.close()
        self._servers.clear()


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    api_client = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, context=args.context
    )
    engine = TrafficEngine(random.Random(args.seed))
    for stale in remove_stale(args.targets_dir):
        log.info("removed the target file of a simulator that no longer runs: %s", stale)
    targets = TargetsFile(args.targets_dir)
    own = MetricsServer(
        FamiliesCollector(engine.lock, lambda: simulator_metric_families(engine.counts)), args.host
    )
    own_group = target_group(own.address, {"simulator": args.id})
    servers = PodServers(engine, args.id, args.host)
    poller = Poller(ClusterReader(api_client, args.namespace), args.poll_interval, stop)
    started_at = time.time()
    log.info(
        "simulator %s: namespace %s, own metrics on http://%s/metrics, targets in %s, stats in %s",
        args.id,
        args.namespace or "(all)",
        own.address,
        targets.path,
        args.stats_file,
    )
    try:
        targets.write([own_group])
        poller.start()
        seen_version = 0
        next_stats = 0.0
        while not stop.is_set():
            tick_started = time.monotonic()
            now = time.time()
            version, state = poller.latest()
            if state is not None and version != seen_version:
                engine.observe(state, now)
                seen_version = version
                if servers.sync():
                    targets.write([own_group, *servers.target_groups()])
            engine.advance(now)
            if now >= next_stats:
                write_json_atomically(args.stats_file, engine.stats(args.id, started_at, now))
                next_stats = now + STATS_INTERVAL_SECONDS
            stop.wait(max(0.0, args.tick - (time.monotonic() - tick_started)))
    finally:
        targets.remove()
        servers.close()
        own.close()
        write_json_atomically(args.stats_file, engine.stats(args.id, started_at, time.time()))
        poller.join(timeout=5)
        log.info("stopped; target file %s removed", targets.path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return run(args)
