"""Replica plans: how many pods each revision gets for a share of traffic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.constants import CapacityMode
from modelrelease.core.capacity import ReplicaPlan, replica_plan, replicas_for_share, steady


@pytest.mark.parametrize(
    ("replicas", "percent", "expected"),
    [
        (4, 0, 0),
        (4, 1, 1),  # any share gets a pod
        (4, 25, 1),
        (4, 26, 2),  # rounds up: no pod carries more than its part
        (4, 50, 2),
        (4, 100, 4),
        (1, 5, 1),
        (10, 33, 4),
    ],
)
def test_replicas_for_share(replicas: int, percent: int, expected: int) -> None:
    assert replicas_for_share(replicas, percent) == expected


@pytest.mark.parametrize(
    ("mode", "replicas", "surge", "share", "expected"),
    [
        (CapacityMode.SURGE, 4, 1, 25, ReplicaPlan(champion=4, challenger=1)),
        (CapacityMode.SURGE, 4, 0, 100, ReplicaPlan(champion=4, challenger=4)),
        (CapacityMode.CONSERVE, 4, 1, 25, ReplicaPlan(champion=4, challenger=1)),
        (CapacityMode.CONSERVE, 4, 1, 50, ReplicaPlan(champion=3, challenger=2)),
        (CapacityMode.CONSERVE, 4, 0, 50, ReplicaPlan(champion=2, challenger=2)),
        (CapacityMode.CONSERVE, 4, 1, 100, ReplicaPlan(champion=1, challenger=4)),
        (CapacityMode.CONSERVE, 4, 0, 100, ReplicaPlan(champion=0, challenger=4)),
        # The champion keeps a pod while it still takes traffic, even without surge.
        (CapacityMode.CONSERVE, 1, 0, 10, ReplicaPlan(champion=1, challenger=1)),
    ],
)
def test_replica_plan(
    mode: CapacityMode, replicas: int, surge: int, share: int, expected: ReplicaPlan
) -> None:
    assert replica_plan(mode, replicas, surge, share) == expected


def test_steady_is_the_champion_alone() -> None:
    assert steady(3) == ReplicaPlan(champion=3, challenger=0)


@given(st.integers(2, 50), st.integers(0, 5), st.integers(0, 100))
def test_conserve_stays_within_surge_and_keeps_enough_pods(
    replicas: int, surge: int, share: int
) -> None:
    plan = replica_plan(CapacityMode.CONSERVE, replicas, surge, share)
    champion_share_pods = replicas_for_share(replicas, 100 - share)
    if plan.challenger + 1 <= replicas + surge:
        assert plan.total <= replicas + surge
    assert plan.challenger >= replicas_for_share(replicas, share)
    # With enough surge the champion keeps the pods its remaining share needs.
    if surge >= plan.challenger:
        assert plan.champion >= champion_share_pods


@given(st.integers(1, 50), st.integers(0, 100), st.integers(0, 100))
def test_more_share_never_means_fewer_challenger_pods(replicas: int, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert replicas_for_share(replicas, low) <= replicas_for_share(replicas, high)
