"""What each stage type does in one pass. New stage types add a function here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelrelease.analysis.checks import (
    CheckRecord,
    OutagePolicy,
    Standing,
    fold,
    overall,
    standing,
)
from modelrelease.api.constants import (
    Action,
    ConditionStatus,
    ConditionType,
    OnErrorAction,
    OnInconclusive,
    Outcome,
    Phase,
    Reason,
    StageType,
    Verdict,
)
from modelrelease.api.durations import format_duration, parse_duration
from modelrelease.api.models import (
    CanaryStage,
    ChampionChallengerStage,
    CheckStatus,
    Comparison,
    CurrentStage,
    ShadowStage,
    Stage,
    WebhookStage,
)
from modelrelease.core.comparison import ComparisonResult, active_comparison, fold_comparison
from modelrelease.core.conditions import find
from modelrelease.core.context import FULL, Pass
from modelrelease.core.decision import EventType
from modelrelease.core.gate import gate_seed, next_call_at
from modelrelease.core.guard import judge_all, saved
from modelrelease.core.redaction import redact_url
from modelrelease.core.routes import Routes
from modelrelease.core.slos import ResolvedSLO, effective_measurement, outage_policy
from modelrelease.core.transitions import (
    abort,
    complete_stage,
    describe,
    replicas_for,
    replicas_while_loading,
    rollback,
)
from modelrelease.gates.webhook import GateLimits, GateProgress, GateVerdict, decide

StageHandler = Callable[[Pass, Stage, CurrentStage], None]


def run_stage(p: Pass, stage: Stage, current: CurrentStage) -> None:
    """Run the current stage; a type this operator cannot run holds with a condition."""
    HANDLERS.get(stage.type, unsupported)(p, stage, current)


# --- canary ----------------------------------------------------------------------


def canary(p: Pass, stage: Stage, current: CurrentStage) -> None:
    spec = stage.canary
    assert spec is not None
    step_index = min(current.step or 0, len(spec.steps) - 1)
    current.step = step_index
    step = spec.steps[step_index]
    if current.step_start_time is None and not _start_step(p, current, step.weight, 0):
        return
    if not _judge(p, current, step.duration):
        return
    if step_index + 1 < len(spec.steps):
        _next_step(p, spec, current)
    else:
        complete_stage(p, current)


def _next_step(p: Pass, spec: CanaryStage, current: CurrentStage) -> None:
    current.step = (current.step or 0) + 1
    current.step_start_time = None
    current.held_seconds = 0
    step = spec.steps[current.step]
    _start_step(p, current, step.weight, 0)


# --- shadow -----------------------------------------------------------------------


def shadow(p: Pass, stage: Stage, current: CurrentStage) -> None:
    """Mirror a share of requests; a comparison on them may only fail the stage."""
    spec: ShadowStage | None = stage.shadow
    assert spec is not None
    if current.step_start_time is None:
        p.status.comparison = []
        if not _start_step(p, current, 0, spec.mirror_percent):
            return
    if spec.comparison is not None:
        result = _compare(p, spec.comparison)
        if result.verdict is Verdict.FAIL:
            _keep(p, current)
            rollback(p, _lost(result), f"on mirrored traffic, {result.message}")
            return
    if _judge(p, current, spec.duration):
        current.mirror_percent = 0
        complete_stage(p, current)


# --- champion-challenger ------------------------------------------------------------


def champion_challenger(p: Pass, stage: Stage, current: CurrentStage) -> None:
    """A fixed split until the comparison decides or ``maxDuration`` passes."""
    spec: ChampionChallengerStage | None = stage.champion_challenger
    assert spec is not None
    if current.step_start_time is None:
        p.status.comparison = []
        if not _start_step(p, current, spec.weight, 0):
            return
    _keep(p, current)
    standing, failure = _check_round(p, current)
    if standing is Standing.FAILED:
        rollback(p, *failure)
        return
    result = _compare(p, spec)
    if result.verdict is Verdict.FAIL:
        rollback(p, _lost(result), result.message)
        return
    if _held_for_metrics(p, current):
        return
    if result.verdict is Verdict.PASS and standing is Standing.PASSED:
        p.event(EventType.NORMAL, Reason.COMPARISON_WON, result.message)
        complete_stage(p, current)
        return
    end = _step_end(current, spec.max_duration)
    if end is not None and p.now >= end:
        _inconclusive(p, spec, current, result.message)
        return
    until = f" until {_clock(end)} at most" if end is not None else ""
    p.status.phase = Phase.PROGRESSING
    p.progressing(
        ConditionStatus.TRUE,
        Reason.COMPARISON_INCONCLUSIVE,
        f"{_traffic_text(current)}; comparing{until} (maxDuration {spec.max_duration}); "
        f"{result.message}; {_checks_text(p)}",
    )
    p.healthy()


def _inconclusive(
    p: Pass, spec: ChampionChallengerStage, current: CurrentStage, message: str
) -> None:
    text = f"still inconclusive at maxDuration {spec.max_duration} ({message})"
    if spec.on_inconclusive is OnInconclusive.PROMOTE:
        p.event(
            EventType.NORMAL,
            Reason.COMPARISON_INCONCLUSIVE,
            f"{text}; onInconclusive is promote: the challenger goes on",
        )
        complete_stage(p, current)
        return
    challenger = p.challenger
    p.status.rejected_revision = challenger
    abort(
        p,
        Outcome.CHAMPION_KEPT,
        Reason.COMPARISON_INCONCLUSIVE,
        f"{text}; onInconclusive is keepChampion: the champion stays, which is not a "
        "failure of the challenger (raise maxDuration or the stage's weight, then run it "
        f"again: kubectl modelrelease retry {p.release} -n {p.observation.owner.namespace})",
    )
    p.status.phase = Phase.ROLLED_BACK
    p.progressing(
        ConditionStatus.FALSE,
        Reason.COMPARISON_INCONCLUSIVE,
        f"{describe(p, challenger)} was not promoted: {text}; the champion was kept",
    )


def _lost(result: ComparisonResult) -> Reason:
    return Reason.DISTRIBUTION_DRIFTED if result.drifted else Reason.COMPARISON_LOST


def _compare(p: Pass, comparison: Comparison) -> ComparisonResult:
    records, result = fold_comparison(
        comparison, p.status.comparison, p.observation.comparison, p.now
    )
    p.status.comparison = records
    for notice in result.notices:
        p.event(EventType.WARNING, Reason.COMPARISON_STATE_CARRIED_OVER, notice)
    return result


# --- approval ---------------------------------------------------------------------


def approval(p: Pass, stage: Stage, current: CurrentStage) -> None:
    _keep(p, current)
    if p.action is Action.APPROVE:
        current.approved = True
        p.event(EventType.NORMAL, Reason.APPROVED, f"stage {current.name} approved")
    if current.approved:
        complete_stage(p, current)
        return
    if current.stage_start_time is None:
        current.stage_start_time = p.now
    p.progressing(
        ConditionStatus.TRUE,
        Reason.WAITING_FOR_APPROVAL,
        f"stage {current.name}: waiting for a person to approve {describe(p, p.challenger)}; "
        f"approve with: kubectl modelrelease approve {p.release} "
        f"-n {p.observation.owner.namespace}",
    )


# --- webhook ------------------------------------------------------------------------


def webhook(p: Pass, stage: Stage, current: CurrentStage) -> None:
    """Ask an external service; its answers come in ``observation.gate_result``."""
    spec = stage.webhook
    assert spec is not None
    _keep(p, current)
    if current.stage_start_time is None:
        current.stage_start_time = p.now
        p.event(EventType.NORMAL, Reason.STAGE_STARTED, f"stage {current.name} started")
    result = p.observation.gate_result
    if result is None:
        _waiting_for_webhook(p, current, spec)
        return
    decision = decide(
        result,
        GateProgress(current.gate_attempts, current.gate_consecutive_failures),
        GateLimits.of(spec),
        p.seconds_since(current.stage_start_time),
        seed=gate_seed(p.observation.owner.namespace, p.release),
    )
    current.gate_attempts = decision.progress.attempts
    current.gate_consecutive_failures = decision.progress.consecutive_failures
    current.last_gate_time = p.now
    current.last_gate_answer = result.describe()
    if decision.verdict is GateVerdict.PASSED:
        p.event(
            EventType.NORMAL, Reason.WEBHOOK_PASSED, f"stage {current.name}: {decision.message}"
        )
        complete_stage(p, current)
    elif decision.verdict is GateVerdict.FAILED:
        rollback(
            p,
            Reason.WEBHOOK_FAILED,
            f"webhook stage {current.name} ({redact_url(spec.url)}) failed: {decision.message}",
        )
    else:
        _waiting_for_webhook(p, current, spec)


def _waiting_for_webhook(p: Pass, current: CurrentStage, spec: WebhookStage) -> None:
    """The same words in the pass that calls and in those between calls."""
    p.status.phase = Phase.PROGRESSING
    answer = f"; last answer {current.last_gate_answer}" if current.last_gate_answer else ""
    failures = current.gate_consecutive_failures
    tolerated = (
        f"; {failures} failed in a row, failureLimit {spec.failure_limit}" if failures else ""
    )
    moment = next_call_at(p.spec, p.status, gate_seed(p.observation.owner.namespace, p.release))
    after = "the first call comes next"
    if current.last_gate_time is not None and moment is not None:
        after = f"next call at {_clock(moment)}"
    p.progressing(
        ConditionStatus.TRUE,
        Reason.WAITING_FOR_WEBHOOK,
        f"stage {current.name}: waiting for the webhook to pass {describe(p, p.challenger)} "
        f"({current.gate_attempts} calls so far{tolerated}{answer}); {after}",
    )


def unsupported(p: Pass, stage: Stage, current: CurrentStage) -> None:
    _keep(p, current)
    message = (
        f"stage {current.name} ({stage.type.value}) is not supported by this operator "
        "version; the release holds here: remove the stage or upgrade the operator"
    )
    p.progressing(ConditionStatus.FALSE, Reason.INVALID_SPEC, message)
    p.degraded(Reason.INVALID_SPEC, message)


HANDLERS: dict[StageType, StageHandler] = {
    StageType.CANARY: canary,
    StageType.SHADOW: shadow,
    StageType.CHAMPION_CHALLENGER: champion_challenger,
    StageType.APPROVAL: approval,
    StageType.WEBHOOK: webhook,
}


# --- shared steps -------------------------------------------------------------------


def _keep(p: Pass, current: CurrentStage) -> None:
    share = max(current.weight, current.mirror_percent)
    p.run(
        replicas_for(p, share),
        Routes(FULL - current.weight, current.weight, current.mirror_percent),
    )


def _start_step(p: Pass, current: CurrentStage, weight: int, mirror: int) -> bool:
    """Start the step's clock once the challenger has the pods its share needs.

    Until then traffic stays where it was, so a slow model load never eats a step.
    """
    replicas = replicas_for(p, max(weight, mirror))
    ready = p.ready_replicas(p.challenger)
    if ready < replicas.challenger:
        p.waiting = True
        loading = replicas_while_loading(p, max(weight, mirror))
        p.run(loading, Routes(FULL - current.weight, current.weight, current.mirror_percent))
        p.progressing(
            ConditionStatus.TRUE,
            Reason.WAITING_FOR_CHALLENGER,
            f"stage {current.name}: waiting for {describe(p, p.challenger)} to have "
            f"{replicas.challenger} ready replicas (has {ready})",
        )
        return False
    first = current.stage_start_time is None
    current.weight, current.mirror_percent = weight, mirror
    current.step_start_time = p.now
    current.held_seconds = 0
    if first:
        current.stage_start_time = p.now
        p.event(EventType.NORMAL, Reason.STAGE_STARTED, f"stage {current.name} started")
    p.event(EventType.NORMAL, Reason.STEP_ADVANCED, _traffic_text(current))
    p.run(replicas, Routes(FULL - weight, weight, mirror))
    return True


def _traffic_text(current: CurrentStage) -> str:
    where = f"stage {current.name}" + (
        f" step {current.step + 1}" if current.step is not None else ""
    )
    if current.mirror_percent:
        return f"{where}: mirroring {current.mirror_percent}% of requests to the challenger"
    return f"{where}: {current.weight}% of traffic to the challenger"


def _judge(p: Pass, current: CurrentStage, duration: str) -> bool:
    """Fold this pass's checks; roll back on failure; True when the step may end."""
    replicas = replicas_for(p, max(current.weight, current.mirror_percent))
    p.run(replicas, Routes(FULL - current.weight, current.weight, current.mirror_percent))
    verdict, failure = _check_round(p, current)
    if verdict is Standing.FAILED:
        reason, message = failure
        rollback(p, reason, message)
        return False
    tripped = _guard_round(p)
    if tripped is not None:
        rollback(p, Reason.SLO_GUARD_TRIPPED, tripped)
        return False
    if _held_for_metrics(p, current):
        return False
    end = _step_end(current, duration)
    ended = end is not None and p.now >= end
    if ended and verdict is Standing.PASSED:
        return True
    # No clock that moves on its own: the message changes when a check does (status is
    # written then anyway), not when the step's time runs out.
    clock = f"the step lasts {duration}" + (f", until {_clock(end)}" if end else "")
    if verdict is not Standing.PASSED:
        clock += ", and then until every SLO passes"
    p.status.phase = Phase.PROGRESSING
    p.progressing(
        ConditionStatus.TRUE,
        Reason.STEP_ADVANCED,
        f"{_traffic_text(current)}; {clock}; {_checks_text(p)}",
    )
    p.healthy()
    return False


def _step_end(current: CurrentStage, duration: str) -> datetime | None:
    """When the step's ``duration`` runs out: its start plus the duration plus the time
    held (paused, waiting for data, metrics down); None before the step started."""
    start = current.step_start_time
    if start is None:
        return None
    return start + timedelta(seconds=parse_duration(duration) + current.held_seconds)


# --- when the stage's own clocks decide ------------------------------------------------


def stage_due(p: Pass) -> datetime | None:
    """When the current stage's own clock next decides by itself: its step or
    ``maxDuration`` running out, or ``analysis.onError.after`` while metrics are down.

    A moment already past is left out: this pass saw it, and what holds the
    stage now (a check still to pass) has its own due time.
    """
    current = p.status.current_stage
    if current is None or p.challenger is None:
        return None
    if current.metrics_unavailable_since is not None:
        moment = _outage_decides_at(p)  # the step's clock is stopped meanwhile
    elif _waits_for_checks(p, current):
        moment = None  # the check that passes the step ends it; checks have their due time
    else:
        moment = _current_end(p, current)
    return moment if moment is not None and moment > p.now else None


def _waits_for_checks(p: Pass, current: CurrentStage) -> bool:
    """A canary or shadow step whose SLOs do not all pass yet: its time running out
    decides nothing (the message says from the start that it then waits for them)."""
    if current.index >= len(p.spec.stages) or p.spec.stages[current.index].champion_challenger:
        return False
    records = {check.name: check for check in p.status.checks}
    slos = p.observation.slos
    standings = [_standing(records.get(slo.name), slo, current) for slo in slos]
    return bool(slos) and overall(standings) is not Standing.PASSED


def _current_end(p: Pass, current: CurrentStage) -> datetime | None:
    if current.index >= len(p.spec.stages):
        return None
    stage = p.spec.stages[current.index]
    if stage.canary is not None and current.step is not None:
        steps = stage.canary.steps
        return _step_end(current, steps[min(current.step, len(steps) - 1)].duration)
    if stage.shadow is not None:
        return _step_end(current, stage.shadow.duration)
    if stage.champion_challenger is not None:
        return _step_end(current, stage.champion_challenger.max_duration)
    return None


def _outage_decides_at(p: Pass) -> datetime | None:
    """When the longest outage reaches ``onError.after`` (a rollback, or a hold that says
    it has lasted too long)."""
    outages = _outages(p)
    if not outages:
        return None
    after = outage_policy(p.spec.analysis).after_seconds
    return outages[0].since + timedelta(seconds=after)


# --- SLO checks ---------------------------------------------------------------------


def _check_round(p: Pass, current: CurrentStage) -> tuple[Standing, tuple[Reason, str]]:
    """Fold this pass's measurements (if any) into status; the SLOs' overall standing."""
    slos = p.observation.slos
    if not slos:
        return Standing.PASSED, (Reason.SLO_FAILED, "")
    records = {check.name: check for check in p.status.checks}
    results = p.observation.slo_results
    if results is not None:
        for slo in slos:
            result = results.get(slo.name)
            if result is None:
                continue
            measurement = effective_measurement(slo, result)
            record = fold(_record(records.get(slo.name), slo), measurement, slo.thresholds, p.now)
            records[slo.name] = _check_status(
                record, slo, result.requests, p, records.get(slo.name)
            )
    p.status.checks = [records[slo.name] for slo in slos if slo.name in records]
    standings = {slo.name: _standing(records.get(slo.name), slo, current) for slo in slos}
    if results is not None and _waiting_on_data(records, standings):
        current.held_seconds += p.interval_seconds
    return overall(standings.values()), _failure(records, standings)


def _guard_round(p: Pass) -> str | None:
    """Fold the guard's read (if any); save its evidence with the interval checks (never
    on its own: a read between them writes nothing) or when it trips. The message of a
    tripped guard, else None."""
    readings = p.observation.guard
    if readings is None or p.spec.analysis is None or p.challenger is None:
        return None
    queries = p.observation.guard_queries
    outcomes = {
        outcome.name: outcome
        for outcome in judge_all(p.spec, p.observation.slos, queries, readings, p.now)
    }
    tripped = next((outcome for outcome in outcomes.values() if outcome.tripped), None)
    if p.observation.slo_results is None and tripped is None:
        return None
    checks = {check.name: check for check in p.status.checks}
    for query in queries:
        check = checks.get(query.name)
        if check is None:
            continue
        reading = readings.get(query.name)
        guard = saved(
            outcomes.get(query.name), query, p.challenger, reading.error if reading else None
        )
        if guard is not None:
            checks[query.name] = check.model_copy(update={"guard": guard})
    p.status.checks = [checks[check.name] for check in p.status.checks]
    return tripped.message() if tripped is not None else None


def _standing(check: CheckStatus | None, slo: ResolvedSLO, current: CurrentStage) -> Standing:
    if check is None:
        return Standing.PENDING
    result = standing(_record(check, slo), slo.policy)
    # A pass must be at this step's traffic: a check from before the step does not count.
    stale = check.time is None or (
        current.step_start_time is not None and check.time <= current.step_start_time
    )
    if result is Standing.PASSED and stale:
        return Standing.PENDING
    return result


def _waiting_on_data(records: dict[str, CheckStatus], standings: dict[str, Standing]) -> bool:
    """Some SLO waits for data, and none failed to read (the outage clock covers that)."""
    checks = [records[name] for name in standings if name in records]
    if any(check.verdict is Verdict.ERROR for check in checks):
        return False
    return any(
        standings[check.name] is Standing.PENDING and check.verdict is Verdict.INCONCLUSIVE
        for check in checks
    )


def _failure(records: dict[str, CheckStatus], standings: dict[str, Standing]) -> tuple[Reason, str]:
    failed = [name for name, value in standings.items() if value is Standing.FAILED]
    if not failed:
        return Reason.SLO_FAILED, ""
    name = failed[0]
    check = records[name]
    if check.verdict is Verdict.INCONCLUSIVE:
        return Reason.SLO_INCONCLUSIVE, (
            f"SLO {name} had no data {check.consecutive_inconclusive} times in a row "
            f"({check.message}) and its noData policy is fail"
        )
    return Reason.SLO_FAILED, (
        f"SLO {name} failed {check.consecutive_failures} checks in a row: {check.message}"
    )


def _record(check: CheckStatus | None, slo: ResolvedSLO) -> CheckRecord:
    if check is None:
        return CheckRecord(name=slo.name)
    return CheckRecord(
        name=check.name,
        verdict=check.verdict,
        value=check.value,
        consecutive_failures=check.consecutive_failures,
        consecutive_inconclusive=check.consecutive_inconclusive,
        message=check.message,
        error_since=check.error_since,
    )


def _check_status(
    record: CheckRecord,
    slo: ResolvedSLO,
    requests: float | None,
    p: Pass,
    previous: CheckStatus | None,
) -> CheckStatus:
    return CheckStatus(
        name=record.name,
        value=record.value,
        min=slo.thresholds.minimum,
        max=slo.thresholds.maximum,
        requests=requests,
        verdict=record.verdict,
        consecutive_failures=record.consecutive_failures,
        consecutive_inconclusive=record.consecutive_inconclusive,
        message=record.message,
        time=p.now,
        error_since=record.error_since,
        guard=previous.guard if previous is not None else None,
    )


def _checks_text(p: Pass) -> str:
    if not p.observation.slos:
        return "no SLOs"
    passing = sum(1 for check in p.status.checks if check.verdict is Verdict.PASS)
    return f"{passing}/{len(p.observation.slos)} SLOs passing"


# --- metrics outages (analysis.onError) ---------------------------------------------

_MAX_ERROR_TEXT = 200


@dataclass(frozen=True)
class _Outage:
    """A query that keeps failing: an SLO's, or a comparison metric's counters."""

    source: str
    since: datetime
    error: str


def _outages(p: Pass) -> list[_Outage]:
    """This stage's failing reads, the longest-failing first."""
    slos = {slo.name for slo in p.observation.slos}
    outages = [
        _Outage(f"SLO {check.name}", check.error_since, check.message)
        for check in p.status.checks
        if check.name in slos and check.error_since is not None
    ]
    comparison = active_comparison(p.spec, p.status)
    metrics = {metric.name for metric in comparison.metrics} if comparison else set()
    outages += [
        _Outage(f"comparison metric {record.metric}", record.error_since, record.message)
        for record in p.status.comparison
        if record.metric in metrics and record.error_since is not None
    ]
    return sorted(outages, key=lambda outage: outage.since)


def _held_for_metrics(p: Pass, current: CurrentStage) -> bool:
    """Hold while a read fails, and let ``analysis.onError`` decide when it lasts.

    An error is never a pass: nothing advances. The step's clock stops from the
    first pass that holds until the first that does not (that time goes to
    ``heldSeconds``), so an outage never eats a step.
    """
    outages = _outages(p)
    if not outages:
        if current.metrics_unavailable_since is not None:
            current.held_seconds += p.seconds_since(current.metrics_unavailable_since)
            current.metrics_unavailable_since = None
            degraded = find(p.status.conditions, ConditionType.DEGRADED)
            if degraded is not None and degraded.reason == Reason.METRICS_UNAVAILABLE:
                p.healthy()  # even when the step ends in this pass
        return False
    if current.metrics_unavailable_since is None:
        current.metrics_unavailable_since = p.now
    policy = outage_policy(p.spec.analysis)
    longest = outages[0]
    after = format_duration(policy.after_seconds)
    if policy.action is OnErrorAction.ROLLBACK and policy.expired(longest.since, p.now):
        rollback(
            p,
            Reason.METRICS_UNAVAILABLE,
            f"{longest.source} could not be read for "
            f"{format_duration(p.seconds_since(longest.since))} (since {_clock(longest.since)}), "
            f"onError is rollback after {after}: {_short(longest.error)}",
        )
        return True
    message = f"{_outage_text(outages)}; {_outage_next(p, longest, policy)}"
    p.status.phase = Phase.PROGRESSING
    p.progressing(
        ConditionStatus.TRUE,
        Reason.METRICS_UNAVAILABLE,
        f"{_traffic_text(current)}; holding (no step advances, the step's clock is stopped) "
        f"while metrics cannot be read: {message}",
    )
    p.degraded(Reason.METRICS_UNAVAILABLE, message)
    return True


def _outage_text(outages: list[_Outage]) -> str:
    longest = outages[0]
    others = [outage.source for outage in outages[1:]]
    also = f" (also failing: {', '.join(others)})" if others else ""
    return f"{longest.source} could not be read since {_clock(longest.since)}{also}: " + _short(
        longest.error
    )


def _outage_next(p: Pass, longest: _Outage, policy: OutagePolicy) -> str:
    after = format_duration(policy.after_seconds)
    if policy.action is OnErrorAction.ROLLBACK:
        at = datetime.fromtimestamp(longest.since.timestamp() + policy.after_seconds, UTC)
        return (
            f"onError is rollback after {after}: the challenger is rolled back at "
            f"{_clock(at)} unless a read succeeds first; check Prometheus and the query"
        )
    lasted = (
        f"the outage has lasted longer than onError.after {after}; "
        if policy.expired(longest.since, p.now)
        else ""
    )
    return (
        f"{lasted}onError is hold: the release holds until a read succeeds; check Prometheus "
        f"and the query, or decide by hand (kubectl modelrelease abort|promote {p.release} "
        f"-n {p.observation.owner.namespace})"
    )


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(error: str) -> str:
    return error if len(error) <= _MAX_ERROR_TEXT else f"{error[: _MAX_ERROR_TEXT - 3]}..."
