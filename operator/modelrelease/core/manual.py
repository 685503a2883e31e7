"""Moves a person asks for beyond the stages: one step forward, and back to a kept revision.

``skip-step`` advances the challenger one canary step, or past its current stage
(as ``kubectl argo rollouts promote`` does); the next step's traffic still waits
for Ready pods and its checks still run. ``undo`` brings back a former champion
that ``revisionHistoryLimit`` kept scaled to zero. It runs as a promotion of that
revision with no stages, so it is ordered as one (``transitions.promote``): the
kept revision is scaled up while the champion keeps all traffic; once all its
pods are Ready, all traffic moves to it (the canary Service); then the stable
Service follows and the old champion scales to zero (and is kept in turn). A
crash or lost status write between any two writes leaves the champion or the
Ready kept revision serving, and the intent (``status.undoRevision``) makes the
next pass carry on. Failure detection runs throughout: a kept revision that
crash-loops or misses ``progressDeadline`` is rolled back like any challenger.
"""

from __future__ import annotations

from modelrelease.api.constants import ConditionStatus, Outcome, Phase, Reason, StageType
from modelrelease.core.context import Pass
from modelrelease.core.decision import EventType
from modelrelease.core.transitions import complete_stage, describe


def skip_step(p: Pass) -> None:
    """One canary step forward, or the current stage passed, by request."""
    current = p.status.current_stage
    if current is None:
        return  # every stage passed: the promotion is already under way
    stage = p.spec.stages[current.index]
    step = current.step or 0
    if stage.canary is not None and step + 1 < len(stage.canary.steps):
        current.step = step + 1
        current.step_start_time = None  # the stage starts the new step once its pods are Ready
        current.held_seconds = 0
        p.event(
            EventType.NORMAL,
            Reason.STEP_SKIPPED,
            f"stage {current.name}: step {step + 1} skipped by request; going to "
            f"{stage.canary.steps[step + 1].weight}%",
        )
        return
    what = f"step {step + 1} (its last) of " if current.type is StageType.CANARY else ""
    p.event(EventType.NORMAL, Reason.STEP_SKIPPED, f"{what}stage {current.name} skipped by request")
    complete_stage(p, current)


def kept_revisions(p: Pass) -> list[str]:
    """Former champions that still have a Deployment, newest first: what undo can go to."""
    promoted = [
        entry.revision
        for entry in reversed(p.status.history)
        if entry.outcome is Outcome.PROMOTED and entry.revision != p.champion
    ]
    return [r for r in dict.fromkeys(promoted) if r in p.observation.deployments]


def start_undo(p: Pass, wanted: str | None) -> None:
    """Accept an undo to ``wanted`` (None: the newest kept revision), or say why not."""
    kept = kept_revisions(p)
    revision = wanted if wanted is not None else (kept[0] if kept else None)
    refusal = None
    if p.challenger is not None:
        refusal = (
            f"{describe(p, p.challenger)} is being released; abort it first "
            f"(kubectl modelrelease abort {p.release}), then undo"
        )
    elif revision is None:
        refusal = "no former champion is kept (spec.revisionHistoryLimit keeps them at zero)"
    elif revision not in kept:
        refusal = (
            f"revision {revision} is not kept (kept: {', '.join(kept) or 'none'}); only "
            "former champions still scaled to zero can be brought back"
        )
    if refusal is not None or revision is None:
        p.event(EventType.WARNING, Reason.UNDO_REFUSED, f"undo refused: {refusal}")
        return
    p.status.undo_revision = revision
    p.status.challenger = p.revision_status(revision, 0)
    p.status.current_stage = None
    p.status.checks = []
    p.status.comparison = []
    p.status.challenger_waiting_since = None
    p.event(
        EventType.NORMAL,
        Reason.UNDOING,
        f"undo requested: bringing back {describe(p, revision)}; it gets all traffic once "
        f"its {p.spec.replicas} pods are Ready",
    )


def undo_in_flight(p: Pass) -> bool:
    """Whether an undo is under way and still wanted; forgets one that is not.

    It is over when its revision is no longer the challenger (rolled back, aborted) and
    abandoned when the spec names a new revision (that one is released instead).
    """
    revision = p.status.undo_revision
    if revision is None:
        return False
    spec_unchanged = p.target in (p.champion, p.status.rejected_revision, revision)
    if p.challenger == revision and spec_unchanged:
        return True
    p.status.undo_revision = None
    return False


def finish_undo(p: Pass, previous: str | None) -> None:
    """After the kept revision became the champion: say so, and keep the spec's revision
    from coming straight back (it is rejected until the spec changes or a retry)."""
    revision = p.status.undo_revision
    if revision is None or p.champion != revision:
        return
    p.status.undo_revision = None
    text = f"undone: {describe(p, revision)} serves all traffic again"
    if previous is not None:
        p.record_history(
            previous, Outcome.ROLLED_BACK, Reason.UNDONE, f"replaced by {describe(p, revision)}"
        )
    if p.target == revision:
        p.status.rejected_revision = None  # the spec names it: nothing to hold back
        p.progressing(ConditionStatus.FALSE, Reason.UNDONE, text)
        p.event(EventType.NORMAL, Reason.UNDONE, text)
        return
    if p.status.rejected_revision != p.target:
        p.status.rejected_revision = p.target
    text += (
        f"; the spec still names {describe(p, p.target)}, which is not released again until "
        f"the spec changes or a retry is requested (kubectl modelrelease retry {p.release})"
    )
    p.status.phase = Phase.ROLLED_BACK
    p.progressing(ConditionStatus.FALSE, Reason.UNDONE, text)
    p.degraded(Reason.UNDONE, text)
    p.event(EventType.NORMAL, Reason.UNDONE, text)
