"""Benchmark of the distribution-drift judge (a measurement, not a test).

Run from the repository root with the project's interpreter, on a shared machine
under nice:

    nice -n 10 .venv/bin/python hack/bench/drift.py          # the figures in docs/benchmarks.md
    nice -n 10 .venv/bin/python hack/bench/drift.py --quick  # a smoke run

numpy comes from the benchmarks' own venv ($MODELRELEASE_CACHE/bench-venv, made by
hack/bench/judge.py from hack/bench/requirements-judge.txt); the operator's .venv
is left alone.

Streams: alpha 0.05, 50 requests/s, 30 s intervals (1,500 requests an interval),
one look per interval for an hour (120 looks) or five (600). A classifier's score
is logit-normal: each request has its own logit ``u ~ N(m, 1.2)`` (what the input
is like) and each version answers ``u + N(0, 0.4)`` (what the model does with it),
so two identical versions on the same request give close but not equal scores.
Buckets are the simulator's: 0.1, 0.2, ..., 1.0 and +Inf. Streams:

- split: each request goes to the challenger with its share (50% or 10%);
- shadow: every request goes to both (100% mirroring), paired answers.

The e-value is operator/modelrelease/analysis/drift.py's, vectorised over
releases with numpy and checked against the module on a sample of releases.
A release ends at its first Drifted verdict.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MODELRELEASE_CACHE", Path.home() / ".cache" / "modelrelease"))
sys.path.insert(0, str(ROOT / "operator"))
try:
    import numpy  # noqa: F401
except ImportError:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = CACHE / "bench-venv" / "lib" / version / "site-packages"
    if not site.exists():
        sys.exit(f"no numpy: run hack/bench/judge.py once to create {site.parents[2]}")
    sys.path.append(str(site))

import numpy as np  # noqa: E402
from modelrelease.analysis.drift import PRIOR, DriftTest  # noqa: E402
from scipy.special import gammaln  # noqa: E402

ALPHA = 0.05
PER_INTERVAL = 1500
EDGES = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
SPREAD_INPUT, SPREAD_MODEL = 1.2, 0.4
Array = np.ndarray


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _buckets(scores: Array) -> Array:
    """Bucket index per score (the last, +Inf, never holds a score in (0, 1))."""
    return np.searchsorted(EDGES, scores, side="left")


def _log_e(champion: Array, challenger: Array) -> Array:
    """The module's log e-value for counts of shape (releases, buckets)."""
    a = PRIOR
    log_beta = (
        gammaln(a + challenger) + gammaln(a + champion) - gammaln(2 * a + challenger + champion)
    )
    log_beta0 = 2 * gammaln(a) - gammaln(2 * a)
    mixture = np.where(champion + challenger > 0, log_beta - log_beta0, 0.0).sum(axis=1)
    x, y = challenger.sum(axis=1), champion.sum(axis=1)
    n = np.maximum(x + y, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        null = np.where(x > 0, x * np.log(x / n), 0.0) + np.where(y > 0, y * np.log(y / n), 0.0)
    return mixture - null


def _interval(
    rng: np.random.Generator, releases: int, share: float | None, medians: tuple[float, float]
) -> tuple[Array, Array]:
    """One interval's counts per bucket (champion, challenger); share None: shadow."""
    size = len(EDGES) + 1
    u = rng.normal(0.0, SPREAD_INPUT, (releases, PER_INTERVAL))
    champion_scores = 1 / (
        1 + np.exp(-(u + _logit(medians[0]) + rng.normal(0, SPREAD_MODEL, u.shape)))
    )
    challenger_scores = 1 / (
        1 + np.exp(-(u + _logit(medians[1]) + rng.normal(0, SPREAD_MODEL, u.shape)))
    )
    if share is None:
        champion_mask = challenger_mask = np.ones(u.shape, dtype=bool)
    else:
        challenger_mask = rng.random(u.shape) < share
        champion_mask = ~challenger_mask
    rows = np.repeat(np.arange(releases)[:, None], PER_INTERVAL, axis=1)
    champion = np.zeros((releases, size))
    challenger = np.zeros((releases, size))
    np.add.at(champion, (rows[champion_mask], _buckets(champion_scores)[champion_mask]), 1)
    np.add.at(challenger, (rows[challenger_mask], _buckets(challenger_scores)[challenger_mask]), 1)
    return champion, challenger


def run(
    releases: int, looks: int, share: float | None, medians: tuple[float, float], seed: int
) -> tuple[Array, Array]:
    """Per release: the look at which it drifted (0: never) and its challenger events then."""
    rng = np.random.default_rng(seed)
    size = len(EDGES) + 1
    champion = np.zeros((releases, size))
    challenger = np.zeros((releases, size))
    drifted_at = np.zeros(releases, dtype=int)
    events_at = np.zeros(releases)
    checked = False
    for look in range(1, looks + 1):
        more_champion, more_challenger = _interval(rng, releases, share, medians)
        champion += more_champion
        challenger += more_challenger
        log_e = _log_e(champion, challenger)
        if not checked:  # the vectorised e-value is the module's
            edges = (*map(float, EDGES), math.inf)
            for row in range(min(releases, 5)):
                test = DriftTest(edges=edges).update(champion[row], challenger[row])
                assert math.isclose(test.log_e_value(), log_e[row], rel_tol=1e-9, abs_tol=1e-9)
            checked = True
        new = (drifted_at == 0) & (log_e >= -math.log(ALPHA))
        drifted_at[new] = look
        events_at[new] = challenger[new].sum(axis=1)
    return drifted_at, events_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few releases (a smoke run)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    started = time.monotonic()
    print("(a) A/A: identical versions (score median 0.8), false Drifted verdicts, alpha 0.05")
    print("| stream | looks | releases | false Drifted | rate |")
    print("|---|---|---|---|---|")
    for name, share, looks, releases in (
        ("split 50/50", 0.5, 120, 400),
        ("split 10%", 0.1, 120, 400),
        ("shadow (paired)", None, 120, 400),
        ("split 50/50", 0.5, 600, 100),
    ):
        count = max(int(releases * scale), 20)
        drifted, _ = run(count, looks, share, (0.8, 0.8), args.seed)
        alarms = int((drifted > 0).sum())
        print(f"| {name} | {looks} | {count} | {alarms} | {alarms / count:.3f} |")
    print()
    print(
        "(b) Score drift: challenger median 0.8 -> m, looks (30 s) and challenger events to Drifted"
    )
    print("| stream | median m | releases | detected in 1 h | looks p50 / p90 | events p50 / p90 |")
    print("|---|---|---|---|---|---|")
    for name, share in (("split 50/50", 0.5), ("split 10%", 0.1), ("shadow (paired)", None)):
        for median in (0.78, 0.75, 0.7):
            count = max(int(100 * scale), 20)
            drifted, events = run(count, 120, share, (0.8, median), args.seed + 1)
            hit = drifted > 0
            looks = np.percentile(drifted[hit], [50, 90]) if hit.any() else [math.nan] * 2
            seen = np.percentile(events[hit], [50, 90]) if hit.any() else [math.nan] * 2
            print(
                f"| {name} | {median} | {count} | {hit.mean():.0%} | "
                f"{looks[0]:.0f} / {looks[1]:.0f} | {seen[0]:,.0f} / {seen[1]:,.0f} |"
            )
    print(f"\n{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
