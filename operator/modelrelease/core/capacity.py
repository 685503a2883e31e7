"""How many replicas each revision runs, for a share of traffic and a capacity mode.

``surge`` adds the challenger next to a full champion. ``conserve`` keeps the
total within ``replicas + maxSurge``: the champion gives up pods as the
challenger takes traffic, and gets them back on rollback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelrelease.api.constants import CapacityMode
from modelrelease.core.routes import FULL


@dataclass(frozen=True)
class ReplicaPlan:
    champion: int
    challenger: int

    @property
    def total(self) -> int:
        return self.champion + self.challenger


def replicas_for_share(replicas: int, percent: int) -> int:
    """Pods needed to serve ``percent`` of the traffic ``replicas`` pods serve at 100%.

    Any positive share gets at least one pod; shares round up so no pod is
    asked to carry more than its part.
    """
    if percent <= 0:
        return 0
    return min(replicas, max(1, math.ceil(replicas * percent / FULL)))


def replica_plan(
    mode: CapacityMode, replicas: int, max_surge: int, challenger_share: int
) -> ReplicaPlan:
    """Replicas of champion and challenger while the challenger gets ``challenger_share`` %.

    The share is the live traffic weight, or the mirrored percent in shadow
    (mirrored requests need serving too).
    """
    challenger = replicas_for_share(replicas, challenger_share)
    if mode is CapacityMode.SURGE:
        return ReplicaPlan(champion=replicas, challenger=challenger)
    champion = max(0, min(replicas, replicas + max_surge - challenger))
    # The champion keeps one pod while it still takes traffic, even at maxSurge 0.
    if challenger_share < FULL:
        champion = max(champion, 1)
    return ReplicaPlan(champion=champion, challenger=challenger)


def weight_plan(replicas: int, challenger_weight: int) -> ReplicaPlan:
    """Without a router (``traffic.none``) the weight *is* the ready replica ratio.

    Both revisions sit behind one Service, so ``replicas`` pods are split
    between them and the capacity mode does not add pods: a surge would
    change the ratio, and so the weight.
    """
    champion, challenger = replicas_for_weight(replicas, challenger_weight)
    return ReplicaPlan(champion=champion, challenger=challenger)


def while_loading(
    mode: CapacityMode, replicas: int, max_surge: int, plan: ReplicaPlan, champion_now: int
) -> ReplicaPlan:
    """``plan`` while the challenger's new pods are not Ready yet.

    The champion gives up only the pods the capacity mode needs for the
    challenger to start (conserve: stay within ``replicas + maxSurge``; surge:
    none), so traffic is not served by fewer pods while a model loads.
    """
    limit = replicas if mode is CapacityMode.SURGE else replicas + max_surge - plan.challenger
    champion = max(plan.champion, min(champion_now, limit))
    return ReplicaPlan(champion=champion, challenger=plan.challenger)


def steady(replicas: int) -> ReplicaPlan:
    """No challenger: the champion at full size."""
    return ReplicaPlan(champion=replicas, challenger=0)


def replicas_for_weight(total_replicas: int, canary_weight: int) -> tuple[int, int]:
    """``(stable, canary)`` replicas that give the canary ``canary_weight`` % of requests.

    Behind one Service, a revision's share of requests is its share of ready
    pods, so weights come in steps of ``100 / total_replicas``. A non-zero
    weight gets at least one canary pod; a weight below 100 keeps at least one
    stable pod when there are two or more in all. Halves round down, towards
    less exposure of the challenger.
    """
    total = max(0, total_replicas)
    if canary_weight <= 0 or total == 0:
        return total, 0
    if canary_weight >= FULL:
        return 0, total
    canary = max(1, round_half_down(total * canary_weight, FULL))
    if total >= 2:
        canary = min(canary, total - 1)
    return total - canary, canary


def round_half_down(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` to the nearest integer, ties down (exact, no floats)."""
    return (2 * numerator + denominator - 1) // (2 * denominator)
