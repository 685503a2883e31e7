"""When the next pass of a release is useful: ``Decision.requeue_after`` (pure).

A pass runs when the release or an object it watches changes. Between such
changes only time makes something due, and each concern below says when:
the next SLO check and comparison read, the sequential guard's next read
(every ``analysis.guard.period`` while it runs), the webhook's next call, the end of
a step or of ``maxDuration``, ``analysis.onError.after``, the progress
deadline and an unschedulable pod's grace. The earliest counts. Waiting for
an approval, for pods to become Ready or for GPUs is not on the clock (a
change wakes the release), nor is a paused or finished release: those give
None, and only a change or the slow resync runs the next pass.

Every moment is read from the status this pass decided, with the same
functions ``needs`` uses, so a pass that runs early (an unrelated change)
finds nothing due and decides the same status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from modelrelease.api.constants import Phase
from modelrelease.api.durations import parse_duration
from modelrelease.core.capacity_guard import pod_grace_ends
from modelrelease.core.comparison import next_comparison_at
from modelrelease.core.context import Pass
from modelrelease.core.gate import gate_seed, next_call_at, webhook_stage
from modelrelease.core.guard import guarded, next_guard_at
from modelrelease.core.needs import quiet
from modelrelease.core.slos import next_check_at
from modelrelease.core.stages import stage_due

MINIMUM_DELAY = 0.05
"""Seconds: what "due now" (or overdue) becomes; never zero or negative."""
DEFAULT_INTERVAL = 30.0  # analysis.interval's default, for a comparison without analysis


def requeue_after(p: Pass) -> float | None:
    """Seconds from ``p.now`` until the next pass is useful without any change; None:
    nothing is due on the clock."""
    return earliest(p.now, _moments(p))


def earliest(now: datetime, moments: Iterable[datetime | None]) -> float | None:
    """Seconds until the first of ``moments`` (None ignored), at least :data:`MINIMUM_DELAY`."""
    first = min((moment for moment in moments if moment is not None), default=None)
    if first is None:
        return None
    return max((first - now).total_seconds(), MINIMUM_DELAY)


def _moments(p: Pass) -> list[datetime | None]:
    moments = _detection(p)
    if p.observation.problems or quiet(p.spec, p.status):
        # A problem, a pause or the end holds everything but failure detection (I4, I6).
        return moments
    if p.next_stage_at_once:
        moments.append(p.now)
    # The guard's reads, while some SLO of this pass is guarded (its template has counters).
    guard = next_guard_at(p.spec, p.status, p.now) if guarded(p.spec, p.observation.slos) else None
    return [*moments, _check(p), _comparison(p), _gate(p), stage_due(p), guard]


def _detection(p: Pass) -> list[datetime | None]:
    """The progress deadline and pod grace, which run whatever holds the release."""
    if p.challenger is None or p.status.phase is Phase.FAILED:
        return []  # Failed has stopped already: a person decides
    deadline = p.progress_deadline
    return [deadline if deadline is not None and deadline > p.now else None, pod_grace_ends(p)]


def _check(p: Pass) -> datetime | None:
    moment = next_check_at(p.spec.analysis, p.status)
    return _read(p, moment, p.observation.slo_results is not None, p.interval_seconds)


def _comparison(p: Pass) -> datetime | None:
    moment = next_comparison_at(p.spec, p.status)
    interval = p.interval_seconds if p.spec.analysis else DEFAULT_INTERVAL
    return _read(p, moment, p.observation.comparison is not None, interval)


def _gate(p: Pass) -> datetime | None:
    stage = webhook_stage(p.spec, p.status)
    if stage is None:
        return None
    moment = next_call_at(p.spec, p.status, gate_seed(p.observation.owner.namespace, p.release))
    return _read(p, moment, p.observation.gate_result is not None, parse_duration(stage.interval))


def _read(p: Pass, moment: datetime | None, done: bool, period: float) -> datetime | None:
    """A read (or call) due at ``moment``. When it has come but this pass did not make
    it, at once; when this pass made it and it is still due (an answer missing), one
    ``period`` later rather than in a busy loop."""
    if moment is None or moment > p.now:
        return moment
    return p.now + timedelta(seconds=period) if done else p.now
