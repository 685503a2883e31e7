"""How a simulated pod serves requests: the behaviour annotation and sampling.

A pod's behaviour comes from its annotation ``simulator.modelrelease.dev/behaviour``
(pods inherit it from the pod template, so it is per revision). Everything here
is pure: parsing raises :class:`BehaviourError` with a message naming the key,
and sampling takes the random generator as an argument.

Latencies are log-normal, fixed by their median and 95th percentile, because
that is how serving latencies are usually described and it keeps every sample
positive. A prediction score (for classifiers, to compare output
distributions) is logit-normal, fixed the same way, so it stays inside (0, 1).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

BEHAVIOUR_ANNOTATION = "simulator.modelrelease.dev/behaviour"

# The 95th percentile of the standard normal distribution.
Z95 = NormalDist().inv_cdf(0.95)

PHASE_KEYS = frozenset({"errorRatio", "ttft", "tpot", "e2e", "outputTokens", "score", "maxNumSeqs"})


class BehaviourError(ValueError):
    """The behaviour annotation cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class Quantiles:
    """A positive quantity given by its median and 95th percentile (log-normal)."""

    p50: float
    p95: float

    @property
    def sigma(self) -> float:
        return math.log(self.p95 / self.p50) / Z95

    def sample(self, rng: random.Random) -> float:
        if self.p95 == self.p50:
            return self.p50
        return self.p50 * math.exp(self.sigma * rng.gauss(0.0, 1.0))


@dataclass(frozen=True)
class ScoreQuantiles:
    """A score in (0, 1) given by its median and 95th percentile (logit-normal)."""

    p50: float
    p95: float

    def sample(self, rng: random.Random) -> float:
        centre = _logit(self.p50)
        sigma = (_logit(self.p95) - centre) / Z95
        return _expit(centre + sigma * rng.gauss(0.0, 1.0))


@dataclass(frozen=True)
class Phase:
    """What a pod does during one period of its life."""

    error_ratio: float = 0.0
    ttft: Quantiles = Quantiles(0.08, 0.2)
    # Time per output token, one value per request. Exactly one of `tpot` and
    # `e2e` is set: the other follows from e2e = ttft + (tokens - 1) * tpot.
    tpot: Quantiles | None = Quantiles(0.02, 0.035)
    e2e: Quantiles | None = None
    output_tokens: Quantiles = Quantiles(128.0, 384.0)
    score: ScoreQuantiles | None = None
    max_num_seqs: int = 256


@dataclass(frozen=True)
class Behaviour:
    """A pod's phases: the first from time 0, each later one from its start."""

    phases: tuple[tuple[float, Phase], ...] = ((0.0, Phase()),)
    # The `model_name` label of the vLLM metrics; None: the pod's release name.
    model_name: str | None = None

    def phase_at(self, seconds_since_ready: float | None) -> Phase:
        """The phase in force ``seconds_since_ready`` after the pod became Ready."""
        current = self.phases[0][1]
        if seconds_since_ready is None:
            return current
        for start, phase in self.phases[1:]:
            if seconds_since_ready >= start:
                current = phase
        return current


HEALTHY = Behaviour()


@dataclass(frozen=True)
class RequestResult:
    """One request as a pod served it."""

    success: bool
    ttft: float
    e2e: float
    output_tokens: int
    tpot: float
    score: float | None

    @property
    def duration(self) -> float:
        """How long the request keeps the pod busy (an error ends at its first token)."""
        return self.e2e if self.success else self.ttft


def sample_request(phase: Phase, rng: random.Random) -> RequestResult:
    """Draw one request's outcome and timings from a phase."""
    success = rng.random() >= phase.error_ratio
    ttft = phase.ttft.sample(rng)
    tokens = max(1, round(phase.output_tokens.sample(rng)))
    if phase.e2e is not None:
        e2e = max(ttft, phase.e2e.sample(rng))
        tpot = (e2e - ttft) / (tokens - 1) if tokens > 1 else 0.0
    else:
        assert phase.tpot is not None  # guaranteed by parsing
        tpot = phase.tpot.sample(rng)
        e2e = ttft + (tokens - 1) * tpot
    score = phase.score.sample(rng) if phase.score is not None else None
    return RequestResult(success, ttft, e2e, tokens, tpot, score)


def parse_behaviour(text: str | None) -> Behaviour:
    """Parse the annotation's JSON; absent or empty means healthy defaults."""
    if text is None or not text.strip():
        return HEALTHY
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise BehaviourError(f"not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise BehaviourError(f"expected a JSON object, got {type(raw).__name__}")
    return behaviour_from_mapping(raw)


def behaviour_from_mapping(raw: Mapping[str, Any]) -> Behaviour:
    base_raw = {key: value for key, value in raw.items() if key not in {"after", "modelName"}}
    base = _phase(base_raw, Phase(), where="")
    phases: list[tuple[float, Phase]] = [(0.0, base)]
    model_name = raw.get("modelName")
    if model_name is not None and (not isinstance(model_name, str) or not model_name):
        raise BehaviourError("modelName: expected a non-empty string")
    after = raw.get("after")
    if after is None:
        return Behaviour(tuple(phases), model_name)
    changes = after if isinstance(after, list) else [after]
    previous = base
    last_start = 0.0
    for index, change in enumerate(changes):
        where = f"after[{index}]." if isinstance(after, list) else "after."
        if not isinstance(change, dict):
            raise BehaviourError(f"{where.rstrip('.')}: expected an object")
        if "seconds" not in change:
            raise BehaviourError(f"{where}seconds: required (seconds after the pod became Ready)")
        start = _number(change["seconds"], f"{where}seconds", minimum=0.0)
        if start < last_start:
            raise BehaviourError(f"{where}seconds: changes must be in time order")
        overrides = {key: value for key, value in change.items() if key != "seconds"}
        previous = _phase(overrides, previous, where=where)
        phases.append((start, previous))
        last_start = start
    return Behaviour(tuple(phases), model_name)


def _phase(raw: Mapping[str, Any], inherited: Phase, where: str) -> Phase:
    unknown = sorted(set(raw) - PHASE_KEYS)
    if unknown:
        extra = {"seconds"} if where else {"after", "modelName"}
        known = ", ".join(sorted(PHASE_KEYS | extra))
        raise BehaviourError(f"{where}{unknown[0]}: unknown key (known keys: {known})")
    if "tpot" in raw and "e2e" in raw:
        raise BehaviourError(f"{where}tpot, {where}e2e: give one of them, the other follows")
    phase = inherited
    if "errorRatio" in raw:
        ratio = _number(raw["errorRatio"], f"{where}errorRatio", minimum=0.0, maximum=1.0)
        phase = replace(phase, error_ratio=ratio)
    if "ttft" in raw:
        phase = replace(phase, ttft=_quantiles(raw["ttft"], f"{where}ttft"))
    if "tpot" in raw:
        phase = replace(phase, tpot=_quantiles(raw["tpot"], f"{where}tpot"), e2e=None)
    if "e2e" in raw:
        phase = replace(phase, e2e=_quantiles(raw["e2e"], f"{where}e2e"), tpot=None)
    if "outputTokens" in raw:
        tokens = _quantiles(raw["outputTokens"], f"{where}outputTokens")
        if tokens.p50 < 1:
            raise BehaviourError(f"{where}outputTokens: the median must be at least 1")
        phase = replace(phase, output_tokens=tokens)
    if "score" in raw:
        phase = replace(phase, score=_score(raw["score"], f"{where}score"))
    if "maxNumSeqs" in raw:
        seqs = _number(raw["maxNumSeqs"], f"{where}maxNumSeqs", minimum=1.0)
        if seqs != int(seqs):
            raise BehaviourError(f"{where}maxNumSeqs: expected a whole number, got {seqs}")
        phase = replace(phase, max_num_seqs=int(seqs))
    return phase


def _quantiles(raw: Any, where: str) -> Quantiles:
    """``{"p50": x, "p95": y}``, ``{"p50": x}`` (no spread) or a bare number (fixed)."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = _number(raw, where, minimum=0.0, exclusive=True)
        return Quantiles(value, value)
    if not isinstance(raw, dict):
        raise BehaviourError(f'{where}: expected {{"p50": ..., "p95": ...}} or a number')
    unknown = sorted(set(raw) - {"p50", "p95"})
    if unknown:
        raise BehaviourError(f"{where}.{unknown[0]}: unknown key (known keys: p50, p95)")
    if "p50" not in raw:
        raise BehaviourError(f"{where}.p50: required")
    p50 = _number(raw["p50"], f"{where}.p50", minimum=0.0, exclusive=True)
    p95 = _number(raw.get("p95", p50), f"{where}.p95", minimum=0.0, exclusive=True)
    if p95 < p50:
        raise BehaviourError(f"{where}.p95: must be at least p50 ({p50}), got {p95}")
    return Quantiles(p50, p95)


def _score(raw: Any, where: str) -> ScoreQuantiles:
    if not isinstance(raw, dict) or "p50" not in raw:
        raise BehaviourError(f'{where}: expected {{"p50": ..., "p95": ...}} with values in (0, 1)')
    unknown = sorted(set(raw) - {"p50", "p95"})
    if unknown:
        raise BehaviourError(f"{where}.{unknown[0]}: unknown key (known keys: p50, p95)")
    p50 = _number(raw["p50"], f"{where}.p50", minimum=0.0, maximum=1.0, exclusive=True)
    p95 = _number(raw.get("p95", p50), f"{where}.p95", minimum=0.0, maximum=1.0, exclusive=True)
    if p95 < p50:
        raise BehaviourError(f"{where}.p95: must be at least p50 ({p50}), got {p95}")
    return ScoreQuantiles(p50, p95)


def _number(
    raw: Any,
    where: str,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise BehaviourError(f"{where}: expected a number, got {raw!r}")
    value = float(raw)
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        bound = "greater than" if exclusive else "at least"
        raise BehaviourError(f"{where}: must be {bound} {minimum:g}, got {value:g}")
    if maximum is not None and (value >= maximum if exclusive else value > maximum):
        bound = "less than" if exclusive else "at most"
        raise BehaviourError(f"{where}: must be {bound} {maximum:g}, got {value:g}")
    return value


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
