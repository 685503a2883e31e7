"""The state of one planning pass: inputs, the status being built, and what to do.

The functions of ``plan``, ``transitions`` and ``stages`` are small steps
over this one object, which starts from the observed status and ends as a
:class:`~modelrelease.core.decision.Decision`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelrelease.api.constants import (
    LABEL_RELEASE,
    MAX_HISTORY,
    Action,
    ConditionStatus,
    ConditionType,
    Outcome,
    Reason,
)
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import (
    HistoryEntry,
    ModelReleaseSpec,
    ModelReleaseStatus,
    ModelSpec,
    RevisionStatus,
    stage_names,
)
from modelrelease.core.capacity import ReplicaPlan
from modelrelease.core.conditions import set_condition
from modelrelease.core.decision import Decision, Event, EventType, Workloads
from modelrelease.core.observation import DeploymentState, Observation
from modelrelease.core.revision import revision_of
from modelrelease.core.routes import FULL, Routes, stable_routes

__all__ = ["FULL", "Pass", "stable_routes"]


@dataclass
class Pass:
    spec: ModelReleaseSpec
    observation: Observation
    now: datetime
    target: str  # the spec's revision
    status: ModelReleaseStatus  # a copy, changed in place by the steps
    events: list[Event] = field(default_factory=list)
    workloads: Workloads | None = None
    routes: Routes | None = None
    consume_action: bool = False
    action: Action | None = None  # the imperative action accepted this pass
    waiting: bool = False  # the challenger is short of the Ready pods this pass needs
    # A stage passed and the next one starts in the next pass, with no change or time needed.
    next_stage_at_once: bool = False

    @classmethod
    def start(
        cls,
        spec: ModelReleaseSpec,
        status: ModelReleaseStatus,
        observation: Observation,
        now: datetime,
    ) -> Pass:
        copy = status.model_copy(deep=True)
        copy.observed_generation = observation.generation
        return cls(spec, observation, now, revision_of(spec.model, spec.template), copy)

    def decision(self, requeue_after: float | None) -> Decision:
        self._scale_status()
        return Decision(
            status=self.status,
            workloads=self.workloads,
            routes=self.routes,
            events=tuple(self.events),
            consume_action=self.consume_action,
            requeue_after=requeue_after,
        )

    def _scale_status(self) -> None:
        """What the scale subresource reports: both revisions' pods together."""
        revisions = [r for r in (self.status.champion, self.status.challenger) if r is not None]
        self.status.replicas = sum(r.replicas for r in revisions)
        self.status.ready_replicas = sum(r.ready_replicas for r in revisions)
        self.status.selector = f"{LABEL_RELEASE}={self.observation.owner.name}"

    # --- reading --------------------------------------------------------------

    @property
    def champion(self) -> str | None:
        return self.status.champion.revision if self.status.champion else None

    @property
    def challenger(self) -> str | None:
        return self.status.challenger.revision if self.status.challenger else None

    @property
    def release(self) -> str:
        return self.observation.owner.name

    def deployment(self, revision: str | None) -> DeploymentState | None:
        if revision is None:
            return None
        return self.observation.deployments.get(revision)

    def ready_replicas(self, revision: str | None) -> int:
        state = self.deployment(revision)
        return state.ready_replicas if state else 0

    def model_of(self, revision: str | None) -> ModelSpec | None:
        """The model a revision serves: the spec's, or what its Deployment says."""
        if revision == self.target:
            return self.spec.model
        state = self.deployment(revision)
        return state.model if state else None

    def seconds_since(self, moment: datetime | None) -> float:
        return 0.0 if moment is None else (self.now - moment).total_seconds()

    @property
    def progress_deadline(self) -> datetime | None:
        """When the challenger's wait for Ready pods runs out; None: it is not waiting."""
        since = self.status.challenger_waiting_since
        if since is None:
            return None
        return since + timedelta(seconds=parse_duration(self.spec.progress_deadline))

    @property
    def stage_names(self) -> list[str]:
        """The identity of each stage of the spec, in order."""
        return stage_names(self.spec.stages)

    def stage_position(self, name: str) -> int | None:
        """Where the stage called ``name`` is in the spec now; None when it is gone."""
        names = self.stage_names
        return names.index(name) if name in names else None

    def next_stage(self) -> int | None:
        """The first stage of the spec the challenger has not passed; None: all passed."""
        passed = set(self.status.stages_passed)
        return next((i for i, name in enumerate(self.stage_names) if name not in passed), None)

    @property
    def interval_seconds(self) -> float:
        analysis = self.spec.analysis
        return parse_duration(analysis.interval) if analysis else 0.0

    # --- writing --------------------------------------------------------------

    def event(self, type_: EventType, reason: Reason, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def condition(
        self, type_: ConditionType, status: ConditionStatus, reason: Reason, message: str
    ) -> None:
        self.status.conditions = set_condition(
            self.status.conditions,
            type_,
            status,
            reason,
            message,
            self.now.replace(microsecond=0),  # conditions keep whole seconds, as metav1 does
            self.observation.generation,
        )

    def progressing(self, status: ConditionStatus, reason: Reason, message: str) -> None:
        self.condition(ConditionType.PROGRESSING, status, reason, message)
        self.status.message = message

    def healthy(self) -> None:
        self.condition(ConditionType.DEGRADED, ConditionStatus.FALSE, Reason.STABLE, "")

    def degraded(self, reason: Reason, message: str) -> None:
        self.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, reason, message)

    def record_history(self, revision: str, outcome: Outcome, reason: Reason, message: str) -> None:
        model = self.model_of(revision)
        entry = HistoryEntry(
            revision=revision,
            model_name=model.name if model else "unknown",
            model_version=model.version if model else "unknown",
            model_uri=model.uri if model else None,
            model_metadata=dict(model.metadata) if model else {},
            outcome=outcome,
            reason=reason,
            message=message,
            time=self.now,
        )
        self.status.history = [*self.status.history, entry][-MAX_HISTORY:]

    def revision_status(self, revision: str, replicas: int) -> RevisionStatus:
        model = self.model_of(revision)
        return RevisionStatus(
            revision=revision,
            model_name=model.name if model else None,
            model_version=model.version if model else None,
            replicas=replicas,
            ready_replicas=self.ready_replicas(revision),
        )

    def run(self, replicas: ReplicaPlan, routes: Routes) -> None:
        """Ask for these replicas of champion and challenger, and this traffic.

        Older revisions are kept at zero up to ``revisionHistoryLimit`` (for a
        quick return to a previous version) and deleted beyond it.
        """
        champion, challenger = self.champion, self.challenger
        assert champion is not None
        wanted = {champion: replicas.champion}
        if challenger is not None:
            wanted[challenger] = replicas.challenger
        kept, deleted = self._old_revisions(keep=set(wanted))
        self.workloads = Workloads(
            apply_revision=self.target if self.target in wanted else None,
            replicas={**{revision: 0 for revision in kept}, **wanted},
            delete=deleted,
            stable_revision=champion,
            canary_revision=challenger or champion,
        )
        self.routes = routes
        self.status.champion = self.revision_status(champion, replicas.champion)
        if challenger is not None:
            self.status.challenger = self.revision_status(challenger, replicas.challenger)

    def _old_revisions(self, keep: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Old revisions to keep at zero, and those to delete.

        Only former champions are worth keeping (newest first, up to
        ``revisionHistoryLimit``); rolled-back or superseded challengers go.
        """
        promoted = [
            entry.revision
            for entry in reversed(self.status.history)
            if entry.outcome is Outcome.PROMOTED
        ]
        former = [
            revision
            for revision in dict.fromkeys(promoted)
            if revision in self.observation.deployments and revision not in keep
        ]
        kept = tuple(former[: self.spec.revision_history_limit])
        deleted = tuple(
            sorted(
                revision
                for revision in self.observation.deployments
                if revision not in keep and revision not in kept
            )
        )
        return kept, deleted
