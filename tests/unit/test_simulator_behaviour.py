"""The simulator's behaviour annotation: parsing, phases and sampling."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from hack.simulator.behaviour import (
    HEALTHY,
    BehaviourError,
    Phase,
    Quantiles,
    ScoreQuantiles,
    parse_behaviour,
    sample_request,
)


@pytest.mark.parametrize("text", [None, "", "  "])
def test_absent_annotation_is_healthy(text: str | None) -> None:
    assert parse_behaviour(text) == HEALTHY
    assert HEALTHY.phase_at(0).error_ratio == 0.0


def test_full_annotation() -> None:
    behaviour = parse_behaviour(
        json.dumps(
            {
                "modelName": "chat-8b",
                "errorRatio": 0.01,
                "ttft": {"p50": 0.12, "p95": 0.3},
                "tpot": {"p50": 0.02, "p95": 0.04},
                "outputTokens": {"p50": 200, "p95": 600},
                "score": {"p50": 0.7, "p95": 0.9},
                "maxNumSeqs": 32,
                "after": {"seconds": 60, "errorRatio": 0.2, "ttft": {"p50": 0.9, "p95": 2.0}},
            }
        )
    )
    assert behaviour.model_name == "chat-8b"
    before = behaviour.phase_at(59.9)
    assert before == Phase(
        error_ratio=0.01,
        ttft=Quantiles(0.12, 0.3),
        tpot=Quantiles(0.02, 0.04),
        e2e=None,
        output_tokens=Quantiles(200, 600),
        score=ScoreQuantiles(0.7, 0.9),
        max_num_seqs=32,
    )
    after = behaviour.phase_at(60)
    # Only what "after" names changes; the rest is inherited.
    assert after.error_ratio == 0.2
    assert after.ttft == Quantiles(0.9, 2.0)
    assert after.tpot == before.tpot
    assert after.max_num_seqs == 32


def test_phase_before_ready_is_the_first() -> None:
    behaviour = parse_behaviour('{"after": {"seconds": 0, "errorRatio": 1}}')
    assert behaviour.phase_at(None).error_ratio == 0.0
    assert behaviour.phase_at(0).error_ratio == 1.0


def test_a_list_of_changes_applies_in_order() -> None:
    behaviour = parse_behaviour(
        json.dumps(
            {
                "errorRatio": 0.0,
                "after": [
                    {"seconds": 10, "errorRatio": 0.5, "ttft": 1.0},
                    {"seconds": 20, "errorRatio": 0.0},
                ],
            }
        )
    )
    assert [behaviour.phase_at(t).error_ratio for t in (5, 15, 25)] == [0.0, 0.5, 0.0]
    # The recovery keeps the slow first token of the previous change.
    assert behaviour.phase_at(25).ttft == Quantiles(1.0, 1.0)


def test_e2e_replaces_tpot_and_the_other_way_round() -> None:
    behaviour = parse_behaviour(
        '{"e2e": {"p50": 2, "p95": 4}, "after": {"seconds": 5, "tpot": 0.05}}'
    )
    assert behaviour.phase_at(0).tpot is None
    assert behaviour.phase_at(0).e2e == Quantiles(2, 4)
    assert behaviour.phase_at(5).e2e is None
    assert behaviour.phase_at(5).tpot == Quantiles(0.05, 0.05)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"errorRate": 0.1}', "errorRate: unknown key"),
        ('{"errorRatio": 1.5}', "errorRatio: must be at most 1"),
        ('{"errorRatio": "high"}', "errorRatio: expected a number"),
        ('{"ttft": {"p50": 0.5, "p95": 0.1}}', "ttft.p95: must be at least p50"),
        ('{"ttft": {"p95": 0.1}}', "ttft.p50: required"),
        ('{"ttft": {"p50": 0.1, "p99": 0.5}}', "ttft.p99: unknown key"),
        ('{"ttft": -1}', "ttft: must be greater than 0"),
        ('{"tpot": 0.02, "e2e": 2}', "give one of them"),
        ('{"score": {"p50": 1.2}}', "score.p50: must be less than 1"),
        ('{"maxNumSeqs": 2.5}', "maxNumSeqs: expected a whole number"),
        ('{"outputTokens": 0.5}', "outputTokens: the median must be at least 1"),
        ('{"after": {"errorRatio": 1}}', "after.seconds: required"),
        ('{"after": {"seconds": 5, "modelName": "x"}}', "after.modelName: unknown key"),
        (
            '{"after": [{"seconds": 20}, {"seconds": 10}]}',
            "after[1].seconds: changes must be in time order",
        ),
        ('{"modelName": ""}', "modelName: expected a non-empty string"),
    ],
)
def test_invalid_annotations_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BehaviourError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_behaviour(text)


def test_lognormal_samples_have_the_given_quantiles() -> None:
    rng = random.Random(7)
    distribution = Quantiles(0.2, 0.6)
    samples = sorted(distribution.sample(rng) for _ in range(40_000))
    assert statistics.median(samples) == pytest.approx(0.2, rel=0.03)
    assert samples[int(0.95 * len(samples))] == pytest.approx(0.6, rel=0.05)
    assert min(samples) > 0


def test_a_fixed_value_does_not_vary() -> None:
    rng = random.Random(1)
    assert {Quantiles(0.3, 0.3).sample(rng) for _ in range(10)} == {0.3}


def test_scores_stay_between_0_and_1_with_the_given_quantiles() -> None:
    rng = random.Random(3)
    samples = sorted(ScoreQuantiles(0.7, 0.95).sample(rng) for _ in range(40_000))
    assert samples[0] > 0
    assert samples[-1] < 1
    assert statistics.median(samples) == pytest.approx(0.7, abs=0.01)
    assert samples[int(0.95 * len(samples))] == pytest.approx(0.95, abs=0.01)


def test_sampled_requests_are_consistent() -> None:
    rng = random.Random(11)
    phase = Phase(error_ratio=0.25)
    results = [sample_request(phase, rng) for _ in range(20_000)]
    errors = sum(not result.success for result in results)
    assert errors / len(results) == pytest.approx(0.25, abs=0.015)
    for result in results[:2000]:
        assert result.output_tokens >= 1
        assert result.e2e == pytest.approx(result.ttft + (result.output_tokens - 1) * result.tpot)
        assert result.duration == (result.e2e if result.success else result.ttft)


def test_an_e2e_distribution_gives_the_tpot() -> None:
    rng = random.Random(5)
    phase = Phase(ttft=Quantiles(0.1, 0.1), tpot=None, e2e=Quantiles(2.0, 2.0))
    result = sample_request(phase, rng)
    assert result.e2e == 2.0
    assert result.tpot == pytest.approx(1.9 / (result.output_tokens - 1))


def test_e2e_is_never_shorter_than_the_first_token() -> None:
    rng = random.Random(5)
    phase = Phase(ttft=Quantiles(1.0, 1.0), tpot=None, e2e=Quantiles(0.5, 0.5))
    result = sample_request(phase, rng)
    assert result.e2e == 1.0
    assert result.tpot == 0.0
