"""Champion-challenger comparisons in one pass, purely.

Every analysis interval the I/O layer reads each arm's *raw* cumulative
counters per series, one series per pod (``sum by (namespace, pod, instance,
job)`` of ``bad`` and ``total`` for a ratio; of a histogram's buckets, from
which the count of events above the threshold and of all events are taken),
and hands them over as :class:`MetricReading`. Here they become exact
increments against the last values per series kept in ``status.comparison``
(:func:`fold_series`), are folded into the anytime-valid judge
(:class:`~modelrelease.analysis.sequential.SequentialRatioTest`, whose state
lives in status too) and summarised per metric. Release-level error control:
any metric may roll back, so ``Worse`` is tested at ``alpha`` split evenly across
the metrics (:func:`metric_alpha`) and the release's false-rollback rate stays at
most ``alpha`` however many there are; a promotion needs every metric to pass,
an intersection-union test, so each promotion verdict is tested at the whole
``alpha`` and the false-promotion rate is still at most ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import quote

from modelrelease.analysis.drift import DriftSummary, DriftTest, describe_edges
from modelrelease.analysis.sequential import (
    ComparisonVerdict,
    RatioGrid,
    SequentialRatioTest,
)
from modelrelease.api.constants import Better, Decision, MetricKind, StageType, Verdict
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import (
    ArmCounts,
    BucketShare,
    Comparison,
    ComparisonMetric,
    ComparisonStatus,
    ModelReleaseSpec,
    ModelReleaseStatus,
)
from modelrelease.metrics.templating import QueryContext, render

MAX_REPORTED_E_VALUE = 1e12
"""E-values above this are written as this (status stays short and finite)."""

SERIES_LABELS: Final = ("namespace", "pod", "instance", "job")
"""The labels that tell one scrape target (one pod's process) from another. All
counters of one process restart together, so sums within a target stay counters."""

MAX_KEPT_SERIES: Final = 100
"""Per arm, series missing from the reads are forgotten beyond this many, the longest
unseen first (a pod gone for good); series present in a read are always kept."""


@dataclass(frozen=True)
class Counter:
    """Raw cumulative values of one series (one pod): events of interest and all events.

    ``bad`` is None when no bad-event series was read for it (none counted yet, or
    the series was missing from that read).
    """

    bad: float | None
    total: float
    edges: tuple[float, ...] | None = None
    counts: tuple[float, ...] | None = None
    """``distribution``: the histogram's bucket edges (``le``, the last ``+Inf``) and each
    bucket's own count (not cumulative); ``total`` is their sum."""


ArmReading = Mapping[str, Counter]
"""One arm's counters by series key (:func:`series_key`)."""


@dataclass(frozen=True)
class MetricReading:
    """One metric's counters for both arms in this pass, or why they could not be read."""

    champion: ArmReading | None = None
    challenger: ArmReading | None = None
    error: str | None = None


@dataclass(frozen=True)
class ArmIncrement:
    """One interval of one arm: exact increments and the last values to keep per series."""

    bad: float
    total: float
    series: dict[str, list[float]]


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
    """The comparison as a whole: Pass (challenger won on every metric), Fail, Inconclusive.

    ``notices``: what happened to the judge's saved state this pass (carried over
    from an older operator, or unreadable and started again), for Warning Events.
    """

    verdict: Verdict
    message: str
    notices: tuple[str, ...] = ()
    drifted: bool = False
    """The failing metric is a ``distribution`` one (a drift, not a loss)."""


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


def next_comparison_at(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> datetime | None:
    """When the comparison counters are next read; None: no comparison runs now.

    The baseline when the stage's clock has run for ``warmup``; then every
    ``analysis.interval`` after the last read, answered or not.
    """
    comparison = active_comparison(spec, status)
    current = status.current_stage
    if comparison is None or current is None or current.step_start_time is None:
        return None
    interval = timedelta(seconds=parse_duration(spec.analysis.interval) if spec.analysis else 30.0)
    times = [record.time for record in status.comparison if record.time is not None]
    warm = current.step_start_time + timedelta(seconds=parse_duration(comparison.warmup))
    return max([warm, *(time + interval for time in times)])


def comparison_due(spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime) -> bool:
    """Whether this pass should read the comparison counters (:func:`next_comparison_at`)."""
    moment = next_comparison_at(spec, status)
    return moment is not None and now >= moment


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


def series_key(labels: Mapping[str, str]) -> str:
    """The key of one series in status: its :data:`SERIES_LABELS` values, ``/``-joined."""
    return "/".join(quote(labels.get(name, ""), safe=":@") for name in SERIES_LABELS)


_BY_SERIES = ", ".join(SERIES_LABELS)


def _arm_queries(metric: ComparisonMetric, context: QueryContext) -> ArmQueries:
    # Per series, not one sum: a sum cannot tell a restarted pod from fewer requests.
    if metric.kind is MetricKind.RATIO:
        assert metric.bad is not None
        assert metric.total is not None
        return ArmQueries(
            bad=f"sum by ({_BY_SERIES}) ({render(metric.bad, context)})",
            total=f"sum by ({_BY_SERIES}) ({render(metric.total, context)})",
        )
    assert metric.query is not None
    return ArmQueries(buckets=f"sum by (le, {_BY_SERIES}) ({render(metric.query, context)})")


# --- exact increments per series ----------------------------------------------------


def fold_series(last: Mapping[str, list[float]], read: ArmReading, interval: int) -> ArmIncrement:
    """This interval's increments of one arm, and the values to keep.

    Per series: ``value - last``; a series whose total went down restarted, so all
    it counted is new (bad and total reset together); a series not in ``last`` is
    new (a new pod) and counts whole; a series missing from ``read`` counts nothing
    and keeps its last values, so nothing is added twice when it comes back. Bad
    events are counted at most up to the total's increment; a bad counter read
    ahead of its total is counted next interval.
    """
    series = {key: list(values) for key, values in last.items()}
    bad_sum = total_sum = 0.0
    for key, counter in read.items():
        total = max(counter.total, 0.0)
        bad = None if counter.bad is None else max(counter.bad, 0.0)
        previous = last.get(key)
        if previous is None or total < previous[1]:
            total_increment = total
            bad_increment = kept_bad = min(bad or 0.0, total)
        else:
            last_bad, last_total = previous[0], previous[1]
            total_increment = total - last_total
            if bad is None:
                bad_increment, kept_bad = 0.0, last_bad
            elif bad < last_bad:
                # Bad went down while total did not: a restart the total hid; go on from here.
                bad_increment, kept_bad = 0.0, bad
            else:
                bad_increment = min(bad - last_bad, total_increment)
                kept_bad = last_bad + bad_increment
        series[key] = [kept_bad, total, float(interval)]
        bad_sum += bad_increment
        total_sum += total_increment
    return ArmIncrement(bad_sum, total_sum, _bounded(series, read.keys()))


def _bounded(series: dict[str, list[float]], present: Collection[str]) -> dict[str, list[float]]:
    absent = sorted((values[-1], key) for key, values in series.items() if key not in present)
    for _, key in absent[: max(len(series) - MAX_KEPT_SERIES, 0)]:
        del series[key]
    return series


# --- folding readings into the judge ----------------------------------------------


def fold_comparison(
    comparison: Comparison,
    records: list[ComparisonStatus],
    readings: Mapping[str, MetricReading] | None,
    now: datetime,
) -> tuple[list[ComparisonStatus], ComparisonResult]:
    """Fold this pass's readings (None: none taken) into the records; the overall verdict."""
    by_name = {record.metric: record for record in records}
    alpha = metric_alpha(comparison)
    updated: list[ComparisonStatus] = []
    notices: list[str] = []
    for metric in comparison.metrics:
        record = by_name.get(metric.name) or ComparisonStatus(metric=metric.name)
        reading = readings.get(metric.name) if readings is not None else None
        if reading is not None:
            record, notice = _fold_metric(comparison, alpha, metric, record, reading, now)
            if notice is not None:
                notices.append(f"metric {metric.name}: {notice}")
        updated.append(record)
    distributions = {
        metric.name for metric in comparison.metrics if metric.kind is MetricKind.DISTRIBUTION
    }
    result = _overall(updated, distributions)
    return updated, replace(result, notices=tuple(notices))


def metric_alpha(comparison: Comparison) -> float:
    """Each metric's level for ``Worse``: alpha split evenly (Bonferroni), since any
    metric may roll back.

    E-values stay valid under the union bound at every look, so the chance that
    any of k metrics ever says Worse of an identical challenger is at most alpha.
    Averaging the k e-values (also an e-value) would be the alternative; it needs
    the same evidence when one metric regresses, and the split keeps each
    metric's verdict and bounds readable on their own.
    """
    return comparison.alpha / len(comparison.metrics)


def _fold_metric(
    comparison: Comparison,
    alpha: float,
    metric: ComparisonMetric,
    record: ComparisonStatus,
    reading: MetricReading,
    now: datetime,
) -> tuple[ComparisonStatus, str | None]:
    if reading.error is not None or reading.champion is None or reading.challenger is None:
        why = reading.error or "no counters were read"
        message = f"could not read the counters, retrying next interval: {why}"
        update = {
            "message": message,
            "verdict": Verdict.ERROR,  # a failed read is never a pass (nor a fail)
            "error_since": record.error_since or now,
            "time": now,  # the next read is an interval later, as the message says
        }
        return record.model_copy(update=update), None
    if metric.kind is MetricKind.DISTRIBUTION:
        return fold_distribution(alpha, record, reading.champion, reading.challenger, now)
    # A read that answers ends the outage; the judge gives the verdict again.
    record = record.model_copy(update={"error_since": None, "verdict": Verdict.INCONCLUSIVE})
    test, notice = _resume(comparison, record, now)
    record = record.model_copy(update={"note": notice or record.note})
    if record.champion_series is None or record.challenger_series is None:
        return _baseline(record, test, reading.champion, reading.challenger, now), notice
    empty = _emptied_arm(record, reading.champion, reading.challenger)
    if empty is not None:
        message = (
            f"no {empty} series were read this interval, though there were before; an "
            "empty read is not zero counts: nothing was counted, retrying next interval"
        )
        update = {"message": message, "state": test.to_dict(), "time": now}
        return record.model_copy(update=update), notice
    interval = test.intervals + 1
    champion = fold_series(record.champion_series, reading.champion, interval)
    challenger = fold_series(record.challenger_series, reading.challenger, interval)
    test = test.update(champion.bad, champion.total, challenger.bad, challenger.total)
    result = test.summary(
        alpha=alpha,
        better=metric.better,
        margin=comparison.margin,
        decision=comparison.decision,
        promotion_alpha=comparison.alpha,
    )
    e_value = min(result.e_value, MAX_REPORTED_E_VALUE)
    updated = record.model_copy(
        update={
            "champion": ArmCounts(bad=test.champion.bad, total=test.champion.total),
            "challenger": ArmCounts(bad=test.challenger.bad, total=test.challenger.total),
            "champion_series": champion.series,
            "challenger_series": challenger.series,
            "estimate": _finite(result.estimate),
            "lower": _finite(result.lower),
            "upper": _finite(result.upper),
            "e_value": e_value,
            "verdict": _VERDICTS[result.verdict],
            "message": _metric_message(comparison, alpha, metric, test, result.verdict, e_value),
            "state": test.to_dict(),
            "time": now,
        }
    )
    return updated, notice


def _baseline(
    record: ComparisonStatus,
    test: SequentialRatioTest,
    champion: ArmReading,
    challenger: ArmReading,
    now: datetime,
) -> ComparisonStatus:
    """Take each series' values to count from; wait while an arm has no series at all."""
    arms = (("champion", champion), ("challenger", challenger))
    missing = [arm for arm, read in arms if not read]
    if missing:
        message = (
            f"waiting for the {' and '.join(missing)}'s first counter series before taking "
            "the baseline; if this lasts, check that the metric's queries select that "
            "revision's series"
        )
        return record.model_copy(update={"message": message, "time": now})
    resumed = " (the judge's evidence so far is kept)" if test.intervals else ""
    return record.model_copy(
        update={
            "champion_series": fold_series({}, champion, test.intervals).series,
            "challenger_series": fold_series({}, challenger, test.intervals).series,
            "state": test.to_dict(),
            "message": f"baseline taken{resumed}; the first increments come next interval",
            "time": now,
        }
    )


def _emptied_arm(
    record: ComparisonStatus, champion: ArmReading, challenger: ArmReading
) -> str | None:
    """The arm that read no series although series were seen before (a transient read)."""
    if record.champion_series and not champion:
        return "champion"
    if record.challenger_series and not challenger:
        return "challenger"
    return None


_VERDICTS = {
    ComparisonVerdict.WORSE: Verdict.FAIL,
    ComparisonVerdict.NON_INFERIOR: Verdict.PASS,
    ComparisonVerdict.SUPERIOR: Verdict.PASS,
    ComparisonVerdict.INCONCLUSIVE: Verdict.INCONCLUSIVE,
}


def _resume(
    comparison: Comparison, record: ComparisonStatus, now: datetime
) -> tuple[SequentialRatioTest, str | None]:
    """The judge as saved (a new one has the margin on its grid), and a note when it
    could not simply be resumed.

    Never a silent restart: status written by an operator that kept sums over
    pods keeps its evidence and counts per series from a new baseline (sums
    cannot be split into pods exactly: the interval before it is not counted);
    a state that cannot be read starts the test again, and says so.
    """
    fresh = SequentialRatioTest(grid=RatioGrid.for_margin(comparison.margin))
    if record.state is None:
        return fresh, None
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        test = SequentialRatioTest.from_dict(record.state)
    except ValueError as error:
        return fresh, (
            f"the judge's saved state could not be read ({error}); the test started again "
            f"at {since} and the evidence before it was dropped"
        )
    if record.champion_series is None or record.challenger_series is None:
        return test, (
            f"status from an older operator kept the counters as sums over pods; the judge's "
            f"evidence ({test.intervals} intervals) is kept and counting per pod starts at "
            f"{since} (the interval before it is not counted)"
        )
    return test, None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _metric_message(
    comparison: Comparison,
    alpha: float,
    metric: ComparisonMetric,
    test: SequentialRatioTest,
    verdict: ComparisonVerdict,
    e_value: float,
) -> str:
    lower, upper = test.confidence_interval(alpha, metric.better, comparison.alpha)
    lower_level, upper_level = (
        (f"{100 * (1 - alpha):.4g}", f"{100 * (1 - comparison.alpha):.4g}")
        if metric.better is Better.LOWER
        else (f"{100 * (1 - comparison.alpha):.4g}", f"{100 * (1 - alpha):.4g}")
    )
    direction = "lower" if metric.better is Better.LOWER else "higher"
    seen = (
        f"challenger {_rate(test.challenger.bad, test.challenger.total)}, "
        f"champion {_rate(test.champion.bad, test.champion.total)}; rate ratio "
        f"{test.estimate():.3g} (bounds {lower:.3g}..{upper:.3g}, one-sided "
        f"{lower_level}% and {upper_level}%), e-value that it is worse {e_value:.3g} "
        f"(Worse at {1 / alpha:.3g})"
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


def _overall(records: list[ComparisonStatus], distributions: Collection[str]) -> ComparisonResult:
    """Fail when any metric failed; pass when every metric to win won and no
    ``distribution`` metric (which only vetoes) failed to read; else inconclusive."""
    notes = "".join(
        f"; note on {record.metric}: {record.note}" for record in records if record.note
    )
    failed = [record for record in records if record.verdict is Verdict.FAIL]
    if failed:
        record = failed[0]
        return ComparisonResult(
            Verdict.FAIL,
            f"metric {record.metric}: {record.message}{notes}",
            drifted=record.metric in distributions,
        )
    to_win = [record for record in records if record.metric not in distributions]
    pending = [
        record.metric
        for record in records
        if (record.verdict is not Verdict.PASS and record.metric not in distributions)
        or record.verdict is Verdict.ERROR
    ]
    if to_win and not pending:
        text = "; ".join(f"{record.metric}: {record.message}" for record in records)
        return ComparisonResult(Verdict.PASS, f"the challenger won on every metric ({text}){notes}")
    if not to_win and not pending:
        text = "; ".join(f"{record.metric}: {record.message}" for record in records)
        return ComparisonResult(
            Verdict.INCONCLUSIVE,
            f"no drift so far ({text}); distribution metrics can only roll back: the stage "
            f"ends with its duration (shadow) or maxDuration and onInconclusive{notes}",
        )
    return ComparisonResult(
        Verdict.INCONCLUSIVE,
        f"comparison inconclusive on {', '.join(pending)}{notes}",
    )


# --- distribution metrics ---------------------------------------------------------


def fold_distribution(
    alpha: float,
    record: ComparisonStatus,
    champion: ArmReading,
    challenger: ArmReading,
    now: datetime,
) -> tuple[ComparisonStatus, str | None]:
    """One interval of a ``distribution`` metric: per-series bucket increments folded
    into the :class:`~modelrelease.analysis.drift.DriftTest`; Fail when it drifted at
    ``alpha`` (the metric's share of the comparison's alpha). Counts that cannot
    be compared (bucket edges that differ) go on an outage that began before."""
    failing_since = record.error_since
    # Comparable counts end an outage; the judge gives the verdict again.
    record = record.model_copy(update={"error_since": None, "verdict": Verdict.INCONCLUSIVE})
    try:
        edges = _common_edges(champion, challenger)
    except ValueError as error:
        return _distribution_error(record, str(error), failing_since, now), None
    notice: str | None = None
    test: DriftTest | None = None
    if record.state is not None:
        try:
            test = DriftTest.from_dict(record.state)
        except ValueError as error:
            since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            notice = (
                f"the drift test's saved state could not be read ({error}); the test started "
                f"again at {since} and the evidence before it was dropped"
            )
            record = record.model_copy(update={"champion_series": None, "note": notice})
    if test is not None and edges is not None and not _same_edges(test.edges, edges):
        message = (
            f"the histogram's bucket boundaries changed from {describe_edges(test.edges)} to "
            f"{describe_edges(edges)} during the comparison; counts in different buckets "
            "cannot be compared: restore the buckets, or retry the release to start again"
        )
        return _distribution_error(record, message, failing_since, now), notice
    if record.champion_series is None or record.challenger_series is None or test is None:
        if edges is None or not champion or not challenger:
            arms = (("champion", champion), ("challenger", challenger))
            missing = [arm for arm, read in arms if not read]
            message = (
                f"waiting for the {' and '.join(missing)}'s first bucket series before taking "
                "the baseline; if this lasts, check that the metric's query selects that "
                "revision's _bucket series"
            )
            return record.model_copy(update={"message": message, "time": now}), notice
        fresh = DriftTest(edges=edges)
        update = {
            "champion_series": fold_buckets({}, champion, 0)[1],
            "challenger_series": fold_buckets({}, challenger, 0)[1],
            "state": fresh.to_dict(),
            "message": "baseline taken; the first increments come next interval",
            "time": now,
        }
        return record.model_copy(update=update), notice
    empty = _emptied_arm(record, champion, challenger)
    if empty is not None:
        message = (
            f"no {empty} series were read this interval, though there were before; an "
            "empty read is not zero counts: nothing was counted, retrying next interval"
        )
        return record.model_copy(update={"message": message, "time": now}), notice
    interval = test.intervals + 1
    champion_increment, champion_series = fold_buckets(record.champion_series, champion, interval)
    challenger_increment, challenger_series = fold_buckets(
        record.challenger_series, challenger, interval
    )
    test = test.update(champion_increment, challenger_increment)
    summary = test.summary(alpha)
    e_value = min(summary.e_value, MAX_REPORTED_E_VALUE)
    updated = record.model_copy(
        update={
            "champion": ArmCounts(bad=0, total=sum(test.champion)),
            "challenger": ArmCounts(bad=0, total=sum(test.challenger)),
            "champion_series": champion_series,
            "challenger_series": challenger_series,
            "estimate": summary.distance,
            "lower": None,
            "upper": None,
            "e_value": e_value,
            "buckets": [
                BucketShare(
                    bucket=shift.bucket, champion=shift.champion, challenger=shift.challenger
                )
                for shift in summary.buckets
            ],
            "verdict": Verdict.FAIL if summary.drifted else Verdict.INCONCLUSIVE,
            "message": _drift_message(alpha, test, summary, e_value),
            "state": test.to_dict(),
            "time": now,
        }
    )
    return updated, notice


def _distribution_error(
    record: ComparisonStatus, message: str, since: datetime | None, now: datetime
) -> ComparisonStatus:
    """Counts that cannot be compared: an error (never a pass), which `onError` acts on."""
    update = {
        "verdict": Verdict.ERROR,
        "message": message,
        "error_since": since or now,
        "time": now,
    }
    return record.model_copy(update=update)


def fold_buckets(
    last: Mapping[str, list[float]], read: ArmReading, interval: int
) -> tuple[list[float], dict[str, list[float]]]:
    """This interval's increments per bucket of one arm, and the values to keep.

    As :func:`fold_series`, per series: a series whose total went down restarted
    and counts whole, a new series (or one read with another number of buckets)
    counts whole, a missing one counts nothing and keeps its values. A bucket
    that went down while the total did not is a restart the total hid: that
    series counts nothing this interval and goes on from its new values. No
    increment is ever negative.
    """
    series = {key: list(values) for key, values in last.items()}
    increments: list[float] | None = None
    for key, counter in read.items():
        counts = [max(count, 0.0) for count in counter.counts or ()]
        if increments is None:
            increments = [0.0] * len(counts)
        previous = last.get(key)
        if previous is None or len(previous) != len(counts) + 1 or sum(counts) < sum(previous[:-1]):
            added = counts
        elif any(now < before for now, before in zip(counts, previous, strict=False)):
            added = [0.0] * len(counts)
        else:
            added = [now - before for now, before in zip(counts, previous, strict=False)]
        if len(added) == len(increments):
            increments = [total + more for total, more in zip(increments, added, strict=True)]
        series[key] = [*counts, float(interval)]
    return increments or [], _bounded(series, read.keys())


def _common_edges(champion: ArmReading, challenger: ArmReading) -> tuple[float, ...] | None:
    """The bucket edges every series of both arms shares; None when nothing was read.

    Raises ValueError, naming both sets of edges, when two series differ.
    """
    seen: list[tuple[str, tuple[float, ...]]] = []
    for arm, read in (("champion", champion), ("challenger", challenger)):
        for counter in read.values():
            if counter.edges is None or counter.counts is None:
                raise ValueError(f"the {arm}'s series carry no histogram buckets")
            seen.append((arm, counter.edges))
    if not seen:
        return None
    first_arm, first = seen[0]
    for arm, edges in seen[1:]:
        if not _same_edges(first, edges):
            where = "the two arms" if arm != first_arm else f"the {arm}'s series"
            raise ValueError(
                f"the histogram's bucket boundaries differ between {where}: "
                f"{describe_edges(first)} versus {describe_edges(edges)}; a distribution "
                "compares bucket by bucket, so both versions must export the same buckets "
                "(fix the buckets, or compare a histogram both versions share)"
            )
    return first


def _same_edges(first: tuple[float, ...], second: tuple[float, ...]) -> bool:
    return len(first) == len(second) and all(
        a == b or math.isclose(a, b, rel_tol=1e-9) for a, b in zip(first, second, strict=True)
    )


def _drift_message(alpha: float, test: DriftTest, summary: DriftSummary, e_value: float) -> str:
    moved = ", ".join(
        f"{shift.bucket} {shift.champion:.1%} -> {shift.challenger:.1%}"
        for shift in summary.moved()
    )
    seen = (
        f"total variation {summary.distance:.3f} over {sum(test.challenger):g} challenger and "
        f"{sum(test.champion):g} champion events, e-value {e_value:.3g} (Drifted at "
        f"{1 / alpha:.3g})"
    )
    if summary.drifted:
        return (
            f"the challenger's distribution drifted from the champion's: buckets moved "
            f"(champion -> challenger share) {moved}; {seen}"
        )
    largest = f"largest moves {moved}; " if moved else ""
    return f"no drift shown: {largest}{seen}"
