"""Traffic shares as plain data: what a router is asked to set and reports back."""

from __future__ import annotations

from dataclasses import dataclass

FULL = 100
"""All of the traffic, in percent."""


@dataclass(frozen=True)
class Routes:
    """Traffic as a router sees it: weights in percent, mirror share in percent."""

    stable_weight: int
    canary_weight: int
    mirror_percent: int = 0


def stable_routes() -> Routes:
    """Everything to the champion: no canary share, no mirror."""
    return Routes(stable_weight=FULL, canary_weight=0, mirror_percent=0)
