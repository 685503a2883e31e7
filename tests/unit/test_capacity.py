"""Replica plans: the capacity modes, mesh-less weights as replica ratios, and what
the champion keeps while the challenger's pods load; plus plan() without a router."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.constants import Action, CapacityMode, Phase
from modelrelease.core.capacity import (
    ReplicaPlan,
    replica_plan,
    replicas_for_weight,
    weight_plan,
    while_loading,
)
from modelrelease.core.observation import Observation, Problem
from modelrelease.routers.meshless import routes_from_ready

from tests.unit.test_plan import World, make_spec

REPLICAS = 4
MAX_SURGE = 1
STEPS = [{"weight": 25, "duration": "6s"}, {"weight": 50, "duration": "6s"}]


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [
        (4, 0, ReplicaPlan(4, 0)),
        (4, 25, ReplicaPlan(3, 1)),
        (4, 50, ReplicaPlan(2, 2)),
        (4, 100, ReplicaPlan(0, 4)),
        (4, 5, ReplicaPlan(3, 1)),  # any share gets a pod
        (4, 95, ReplicaPlan(1, 3)),  # below 100 the champion keeps one
        (1, 50, ReplicaPlan(0, 1)),
    ],
)
def test_without_a_router_the_weight_is_the_replica_ratio(
    replicas: int, weight: int, expected: ReplicaPlan
) -> None:
    assert weight_plan(replicas, weight) == expected


@given(st.integers(1, 64), st.integers(0, 100))
def test_a_weight_plan_never_adds_pods(replicas: int, weight: int) -> None:
    plan = weight_plan(replicas, weight)
    assert plan.total == replicas
    assert (plan.champion, plan.challenger) == replicas_for_weight(replicas, weight)


@pytest.mark.parametrize(
    ("mode", "plan", "champion_now", "expected"),
    [
        # surge: the champion keeps what it has until the challenger is Ready
        (CapacityMode.SURGE, ReplicaPlan(3, 1), 4, ReplicaPlan(4, 1)),
        (CapacityMode.SURGE, ReplicaPlan(4, 2), 4, ReplicaPlan(4, 2)),
        # conserve: only as much as replicas + maxSurge allows
        (CapacityMode.CONSERVE, ReplicaPlan(3, 1), 4, ReplicaPlan(4, 1)),
        (CapacityMode.CONSERVE, ReplicaPlan(2, 2), 3, ReplicaPlan(3, 2)),
        (CapacityMode.CONSERVE, ReplicaPlan(2, 2), 4, ReplicaPlan(3, 2)),
        (CapacityMode.CONSERVE, ReplicaPlan(0, 4), 2, ReplicaPlan(1, 4)),
        # never below the plan itself
        (CapacityMode.CONSERVE, ReplicaPlan(3, 1), 0, ReplicaPlan(3, 1)),
    ],
)
def test_while_loading_the_champion_gives_up_only_what_the_mode_needs(
    mode: CapacityMode, plan: ReplicaPlan, champion_now: int, expected: ReplicaPlan
) -> None:
    assert while_loading(mode, REPLICAS, MAX_SURGE, plan, champion_now) == expected


@given(st.integers(1, 16), st.integers(0, 4), st.integers(0, 100), st.integers(0, 20))
def test_while_loading_routed_plans_are_unchanged(
    replicas: int, max_surge: int, share: int, champion_now: int
) -> None:
    """With a router the capacity modes already say what may run next to the challenger."""
    for mode in CapacityMode:
        plan = replica_plan(mode, replicas, max_surge, share)
        loading = while_loading(mode, replicas, max_surge, plan, min(champion_now, replicas))
        assert loading == plan


# --- plan() without a router -------------------------------------------------------------


class MeshlessWorld(World):
    """Routes come from ready pods behind one Service, as ``MeshlessRouter`` reports them."""

    def observe(
        self, value: float | None, action: Action | None, problems: tuple[Problem, ...]
    ) -> Observation:
        observation = super().observe(value, action, problems)
        champion = self.status.champion.revision if self.status.champion else None
        challenger = self.status.challenger.revision if self.status.challenger else None
        ready = {revision: state.ready_replicas for revision, state in self.deployments.items()}
        return dataclasses.replace(
            observation, routes=routes_from_ready(ready, champion, challenger)
        )


def meshless_world(mode: str, ready_after: float = 0.0) -> MeshlessWorld:
    overrides: dict[str, Any] = {
        "traffic": {"none": {}},
        "capacity": {"mode": mode, "maxSurge": MAX_SURGE},
        "stages": [{"canary": {"steps": STEPS}}],
    }
    world = MeshlessWorld(make_spec(**overrides), ready_after=ready_after)
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    return world


def _sizes(world: World, champion: str, challenger: str) -> tuple[int, int]:
    old = world.deployments.get(champion)
    new = world.deployments.get(challenger)
    return (old.replicas if old else 0, new.replicas if new else 0)


@pytest.mark.parametrize("mode", ["conserve", "surge"])
def test_meshless_steps_scale_to_the_weight_and_promotion_completes(mode: str) -> None:
    world = meshless_world(mode, ready_after=3)
    champion = world.status.champion.revision if world.status.champion else ""
    challenger = world.release("2")
    by_weight: dict[int, set[tuple[int, int]]] = {}
    totals: list[int] = []

    def promoted(w: World) -> bool:
        stage = w.status.current_stage
        if stage is not None and stage.step_start_time is not None:
            by_weight.setdefault(stage.weight, set()).add(_sizes(w, champion, challenger))
        totals.append(sum(_sizes(w, champion, challenger)))
        return w.status.champion is not None and w.status.champion.revision == challenger

    world.run_until(promoted, limit=120)

    for step in STEPS:
        weight = int(step["weight"])
        expected = replicas_for_weight(REPLICAS, weight)
        assert by_weight[weight] == {expected}, f"at {weight}%: {by_weight[weight]}"
    if mode == "conserve":
        assert max(totals) <= REPLICAS + MAX_SURGE
    assert world.status.phase is Phase.SUCCEEDED
    assert _sizes(world, champion, challenger) == (0, REPLICAS)


def test_meshless_champion_keeps_serving_while_the_challenger_loads() -> None:
    world = meshless_world("conserve", ready_after=5)
    champion = world.status.champion.revision if world.status.champion else ""
    challenger = world.release("2")
    # The first step wants (3, 1); while the challenger's pod loads the champion keeps 4.
    assert world.status.current_stage is not None
    assert world.status.current_stage.step_start_time is None
    assert _sizes(world, champion, challenger) == (REPLICAS, 1)
    world.run_until(
        lambda w: (
            w.status.current_stage is not None
            and w.status.current_stage.step_start_time is not None
        )
    )
    assert _sizes(world, champion, challenger) == (3, 1)


@pytest.mark.parametrize(
    ("total", "weight", "expected"),
    [
        (4, 0, (4, 0)),
        (4, 5, (3, 1)),  # a non-zero weight gets a pod
        (4, 25, (3, 1)),
        (4, 50, (2, 2)),
        (4, 90, (1, 3)),  # below 100 keeps a stable pod
        (4, 100, (0, 4)),
        (10, 10, (9, 1)),
        (10, 35, (7, 3)),
        (1, 50, (0, 1)),
        (1, 0, (1, 0)),
        (0, 50, (0, 0)),
    ],
)
def test_replicas_for_weight(total: int, weight: int, expected: tuple[int, int]) -> None:
    assert replicas_for_weight(total, weight) == expected


@given(total=st.integers(0, 200), weight=st.integers(0, 100))
def test_replicas_for_weight_properties(total: int, weight: int) -> None:
    stable, canary = replicas_for_weight(total, weight)
    assert stable + canary == total
    assert stable >= 0
    assert canary >= 0
    if weight > 0 and total >= 1:
        assert canary >= 1
    if weight < 100 and total >= 2:
        assert stable >= 1
    if weight == 0:
        assert canary == 0
    if 0 < weight < 100 and total >= 2:
        # Within one pod of the exact split, unless a floor of one pod moved it.
        assert abs(canary - total * weight / 100) <= 1


@given(total=st.integers(0, 50), low=st.integers(0, 100), high=st.integers(0, 100))
def test_replicas_for_weight_is_monotonic(total: int, low: int, high: int) -> None:
    low, high = min(low, high), max(low, high)
    assert replicas_for_weight(total, low)[1] <= replicas_for_weight(total, high)[1]


@pytest.mark.parametrize("mode", ["conserve", "surge"])
def test_the_scale_status_counts_champion_and_challenger_in_every_pass(mode: str) -> None:
    """status.replicas / readyReplicas / selector: what `kubectl scale` and an
    autoscaler read through the scale subresource."""
    world = meshless_world(mode, ready_after=3)
    challenger = world.release("2")

    def promoted(w: World) -> bool:
        status = w.status
        revisions = [r for r in (status.champion, status.challenger) if r is not None]
        assert status.replicas == sum(r.replicas for r in revisions)
        assert status.ready_replicas == sum(r.ready_replicas for r in revisions)
        assert status.selector == "modelrelease.dev/release=chat"
        return w.status.champion is not None and w.status.champion.revision == challenger

    world.run_until(promoted, limit=120)
    assert world.status.replicas == REPLICAS
