"""The pure decision of one reconcile pass: ``plan(spec, status, observation, now)``.

Level-based: every pass looks at the whole status and what the cluster shows,
and says what the cluster should look like, what status becomes and which
Events to post. Nothing here does I/O, so it is table- and property-tested.
"""

from __future__ import annotations

from datetime import datetime

from modelrelease.api.constants import (
    Action,
    ConditionStatus,
    ConditionType,
    Outcome,
    Phase,
    Reason,
)
from modelrelease.api.durations import format_duration
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.autoscalers import report_misdirected_autoscalers
from modelrelease.core.capacity import steady
from modelrelease.core.capacity_guard import guard_gpus, roll_back_failing_pods
from modelrelease.core.conditions import find, set_condition
from modelrelease.core.context import Pass, stable_routes
from modelrelease.core.decision import Decision, EventType
from modelrelease.core.due import requeue_after
from modelrelease.core.manual import finish_undo, skip_step, start_undo, undo_in_flight
from modelrelease.core.observation import Observation, Problem
from modelrelease.core.stages import run_stage
from modelrelease.core.transitions import (
    abort,
    adopt_promotion,
    describe,
    enter_stage,
    hold_traffic,
    promote,
    rollback,
    start_challenger,
)


def plan(
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    observation: Observation,
    now: datetime,
) -> Decision:
    p = Pass.start(spec, status, observation, now)
    report_misdirected_autoscalers(p)  # told whatever else holds the release
    if observation.problems:
        # Actions wait in their annotation until the release can move again, but
        # failure detection does not wait (invariant I4).
        _hold_for_problems(p)
        if p.champion is not None:
            _detect_failures(p)
        _availability(p)
        return p.decision(requeue_after(p))
    _take_action(p)
    _clear_fixed_problems(p)
    if p.champion is None:
        _initial(p)
    else:
        _release(p)
    guard_gpus(p, status)
    _availability(p)
    return p.decision(requeue_after(p))


# --- imperative actions --------------------------------------------------------------


def _take_action(p: Pass) -> None:
    """Record the annotation's action; the lifecycle steps act on it."""
    action, invalid = p.observation.action, p.observation.invalid_action
    if invalid is not None:
        p.consume_action = True
        known = ", ".join(a.value for a in Action)
        p.event(
            EventType.WARNING,
            Reason.INVALID_SPEC,
            f"ignored action {invalid!r}: expected one of {known}",
        )
        return
    if action is None:
        return
    p.consume_action = True
    if _paused_by_action(p) and action not in (Action.RESUME, Action.ABORT, Action.PAUSE):
        p.event(
            EventType.WARNING,
            Reason.PAUSED,
            f"ignored action {action.value}: the release is paused; resume it first",
        )
        return
    p.action = action
    p.status.last_action = action.value
    p.status.last_action_time = p.now


def _action(p: Pass, action: Action) -> bool:
    """Whether this pass accepted ``action``."""
    return p.action is action


def _paused_by_action(p: Pass) -> bool:
    return p.status.last_action == Action.PAUSE.value


# --- lifecycle ------------------------------------------------------------------------

# Degraded reasons that describe the spec or the cluster rather than a verdict on a
# revision: they clear as soon as a pass no longer sees them.
_PROBLEM_REASONS = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.ROUTE_NOT_FOUND,
        Reason.ROUTE_RULE_NOT_FOUND,
        Reason.MIRROR_NOT_SUPPORTED,
        Reason.TEMPLATE_NOT_FOUND,
        Reason.UNKNOWN_QUERY_VARIABLE,
        Reason.SECRET_NOT_FOUND,
        Reason.SECRET_NOT_OPTED_IN,
        Reason.RECONCILE_ERROR,
        Reason.INSUFFICIENT_GPU,
    }
)


def _clear_fixed_problems(p: Pass) -> None:
    degraded = find(p.status.conditions, ConditionType.DEGRADED)
    if degraded is None or degraded.reason not in _PROBLEM_REASONS:
        return
    if p.status.phase is Phase.FAILED and _stopped_for(p, degraded.reason):
        return  # the verdict a person must act on (InsufficientGPU can be one)
    p.healthy()


def _stopped_for(p: Pass, reason: str) -> bool:
    """Whether the release stopped in Failed for ``reason`` (its Progressing says so)."""
    progressing = find(p.status.conditions, ConditionType.PROGRESSING)
    return progressing is not None and progressing.reason == reason


def _hold_for_problems(p: Pass) -> None:
    """A spec the cluster cannot honour: say so, move nothing."""
    message = "; ".join(problem.message for problem in p.observation.problems)
    reason = p.observation.problems[0].reason
    if p.status.phase is None:
        p.status.phase = Phase.PENDING
    p.degraded(reason, message)
    p.progressing(ConditionStatus.FALSE, reason, f"holding: {message}")


def _initial(p: Pass) -> None:
    """The first revision becomes the champion directly."""
    p.status.champion = p.revision_status(p.target, p.spec.replicas)
    message = f"{describe(p, p.target)} is the first revision: it is the champion"
    p.record_history(p.target, Outcome.PROMOTED, Reason.INITIAL_REVISION, message)
    p.event(EventType.NORMAL, Reason.INITIAL_REVISION, message)
    _steady(p)


def _release(p: Pass) -> None:
    previous = p.champion
    adopt_promotion(p)
    finish_undo(p, previous)  # an undo whose last status write was lost, just adopted
    if _action(p, Action.UNDO):
        start_undo(p, p.observation.action_argument)
    if undo_in_flight(p):
        _undo(p)
        return
    if p.challenger is not None and p.challenger != p.target:
        _supersede(p)
    if p.challenger is not None and _action(p, Action.ABORT):
        p.status.rejected_revision = p.challenger
        abort(p, Outcome.ABORTED, Reason.ABORTED, "aborted by request")
        p.status.phase = Phase.ROLLED_BACK
    if _action(p, Action.RETRY) and p.status.rejected_revision == p.target:
        p.status.rejected_revision = None
        p.event(EventType.NORMAL, Reason.RETRYING, f"retrying {describe(p, p.target)}")
    if p.target == p.champion:
        _steady(p)
    elif p.target == p.status.rejected_revision:
        _rejected(p)
    elif _paused(p):
        if not _detect_failures(p):
            _freeze(p)
    else:
        _challenger(p)


def _undo(p: Pass) -> None:
    """Bring a kept revision back (``core.manual``): a promotion without stages."""
    if not _detect_failures(p):
        previous = p.champion
        promote(p)
        finish_undo(p, previous)
    _track_wait(p)


def _supersede(p: Pass) -> None:
    new = (
        "the spec's revision is the champion again"
        if p.target == p.champion
        else (f"superseded by {describe(p, p.target)}")
    )
    abort(p, Outcome.SUPERSEDED, Reason.SUPERSEDED, new)


def _steady(p: Pass) -> None:
    """No challenger: the champion at full size with all the traffic."""
    p.status.challenger = None
    p.status.current_stage = None
    p.run(steady(p.spec.replicas), stable_routes())
    ready = p.ready_replicas(p.champion) > 0
    never_served = p.status.phase in (None, Phase.PENDING)
    p.status.phase = Phase.PENDING if never_served and not ready else Phase.SUCCEEDED
    message = f"{describe(p, p.champion)} serves all traffic"
    p.progressing(ConditionStatus.FALSE, Reason.STABLE, message)
    p.healthy()


def _rejected(p: Pass) -> None:
    """The spec names a rolled-back revision: serve the champion, do not retry."""
    p.status.challenger = None
    p.status.current_stage = None
    p.run(steady(p.spec.replicas), stable_routes())
    p.status.phase = Phase.ROLLED_BACK
    last = next((h for h in reversed(p.status.history) if h.revision == p.target), None)
    why = f" ({last.reason}: {last.message})" if last else ""
    kept = last is not None and last.outcome is Outcome.CHAMPION_KEPT
    ended = "was not promoted, the champion was kept" if kept else "was rolled back"
    message = (
        f"{describe(p, p.target)} {ended}{why}; it is not retried until the spec "
        f"changes or a retry is requested (kubectl modelrelease retry {p.release})"
    )
    p.progressing(ConditionStatus.FALSE, Reason.REVISION_REJECTED, message)
    if kept:
        p.healthy()  # an undecided comparison is not a failure
    elif last is not None:
        p.degraded(_as_reason(last.reason), message)


def _as_reason(text: str) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return Reason.ROLLED_BACK


def _paused(p: Pass) -> bool:
    paused = p.spec.paused or _paused_by_action(p)
    if not paused:
        _resume_clocks(p)
    return paused


def _freeze(p: Pass) -> None:
    """Paused: no traffic change and no stage clock (nor progress-deadline clock)."""
    p.status.challenger_waiting_since = None
    if p.challenger is not None:
        hold_traffic(p)
    if p.status.phase is not Phase.PAUSED:
        p.event(EventType.NORMAL, Reason.PAUSED, "release paused")
    p.status.phase = Phase.PAUSED
    why = "spec.paused is true" if p.spec.paused else "paused by request"
    p.condition(ConditionType.PROGRESSING, ConditionStatus.UNKNOWN, Reason.PAUSED, why)
    p.status.message = f"paused ({why})"


def _resume_clocks(p: Pass) -> None:
    """Coming back from a pause: the time paused does not count against the step."""
    condition = find(p.status.conditions, ConditionType.PROGRESSING)
    if condition is None or condition.reason != Reason.PAUSED:
        return
    stage = p.status.current_stage
    if stage is not None and stage.step_start_time is not None:
        stage.held_seconds += p.seconds_since(condition.last_transition_time)
    p.event(EventType.NORMAL, Reason.RESUMED, "release resumed")
    p.status.phase = Phase.PROGRESSING


def _challenger(p: Pass) -> None:
    if p.challenger != p.target:
        start_challenger(p)
    if _action(p, Action.PROMOTE):
        p.event(EventType.NORMAL, Reason.PROMOTING, "promotion requested: skipping the stages")
        p.status.stages_passed = list(dict.fromkeys([*p.status.stages_passed, *p.stage_names]))
        enter_stage(p, None, carried_weight=0)
    if p.status.phase is Phase.FAILED:
        hold_traffic(p)
        return
    if _detect_failures(p):
        return
    _locate_stage(p)
    if _action(p, Action.SKIP_STEP):
        skip_step(p)
    current = p.status.current_stage
    if current is None:
        promote(p)
    else:
        p.status.phase = Phase.PROGRESSING
        run_stage(p, p.spec.stages[current.index], current)
        if p.status.current_stage is None and p.challenger is not None:
            promote(p)  # the last stage just passed
    _track_wait(p)


def _locate_stage(p: Pass) -> None:
    """Find the current stage in the spec by name (invariant I2: never skip a gate).

    Stages may have been added, removed, reordered or retyped since the last
    pass. The current stage is followed to its new position; when it is gone
    the challenger goes on with the first stage it has not passed; and
    "promotion" holds only while every stage of the spec has passed.
    """
    current = p.status.current_stage
    carried = current.weight if current is not None else 0
    position = p.stage_position(current.name) if current is not None else None
    if current is None or position is None:
        upcoming = p.next_stage()
        if current is not None or upcoming is not None:
            enter_stage(p, upcoming, carried_weight=carried)
        return
    current.index = position
    if p.spec.stages[position].type is not current.type:
        enter_stage(p, position, carried_weight=carried)  # the stage was retyped


def _detect_failures(p: Pass) -> bool:
    """Crash loops, failed pulls, unschedulable pods and missed deadlines (invariant I4).

    Runs on every pass that has a challenger, whatever else holds the release.
    """
    if p.challenger is None or p.status.phase is Phase.FAILED:
        return False  # stopped already: a person decides (a new finding would only reword it)
    return roll_back_failing_pods(p) or _deadline_missed(p)


def _track_wait(p: Pass) -> None:
    """Start or stop the progress-deadline clock of the wait for Ready pods."""
    if p.challenger is None or not p.waiting:
        p.status.challenger_waiting_since = None
    elif p.status.challenger_waiting_since is None:
        p.status.challenger_waiting_since = p.now


def _deadline_missed(p: Pass) -> bool:
    """Roll back a challenger that has waited for Ready pods longer than ``progressDeadline``.

    Every wait counts: the first pods, each later step's, the final scale-up.
    """
    deadline = p.progress_deadline
    if deadline is None or p.now < deadline:
        return False
    waited = p.seconds_since(p.status.challenger_waiting_since)
    state = p.deployment(p.challenger)
    ready = state.ready_replicas if state else 0
    asked = state.replicas if state else 0
    waiting = find(p.status.conditions, ConditionType.PROGRESSING)
    if waiting is not None and waiting.reason == Reason.INSUFFICIENT_GPU:
        rollback(
            p,
            Reason.INSUFFICIENT_GPU,
            f"no room on GPUs within progressDeadline {p.spec.progress_deadline} "
            f"({waiting.message.removeprefix('holding: ')})",
        )
        return True
    rollback(
        p,
        Reason.PROGRESS_DEADLINE_EXCEEDED,
        f"expected Ready pods within progressDeadline {p.spec.progress_deadline}, "
        f"but after {format_duration(waited)} {ready} of {asked} "
        "are Ready; check the pods' events (image pull, model load, GPU scheduling)",
    )
    return True


def _availability(p: Pass) -> None:
    champion = p.champion
    if champion is None:
        return
    ready = p.ready_replicas(champion)
    if ready > 0:
        p.condition(
            ConditionType.AVAILABLE,
            ConditionStatus.TRUE,
            Reason.STABLE,
            f"{describe(p, champion)} has {ready} ready replicas",
        )
    else:
        p.condition(
            ConditionType.AVAILABLE,
            ConditionStatus.FALSE,
            Reason.CHAMPION_UNAVAILABLE,
            f"{describe(p, champion)} has no ready replicas",
        )


def plan_invalid_spec(
    status: ModelReleaseStatus, message: str, generation: int, now: datetime
) -> Decision:
    """A spec that does not parse: say why in status, touch nothing else."""
    new = status.model_copy(deep=True)
    new.observed_generation = generation
    if new.phase is None:
        new.phase = Phase.PENDING
    text = f"the spec is invalid, nothing was changed: {message}; fix the spec"
    for type_ in (ConditionType.DEGRADED, ConditionType.PROGRESSING):
        state = ConditionStatus.TRUE if type_ is ConditionType.DEGRADED else ConditionStatus.FALSE
        new.conditions = set_condition(
            new.conditions, type_, state, Reason.INVALID_SPEC, text, now, generation
        )
    new.message = text
    return Decision(status=new)


def with_problems(
    status: ModelReleaseStatus,
    problems: list[Problem],
    generation: int,
    now: datetime,
) -> ModelReleaseStatus:
    """Status after acting, when part of the decision could not be carried out."""
    if not problems:
        return status
    new = status.model_copy(deep=True)
    message = "; ".join(problem.message for problem in problems)
    new.conditions = set_condition(
        new.conditions,
        ConditionType.DEGRADED,
        ConditionStatus.TRUE,
        problems[0].reason,
        message,
        now.replace(microsecond=0),
        generation,
    )
    new.message = message
    return new
