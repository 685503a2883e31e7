"""Time to rollback: how long users are exposed to a version that turns bad.

Each run releases a new challenger on the local cluster (operator, simulator and
Prometheus running) with a canary step holding 20% of the traffic. The
challenger is healthy until a fault injected at a known time (20 s after its
pods become Ready, through the simulator's behaviour annotation): then 20% of
its requests fail. The run measures, from the first failed user request
(the simulator's stats) to the route's canary weight back at 0:

- the time to rollback, and
- the user requests the bad version served meanwhile, and how many failed.

Settings: ``default`` (the API defaults: interval 30s, failureLimit 0, the
sequential guard on with alpha 0.05 and a 2 s period), ``no-guard`` (the same with
``analysis.guard.enabled: false``, the figures before the guard) and
``aggressive`` (interval 5s, no guard). Prints p50/p95 per setting, and how many
rollbacks the guard made.

    make cluster-up
    .venv/bin/python hack/bench/time_to_rollback.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hack.scenario import (
    Manifest,
    Scenario,
    Watch,
    apply,
    champion_is,
    error_ratio_slo,
    release,
    rolled_back,
)
from hack.simulator.stats import read_stats, served

FAULT_AFTER_SECONDS = 20
CANARY_WEIGHT = 20
HEALTHY = {"errorRatio": 0.0, "ttft": {"p50": 0.1, "p95": 0.25}}
TURNS_BAD = {**HEALTHY, "after": {"seconds": FAULT_AFTER_SECONDS, "errorRatio": 0.2}}


@dataclass(frozen=True)
class Setting:
    name: str
    interval: str
    failure_limit: int
    guard: bool


SETTINGS = {
    "default": Setting("default", interval="30s", failure_limit=0, guard=True),
    "no-guard": Setting("no-guard", interval="30s", failure_limit=0, guard=False),
    "aggressive": Setting("aggressive", interval="5s", failure_limit=0, guard=False),
}


@dataclass(frozen=True)
class Run:
    seconds: float
    user_requests: int
    failed_requests: int
    reason: str


def manifest(
    scenario: Scenario, version: str, behaviour: dict[str, object], setting: Setting
) -> Manifest:
    stages = [{"canary": {"steps": [{"weight": CANARY_WEIGHT, "duration": "30m"}]}}]
    slo = error_ratio_slo(max_ratio=0.05, failure_limit=setting.failure_limit, min_requests=0)
    manifest = release(
        scenario.namespace,
        scenario.name,
        version,
        behaviour,
        stages,
        [slo],
        interval=setting.interval,
    )
    manifest["spec"]["analysis"]["guard"] = {"enabled": setting.guard}
    return manifest


def one_run(scenario: Scenario, setting: Setting, number: int) -> Run:
    watch = Watch(scenario, quiet=True)
    apply(manifest(scenario, f"2.{number}.0", TURNS_BAD, setting))
    obj = watch.until(
        lambda o: (
            bool(((o.get("status") or {}).get("challenger") or {}).get("revision"))
            and (o.get("status") or {}).get("phase") == "Progressing"
        ),
        180,
        "the challenger starting",
    )
    revision = obj["status"]["challenger"]["revision"]
    canary = f"{scenario.name}-canary"
    deadline = time.monotonic() + 600
    first_error_at: float | None = None
    served_before_fault = 0
    while time.monotonic() < deadline:
        stats = read_stats(scenario.stats_file) if scenario.stats_file.exists() else None
        entry = next(
            (r for r in (stats or {}).get("revisions", []) if r["revision"] == revision), None
        )
        if stats and entry and entry.get("firstUserErrorAt") and first_error_at is None:
            # Within a second of the fault (the stats file is rewritten every second).
            first_error_at = float(entry["firstUserErrorAt"])
            served_before_fault = served(stats, revision) - served(stats, revision, outcome="error")
        if first_error_at and scenario.route_weights().get(canary, 0) == 0:
            seconds = time.time() - first_error_at
            obj = watch.until(rolled_back, 60, "phase RolledBack")
            final = read_stats(scenario.stats_file)
            return Run(
                seconds=seconds,
                user_requests=served(final, revision) - served_before_fault,
                failed_requests=served(final, revision, outcome="error"),
                reason=str(obj["status"]["history"][-1]["reason"]),
            )
        time.sleep(0.25)
    raise TimeoutError(f"run {number}: no rollback within 600 s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per setting (default 5)")
    parser.add_argument(
        "--settings",
        default="default,no-guard,aggressive",
        help="comma-separated: default, no-guard, aggressive",
    )
    parser.add_argument("--rate", type=float, default=40.0, help="user requests per second")
    args = parser.parse_args()
    scenario = Scenario(namespace="bench-rollback", rate=args.rate)
    scenario.up()
    try:
        apply(manifest(scenario, "1.0.0", HEALTHY, SETTINGS["aggressive"]))
        Watch(scenario, quiet=True).until(champion_is("1.0.0"), 120, "the champion")
        print(f"rate {args.rate:.0f} req/s, canary weight {CANARY_WEIGHT}%, fault: 20% errors")
        print("| setting | runs | time to rollback p50 | p95 | max | user requests to bad version"
              " after the fault p50 | p95 | failed user requests p50 | by the guard |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        number = 0
        for name in args.settings.split(","):
            setting = SETTINGS[name]
            runs = []
            for _ in range(args.runs):
                number += 1
                runs.append(one_run(scenario, setting, number))
            seconds = [r.seconds for r in runs]
            users = [float(r.user_requests) for r in runs]
            failed = [float(r.failed_requests) for r in runs]
            guarded = sum(r.reason == "SLOGuardTripped" for r in runs)
            guard = "guard on" if setting.guard else "guard off"
            print(
                f"| {name} (interval {setting.interval}, failureLimit {setting.failure_limit},"
                f" {guard}) | {len(runs)} | {statistics.median(seconds):.1f} s"
                f" | {percentile(seconds, 0.95):.1f} s | {max(seconds):.1f} s"
                f" | {statistics.median(users):.0f}"
                f" | {percentile(users, 0.95):.0f} | {statistics.median(failed):.0f}"
                f" | {guarded}/{len(runs)} |",
                flush=True,
            )
    finally:
        scenario.down()


if __name__ == "__main__":
    main()
