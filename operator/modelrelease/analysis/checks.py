"""Absolute SLO checks, as pure functions over plain values.

One *measurement* is the result of one query at one interval, with three
outcomes kept apart: a number, no data (the query answered with an empty
result), or an error (the query failed: Prometheus unreachable, a timeout, an
HTTP error, an unparsable answer, several series). Folding a measurement into
the previous :class:`CheckRecord` gives the new record, and the record's
:func:`standing` says whether the SLO currently lets the release advance, holds
it, or has failed it. Provider errors are data here, never exceptions, so one
flaky query cannot stall the loop; and an error is never a pass, whatever the
``noData`` policy says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from modelrelease.api.constants import NoDataPolicy, OnErrorAction, Verdict


class Standing(StrEnum):
    """What an SLO means for the release right now."""

    PASSED = "Passed"  # its latest check passed (or no data was forgiven by policy)
    PENDING = "Pending"  # not passed yet, not failed yet: hold the step
    FAILED = "Failed"  # beyond what the policy tolerates: roll back


@dataclass(frozen=True)
class Thresholds:
    minimum: float | None = None
    maximum: float | None = None

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum:g} and {self.maximum:g}"
        if self.minimum is not None:
            return f">= {self.minimum:g}"
        if self.maximum is not None:
            return f"<= {self.maximum:g}"
        return "any value"


@dataclass(frozen=True)
class CheckPolicy:
    failure_limit: int = 0  # consecutive failed checks tolerated
    max_inconclusive: int = 3  # consecutive inconclusive checks tolerated
    no_data: NoDataPolicy = NoDataPolicy.FAIL  # what inconclusive becomes beyond that


@dataclass(frozen=True)
class OutagePolicy:
    """``analysis.onError``: what failed reads lead to once they have lasted ``after``."""

    action: OnErrorAction = OnErrorAction.ROLLBACK
    after_seconds: float = 300.0

    def expired(self, error_since: datetime, now: datetime) -> bool:
        """Whether reads have failed for ``after`` (measured from the first failed read)."""
        return (now - error_since).total_seconds() >= self.after_seconds


class ReadOutcome(StrEnum):
    """What one query gave."""

    VALUE = "Value"
    NO_DATA = "NoData"  # the query answered with an empty result (or NaN)
    ERROR = "Error"  # the query failed: everything that is neither a value nor no data


@dataclass(frozen=True)
class Measurement:
    """One query's result: ``value``, or no value and ``reason`` why."""

    value: float | None
    outcome: ReadOutcome = ReadOutcome.VALUE
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.value is not None) != (self.outcome is ReadOutcome.VALUE):
            raise ValueError(f"a {self.outcome.value} measurement cannot have value {self.value}")

    @classmethod
    def no_data(cls, reason: str) -> Measurement:
        return cls(value=None, outcome=ReadOutcome.NO_DATA, reason=reason)

    @classmethod
    def error(cls, reason: str) -> Measurement:
        return cls(value=None, outcome=ReadOutcome.ERROR, reason=reason)


@dataclass(frozen=True)
class CheckRecord:
    """The latest state of one SLO check (what status shows)."""

    name: str
    verdict: Verdict = Verdict.INCONCLUSIVE
    value: float | None = None
    consecutive_failures: int = 0
    consecutive_inconclusive: int = 0
    message: str = "not checked yet"
    error_since: datetime | None = None  # the first of the failed reads in a row


def verdict_of(value: float | None, thresholds: Thresholds) -> Verdict:
    """Pass when ``value`` is within the thresholds (inclusive); no value is inconclusive."""
    if value is None:
        return Verdict.INCONCLUSIVE
    if thresholds.minimum is not None and value < thresholds.minimum:
        return Verdict.FAIL
    if thresholds.maximum is not None and value > thresholds.maximum:
        return Verdict.FAIL
    return Verdict.PASS


def fold(
    record: CheckRecord, measurement: Measurement, thresholds: Thresholds, now: datetime
) -> CheckRecord:
    """The record after one more measurement, taken at ``now``."""
    if measurement.outcome is ReadOutcome.ERROR:
        # No evidence either way: the counts stay, and the outage clock runs from the
        # first failed read until one read answers.
        return replace(
            record,
            verdict=Verdict.ERROR,
            value=None,
            message=measurement.reason or "the query failed",
            error_since=record.error_since or now,
        )
    record = replace(record, error_since=None)
    verdict = verdict_of(measurement.value, thresholds)
    if verdict is Verdict.PASS:
        return replace(
            record,
            verdict=verdict,
            value=measurement.value,
            consecutive_failures=0,
            consecutive_inconclusive=0,
            message=f"{measurement.value:g} is {thresholds.describe()}",
        )
    if verdict is Verdict.FAIL:
        return replace(
            record,
            verdict=verdict,
            value=measurement.value,
            consecutive_failures=record.consecutive_failures + 1,
            consecutive_inconclusive=0,
            message=f"{measurement.value:g} is not {thresholds.describe()}",
        )
    # Inconclusive carries no evidence either way: failures neither grow nor reset.
    return replace(
        record,
        verdict=verdict,
        value=None,
        consecutive_inconclusive=record.consecutive_inconclusive + 1,
        message=measurement.reason or "no value",
    )


def standing(record: CheckRecord, policy: CheckPolicy) -> Standing:
    """Whether this SLO lets the release advance, holds it, or fails it.

    A failed read only holds: ``noData`` is for empty results, and what an outage
    leads to is the outage policy's call (see :class:`OutagePolicy`).
    """
    if record.consecutive_failures > policy.failure_limit:
        return Standing.FAILED
    if record.verdict is Verdict.ERROR:
        return Standing.PENDING
    if record.verdict is Verdict.PASS:
        return Standing.PASSED
    if record.verdict is Verdict.INCONCLUSIVE and (
        record.consecutive_inconclusive > policy.max_inconclusive
    ):
        return Standing.FAILED if policy.no_data is NoDataPolicy.FAIL else Standing.PASSED
    return Standing.PENDING


def overall(standings: Iterable[Standing]) -> Standing:
    """Failed if any failed, passed if all passed (vacuously true), else pending."""
    values = list(standings)
    if Standing.FAILED in values:
        return Standing.FAILED
    if all(value is Standing.PASSED for value in values):
        return Standing.PASSED
    return Standing.PENDING


class TrafficStanding(StrEnum):
    """Whether the challenger saw enough requests in the current step."""

    ENOUGH = "Enough"
    EXTENDING = "Extending"  # too few yet: the step waits, up to its limit
    EXHAUSTED = "Exhausted"  # still too few at the limit: the no-data policy decides


def traffic_standing(
    requests: float | None,
    minimum: float,
    step_elapsed: float,
    step_duration: float,
    max_extension: float,
) -> TrafficStanding:
    """Low traffic extends a step by up to ``max_extension`` seconds, then gives up.

    ``requests`` is None when the request count could not be measured.
    """
    if minimum <= 0 or (requests is not None and requests >= minimum):
        return TrafficStanding.ENOUGH
    if step_elapsed < step_duration + max_extension:
        return TrafficStanding.EXTENDING
    return TrafficStanding.EXHAUSTED
