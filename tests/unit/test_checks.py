"""SLO check evaluation: verdicts, consecutive counting, no-data policy, traffic."""

from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.analysis.checks import (
    CheckPolicy,
    CheckRecord,
    Measurement,
    Standing,
    Thresholds,
    TrafficStanding,
    fold,
    overall,
    standing,
    traffic_standing,
    verdict_of,
)
from modelrelease.api.constants import NoDataPolicy, Verdict

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


def _run(values: list[float | None], thresholds: Thresholds = MAX_1) -> CheckRecord:
    measurements = [
        Measurement(v) if v is not None else Measurement.failed("no data") for v in values
    ]
    return reduce(lambda record, m: fold(record, m, thresholds), measurements, CheckRecord("e"))


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
    ],
)
def test_standing_after_a_sequence(
    values: list[float | None], policy: CheckPolicy, expected: Standing
) -> None:
    assert standing(_run(values), policy) is expected


def test_record_keeps_latest_value_counts_and_a_message() -> None:
    record = _run([GOOD, BAD, BAD])
    assert record.value == BAD
    assert record.verdict is Verdict.FAIL
    assert record.consecutive_failures == 2
    assert record.message == "0.2 is not <= 0.01"
    inconclusive = fold(record, Measurement.failed("Prometheus unreachable"), MAX_1)
    assert inconclusive.message == "Prometheus unreachable"
    assert inconclusive.value is None
    assert inconclusive.consecutive_failures == 2


@given(st.lists(st.sampled_from([BAD, GOOD, NONE]), max_size=30), st.integers(0, 5))
def test_failed_exactly_when_more_consecutive_failures_than_tolerated(
    values: list[float | None], limit: int
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
