"""SLO check evaluation: verdicts, consecutive counting, no-data policy, errors, traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.analysis.checks import (
    CheckPolicy,
    CheckRecord,
    Measurement,
    OutagePolicy,
    ReadOutcome,
    Standing,
    Thresholds,
    TrafficStanding,
    fold,
    overall,
    standing,
    traffic_standing,
    verdict_of,
)
from modelrelease.api.constants import NoDataPolicy, OnErrorAction, Verdict

MAX_1 = Thresholds(maximum=0.01)


@pytest.mark.parametrize(
    ("value", "thresholds", "verdict"),
    [
        (0.005, MAX_1, Verdict.PASS),
        (0.01, MAX_1, Verdict.PASS),  # the threshold itself passes
        (0.02, MAX_1, Verdict.FAIL),
        (None, MAX_1, Verdict.INCONCLUSIVE),
        (5.0, Thresholds(minimum=10.0), Verdict.FAIL),
        (10.0, Thresholds(minimum=10.0), Verdict.PASS),
        (0.5, Thresholds(minimum=0.1, maximum=0.9), Verdict.PASS),
        (0.95, Thresholds(minimum=0.1, maximum=0.9), Verdict.FAIL),
        (123.0, Thresholds(), Verdict.PASS),
    ],
)
def test_verdict_of(value: float | None, thresholds: Thresholds, verdict: Verdict) -> None:
    assert verdict_of(value, thresholds) is verdict


T0 = datetime(2026, 1, 1, tzinfo=UTC)
ERR = "error"  # the query failed (Prometheus down, HTTP 5xx, garbage, several series)
Value = float | str | None


def _measurement(value: Value) -> Measurement:
    if value == ERR:
        return Measurement.error("could not reach Prometheus")
    if value is None:
        return Measurement.no_data("no data")
    assert isinstance(value, float)
    return Measurement(value)


def _run(values: list[Value], thresholds: Thresholds = MAX_1) -> CheckRecord:
    record = CheckRecord("e")
    for second, value in enumerate(values):
        record = fold(record, _measurement(value), thresholds, T0 + timedelta(seconds=second))
    return record


# values are error ratios checked against max 0.01
BAD, GOOD, NONE = 0.2, 0.0, None


@pytest.mark.parametrize(
    ("values", "policy", "expected"),
    [
        ([], CheckPolicy(), Standing.PENDING),
        ([GOOD], CheckPolicy(), Standing.PASSED),
        ([BAD], CheckPolicy(failure_limit=0), Standing.FAILED),
        ([BAD], CheckPolicy(failure_limit=1), Standing.PENDING),
        ([BAD, BAD], CheckPolicy(failure_limit=1), Standing.FAILED),
        ([BAD, GOOD, BAD], CheckPolicy(failure_limit=1), Standing.PENDING),  # not consecutive
        ([BAD, NONE, BAD], CheckPolicy(failure_limit=1), Standing.FAILED),  # no data: no reset
        ([GOOD, NONE], CheckPolicy(max_inconclusive=1), Standing.PENDING),
        ([NONE, NONE], CheckPolicy(max_inconclusive=1), Standing.FAILED),
        (
            [NONE, NONE],
            CheckPolicy(max_inconclusive=1, no_data=NoDataPolicy.PASS),
            Standing.PASSED,
        ),
        ([NONE, NONE, GOOD], CheckPolicy(max_inconclusive=1), Standing.PASSED),
        ([NONE] * 3, CheckPolicy(max_inconclusive=3), Standing.PENDING),
        ([NONE] * 4, CheckPolicy(max_inconclusive=3), Standing.FAILED),
        # A failed read holds: it is never "no data", so noData never forgives it ...
        ([ERR] * 50, CheckPolicy(max_inconclusive=0, no_data=NoDataPolicy.PASS), Standing.PENDING),
        ([ERR] * 50, CheckPolicy(max_inconclusive=0), Standing.PENDING),
        ([GOOD, ERR], CheckPolicy(), Standing.PENDING),  # ... nor keeps an earlier pass
        ([NONE, NONE, ERR], CheckPolicy(max_inconclusive=1), Standing.PENDING),
        # ... and it neither grows nor resets the counts.
        ([BAD, ERR, BAD], CheckPolicy(failure_limit=1), Standing.FAILED),
        ([NONE, ERR, NONE], CheckPolicy(max_inconclusive=1), Standing.FAILED),
        ([NONE, ERR, ERR], CheckPolicy(max_inconclusive=1), Standing.PENDING),
        ([ERR, GOOD], CheckPolicy(), Standing.PASSED),
    ],
)
def test_standing_after_a_sequence(
    values: list[Value], policy: CheckPolicy, expected: Standing
) -> None:
    assert standing(_run(values), policy) is expected


def test_record_keeps_latest_value_counts_and_a_message() -> None:
    record = _run([GOOD, BAD, BAD])
    assert record.value == BAD
    assert record.verdict is Verdict.FAIL
    assert record.consecutive_failures == 2
    assert record.message == "0.2 is not <= 0.01"
    empty = fold(record, Measurement.no_data("no data: empty result"), MAX_1, T0)
    assert (empty.verdict, empty.message) == (Verdict.INCONCLUSIVE, "no data: empty result")
    assert empty.value is None
    assert empty.consecutive_failures == 2
    failed = fold(record, Measurement.error("Prometheus answered HTTP 503"), MAX_1, T0)
    assert (failed.verdict, failed.message) == (Verdict.ERROR, "Prometheus answered HTTP 503")
    assert failed.value is None
    assert (failed.consecutive_failures, failed.consecutive_inconclusive) == (2, 0)


def test_the_outage_clock_runs_from_the_first_failed_read_until_one_answers() -> None:
    assert _run([GOOD, ERR, ERR, ERR]).error_since == T0 + timedelta(seconds=1)
    assert _run([ERR, ERR, GOOD]).error_since is None
    assert _run([ERR, ERR, NONE]).error_since is None  # an empty result is an answer
    assert _run([ERR, NONE, ERR]).error_since == T0 + timedelta(seconds=2)


def test_a_measurement_has_a_value_exactly_when_its_outcome_is_a_value() -> None:
    assert Measurement(0.5).outcome is ReadOutcome.VALUE
    assert Measurement.no_data("empty").outcome is ReadOutcome.NO_DATA
    assert Measurement.error("down").outcome is ReadOutcome.ERROR
    with pytest.raises(ValueError, match="cannot have value"):
        Measurement(None)
    with pytest.raises(ValueError, match="cannot have value"):
        Measurement(1.0, ReadOutcome.ERROR)


@pytest.mark.parametrize(
    ("failing", "after", "expired"),
    [(299.999, 300.0, False), (300.0, 300.0, True), (0.25, 0.5, False), (0.5, 0.5, True)],
)
def test_outage_policy_expires_after_its_duration_to_the_microsecond(
    failing: float, after: float, expired: bool
) -> None:
    policy = OutagePolicy(OnErrorAction.ROLLBACK, after)
    assert policy.expired(T0, T0 + timedelta(seconds=failing)) is expired


@given(
    st.lists(st.sampled_from([BAD, GOOD, NONE, ERR]), max_size=30),
    st.integers(0, 5),
    st.integers(0, 5),
    st.sampled_from(list(NoDataPolicy)),
)
def test_a_failed_read_is_never_a_pass(
    values: list[Value], limit: int, max_inconclusive: int, no_data: NoDataPolicy
) -> None:
    record = _run([*values, ERR])
    policy = CheckPolicy(failure_limit=limit, max_inconclusive=max_inconclusive, no_data=no_data)
    assert record.verdict is Verdict.ERROR
    assert standing(record, policy) is not Standing.PASSED
    # Only failed checks that were really seen can fail it; noData never sees errors.
    before = _run(values)
    assert (standing(record, policy) is Standing.FAILED) == (before.consecutive_failures > limit)


@given(st.lists(st.sampled_from([BAD, GOOD, NONE, ERR]), max_size=30), st.integers(0, 5))
def test_failed_exactly_when_more_consecutive_failures_than_tolerated(
    values: list[Value], limit: int
) -> None:
    record = _run(values)
    run = 0
    for value in values:
        if value == BAD:
            run += 1
        elif value == GOOD:
            run = 0
    assert record.consecutive_failures == run
    policy = CheckPolicy(failure_limit=limit, max_inconclusive=1000)
    assert (standing(record, policy) is Standing.FAILED) == (run > limit)


@pytest.mark.parametrize(
    ("standings", "expected"),
    [
        ([], Standing.PASSED),
        ([Standing.PASSED, Standing.PASSED], Standing.PASSED),
        ([Standing.PASSED, Standing.PENDING], Standing.PENDING),
        ([Standing.PENDING, Standing.FAILED], Standing.FAILED),
    ],
)
def test_overall(standings: list[Standing], expected: Standing) -> None:
    assert overall(standings) is expected


@pytest.mark.parametrize(
    ("requests", "minimum", "elapsed", "expected"),
    [
        (100.0, 50.0, 10.0, TrafficStanding.ENOUGH),
        (10.0, 0.0, 10.0, TrafficStanding.ENOUGH),  # no minimum
        (10.0, 50.0, 10.0, TrafficStanding.EXTENDING),  # before the step's end
        (10.0, 50.0, 70.0, TrafficStanding.EXTENDING),  # within the extension
        (10.0, 50.0, 90.0, TrafficStanding.EXHAUSTED),  # past duration + extension
        (None, 50.0, 90.0, TrafficStanding.EXHAUSTED),  # could not count at all
    ],
)
def test_traffic_standing(
    requests: float | None, minimum: float, elapsed: float, expected: TrafficStanding
) -> None:
    assert traffic_standing(requests, minimum, elapsed, 60.0, 30.0) is expected
