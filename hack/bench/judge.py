"""Benchmark of the champion-challenger judge (a measurement, not a test).

Run from the repository root with the project's interpreter, on a shared machine
under nice:

    nice -n 10 .venv/bin/python hack/bench/judge.py          # the figures in docs/benchmarks.md
    nice -n 10 .venv/bin/python hack/bench/judge.py --quick  # a smoke run

numpy and scipy come from a separate venv ($MODELRELEASE_CACHE/bench-venv,
default ~/.cache/modelrelease/bench-venv) that the script creates on first run
from hack/bench/requirements-judge.txt; the operator's .venv is left alone.

The streams are the issue's: alpha 0.05, 50 requests/s (or 500), 30 s
intervals, one look per interval for an hour (120 looks, or 600), the
challenger's share 50% or 10%, load drifting per release and per interval, each
request bad independently with its arm's rate. Every judge looks after every
interval and a release ends at its first conclusive verdict:

- NEW: operator/modelrelease/analysis/sequential.py as shipped (one-sided
  mixtures, margin 5% on the grid), re-implemented with numpy over many
  releases at once and checked against the module on a sample of releases;
- OLD: the judge before issue 12 (one two-sided normal prior, sd 0.3, on a 2%
  grid; Worse when the bounds exclude every ratio up to 1, NonInferior when they
  exclude every ratio from 1.0618, the grid point above a 5% margin), also with
  numpy;
- Mann-Whitney: a Kayenta-style two-sided test at alpha on the per-interval
  rates so far, re-run at every look (rollback when significant and higher).

Sections: (a) A/A false rollbacks; (b) requests to detect a regression;
(c) promotion of an identical challenger within an hour, and the options
studied for it; (d) counter resets in both arms, folded per pod by
core/comparison.py; (e) requests per arm needed for non-inferiority.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
)
from modelrelease.api.constants import DEFAULT_MARGIN  # noqa: E402
from modelrelease.core.comparison import Counter, fold_series  # noqa: E402
from scipy import stats  # noqa: E402

ALPHA = 0.05
INTERVAL_SECONDS = 30.0
Array = np.ndarray
Counts = tuple[Array, Array, Array, Array]  # champion bad, total; challenger bad, total


# --- the judges, vectorised over releases ------------------------------------------


@dataclass(frozen=True)
class Judge:
    """A judge on a log-ratio grid: the grid points whose e-values decide, and the
    weights (one column per tested point) of its mixtures.

    ``rolls_back(l)``/``promotes(l)`` take log-likelihoods of shape (releases, grid),
    each row's maximum 0, and say which releases the verdict holds for.
    """

    name: str
    log_ratios: Array
    worse_centres: Array  # all must be rejected for Worse
    worse_weights: Array  # (grid, len(worse_centres))
    promote_centres: Array  # all must be rejected for a promotion
    promote_weights: Array
    worse_threshold: float
    promote_threshold: float

    def _rejects_all(
        self, loglik: Array, centres: Array, weights: Array, threshold: float
    ) -> Array:
        with np.errstate(divide="ignore", under="ignore"):
            log_sums = np.log(np.exp(loglik) @ weights)
        at_centres = loglik[:, centres]
        log_e = log_sums - at_centres
        # A sum that underflows only happens far from the maximum, where the null is long gone.
        log_e = np.where(np.isneginf(log_sums) & (at_centres < -700), np.inf, log_e)
        return np.all(log_e >= threshold, axis=1)

    def rolls_back(self, loglik: Array) -> Array:
        return self._rejects_all(
            loglik, self.worse_centres, self.worse_weights, self.worse_threshold
        )

    def promotes(self, loglik: Array) -> Array:
        return self._rejects_all(
            loglik, self.promote_centres, self.promote_weights, self.promote_threshold
        )


def half_normal(log_step: float, scale: float, size: int) -> Array:
    """Weights of offsets 1 .. size-1 grid steps, as the module normalises them."""
    steps = np.arange(1, size)
    density = np.exp(-((steps * log_step) ** 2) / (2 * scale**2))
    return density / density.sum()


def one_sided_weights(size: int, centre: int, weights: Array, upward: bool) -> Array:
    column = np.zeros(size)
    indices = np.arange(size)
    offsets = indices - centre if upward else centre - indices
    mask = offsets > 0
    column[mask] = weights[offsets[mask] - 1]
    return column


def new_judge(
    margin: float = DEFAULT_MARGIN,
    improvement_scale: float | None = None,
    promote_alpha: float = ALPHA,
    worse_alpha: float = ALPHA,
) -> Judge:
    grid = RatioGrid.for_margin(margin)
    if improvement_scale is not None:
        grid = replace(grid, improvement_scale=improvement_scale)
    size, null = grid.size, grid.null_index
    at_margin = grid.index_towards_one(1 + margin)
    regression = half_normal(grid.log_step, grid.regression_scale, size)
    improvement = half_normal(grid.log_step, grid.improvement_scale, size)
    return Judge(
        name="NEW",
        log_ratios=np.array([grid.log_ratio(i) for i in range(size)]),
        worse_centres=np.array([null]),
        worse_weights=one_sided_weights(size, null, regression, upward=True)[:, None],
        promote_centres=np.array([at_margin]),
        promote_weights=one_sided_weights(size, at_margin, improvement, upward=False)[:, None],
        worse_threshold=math.log(1 / worse_alpha),
        promote_threshold=math.log(1 / promote_alpha),
    )


OLD_STEP, OLD_POINTS, OLD_SCALE = 0.02, 150, 0.3
OLD_CHECKED = 16  # grid points checked beyond 1 (or the margin); further ones follow


def old_judge(margin: float = DEFAULT_MARGIN) -> Judge:
    """The judge before issue 12: its Worse needs every ratio <= 1 rejected, checked
    on the 16 grid points from 1 down (ratios further from the estimate have the
    larger e-values, so they are in practice rejected first); NonInferior needs
    every ratio from the grid point above 1 + margin rejected, checked likewise."""
    size, null = 2 * OLD_POINTS + 1, OLD_POINTS
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    kernel = np.where(offsets != 0, np.exp(-((offsets * OLD_STEP) ** 2) / (2 * OLD_SCALE**2)), 0)
    kernel /= kernel.sum(axis=0, keepdims=True)
    above_margin = null + math.floor(math.log1p(margin) / OLD_STEP) + 1
    worse = np.arange(null - OLD_CHECKED + 1, null + 1)
    promote = np.arange(above_margin, above_margin + OLD_CHECKED)
    return Judge(
        name="OLD",
        log_ratios=(np.arange(size) - null) * OLD_STEP,
        worse_centres=worse,
        worse_weights=kernel[:, worse],
        promote_centres=promote,
        promote_weights=kernel[:, promote],
        worse_threshold=math.log(1 / ALPHA),
        promote_threshold=math.log(1 / ALPHA),
    )


@dataclass
class Outcome:
    """Per release: the look of the first rollback and of the first promotion
    (inf: none), the verdict that came first deciding."""

    rollback: Array
    promotion: Array

    @property
    def rolled_back(self) -> Array:
        return self.rollback < self.promotion

    @property
    def promoted(self) -> Array:
        return self.promotion < self.rollback


def judge_streams(judge: Judge, counts: Counts) -> Outcome:
    """Feed every release's intervals to ``judge``, looking after each one."""
    champion_bad, champion_total, challenger_bad, challenger_total = counts
    releases, looks = champion_bad.shape
    loglik = np.zeros((releases, judge.log_ratios.size))
    ratios = np.exp(judge.log_ratios)
    rollback = np.full(releases, np.inf)
    promotion = np.full(releases, np.inf)
    rows = np.arange(releases)  # releases still without a verdict
    for look in range(looks):
        bad = champion_bad[rows, look] + challenger_bad[rows, look]
        champion, challenger = champion_total[rows, look], challenger_total[rows, look]
        usable = (bad > 0) & (champion > 0) & (challenger > 0)
        odds = challenger / np.maximum(champion, 1)
        loglik[rows] += np.where(
            usable[:, None],
            challenger_bad[rows, look, None] * judge.log_ratios
            - bad[:, None] * np.log1p(ratios * odds[:, None]),
            0.0,
        )
        loglik[rows] -= loglik[rows].max(axis=1, keepdims=True)
        rollback[rows[judge.rolls_back(loglik[rows])]] = look + 1
        still = rows[np.isinf(rollback[rows])]
        promotion[still[judge.promotes(loglik[still])]] = look + 1
        rows = rows[np.isinf(rollback[rows]) & np.isinf(promotion[rows])]
        if not rows.size:
            break
    return Outcome(rollback, promotion)


def check_against_module(counts: Counts, releases: int = 12) -> None:
    """The numpy NEW judge must reach the module's verdicts at the same looks."""
    outcome = judge_streams(new_judge(), first_releases(counts, releases))
    for release in range(releases):
        test = SequentialRatioTest()
        rollback = promotion = math.inf
        for look in range(counts[0].shape[1]):
            test = test.update(*(float(a[release, look]) for a in counts))
            verdict = test.summary(alpha=ALPHA).verdict
            if verdict == ComparisonVerdict.WORSE:
                rollback = look + 1
                break
            if verdict in (ComparisonVerdict.NON_INFERIOR, ComparisonVerdict.SUPERIOR):
                promotion = look + 1
                break
        mine = (outcome.rollback[release], outcome.promotion[release])
        if mine != (rollback, promotion):
            raise SystemExit(
                f"numpy judge and module disagree on release {release}: {mine} vs "
                f"{(rollback, promotion)}"
            )


def mann_whitney(counts: Counts, looks: int) -> Array:
    """Look of the first Kayenta-style rollback: a two-sided Mann-Whitney test at
    ALPHA on the per-interval rates so far, challenger higher (inf: none)."""
    champion_bad, champion_total, challenger_bad, challenger_total = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        champion = np.where(champion_total > 0, champion_bad / champion_total, 0.0)
        challenger = np.where(challenger_total > 0, challenger_bad / challenger_total, 0.0)
    first = np.full(champion.shape[0], np.inf)
    # Every look for the first hour, then every 10th (fewer looks, fewer false alarms:
    # a lower bound on re-running at every look, which a 2-core machine cannot afford).
    for look in [*range(2, 121), *range(130, looks + 1, 10)]:
        if look > looks:
            break
        x, y = challenger[:, :look], champion[:, :look]
        statistic, p_value = stats.mannwhitneyu(
            x, y, alternative="two-sided", axis=1, method="asymptotic"
        )
        higher = (p_value < ALPHA) & (statistic > look * look / 2)
        first = np.where(np.isinf(first) & higher, look, first)
    return first


# --- traffic ---------------------------------------------------------------------


def streams(
    rng: np.random.Generator,
    releases: int,
    looks: int,
    base: float,
    changed: float,
    share: float = 0.5,
    rate: float = 50.0,
) -> Counts:
    """Per release and interval: champion bad, champion requests, challenger bad,
    challenger requests. Load drifts per release (sd 0.3 on the log) and per
    interval (sd 0.2); each request goes to the challenger with ``share``."""
    load = rng.lognormal(0.0, 0.3, (releases, 1)) * rng.lognormal(0.0, 0.2, (releases, looks))
    total = rng.poisson(rate * INTERVAL_SECONDS * load)
    challenger_total = rng.binomial(total, share)
    champion_total = total - challenger_total
    return (
        rng.binomial(champion_total, base),
        champion_total,
        rng.binomial(challenger_total, changed),
        challenger_total,
    )


def first_releases(counts: Counts, releases: int) -> Counts:
    return counts[0][:releases], counts[1][:releases], counts[2][:releases], counts[3][:releases]


def challenger_requests_at(counts: Counts, looks: Array) -> Array:
    cumulative = np.cumsum(counts[3], axis=1)
    index = np.clip(np.nan_to_num(looks, posinf=1).astype(int) - 1, 0, cumulative.shape[1] - 1)
    return np.where(np.isfinite(looks), cumulative[np.arange(len(looks)), index], np.inf)


# --- (a) A/A ----------------------------------------------------------------------------


def bench_false_rollbacks(rng: np.random.Generator, releases: int, mw_releases: int) -> None:
    print(f"\n### (a) A/A: identical versions at 1% errors, alpha {ALPHA}\n")
    print(
        "Share of releases rolled back (Worse) at some look. The sequential judges stop "
        "at their first verdict, so a promoted release cannot be rolled back later.\n"
    )
    print(
        "| requests/s | challenger share | looks | releases | OLD | NEW | "
        "Mann-Whitney re-run each look (every 10th after 120) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for share, looks in ((0.5, 120), (0.5, 600), (0.1, 120), (0.1, 600)):
        count = releases if looks == 120 else releases // 2
        counts = streams(rng, count, looks, 0.01, 0.01, share)
        if share == 0.5 and looks == 120:
            check_against_module(counts)
        old, new = (judge_streams(j, counts) for j in (old_judge(), new_judge()))
        mw = mann_whitney(first_releases(counts, mw_releases), looks)
        print(
            f"| 50 | {share:.0%} | {looks} | {count:,} | {pct(old.rolled_back.mean())} | "
            f"{pct(new.rolled_back.mean())} | {pct(np.isfinite(mw).mean())} "
            f"({mw_releases:,} releases) |"
        )
    for count in (releases, releases // 2):
        half_width = 1.96 * math.sqrt(ALPHA * (1 - ALPHA) / count)
        print(f"\nA rate near {pct(ALPHA)} is known to +-{pct(half_width)} (95%) from {count:,}.")


# --- (b) detection -------------------------------------------------------------------


def bench_detection(rng: np.random.Generator, runs: int) -> None:
    print(f"\n### (b) Challenger requests until a regression is rolled back ({runs} runs each)\n")
    print(
        "50 requests/s, 120 looks (1 hour); a run not rolled back by then counts as not "
        "detected. Medians and p90 of the challenger's requests at the rollback.\n"
    )
    print(
        "| change | challenger share | OLD: detected, median, p90 | NEW: detected, median, p90 | "
        "Mann-Whitney: median, p90 |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    cases = (
        ("errors 1% -> 2%", 0.01, 0.02, 0.5),
        ("errors 1% -> 2%", 0.01, 0.02, 0.1),
        ("errors 1% -> 1.5%", 0.01, 0.015, 0.5),
        ("slow share 10% -> 11%", 0.10, 0.11, 0.5),
        ("errors 1% -> 3%", 0.01, 0.03, 0.1),
    )
    for label, base, changed, share in cases:
        counts = streams(rng, runs, 120, base, changed, share)
        cells = []
        for judge in (old_judge(), new_judge()):
            outcome = judge_streams(judge, counts)
            looks = np.where(outcome.rolled_back, outcome.rollback, np.inf)
            cells.append(detection_cell(challenger_requests_at(counts, looks)))
        mw = challenger_requests_at(counts, mann_whitney(counts, 120))
        print(
            f"| {label} | {share:.0%} | {cells[0]} | {cells[1]} | "
            f"{requests_text(np.quantile(mw, 0.5))}, {requests_text(np.quantile(mw, 0.9))} |"
        )


def detection_cell(requests: Array) -> str:
    return (
        f"{pct(np.isfinite(requests).mean())}, {requests_text(np.quantile(requests, 0.5))}, "
        f"{requests_text(np.quantile(requests, 0.9))}"
    )


# --- (c) promotion of an identical challenger ---------------------------------------------


def bench_promotion(rng: np.random.Generator, runs: int) -> None:
    print(f"\n### (c) Identical challenger (1% errors): promoted within 1 hour ({runs} runs)\n")
    print(
        "Share of runs promoted (NonInferior or Superior) within 120 looks; the rest end "
        "at maxDuration. NEW variants: the improvement-side prior's scale, a 10% margin "
        "(what a margin relative to a low base rate gives), and two metrics (errors at "
        "1%, slow share at 10%) that must both pass, at alpha each (intersection-union, "
        "as the operator does) or at alpha/2 each.\n"
    )
    variants: list[tuple[str, Judge | None]] = [
        ("OLD (margin 5%)", old_judge()),
        ("NEW (margin 5%, scale 0.1)", new_judge()),
        ("NEW, improvement scale 0.05", new_judge(improvement_scale=0.05)),
        ("NEW, improvement scale 0.3", new_judge(improvement_scale=0.3)),
        ("OLD, margin 10%", old_judge(0.1)),
        ("NEW, margin 10%", new_judge(0.1)),
        ("NEW, two metrics, alpha each", None),
        ("NEW, two metrics, alpha/2 each", None),
    ]
    settings = [(50.0, 0.5), (50.0, 0.1), (500.0, 0.5), (500.0, 0.1)]
    data = {key: streams(rng, runs, 120, 0.01, 0.01, key[1], key[0]) for key in settings}
    slow = {key: streams(rng, runs, 120, 0.10, 0.10, key[1], key[0]) for key in settings}
    header = " | ".join(f"{rate:g} req/s, share {share:.0%}" for rate, share in settings)
    print(f"| judge | {header} |")
    print("| --- |" + " ---: |" * len(settings))
    for name, judge in variants:
        cells = []
        for key in settings:
            if judge is not None:
                cells.append(pct(judge_streams(judge, data[key]).promoted.mean()))
                continue
            alpha = ALPHA if "alpha each" in name else ALPHA / 2
            both = new_judge(promote_alpha=alpha, worse_alpha=ALPHA / 2)
            first, second = judge_streams(both, data[key]), judge_streams(both, slow[key])
            # Promoted once both have passed, unless either rolled back first.
            promoted_at = np.maximum(first.promotion, second.promotion)
            rolled = np.minimum(first.rollback, second.rollback)
            cells.append(pct(np.mean(promoted_at < rolled)))
        print(f"| {name} | " + " | ".join(cells) + " |")


# --- (d) counter resets -------------------------------------------------------------------

PODS_PER_ARM = 2


def pod_streams(
    rng: np.random.Generator,
    releases: int,
    base: float,
    changed: float,
    restart: tuple[float, float],
    looks: int = 120,
) -> Counts:
    """Per-pod cumulative counters with restarts (a restarted pod counts from zero and
    is missing from the next read), read every interval and folded per series by
    core/comparison.fold_series into the increments the judge sees."""
    out = np.zeros((4, releases, looks))
    per_pod = 50.0 * INTERVAL_SECONDS / 2 / PODS_PER_ARM
    for release in range(releases):
        last: list[dict[str, list[float]]] = [{}, {}]
        counters = np.zeros((2, PODS_PER_ARM, 2))  # arm, pod, (bad, total)
        down = np.zeros((2, PODS_PER_ARM), dtype=bool)
        for look in range(looks + 1):
            for arm, rate in enumerate((base, changed)):
                served = rng.poisson(per_pod, PODS_PER_ARM) * ~down[arm]
                counters[arm, :, 1] += served
                counters[arm, :, 0] += rng.binomial(served, rate)
                down[arm] = False
                restarted = rng.random(PODS_PER_ARM) < restart[arm]
                counters[arm, restarted] = 0
                down[arm] = restarted
                read = {
                    f"pod-{pod}": Counter(*counters[arm, pod])
                    for pod in range(PODS_PER_ARM)
                    if not down[arm, pod]
                }
                increment = fold_series(last[arm], read, look)
                last[arm] = increment.series
                if look:
                    out[2 * arm, release, look - 1] = increment.bad
                    out[2 * arm + 1, release, look - 1] = increment.total
    return out[0], out[1], out[2], out[3]


def bench_restarts(rng: np.random.Generator, releases: int) -> None:
    print(
        f"\n### (d) Counter resets: per-pod counters folded by core/comparison ({releases} runs)\n"
    )
    print(
        f"50 requests/s split 50/50 over {PODS_PER_ARM} pods per arm, 120 looks. Each pod "
        "restarts with the given chance per interval (0.05: every ~10 min; 1/6: "
        "crash-looping, every ~3 min).\n"
    )
    print(
        "| scenario | restarts per pod per interval (champion, challenger) | "
        "OLD: A/A rolled back | NEW: A/A rolled back | OLD: 1% -> 2% median, p90 | "
        "NEW: 1% -> 2% median, p90 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, restart in (
        ("no restarts", (0.0, 0.0)),
        ("restarts in both arms", (0.05, 0.05)),
        ("crash-looping challenger, restarting champion", (0.05, 1 / 6)),
    ):
        same = pod_streams(rng, releases, 0.01, 0.01, restart)
        worse = pod_streams(rng, releases, 0.01, 0.02, restart)
        cells = []
        for judge in (old_judge(), new_judge()):
            cells.append(pct(judge_streams(judge, same).rolled_back.mean()))
        for judge in (old_judge(), new_judge()):
            outcome = judge_streams(judge, worse)
            looks = np.where(outcome.rolled_back, outcome.rollback, np.inf)
            requests = challenger_requests_at(worse, looks)
            cells.append(
                f"{requests_text(np.quantile(requests, 0.5))}, "
                f"{requests_text(np.quantile(requests, 0.9))}"
            )
        print(f"| {label} | {restart[0]:.2g}, {restart[1]:.2g} | " + " | ".join(cells) + " |")


# --- (e) sizing non-inferiority -----------------------------------------------------------------


def bench_sizing(rng: np.random.Generator, runs: int) -> None:
    print(f"\n### (e) Requests per arm for an identical challenger to pass ({runs} runs)\n")
    print(
        "NEW judge, 50/50 split, alpha 0.05, looking every 20 bad events in total. Given "
        "the bad events, the split does not depend on the base rate (for small rates), "
        "so the bad events needed are fixed and the requests are those divided by the "
        "base rate. Power: share of identical challengers promoted by then.\n"
    )
    bases = (0.001, 0.01, 0.05, 0.10)
    print(
        "| margin | power | bad events per arm | "
        + " | ".join(f"requests per arm at {base:.1%}" for base in bases)
        + " |"
    )
    print("| ---: | ---: | ---: |" + " ---: |" * len(bases))
    per_look = 20
    for margin, looks in ((0.05, 3000), (0.10, 800), (0.20, 250)):
        bad = np.full((runs, looks), per_look)
        challenger_bad = rng.binomial(bad, 0.5)
        totals = np.full((runs, looks), 1000)
        counts = (bad - challenger_bad, totals, challenger_bad, totals)
        outcome = judge_streams(new_judge(margin), counts)
        needed = np.where(outcome.promoted, outcome.promotion, np.inf) * per_look / 2
        for power in (0.5, 0.8, 0.95):
            events = np.quantile(needed, power, method="inverted_cdf")
            cells = " | ".join(requests_text(events / base) for base in bases)
            print(f"| {margin:.0%} | {power:.0%} | {requests_text(events)} | {cells} |")


# --- output --------------------------------------------------------------------------


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def requests_text(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "not reached"


SECTIONS = ("a", "b", "c", "d", "e")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=2000, help="A/A releases for (a)")
    parser.add_argument("--runs", type=int, default=4000, help="runs per row for (b)")
    parser.add_argument("--promotion-runs", type=int, default=500, help="runs for (c), (e)")
    parser.add_argument("--mw-releases", type=int, default=300, help="Mann-Whitney releases")
    parser.add_argument("--restart-releases", type=int, default=600, help="runs for (d)")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument(
        "--section", choices=SECTIONS, action="append", help="only these sections (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few releases and runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.releases, args.runs, args.promotion_runs = 200, 100, 50
        args.mw_releases, args.restart_releases = 50, 20
    started = time.perf_counter()
    print(
        f"Judge benchmark: alpha {ALPHA}, margin {DEFAULT_MARGIN}, seed {args.seed}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {sys.version.split()[0]}"
    )
    sections: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {
        "a": (bench_false_rollbacks, (args.releases, args.mw_releases)),
        "b": (bench_detection, (args.runs,)),
        "c": (bench_promotion, (args.promotion_runs,)),
        "d": (bench_restarts, (args.restart_releases,)),
        "e": (bench_sizing, (args.promotion_runs,)),
    }
    for index, name in enumerate(SECTIONS):
        if args.section and name not in args.section:
            continue
        section, section_args = sections[name]
        # One stream of random numbers per section: a section alone gives the same figures.
        section(np.random.default_rng([args.seed, index]), *section_args)
        print(f"\n(section ({name}): {time.perf_counter() - started:.0f} s so far)")
    print(f"\nTotal: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
