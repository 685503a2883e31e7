"""Benchmark of the champion-challenger judge (a measurement, not a test).

Run from the repository root with the project's interpreter:

    .venv/bin/python hack/bench/judge.py            # the figures in docs/benchmarks.md
    .venv/bin/python hack/bench/judge.py --quick    # a smoke run, seconds

numpy and scipy come from a separate venv ($MODELRELEASE_CACHE/bench-venv,
default ~/.cache/modelrelease/bench-venv) that the script creates on first run
from hack/bench/requirements-judge.txt; the operator's .venv is left alone.

    .venv/bin/python hack/bench/judge.py --restarts # only (d), a few minutes on 2 cores

It prints four sets of figures, all on simulated traffic with a 50/50 split:
(a) A/A false rollbacks of the sequential judge, checked after every interval,
    next to a Kayenta-style Mann-Whitney judge re-run at every interval on the
    same data; (b) requests per arm until a real regression is caught;
(c) power over effect sizes, with the coverage of the reported bounds;
(d) A/A false rollbacks through pod restarts and empty reads, per-pod counters
    folded by core/comparison.py, next to the sum-based fold it replaced.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements-judge.txt")
CACHE = Path(os.environ.get("MODELRELEASE_CACHE", Path.home() / ".cache" / "modelrelease"))
BENCH_VENV = CACHE / "bench-venv"


def _ensure_dependencies() -> None:
    """Make numpy and scipy importable without touching the project's venv."""
    sys.path.insert(0, str(ROOT / "operator"))
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401

        return
    except ImportError:
        pass
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = BENCH_VENV / "lib" / version / "site-packages"
    stamp = BENCH_VENV / "requirements-judge.txt"
    wanted = REQUIREMENTS.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        print(f"installing {REQUIREMENTS.name} into {BENCH_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(BENCH_VENV / "bin" / "python"), "-m", "pip"]
        subprocess.run([*pip, "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    sys.path.append(str(site_packages))


_ensure_dependencies()

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from modelrelease.analysis.sequential import (  # noqa: E402
    ComparisonVerdict,
    RatioGrid,
    SequentialRatioTest,
    count_above,
)
from modelrelease.api.constants import Better, Verdict  # noqa: E402
from modelrelease.api.models import Comparison, ComparisonStatus  # noqa: E402
from modelrelease.core.comparison import (  # noqa: E402
    Counter,
    MetricReading,
    fold_comparison,
)
from scipy import stats  # noqa: E402

ALPHA = 0.05
MARGIN = 1.1
LOOK_MARKS = (1, 5, 10, 20)
GRID = RatioGrid()  # the judge's default; --prior-scale replaces it
Array = np.ndarray


@dataclass(frozen=True)
class Judged:
    """How one simulated release ended under the sequential judge."""

    verdict: ComparisonVerdict  # first conclusive verdict, else Inconclusive
    interval: int  # interval of that verdict (the last interval if none)
    ever_rejected_one: bool  # ratio 1 left the bounds at some look (either direction)
    true_ratio_left_bounds: bool  # the true ratio left the bounds at some look


def judge_release(
    increments: Sequence[tuple[float, float, float, float]],
    true_ratio: float,
    better: Better = Better.LOWER,
    stop_at_verdict: bool = True,
) -> Judged:
    """Feed one release's per-interval counts to the judge, look after every interval."""
    test = SequentialRatioTest(grid=GRID)
    verdict = ComparisonVerdict.INCONCLUSIVE
    decided_at = len(increments)
    rejected_one = left = False
    for interval, counts in enumerate(increments, start=1):
        test = test.update(*counts)
        result = test.summary(alpha=ALPHA, better=better, margin=MARGIN)
        rejected_one |= not result.lower <= 1.0 <= result.upper
        tolerance = 1 + 1e-9  # true ratios on the grid must not miss by rounding
        left |= not result.lower <= true_ratio * tolerance <= result.upper * tolerance**2
        if result.verdict != ComparisonVerdict.INCONCLUSIVE and (
            verdict == ComparisonVerdict.INCONCLUSIVE
        ):
            verdict, decided_at = result.verdict, interval
            if stop_at_verdict:
                break
    return Judged(verdict, decided_at, rejected_one, left)


# --- traffic ---------------------------------------------------------------------


def simulate_counts(
    rng: np.random.Generator,
    releases: int,
    intervals: int,
    scrapes: int,
    requests_per_arm_per_scrape: float,
    champion_rate: float,
    challenger_rate: float,
) -> tuple[Array, Array, Array, Array]:
    """Per-scrape requests and bad events per arm, shape (releases, intervals * scrapes).

    Load drifts per release and per interval (a release does not see a flat
    request rate), and each request is bad independently with its arm's rate.
    """
    shape = (releases, intervals * scrapes)
    load = rng.lognormal(0.0, 0.3, size=(releases, 1)) * np.repeat(
        rng.lognormal(0.0, 0.2, size=(releases, intervals)), scrapes, axis=1
    )
    champion_total = rng.poisson(requests_per_arm_per_scrape * load, size=shape)
    challenger_total = rng.poisson(requests_per_arm_per_scrape * load, size=shape)
    champion_bad = rng.binomial(champion_total, champion_rate)
    challenger_bad = rng.binomial(challenger_total, challenger_rate)
    return champion_bad, champion_total, challenger_bad, challenger_total


def per_interval(counts: Array, scrapes: int) -> Array:
    releases, samples = counts.shape
    return counts.reshape(releases, samples // scrapes, scrapes).sum(axis=2)


def increments_of(
    release: int, champion_bad: Array, champion_total: Array, bad: Array, total: Array
) -> list[tuple[float, float, float, float]]:
    return [
        (float(cb), float(ct), float(xb), float(xt))
        for cb, ct, xb, xt in zip(
            champion_bad[release],
            champion_total[release],
            bad[release],
            total[release],
            strict=True,
        )
    ]


# --- (a) A/A: false rollbacks against the number of looks ---------------------------


def kayenta_rejections(
    champion_rates: Array, challenger_rates: Array, scrapes: int, looks: int
) -> tuple[Array, Array]:
    """Per release and look: did a two-sided Mann-Whitney test at level alpha on all
    samples so far reject (either way), and did it say the challenger is higher?"""
    releases = champion_rates.shape[0]
    any_direction = np.zeros((releases, looks), dtype=bool)
    higher = np.zeros((releases, looks), dtype=bool)
    for look in range(1, looks + 1):
        x = challenger_rates[:, : look * scrapes]
        y = champion_rates[:, : look * scrapes]
        statistic, p_value = stats.mannwhitneyu(
            x, y, alternative="two-sided", axis=1, method="asymptotic"
        )
        significant = p_value < ALPHA
        any_direction[:, look - 1] = significant
        higher[:, look - 1] = significant & (statistic > x.shape[1] * y.shape[1] / 2)
    return any_direction, higher


def bench_false_rollbacks(rng: np.random.Generator, releases: int) -> None:
    looks, scrapes = 20, 6
    champion_bad, champion_total, challenger_bad, challenger_total = simulate_counts(
        rng, releases, looks, scrapes, 2000 / scrapes, 0.01, 0.01
    )
    started = time.perf_counter()
    sums = [per_interval(a, scrapes) for a in (champion_bad, champion_total)]
    sums += [per_interval(a, scrapes) for a in (challenger_bad, challenger_total)]
    first_worse = np.full(releases, np.inf)
    first_rejection = np.full(releases, np.inf)
    for release in range(releases):
        test = SequentialRatioTest(grid=GRID)
        for look, counts in enumerate(increments_of(release, *sums), start=1):
            test = test.update(*counts)
            result = test.summary(alpha=ALPHA, better=Better.LOWER, margin=MARGIN)
            if not result.lower <= 1.0 <= result.upper:
                first_rejection[release] = min(first_rejection[release], look)
            if result.verdict == ComparisonVerdict.WORSE:
                first_worse[release] = look
                break
    sequential_seconds = time.perf_counter() - started

    with np.errstate(invalid="ignore", divide="ignore"):
        champion_rates = np.where(champion_total > 0, champion_bad / champion_total, 0.0)
        challenger_rates = np.where(challenger_total > 0, challenger_bad / challenger_total, 0.0)
    any_direction, higher = kayenta_rejections(champion_rates, challenger_rates, scrapes, looks)

    print(f"\n### (a) A/A: identical versions, {releases} releases, alpha {ALPHA}\n")
    print(
        f"Each release: {looks} intervals, about 2,000 requests per arm per interval "
        f"({scrapes} scrapes of ~333), 1% errors in both arms, load drifting per "
        "release and per interval. A release counts once, at its first alarm.\n"
    )
    print(
        "| looks | sequential: false rollback (Worse) | sequential: ratio 1 rejected "
        "(either way) | Mann-Whitney re-run each look: false rollback (higher) | "
        "Mann-Whitney: rejected (either way) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for mark in LOOK_MARKS:
        print(
            f"| {mark} | {pct(np.mean(first_worse <= mark))} | "
            f"{pct(np.mean(first_rejection <= mark))} | "
            f"{pct(np.mean(higher[:, :mark].any(axis=1)))} | "
            f"{pct(np.mean(any_direction[:, :mark].any(axis=1)))} |"
        )
    once = np.mean(any_direction[:, looks - 1])
    print(
        f"\nMann-Whitney looked at once, at the end only: {pct(once)} rejected "
        f"(its nominal {pct(ALPHA)}). Sequential judge: {sequential_seconds:.1f} s for "
        f"{releases * looks:,} updates and summaries at most "
        f"({sequential_seconds / (releases * looks) * 1e3:.2f} ms each)."
    )


# --- (b) requests per arm until a regression is caught -------------------------------


def bench_detection(rng: np.random.Generator, runs: int) -> None:
    print(f"\n### (b) Requests per arm until the judge says Worse ({runs} runs each)\n")
    print(
        "Look after every interval; a run that is not caught by the last interval "
        "counts as not detected. Fixed horizon: a single two-proportion z-test at "
        "two-sided 0.05 with 80% power, looked at once, for comparison.\n"
    )
    print(
        "| change | requests per arm per interval | detected | median | p90 | "
        "fixed horizon (one look, 80% power) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    cases: list[tuple[str, float, float, int, int, Callable[..., list[Judged]]]] = [
        ("errors 1% -> 2%", 0.01, 0.02, 250, 200, run_ratio_releases),
        ("slow share 10% -> 11% (histogram, le=0.75 s)", 0.10, 0.11, 1000, 250, run_histograms),
    ]
    for label, base, changed, per_interval_per_arm, max_intervals, runner in cases:
        judged = runner(rng, runs, max_intervals, per_interval_per_arm, base, changed)
        requests = np.array(
            [
                j.interval * per_interval_per_arm
                if j.verdict == ComparisonVerdict.WORSE
                else np.inf
                for j in judged
            ]
        )
        detected = np.isfinite(requests)
        median, p90 = np.quantile(requests, 0.5), np.quantile(requests, 0.9)
        print(
            f"| {label} | {per_interval_per_arm:,} | {pct(detected.mean())} | "
            f"{requests_text(median)} | {requests_text(p90)} | "
            f"{fixed_horizon_per_arm(base, changed):,.0f} |"
        )


def run_ratio_releases(
    rng: np.random.Generator,
    runs: int,
    intervals: int,
    per_arm: int,
    base: float,
    changed: float,
    better: Better = Better.LOWER,
) -> list[Judged]:
    champion_total = rng.poisson(per_arm, size=(runs, intervals))
    challenger_total = rng.poisson(per_arm, size=(runs, intervals))
    champion_bad = rng.binomial(champion_total, base)
    challenger_bad = rng.binomial(challenger_total, changed)
    counts = (champion_bad, champion_total, challenger_bad, challenger_total)
    ratio = changed / base
    return [judge_release(increments_of(r, *counts), ratio, better) for r in range(runs)]


BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 2.5, math.inf)
THRESHOLD = 0.75


def bucket_probabilities(slow_share: float) -> Array:
    """Latency distribution over BUCKETS with P(latency > 0.75 s) = slow_share."""
    fast = np.array([0.3, 0.3, 0.25, 0.15]) * (1 - slow_share)
    slow = np.array([0.6, 0.3, 0.1]) * slow_share
    return np.concatenate([fast, slow])


def histogram_counts(rng: np.random.Generator, requests: Array, slow_share: float) -> Array:
    """Cumulative bucket counts (Prometheus ``le`` buckets) per release and interval."""
    return np.cumsum(rng.multinomial(requests, bucket_probabilities(slow_share)), axis=-1)


def run_histograms(
    rng: np.random.Generator,
    runs: int,
    intervals: int,
    per_arm: int,
    base: float,
    changed: float,
) -> list[Judged]:
    champion = histogram_counts(rng, rng.poisson(per_arm, size=(runs, intervals)), base)
    challenger = histogram_counts(rng, rng.poisson(per_arm, size=(runs, intervals)), changed)
    judged = []
    for release in range(runs):
        increments = []
        for interval in range(intervals):
            champion_slow, champion_total = count_above(
                zip(BUCKETS, champion[release, interval].tolist(), strict=True), THRESHOLD
            )
            challenger_slow, challenger_total = count_above(
                zip(BUCKETS, challenger[release, interval].tolist(), strict=True), THRESHOLD
            )
            increments.append((champion_slow, champion_total, challenger_slow, challenger_total))
        judged.append(judge_release(increments, changed / base))
    return judged


def fixed_horizon_per_arm(base: float, changed: float, power: float = 0.8) -> float:
    z_alpha, z_beta = stats.norm.ppf(1 - ALPHA / 2), stats.norm.ppf(power)
    variance = base * (1 - base) + changed * (1 - changed)
    return float((z_alpha + z_beta) ** 2 * variance / (changed - base) ** 2)


# --- (c) power over effect sizes -----------------------------------------------------


def bench_power(rng: np.random.Generator, runs: int) -> None:
    ratios = (0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0)
    settings = [
        ("errors, champion at 1%", 0.01, 2000, 20),
        ("slow requests, champion at 10%", 0.10, 2000, 20),
    ]
    for label, base, per_arm, intervals in settings:
        print(
            f"\n### (c) Power: {label}, {per_arm:,} requests per arm per interval, "
            f"{intervals} intervals, margin {MARGIN}, {runs} runs per row\n"
        )
        print(
            "The stage stops at the first conclusive verdict. 'Bounds missed' is the "
            "share of runs in which the true ratio left the reported bounds at some "
            f"look (promised: at most {pct(ALPHA)}).\n"
        )
        print(
            "| true ratio | rolled back (Worse) | promoted (NonInferior or Superior) | "
            "of which Superior | inconclusive at the end | median intervals to a verdict | "
            "bounds missed |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for ratio in ratios:
            judged = run_ratio_releases(rng, runs, intervals, per_arm, base, base * ratio)
            verdicts = [j.verdict for j in judged]
            decided = [j.interval for j in judged if j.verdict != ComparisonVerdict.INCONCLUSIVE]
            worse = verdicts.count(ComparisonVerdict.WORSE) / runs
            superior = verdicts.count(ComparisonVerdict.SUPERIOR) / runs
            promoted = superior + verdicts.count(ComparisonVerdict.NON_INFERIOR) / runs
            inconclusive = verdicts.count(ComparisonVerdict.INCONCLUSIVE) / runs
            missed = np.mean([j.true_ratio_left_bounds for j in judged])
            median = f"{np.median(decided):.0f}" if decided else "-"
            print(
                f"| {ratio:g} | {pct(worse)} | {pct(promoted)} | {pct(superior)} | "
                f"{pct(inconclusive)} | {median} | {pct(missed)} |"
            )


# --- (d) A/A through pod restarts: per-pod counters, exact folding --------------------------

RESTART_ALPHA = 0.05
REQUESTS_PER_SECOND = 50.0  # both arms together, split 50/50
INTERVAL_SECONDS = 30.0
INTERVALS = 120  # one hour
PODS_PER_ARM = 2
ERROR_RATE = 0.01


Restarts = Callable[[np.random.Generator, int, int], bool]  # (rng, interval, pod) -> restarts?


@dataclass(frozen=True)
class RestartScenario:
    name: str
    challenger_restart: Restarts
    champion_restart: Restarts
    empty_read: float = 0.0  # chance that one arm's read returns no series


def _never(_rng: np.random.Generator, _interval: int, _pod: int) -> bool:
    return False


def _every(intervals: int) -> Restarts:
    """The arm's first pod restarts every ``intervals``."""
    return lambda _rng, interval, pod: pod == 0 and interval % intervals == 0


def _chance(probability: float) -> Restarts:
    """Every pod restarts with this chance each interval."""
    return lambda rng, _interval, _pod: bool(rng.random() < probability)


RESTART_SCENARIOS = (
    RestartScenario("no restarts", _never, _never),
    RestartScenario("one challenger pod restarting every 20 min", _every(40), _never),
    RestartScenario("crash-looping challenger pods (each every ~3 min)", _chance(1 / 6), _never),
    RestartScenario("restarts in both arms (each pod every ~10 min)", _chance(0.05), _chance(0.05)),
    RestartScenario("transient empty reads (2% of reads per arm)", _never, _never, 0.02),
)


class Arm:
    """Cumulative per-pod counters of one arm. A restarted pod starts again from zero
    and is down (missing from reads, taking no traffic) for the interval after it."""

    def __init__(self, rng: np.random.Generator, name: str, initial_requests: float):
        self.rng = rng
        self.names = [f"{name}-{pod}" for pod in range(PODS_PER_ARM)]
        self.bad = [0] * PODS_PER_ARM
        self.total = [0] * PODS_PER_ARM
        self.down = [0] * PODS_PER_ARM
        self._serve(initial_requests)

    def interval(self, restarts: Restarts, interval: int) -> None:
        self.down = [max(down - 1, 0) for down in self.down]
        self._serve(REQUESTS_PER_SECOND / 2 * INTERVAL_SECONDS)
        for pod in range(PODS_PER_ARM):
            if restarts(self.rng, interval, pod):
                self.bad[pod] = self.total[pod] = 0
                self.down[pod] = 1

    def _serve(self, mean_requests: float) -> None:
        up = [pod for pod in range(PODS_PER_ARM) if not self.down[pod]]
        for pod in up:
            requests = int(self.rng.poisson(mean_requests / len(up)))
            self.total[pod] += requests
            self.bad[pod] += int(self.rng.binomial(requests, ERROR_RATE))

    def read(self, empty: bool) -> dict[str, tuple[int, int]]:
        if empty:
            return {}
        return {
            name: (self.bad[pod], self.total[pod])
            for pod, name in enumerate(self.names)
            if not self.down[pod]
        }


def _sum_based_increment(
    previous: tuple[float, float], now: tuple[float, float]
) -> tuple[float, float]:
    """The fold before issue 8, kept here as a reference only: one sum per arm, a drop
    of the sum taken as a reset of the whole arm, bad and total reset separately."""
    bad, total = now[0] - previous[0], now[1] - previous[1]
    total = now[1] if total < 0 else total
    bad = now[0] if bad < 0 else bad
    return min(max(bad, 0.0), max(total, 0.0)), max(total, 0.0)


def _restart_release(task: tuple[int, int, int]) -> tuple[bool, bool]:
    """One release of one scenario: (sum-based fold rolled back, per-pod fold rolled back)."""
    scenario_index, release, seed = task
    scenario = RESTART_SCENARIOS[scenario_index]
    rng = np.random.default_rng([seed, scenario_index, release])
    champion = Arm(rng, "champion", 100 * REQUESTS_PER_SECOND / 2 * INTERVAL_SECONDS)
    challenger = Arm(rng, "challenger", REQUESTS_PER_SECOND / 2 * 10)  # 10 s of warm-up
    comparison = Comparison.model_validate(
        {
            "alpha": RESTART_ALPHA,
            "metrics": [{"name": "errors", "kind": "ratio", "bad": "b", "total": "t"}],
        }
    )
    records: list[ComparisonStatus] = []
    sums: tuple[tuple[float, float], tuple[float, float]] | None = None
    test = SequentialRatioTest(grid=GRID)
    old_failed = new_failed = False
    for interval in range(INTERVALS + 1):
        if interval:
            champion.interval(scenario.champion_restart, interval)
            challenger.interval(scenario.challenger_restart, interval)
        reads = [arm.read(rng.random() < scenario.empty_read) for arm in (champion, challenger)]
        if not new_failed:
            reading = MetricReading(
                champion={key: Counter(*values) for key, values in reads[0].items()},
                challenger={key: Counter(*values) for key, values in reads[1].items()},
            )
            records, result = fold_comparison(comparison, records, {"errors": reading}, _T0)
            new_failed = result.verdict is Verdict.FAIL
        if not old_failed:
            # An empty read was a sum of nothing: zero.
            now = tuple(
                (float(sum(b for b, _ in read.values())), float(sum(t for _, t in read.values())))
                for read in reads
            )
            if sums is not None:
                increments = [_sum_based_increment(sums[arm], now[arm]) for arm in (0, 1)]
                test = test.update(*increments[0], *increments[1])
                verdict = test.summary(alpha=RESTART_ALPHA, better=Better.LOWER, margin=1.05)
                old_failed = verdict.verdict == ComparisonVerdict.WORSE
            sums = (now[0], now[1])
        if old_failed and new_failed:
            break
    return old_failed, new_failed


_T0 = datetime(2024, 5, 1, tzinfo=UTC)


def bench_restarts(seed: int, releases: int, processes: int) -> None:
    print(
        f"\n### (d) A/A through pod restarts: {releases} releases per scenario, "
        f"alpha {RESTART_ALPHA}\n"
    )
    print(
        f"Identical versions, {ERROR_RATE:.0%} errors, {REQUESTS_PER_SECOND:g} requests/s "
        f"split 50/50 over {PODS_PER_ARM} pods per arm, a {INTERVAL_SECONDS:g} s interval, "
        f"{INTERVALS * INTERVAL_SECONDS / 3600:g} hour. Counters are simulated per pod; a "
        "restarted pod counts from zero and is missing from the read after it. 'Per pod' "
        "folds the reads with core/comparison.py (fold_comparison); 'one sum' is the "
        "sum-based fold it replaced, kept in this script as a reference.\n"
    )
    print("| scenario | false rollbacks, one sum per arm (before) | false rollbacks, per pod |")
    print("| --- | ---: | ---: |")
    tasks = [
        (scenario, release, seed)
        for scenario in range(len(RESTART_SCENARIOS))
        for release in range(releases)
    ]
    with multiprocessing.Pool(processes) as pool:
        outcomes = pool.map(_restart_release, tasks, chunksize=8)
    for index, scenario in enumerate(RESTART_SCENARIOS):
        mine = outcomes[index * releases : (index + 1) * releases]
        old = sum(o for o, _ in mine) / releases
        new = sum(n for _, n in mine) / releases
        print(f"| {scenario.name} | {pct(old)} | {pct(new)} |")
    half_width = 1.96 * math.sqrt(RESTART_ALPHA * (1 - RESTART_ALPHA) / releases)
    print(
        f"\nWith {releases} releases a rate near {pct(RESTART_ALPHA)} is known to about "
        f"+-{pct(half_width)} (95%)."
    )


# --- output --------------------------------------------------------------------------


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def requests_text(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "not reached"


def main(argv: Sequence[str] | None = None) -> None:
    global GRID
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=2000, help="A/A releases for (a)")
    parser.add_argument("--runs", type=int, default=500, help="runs per row for (b) and (c)")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few releases and runs")
    parser.add_argument(
        "--restarts", action="store_true", help="only (d): false rollbacks through restarts"
    )
    parser.add_argument(
        "--restart-releases", type=int, default=400, help="releases per scenario for (d)"
    )
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--prior-scale",
        type=float,
        default=RatioGrid().prior_scale,
        help="sd of the judge's normal prior on log(ratio), to compare with the default",
    )
    args = parser.parse_args(argv)
    GRID = replace(GRID, prior_scale=args.prior_scale)
    if args.quick:
        args.releases, args.runs, args.restart_releases = 100, 40, 40
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    print(
        f"Judge benchmark: alpha {ALPHA}, margin {MARGIN}, prior scale {GRID.prior_scale}, "
        f"seed {args.seed}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {sys.version.split()[0]}"
    )
    if not args.restarts:
        bench_false_rollbacks(rng, args.releases)
        bench_detection(rng, args.runs)
        bench_power(rng, args.runs)
    bench_restarts(args.seed, args.restart_releases, args.processes)
    print(f"\nTotal: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
