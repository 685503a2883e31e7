"""The sequential SLO guard in one pass, purely (the test is
:mod:`modelrelease.analysis.guard`).

While a shadow or canary stage runs, every ``analysis.guard.period`` a pass reads
each guarded SLO's raw counters per pod as a subquery at a 1 s resolution,
from the guard's saved evidence (``status.checks[].guard``) up to now, and
folds the batches since into the e-value. Nothing is written while the guard
holds: the saved evidence moves on only with the interval checks, which write
status anyway, so a restarted operator recomputes the same e-value from
Prometheus' history, and a release at a 30 s interval is written no more
often than without the guard. When the e-value reaches ``1 / alpha`` the
challenger is rolled back at once.

An SLO is guarded when the guard is enabled, its ``max`` is a rate in (0, 1) and
its counters are known (``bad`` and ``total`` on the SLO or its template).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from modelrelease.analysis.guard import (
    ESTIMATE_BATCHES,
    Counts,
    SeriesValues,
    batches_of,
    e_value,
    extend,
    guard_alpha,
)
from modelrelease.api.constants import StageType
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import CheckStatus, GuardStatus, ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.comparison import SERIES_LABELS
from modelrelease.core.slos import ResolvedSLO

GRID_SECONDS: Final = 1
"""Resolution of the counters' time grid (the batches of the test)."""

SETTLE_SECONDS: Final = 15.0
"""Evidence is saved up to this long before now: later samples may still be scraped."""

MAX_LOOKBACK_SECONDS: Final = 3600.0
"""A read never asks for more than an hour of history. Saved evidence older than that
(an hour-long gate between two guarded stages) stops the guard for the revision:
skipping the batches in between would drop batches earlier reads already judged,
which the guarantee does not allow. The interval checks go on as always."""

RECENT_SECONDS: Final = 10
"""The counts shown in messages: the last this many seconds."""

GUARDED_STAGES: Final = (StageType.SHADOW, StageType.CANARY)

_BY_SERIES = ", ".join(SERIES_LABELS)


@dataclass(frozen=True)
class GuardQueries:
    """One guarded SLO's two subqueries, and where its evidence starts."""

    name: str
    bad: str
    total: str
    base: datetime
    log_e: float
    fresh: bool = False  # no saved evidence: every request counted so far is new


@dataclass(frozen=True)
class GuardReading:
    """One SLO's counters per grid time (raw per series), or why they could not be read."""

    samples: tuple[tuple[datetime, SeriesValues], ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class GuardOutcome:
    """The guard on one SLO after this pass's read."""

    name: str
    log_e: float
    level: float  # 1 / alpha of this SLO
    checkpoint: tuple[datetime, float]  # evidence to save: (through, log e-value)
    recent: Counts  # the last RECENT_SECONDS of counts
    threshold: float

    @property
    def e_value(self) -> float:
        return e_value(self.log_e)

    @property
    def tripped(self) -> bool:
        return self.log_e >= math.log(self.level)

    def message(self) -> str:
        rate = self.recent.bad / self.recent.total if self.recent.total else 0.0
        seen = (
            f"{self.recent.bad:g} bad of {self.recent.total:g} in the last {RECENT_SECONDS} s "
            f"({rate:.1%})"
        )
        if self.tripped:
            return (
                f"the sequential guard found SLO {self.name}'s rate above its max "
                f"{self.threshold:g}: e-value {self.e_value:.3g} reached 1/alpha "
                f"{self.level:.3g}; {seen}"
            )
        return (
            f"e-value {self.e_value:.3g} that the rate is above {self.threshold:g} "
            f"(rolls back at {self.level:.3g}); {seen}"
        )


# --- when -----------------------------------------------------------------------------


def guard_on(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> bool:
    """Whether the guard may run now: enabled, some SLO that may have counters, a
    challenger in a shadow or canary stage whose clock runs. (Which SLOs are guarded
    needs the templates.)"""
    analysis = spec.analysis
    if analysis is None or not analysis.guard.enabled:
        return False
    # An SLO with its own counters, or a template's (which may have them).
    if not any(slo.bad is not None or slo.template_ref is not None for slo in analysis.slos):
        return False
    stage = status.current_stage
    return (
        status.challenger is not None
        and stage is not None
        and stage.type in GUARDED_STAGES
        and stage.step_start_time is not None
    )


def next_guard_at(
    spec: ModelReleaseSpec, status: ModelReleaseStatus, now: datetime
) -> datetime | None:
    """One guard period from now while the guard runs (its reads write nothing, so
    there is nothing in status to count from); None otherwise."""
    if not guard_on(spec, status):
        return None
    assert spec.analysis is not None
    return now + timedelta(seconds=parse_duration(spec.analysis.guard.period))


# --- what to read -----------------------------------------------------------------------


def guarded(spec: ModelReleaseSpec, slos: Sequence[ResolvedSLO]) -> list[ResolvedSLO]:
    """The SLOs the guard tests: counters known and ``max`` a rate in (0, 1)."""
    if spec.analysis is None or not spec.analysis.guard.enabled:
        return []
    return [
        slo
        for slo in slos
        if slo.bad is not None
        and slo.total is not None
        and slo.thresholds.maximum is not None
        and 0 < slo.thresholds.maximum < 1
    ]


def guard_queries(
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    slos: Sequence[ResolvedSLO],
    now: datetime,
) -> list[GuardQueries]:
    """Each guarded SLO's subqueries, from its saved evidence (or the step's start)."""
    if not guard_on(spec, status):
        return []
    records = {check.name: check for check in status.checks}
    queries = []
    for slo in guarded(spec, slos):
        assert slo.bad is not None
        assert slo.total is not None
        base, log_e, fresh = _start(status, records.get(slo.name))
        if (now - base).total_seconds() > MAX_LOOKBACK_SECONDS:
            continue
        seconds = math.ceil((now - base).total_seconds()) + (ESTIMATE_BATCHES + 2) * GRID_SECONDS
        window = f"[{seconds}s:{GRID_SECONDS}s]"
        queries.append(
            GuardQueries(
                name=slo.name,
                bad=f"sum by ({_BY_SERIES}) ({slo.bad}){window}",
                total=f"sum by ({_BY_SERIES}) ({slo.total}){window}",
                base=base,
                log_e=log_e,
                fresh=fresh,
            )
        )
    return queries


def _start(status: ModelReleaseStatus, check: CheckStatus | None) -> tuple[datetime, float, bool]:
    """Where the evidence goes on from: the saved evidence of this challenger, else the
    step's start (fresh: nothing counted yet)."""
    assert status.current_stage is not None
    assert status.current_stage.step_start_time is not None
    base, log_e = status.current_stage.step_start_time, 0.0
    revision = status.challenger.revision if status.challenger else None
    fresh = True
    if check is not None and check.guard is not None and check.guard.revision == revision:
        base, log_e, fresh = check.guard.through, check.guard.log_e_value, False
    return base, log_e, fresh


# --- judging ----------------------------------------------------------------------------


def judge(
    query: GuardQueries,
    reading: GuardReading,
    threshold: float,
    level: float,
    now: datetime,
) -> GuardOutcome | None:
    """The guard after folding this read; None when the read failed (it counts for
    nothing: never a pass, never a failure)."""
    if reading.error is not None:
        return None
    # What a series holds at its first sample in the window is not counted (never
    # judged, so leaving it out is allowed): every later read rebuilds the same batches
    # and the same plug-in estimates from the same samples.
    read = list(reading.samples)
    times = [time for time, _ in read]
    batches = batches_of([values for _, values in read])
    # Batch i runs from times[i] to times[i + 1]; it counts when it starts at the base
    # or later (earlier batches only feed the plug-in estimates).
    first = next((i for i in range(len(batches)) if times[i] >= query.base), len(batches))
    settled_before = now - timedelta(seconds=SETTLE_SECONDS)
    settled = first
    while settled < len(batches) and times[settled + 1] <= settled_before:
        settled += 1
    log_e_settled = extend(query.log_e, batches[:settled], first, threshold)
    checkpoint = (
        (times[settled], log_e_settled)
        if settled > first
        else (
            query.base,
            query.log_e,
        )
    )
    log_e = extend(log_e_settled, batches, settled, threshold)
    recent_from = now - timedelta(seconds=RECENT_SECONDS)
    recent = [batch for i, batch in enumerate(batches) if times[i] >= recent_from]
    return GuardOutcome(
        name=query.name,
        log_e=log_e,
        level=level,
        checkpoint=checkpoint,
        recent=Counts(sum(b.bad for b in recent), sum(b.total for b in recent)),
        threshold=threshold,
    )


def judge_all(
    spec: ModelReleaseSpec,
    slos: Sequence[ResolvedSLO],
    queries: Sequence[GuardQueries],
    readings: Mapping[str, GuardReading],
    now: datetime,
) -> list[GuardOutcome]:
    """Every guarded SLO's outcome this pass (failed reads left out)."""
    assert spec.analysis is not None
    by_name = {slo.name: slo for slo in guarded(spec, slos)}
    level = 1 / guard_alpha(spec.analysis.guard.alpha, len(by_name))
    outcomes = []
    for query in queries:
        slo, reading = by_name.get(query.name), readings.get(query.name)
        if slo is None or reading is None or slo.thresholds.maximum is None:
            continue
        outcome = judge(query, reading, slo.thresholds.maximum, level, now)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def saved(
    outcome: GuardOutcome | None, query: GuardQueries, revision: str, error: str | None
) -> GuardStatus | None:
    """What status keeps of the guard on one SLO (at interval checks and on tripping);
    None while nothing is counted yet, so reads go on counting from the step's start
    (the batches reads have judged are never dropped later)."""
    if query.fresh and (outcome is None or outcome.checkpoint == (query.base, query.log_e)):
        return None
    if outcome is None:
        return GuardStatus(
            revision=revision,
            log_e_value=query.log_e,
            through=query.base,
            e_value=_shown(e_value(query.log_e)),
            message=f"the guard's read failed, retrying: {error or 'no answer'}",
        )
    through, log_e = outcome.checkpoint
    return GuardStatus(
        revision=revision,
        log_e_value=round(log_e, 9),
        through=through.astimezone(UTC),
        e_value=_shown(outcome.e_value),
        message=outcome.message(),
    )


def _shown(value: float) -> float:
    """An e-value for status: 6 significant digits, at most 1e12."""
    return float(f"{min(value, 1e12):.6g}")
