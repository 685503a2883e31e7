"""Champion-challenger comparisons in one pass, purely.

Every analysis interval the I/O layer reads each arm's *raw* cumulative
counters (``sum(bad)`` and ``sum(total)`` for a ratio; the count of events above
the threshold and of all events from ``sum by (le)`` of a histogram's buckets)
and hands them over as :class:`MetricReading`. Here they become increments
against the values kept in ``status.comparison`` (a counter that went down was
reset: that interval counts from zero), are folded into the anytime-valid judge
(:class:`~modelrelease.analysis.sequential.SequentialRatioTest`, whose state
lives in status too) and summarised per metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from modelrelease.analysis.sequential import (
    ComparisonVerdict,
    SequentialRatioTest,
)
from modelrelease.api.constants import Better, Decision, MetricKind, StageType, Verdict
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import (
    ArmCounts,
    Comparison,
    ComparisonMetric,
    ComparisonStatus,
    ModelReleaseSpec,
    ModelReleaseStatus,
)
from modelrelease.metrics.templating import QueryContext, render

MAX_REPORTED_E_VALUE = 1e12
"""E-values above this are written as this (status stays short and finite)."""


@dataclass(frozen=True)
class Counter:
    """Raw cumulative values of one arm's counters: events of interest and all events."""

    bad: float
    total: float


@dataclass(frozen=True)
class MetricReading:
    """One metric's counters for both arms in this pass, or why they could not be read."""

    champion: Counter | None = None
    challenger: Counter | None = None
    error: str | None = None


@dataclass(frozen=True)
class ArmQueries:
    """The PromQL of one arm: ratio ``bad`` and ``total``; histogram ``buckets``."""

    bad: str | None = None
    total: str | None = None
    buckets: str | None = None


@dataclass(frozen=True)
class MetricQueries:
    name: str
    kind: MetricKind
    threshold: float | None
    champion: ArmQueries
    challenger: ArmQueries


@dataclass(frozen=True)
class ComparisonResult:
    """The comparison as a whole: Pass (challenger won on every metric), Fail, Inconclusive."""

    verdict: Verdict
    message: str


# --- which comparison, and when ---------------------------------------------------


def active_comparison(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> Comparison | None:
    """The comparison of the stage in progress (championChallenger, or shadow with one)."""
    current = status.current_stage
    if current is None or status.challenger is None:
        return None
    stage = spec.stage_named(current.name, current.type)
    if stage is None:
        return None
    if stage.type is StageType.CHAMPION_CHALLENGER:
        return stage.champion_challenger
    if stage.type is StageType.SHADOW and stage.shadow is not None:
        return stage.shadow.comparison
    return None


def comparison_due(spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime) -> bool:
    """Whether this pass should read the comparison counters.

    The baseline when the stage's clock has run for ``warmup``; then every
    ``analysis.interval``.
    """
    comparison = active_comparison(spec, status)
    current = status.current_stage
    if comparison is None or current is None or current.step_start_time is None:
        return False
    records = {record.metric: record for record in status.comparison}
    if any(
        metric.name not in records or records[metric.name].champion_counter is None
        for metric in comparison.metrics
    ):
        # The baseline, once the warm-up has let the first requests finish.
        warm = (now - current.step_start_time).total_seconds()
        return warm >= parse_duration(comparison.warmup)
    times = [record.time for record in records.values() if record.time is not None]
    if not times:
        return True
    interval = parse_duration(spec.analysis.interval) if spec.analysis else 30.0
    return (now - max(times)).total_seconds() >= interval


def comparison_queries(comparison: Comparison, context: QueryContext) -> list[MetricQueries]:
    """Each metric's queries per arm, ``{{revision}}`` being that arm's revision.

    Raises :class:`~modelrelease.metrics.templating.TemplateError` for a query
    that cannot be rendered.
    """
    champion = replace(context, revision=context.champion)
    challenger = replace(context, revision=context.challenger)
    return [
        MetricQueries(
            name=metric.name,
            kind=metric.kind,
            threshold=metric.threshold,
            champion=_arm_queries(metric, champion),
            challenger=_arm_queries(metric, challenger),
        )
        for metric in comparison.metrics
    ]


def _arm_queries(metric: ComparisonMetric, context: QueryContext) -> ArmQueries:
    if metric.kind is MetricKind.RATIO:
        assert metric.bad is not None
        assert metric.total is not None
        return ArmQueries(
            bad=f"sum({render(metric.bad, context)})",
            total=f"sum({render(metric.total, context)})",
        )
    assert metric.query is not None
    return ArmQueries(buckets=f"sum by (le) ({render(metric.query, context)})")


# --- folding readings into the judge ----------------------------------------------


def fold_comparison(
    comparison: Comparison,
    records: list[ComparisonStatus],
    readings: Mapping[str, MetricReading] | None,
    now: datetime,
) -> tuple[list[ComparisonStatus], ComparisonResult]:
    """Fold this pass's readings (None: none taken) into the records; the overall verdict."""
    by_name = {record.metric: record for record in records}
    updated: list[ComparisonStatus] = []
    for metric in comparison.metrics:
        record = by_name.get(metric.name) or ComparisonStatus(metric=metric.name)
        reading = readings.get(metric.name) if readings is not None else None
        if reading is not None:
            record = _fold_metric(comparison, metric, record, reading, now)
        updated.append(record)
    return updated, _overall(updated)


def _fold_metric(
    comparison: Comparison,
    metric: ComparisonMetric,
    record: ComparisonStatus,
    reading: MetricReading,
    now: datetime,
) -> ComparisonStatus:
    if reading.error is not None or reading.champion is None or reading.challenger is None:
        why = reading.error or "no counters were read"
        return record.model_copy(
            update={
                "message": f"could not read the counters, retrying next interval: {why}",
                "verdict": Verdict.ERROR,  # a failed read is never a pass (nor a fail)
                "error_since": record.error_since or now,
            }
        )
    # A read that answers ends the outage; the judge gives the verdict again.
    record = record.model_copy(update={"error_since": None, "verdict": Verdict.INCONCLUSIVE})
    test = _test_of(record)
    if record.champion_counter is None or record.challenger_counter is None:
        # The baseline: increments are counted from here.
        return record.model_copy(
            update={
                "champion_counter": _arm(reading.champion),
                "challenger_counter": _arm(reading.challenger),
                "state": test.to_dict(),
                "message": "baseline taken; the first increments come next interval",
                "time": now,
            }
        )
    champion_bad, champion_total = _increment(record.champion_counter, reading.champion)
    challenger_bad, challenger_total = _increment(record.challenger_counter, reading.challenger)
    test = test.update(champion_bad, champion_total, challenger_bad, challenger_total)
    result = test.summary(
        alpha=comparison.alpha,
        better=metric.better,
        margin=1 + comparison.margin,
        decision=comparison.decision,
    )
    verdict = _VERDICTS[result.verdict]
    e_value = min(result.e_value, MAX_REPORTED_E_VALUE)
    return record.model_copy(
        update={
            "champion": ArmCounts(bad=test.champion.bad, total=test.champion.total),
            "challenger": ArmCounts(bad=test.challenger.bad, total=test.challenger.total),
            "champion_counter": _arm(reading.champion),
            "challenger_counter": _arm(reading.challenger),
            "estimate": _finite(result.estimate),
            "lower": _finite(result.lower),
            "upper": _finite(result.upper),
            "e_value": e_value,
            "verdict": verdict,
            "message": _metric_message(comparison, metric, test, result.verdict, e_value),
            "state": test.to_dict(),
            "time": now,
        }
    )


_VERDICTS = {
    ComparisonVerdict.WORSE: Verdict.FAIL,
    ComparisonVerdict.NON_INFERIOR: Verdict.PASS,
    ComparisonVerdict.SUPERIOR: Verdict.PASS,
    ComparisonVerdict.INCONCLUSIVE: Verdict.INCONCLUSIVE,
}


def _test_of(record: ComparisonStatus) -> SequentialRatioTest:
    if record.state is None:
        return SequentialRatioTest()
    try:
        return SequentialRatioTest.from_dict(record.state)
    except ValueError:
        return SequentialRatioTest()  # unreadable state: start the test again


def _increment(previous: ArmCounts, now: Counter) -> tuple[float, float]:
    """Counter increments; a counter that went down was reset and counts from zero."""
    total = now.total - previous.total
    bad = now.bad - previous.bad
    total = now.total if total < 0 else total
    bad = now.bad if bad < 0 else bad
    total = max(total, 0.0)
    # Series are scraped at slightly different moments: bad can run ahead of total.
    return min(max(bad, 0.0), total), total


def _arm(counter: Counter) -> ArmCounts:
    return ArmCounts(bad=max(counter.bad, 0.0), total=max(counter.total, 0.0))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _metric_message(
    comparison: Comparison,
    metric: ComparisonMetric,
    test: SequentialRatioTest,
    verdict: ComparisonVerdict,
    e_value: float,
) -> str:
    lower, upper = test.confidence_interval(comparison.alpha)
    confidence = round(100 * (1 - comparison.alpha))
    direction = "lower" if metric.better is Better.LOWER else "higher"
    seen = (
        f"challenger {_rate(test.challenger.bad, test.challenger.total)}, "
        f"champion {_rate(test.champion.bad, test.champion.total)}; rate ratio "
        f"{test.estimate():.3g} ({confidence}% bounds {lower:.3g}..{upper:.3g}), "
        f"e-value {e_value:.3g} (decides at {1 / comparison.alpha:.3g})"
    )
    what = {
        ComparisonVerdict.WORSE: "significantly worse than the champion",
        ComparisonVerdict.SUPERIOR: "significantly better than the champion",
        ComparisonVerdict.NON_INFERIOR: (
            f"no worse than the champion by more than {comparison.margin:.0%}"
        ),
        ComparisonVerdict.INCONCLUSIVE: (
            f"not yet decided ({direction} is better, "
            + (
                "superiority required"
                if comparison.decision is Decision.SUPERIORITY
                else f"margin {comparison.margin:.0%}"
            )
            + ")"
        ),
    }[verdict]
    return f"{what}: {seen}"


def _rate(bad: float, total: float) -> str:
    share = f"{bad / total:.2%}" if total > 0 else "n/a"
    return f"{bad:g}/{total:g} = {share}"


def _overall(records: list[ComparisonStatus]) -> ComparisonResult:
    failed = [record for record in records if record.verdict is Verdict.FAIL]
    if failed:
        record = failed[0]
        return ComparisonResult(Verdict.FAIL, f"metric {record.metric}: {record.message}")
    if records and all(record.verdict is Verdict.PASS for record in records):
        text = "; ".join(f"{record.metric}: {record.message}" for record in records)
        return ComparisonResult(Verdict.PASS, f"the challenger won on every metric ({text})")
    pending = [record.metric for record in records if record.verdict is not Verdict.PASS]
    return ComparisonResult(
        Verdict.INCONCLUSIVE,
        f"comparison inconclusive on {', '.join(pending)}",
    )
