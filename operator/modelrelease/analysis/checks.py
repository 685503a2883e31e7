"""Absolute SLO checks, as pure functions over plain values.

One *measurement* is the result of one query at one interval: a number, or no
number and a reason (no data, Prometheus unreachable, ...). Folding a
measurement into the previous :class:`CheckRecord` gives the new record, and
the record's :func:`standing` says whether the SLO currently lets the release
advance, holds it, or has failed it. Provider errors are data here, never
exceptions, so one flaky query cannot stall the loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from modelrelease.api.constants import NoDataPolicy, Verdict


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
class Measurement:
    """One query's result: ``value`` or, when there is none, ``error``."""

    value: float | None
    error: str | None = None
    unreachable: bool = False  # the provider could not be asked at all

    @classmethod
    def failed(cls, error: str, unreachable: bool = False) -> Measurement:
        return cls(value=None, error=error, unreachable=unreachable)


@dataclass(frozen=True)
class CheckRecord:
    """The latest state of one SLO check (what status shows)."""

    name: str
    verdict: Verdict = Verdict.INCONCLUSIVE
    value: float | None = None
    consecutive_failures: int = 0
    consecutive_inconclusive: int = 0
    message: str = "not checked yet"


def verdict_of(value: float | None, thresholds: Thresholds) -> Verdict:
    """Pass when ``value`` is within the thresholds (inclusive); no value is inconclusive."""
    if value is None:
        return Verdict.INCONCLUSIVE
    if thresholds.minimum is not None and value < thresholds.minimum:
        return Verdict.FAIL
    if thresholds.maximum is not None and value > thresholds.maximum:
        return Verdict.FAIL
    return Verdict.PASS


def fold(record: CheckRecord, measurement: Measurement, thresholds: Thresholds) -> CheckRecord:
    """The record after one more measurement."""
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
        message=measurement.error or "no value",
    )


def standing(record: CheckRecord, policy: CheckPolicy) -> Standing:
    """Whether this SLO lets the release advance, holds it, or fails it."""
    if record.consecutive_failures > policy.failure_limit:
        return Standing.FAILED
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
