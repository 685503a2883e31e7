"""The order of a pass's writes: every prefix of the steps serves traffic (invariant I1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from modelrelease.api.models import ModelReleaseStatus
from modelrelease.core.actuation import (
    DeleteDeployment,
    EnsureDeployment,
    PointService,
    Scale,
    Serving,
    SetRoutes,
    Step,
    steps_for,
)
from modelrelease.core.decision import Decision, Workloads
from modelrelease.core.manifests import CANARY, STABLE
from modelrelease.core.routes import Routes

REVISIONS = ("old", "champ", "chall")


@dataclass
class Cluster:
    """A model of what the steps change; pods scaled away stop being Ready at once."""

    selected: dict[str, str | None]
    ready: dict[str, int]
    replicas: dict[str, int]
    routes: Routes | None
    weighted: bool = True
    history: list[Step] = field(default_factory=list)

    def serving(self) -> Serving:
        return Serving(
            dict(self.selected), dict(self.ready), dict(self.replicas), self.routes, self.weighted
        )

    def apply(self, step: Step) -> None:
        self.history.append(step)
        match step:
            case EnsureDeployment(revision, replicas) | Scale(revision, replicas):
                self.replicas[revision] = replicas
                self.ready[revision] = min(self.ready.get(revision, 0), replicas)
            case PointService(role, revision):
                self.selected[role] = revision
            case SetRoutes(routes):
                self.routes = routes
            case DeleteDeployment(revision):
                self.replicas.pop(revision, None)
                self.ready[revision] = 0

    def stranded(self) -> list[str]:
        """Roles that get traffic while their revision has no Ready pod."""
        if not self.weighted or self.routes is None:
            return []
        carrying = {
            STABLE: self.routes.stable_weight > 0,
            CANARY: self.routes.canary_weight > 0 or self.routes.mirror_percent > 0,
        }
        return [
            role
            for role, carries in carrying.items()
            if carries and self.ready.get(self.selected.get(role) or "", 0) == 0
        ]


def decide(
    replicas: dict[str, int],
    stable: str,
    canary: str,
    routes: Routes,
    delete: tuple[str, ...] = (),
    apply: str | None = None,
) -> Decision:
    return Decision(
        status=ModelReleaseStatus(),
        workloads=Workloads(
            apply_revision=apply,
            replicas=replicas,
            delete=delete,
            stable_revision=stable,
            canary_revision=canary,
        ),
        routes=routes,
    )


def run(cluster: Cluster, decision: Decision) -> list[list[str]]:
    """Apply the steps one by one; what was stranded after each."""
    after = []
    for step in steps_for(decision, cluster.serving()):
        cluster.apply(step)
        after.append(cluster.stranded())
    return after


# --- the transitions the issue names -------------------------------------------------


def test_lost_promotion_status_does_not_point_stable_back_at_an_empty_champion() -> None:
    # The promotion finished (stable -> chall at 100%, champ scaled to 0) but its status
    # write was lost: the next pass, from the old status, asks for stable -> champ again.
    cluster = Cluster(
        selected={STABLE: "chall", CANARY: "chall"},
        ready={"champ": 0, "chall": 4},
        replicas={"champ": 0, "chall": 4},
        routes=Routes(100, 0, 0),
    )
    decision = decide({"champ": 1, "chall": 4}, "champ", "chall", Routes(0, 100, 0))
    assert all(not stranded for stranded in run(cluster, decision))
    assert cluster.routes == Routes(0, 100, 0)
    assert cluster.selected[STABLE] == "champ"  # moved only once it carried nothing


def test_supersede_at_fifty_percent_drains_the_canary_before_repointing_it() -> None:
    cluster = Cluster(
        selected={STABLE: "champ", CANARY: "chall"},
        ready={"champ": 2, "chall": 2},
        replicas={"champ": 2, "chall": 2},
        routes=Routes(50, 50, 0),
    )
    new = decide({"champ": 4, "new": 0}, "champ", "new", Routes(100, 0, 0), ("chall",), "new")
    steps = steps_for(new, cluster.serving())
    route = steps.index(SetRoutes(Routes(100, 0, 0)))
    repoint = steps.index(PointService(CANARY, "new"))
    assert route < repoint
    assert steps.index(DeleteDeployment("chall")) > route
    assert all(not stranded for stranded in run(cluster, new))


def test_rollback_keeps_traffic_on_the_challenger_until_the_champion_is_ready() -> None:
    # conserve with maxSurge 0 at 100%: the champion had no pod left.
    cluster = Cluster(
        selected={STABLE: "champ", CANARY: "chall"},
        ready={"champ": 0, "chall": 2},
        replicas={"champ": 0, "chall": 2},
        routes=Routes(0, 100, 0),
    )
    decision = decide({"champ": 2}, "champ", "champ", Routes(100, 0, 0), ("chall",), "champ")
    assert all(not stranded for stranded in run(cluster, decision))
    assert cluster.selected[CANARY] == "chall"
    assert "chall" in cluster.replicas  # not deleted while it is all that serves
    assert cluster.replicas["champ"] == 2  # capacity comes back in parallel
    # Once the champion is Ready the next pass completes the rollback.
    cluster.ready["champ"] = 2
    assert all(not stranded for stranded in run(cluster, decision))
    assert cluster.routes == Routes(100, 0, 0)
    assert cluster.selected == {STABLE: "champ", CANARY: "champ"}
    assert "chall" not in cluster.replicas


def test_no_mirror_to_a_challenger_without_ready_pods() -> None:
    cluster = Cluster(
        selected={STABLE: "champ", CANARY: "chall"},
        ready={"champ": 2, "chall": 0},
        replicas={"champ": 2, "chall": 1},
        routes=Routes(100, 0, 0),
    )
    run(cluster, decide({"champ": 2, "chall": 1}, "champ", "chall", Routes(100, 0, 50)))
    assert cluster.routes == Routes(100, 0, 0)


def test_at_rest_there_is_nothing_to_write_but_ensures() -> None:
    cluster = Cluster(
        selected={STABLE: "champ", CANARY: "champ"},
        ready={"champ": 2},
        replicas={"champ": 2},
        routes=Routes(100, 0, 0),
    )
    steps = steps_for(
        decide({"champ": 2}, "champ", "champ", Routes(100, 0, 0), apply="champ"),
        cluster.serving(),
    )
    assert all(isinstance(step, EnsureDeployment | PointService) for step in steps)


def test_scale_down_of_the_applied_revision_waits_for_the_route() -> None:
    cluster = Cluster(
        selected={STABLE: "champ", CANARY: "chall"},
        ready={"champ": 2, "chall": 2},
        replicas={"champ": 2, "chall": 2},
        routes=Routes(50, 50, 0),
    )
    steps = steps_for(
        decide({"champ": 2, "chall": 1}, "champ", "chall", Routes(75, 25, 0), apply="chall"),
        cluster.serving(),
    )
    assert steps[0] == EnsureDeployment("chall", 2)
    assert steps.index(SetRoutes(Routes(75, 25, 0))) < steps.index(Scale("chall", 1))


def test_without_a_router_the_last_ready_revision_is_kept() -> None:
    cluster = Cluster(
        selected={STABLE: "champ", CANARY: "chall"},
        ready={"champ": 0, "chall": 2},
        replicas={"champ": 0, "chall": 2},
        routes=Routes(0, 100, 0),
        weighted=False,
    )
    run(cluster, decide({"champ": 2}, "champ", "champ", Routes(100, 0, 0), ("chall",)))
    assert "chall" in cluster.replicas


# --- properties ---------------------------------------------------------------------

revision = st.sampled_from(REVISIONS)
weights = st.integers(0, 100).map(lambda w: (100 - w, w))


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    replicas = {r: draw(st.integers(0, 3)) for r in REVISIONS if draw(st.booleans())}
    ready = {r: draw(st.integers(0, n)) for r, n in replicas.items()}
    selected = {role: draw(st.one_of(st.none(), revision)) for role in (STABLE, CANARY)}
    stable_weight, canary_weight = draw(weights)
    routes = draw(
        st.one_of(st.none(), st.builds(Routes, st.just(stable_weight), st.just(canary_weight)))
    )
    if routes is not None:
        routes = Routes(routes.stable_weight, routes.canary_weight, draw(st.integers(0, 100)))
    return Cluster(selected, ready, replicas, routes, weighted=draw(st.booleans()))


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    stable = draw(revision)
    canary = draw(revision)
    wanted = {r: draw(st.integers(0, 4)) for r in {stable, canary}}
    others = [r for r in REVISIONS if r not in wanted]
    delete = tuple(r for r in others if draw(st.booleans()))
    stable_weight, canary_weight = draw(weights)
    routes = Routes(stable_weight, canary_weight, draw(st.integers(0, 100)))
    apply = draw(st.one_of(st.none(), st.sampled_from(sorted(wanted))))
    return decide(wanted, stable, canary, routes, delete, apply)


@settings(max_examples=400)
@given(clusters(), decisions())
def test_no_write_strands_traffic_that_was_served(cluster: Cluster, decision: Decision) -> None:
    """A crash or a failed write after any step leaves no served share without Ready pods."""
    if cluster.stranded():
        return  # nothing to keep: the property is about not making things worse
    for stranded in run(cluster, decision):
        assert stranded == [], cluster.history


@settings(max_examples=400)
@given(clusters(), decisions())
def test_reaches_the_plan_when_it_is_safe(cluster: Cluster, decision: Decision) -> None:
    """When every revision the plan routes to is Ready, one pass gets there."""
    workloads, routes = decision.workloads, decision.routes
    assert workloads is not None
    assert routes is not None
    if cluster.routes is None or not cluster.weighted:
        return
    wanted = {STABLE: workloads.stable_revision, CANARY: workloads.canary_revision}
    for role in wanted:
        revision_ = wanted[role] or ""
        if cluster.ready.get(revision_, 0) == 0 or workloads.replicas.get(revision_, 0) == 0:
            return
    run(cluster, decision)
    assert cluster.selected == wanted
    assert cluster.routes == routes
