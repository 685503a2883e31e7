"""The order of the writes that carry out a decision, chosen so traffic is never stranded.

``plan`` says where the cluster should end up; this module says how to get
there from what the pass observed, one write at a time, so that a crash or a
failed write after ANY prefix of the steps leaves a cluster that serves
(invariant I1, "no outage by routing"):

- capacity first: Deployments are created or scaled up before anything else;
- a Service that carries traffic (weight, or the mirror for the canary) is
  only repointed at a revision with Ready pods; otherwise its traffic is first
  moved to the other Service (when that one has Ready pods), then it is
  repointed, and it gets traffic back on a later pass, once Ready;
- the route never gives weight or the mirror to a Service whose revision has
  no Ready pods: that share goes to the other Service instead;
- capacity last: a revision that still carries traffic after the route write
  is not scaled to zero or deleted (nor, without a router, the last revision
  with Ready pods).

So the plan may ask for something that cannot be done safely yet; the steps
do the safe part and the next pass, seeing the new state, does the rest.
Everything here is pure; ``kube.act`` executes the steps in order and stops
at the first failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from modelrelease.core.decision import Decision
from modelrelease.core.manifests import CANARY, STABLE
from modelrelease.core.routes import FULL, Routes


@dataclass(frozen=True)
class Serving:
    """What carries traffic now, as observed at the start of the pass."""

    selected: Mapping[str, str | None]  # role (stable, canary) -> revision its Service selects
    ready: Mapping[str, int]  # revision -> Ready replicas
    replicas: Mapping[str, int]  # revision -> spec.replicas of its Deployment
    routes: Routes | None  # the route's shares; None: unknown (could not be read)
    weighted: bool = True  # False without a router: the Services carry no weight


@dataclass(frozen=True)
class EnsureDeployment:
    """Create or repair the spec's Deployment; ``replicas`` never shrinks it here."""

    revision: str
    replicas: int


@dataclass(frozen=True)
class Scale:
    revision: str
    replicas: int


@dataclass(frozen=True)
class PointService:
    role: str
    revision: str


@dataclass(frozen=True)
class SetRoutes:
    routes: Routes


@dataclass(frozen=True)
class DeleteDeployment:
    revision: str


Step = EnsureDeployment | Scale | PointService | SetRoutes | DeleteDeployment


@dataclass
class _State:
    """The cluster as it will be after the steps chosen so far."""

    selected: dict[str, str | None]
    routes: Routes | None
    ready: Mapping[str, int]
    weighted: bool
    steps: list[Step] = field(default_factory=list)

    def serves(self, revision: str | None) -> bool:
        return revision is not None and self.ready.get(revision, 0) > 0

    def carries(self, role: str) -> bool:
        """Whether the Service of ``role`` gets user or mirrored traffic."""
        if not self.weighted:
            return False
        if self.routes is None:
            return True  # unknown: assume it does
        if role == STABLE:
            return self.routes.stable_weight > 0
        return self.routes.canary_weight > 0 or self.routes.mirror_percent > 0

    def route(self, routes: Routes) -> None:
        if routes != self.routes:
            self.steps.append(SetRoutes(routes))
            self.routes = routes

    def point(self, role: str, revision: str) -> None:
        self.steps.append(PointService(role, revision))
        self.selected[role] = revision


def steps_for(decision: Decision, serving: Serving) -> tuple[Step, ...]:
    """The writes, in order, that move the cluster toward ``decision`` safely."""
    state = _State(dict(serving.selected), serving.routes, serving.ready, serving.weighted)
    workloads = decision.workloads
    if workloads is not None:
        _grow(state, workloads.apply_revision, workloads.replicas, serving.replicas)
        wanted = {STABLE: workloads.stable_revision, CANARY: workloads.canary_revision}
        for role, revision in wanted.items():
            if revision is None:
                continue
            if state.selected.get(role) == revision:
                state.steps.append(PointService(role, revision))  # repairs drift, if any
            else:
                _repoint(state, role, revision)
    if decision.routes is not None and serving.weighted:
        _final_route(state, decision.routes)
    elif decision.routes is not None:
        # No weights (mesh-less): the router only makes sure its one Service exists.
        state.steps.append(SetRoutes(decision.routes))
    if workloads is not None:
        _shrink(state, workloads.replicas, workloads.delete, serving.replicas)
    return tuple(state.steps)


def _grow(
    state: _State, apply_revision: str | None, wanted: Mapping[str, int], current: Mapping[str, int]
) -> None:
    for revision, replicas in wanted.items():
        now = current.get(revision)
        if revision == apply_revision:
            # Built (or repaired) at no less than its current size: shrinking waits for the end.
            state.steps.append(EnsureDeployment(revision, max(replicas, now or 0)))
        elif now is not None and replicas > now:
            state.steps.append(Scale(revision, replicas))


def _repoint(state: _State, role: str, revision: str) -> None:
    if state.serves(revision) or not state.carries(role):
        state.point(role, revision)
        return
    # The Service carries traffic and the revision has no Ready pod yet: move the
    # traffic to the other Service first, when that one can serve it.
    other = CANARY if role == STABLE else STABLE
    if not state.serves(state.selected.get(other)):
        return  # nowhere safe to put it: leave the Service as it is for now
    state.route(Routes(0, FULL, 0) if role == STABLE else Routes(FULL, 0, 0))
    state.point(role, revision)


def _final_route(state: _State, wanted: Routes) -> None:
    stable_ok = state.serves(state.selected.get(STABLE))
    canary_ok = state.serves(state.selected.get(CANARY))
    if stable_ok and canary_ok:
        state.route(wanted)
    elif stable_ok:
        state.route(Routes(FULL, 0, 0))
    elif canary_ok:
        state.route(Routes(0, FULL, 0))
    # Neither Service has a Ready pod (a first revision still loading): the route
    # waits, so it never sends users to a backend that cannot answer.


def _shrink(
    state: _State,
    wanted: Mapping[str, int],
    delete: tuple[str, ...],
    current: Mapping[str, int],
) -> None:
    for revision, replicas in wanted.items():
        now = current.get(revision)
        if now is None or replicas >= now:
            continue
        if replicas == 0 and _still_needed(state, revision):
            continue
        state.steps.append(Scale(revision, replicas))
    for revision in delete:
        if not _still_needed(state, revision):
            state.steps.append(DeleteDeployment(revision))


def _still_needed(state: _State, revision: str) -> bool:
    """Whether taking all pods of ``revision`` away would leave traffic with nowhere to go."""
    if not state.weighted:
        others = [r for r, ready in state.ready.items() if r != revision and ready > 0]
        return state.serves(revision) and not others
    return any(
        state.selected.get(role) == revision and state.carries(role) for role in (STABLE, CANARY)
    )
