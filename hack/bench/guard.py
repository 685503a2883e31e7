"""Benchmark of the sequential SLO guard's test (a measurement, not a test).

Run from the repository root with the project's interpreter (pure Python, the
operator's own analysis/guard.py, no extra packages):

    nice -n 10 .venv/bin/python hack/bench/guard.py          # the figures in docs/benchmarks.md
    nice -n 10 .venv/bin/python hack/bench/guard.py --quick  # a smoke run

The stream: one batch per second (the guard's 1 s grid), Poisson requests, each
bad independently with the challenger's rate at that second; the guard looks
after every batch (it reads every 2 s in the operator; looking more often can
only raise false rollbacks, so this is the harder case). alpha 0.05, max 5%.

(a) False rollbacks over a whole release: the challenger exactly at ``max`` (the
    worst case the guarantee covers) or at half of it, for 30 minutes and 2 hours,
    at 8 and 50 requests/s; and with two pods restarting at random (raw counters
    per pod, reset to zero, folded by ``batches_of`` as the operator does).
(b) Seconds from the fault to the guard's rollback decision when the challenger
    starts failing 20% (or 10%) of requests after a healthy while, against the
    floor: a test that knows both the fault's time and its rate (an SPRT started at
    the fault, alternative 20%), which no real test can beat on average.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "operator"))

from modelrelease.analysis.guard import Counts, batches_of, extend

ALPHA = 0.05
MAX = 0.05
LEVEL = math.log(1 / ALPHA)


def poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:  # normal approximation, rounded: fine for request counts
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def binomial(rng: random.Random, trials: int, rate: float) -> int:
    return sum(1 for _ in range(trials) if rng.random() < rate)


def guard_trips_at(
    rng: random.Random,
    rate_at: Callable[[int], float],
    seconds: int,
    per_second: float,
    restarts: bool = False,
) -> int | None:
    """The second at which the guard trips, or None."""
    if restarts:
        return _with_restarts(rng, rate_at, seconds, per_second)
    history: list[Counts] = []
    log_e = 0.0
    for second in range(seconds):
        total = poisson(rng, per_second)
        history.append(Counts(binomial(rng, total, rate_at(second)), total))
        log_e = extend(log_e, history[-6:], len(history[-6:]) - 1, MAX)
        if log_e >= LEVEL:
            return second
    return None


def _with_restarts(
    rng: random.Random, rate_at: Callable[[int], float], seconds: int, per_second: float
) -> int | None:
    """Two pods with raw counters; each restarts (counters to zero) about every 5 minutes."""
    raw = {"pod-a": [0.0, 0.0], "pod-b": [0.0, 0.0]}
    samples = [{key: (values[0], values[1]) for key, values in raw.items()}]
    log_e = 0.0
    for second in range(seconds):
        for values in raw.values():
            if rng.random() < 1 / 300:
                values[0] = values[1] = 0.0
            total = poisson(rng, per_second / 2)
            values[0] += binomial(rng, total, rate_at(second))
            values[1] += total
        samples.append({key: (values[0], values[1]) for key, values in raw.items()})
        batches = batches_of(samples[-7:])
        log_e = extend(log_e, batches, len(batches) - 1, MAX)
        if log_e >= LEVEL:
            return second
    return None


def oracle_trips_at(
    rng: random.Random, fault: int, bad_rate: float, seconds: int, per_second: float
) -> int | None:
    """An SPRT that knows the fault time and rate (the floor for any test)."""
    up, down = math.log(bad_rate / MAX), math.log1p(-bad_rate) - math.log1p(-MAX)
    log_e = 0.0
    for second in range(fault, seconds):
        total = poisson(rng, per_second)
        bad = binomial(rng, total, bad_rate)
        log_e += bad * up + (total - bad) * down
        if log_e >= LEVEL:
            return second
    return None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def bench_false_rollbacks(rng: random.Random, releases: int) -> None:
    print("\n(a) False rollbacks over a whole release (alpha 0.05, max 5%)\n")
    print("| challenger's rate | requests/s | release | counter resets | releases |"
          " rolled back by the guard |")  # fmt: skip
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    rows = [
        (MAX, 8.0, 1800, False, releases),
        (MAX, 50.0, 1800, False, releases // 4),
        (MAX, 8.0, 7200, False, releases // 4),
        (MAX, 8.0, 1800, True, releases // 4),
        (MAX / 2, 8.0, 1800, False, releases // 4),
    ]
    for rate, per_second, seconds, restarts, count in rows:
        started = time.monotonic()
        tripped = sum(
            guard_trips_at(rng, lambda _, r=rate: r, seconds, per_second, restarts) is not None
            for _ in range(count)
        )
        share = tripped / count
        error = 1.96 * math.sqrt(max(share * (1 - share), 1e-9) / count)
        print(
            f"| {rate:.1%} ({'max' if rate == MAX else 'max / 2'}) | {per_second:g} |"
            f" {seconds // 60} min | {'two pods, each every ~5 min' if restarts else 'none'} |"
            f" {count} | {share:.2%} (±{error:.2%}) |",
            flush=True,
        )
        del started


def bench_detection(rng: random.Random, runs: int) -> None:
    print("\n(b) Seconds from the fault to the guard's decision (max 5%, alpha 0.05)\n")
    print("| requests/s | fault | healthy before | guard p50 | p90 | p95 |"
          " floor (knows time and rate) p50 | p95 |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for per_second, bad_rate, healthy in (
        (8.0, 0.2, 20),
        (8.0, 0.2, 600),
        (8.0, 0.1, 20),
        (50.0, 0.2, 20),
        (50.0, 0.1, 20),
    ):
        horizon = healthy + 600
        delays = []
        floors = []
        for _ in range(runs):
            at = guard_trips_at(
                rng,
                lambda s, h=healthy, b=bad_rate: 0.0 if s < h else b,
                horizon,
                per_second,
            )
            delays.append((at if at is not None else horizon) - healthy + 1)
            floor = oracle_trips_at(rng, healthy, bad_rate, horizon, per_second)
            floors.append((floor if floor is not None else horizon) - healthy + 1)
        print(
            f"| {per_second:g} | {bad_rate:.0%} errors | {healthy} s |"
            f" {statistics.median(delays):.0f} s | {percentile(delays, 0.9):.0f} s |"
            f" {percentile(delays, 0.95):.0f} s | {statistics.median(floors):.0f} s |"
            f" {percentile(floors, 0.95):.0f} s |",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    releases, runs = (40, 40) if args.quick else (2000, 1000)
    started = time.monotonic()
    bench_false_rollbacks(rng, releases)
    bench_detection(rng, runs)
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
