"""The traffic router contract: one small Protocol, one file per implementation.

A router moves user traffic between the two Services the operator owns,
``<release>-stable`` (champion) and ``<release>-canary`` (challenger), and can
mirror a share of requests to the challenger. Routers are synchronous: they
do Kubernetes I/O and run in a worker thread of the reconcile pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Routes:
    """Traffic as a router sees it: weights in percent, mirror share in percent."""

    stable_weight: int
    canary_weight: int
    mirror_percent: int = 0


class RouterError(Exception):
    """The route cannot be read or changed; the message says why and what to do."""


class RouteNotFoundError(RouterError):
    """The route object named in the spec does not exist."""


class RuleNotFoundError(RouterError):
    """No rule of the route can be chosen for the operator's backends."""


class MirrorUnsupportedError(RouterError):
    """The installed route API cannot mirror the requested share of traffic."""


class Router(Protocol):
    @property
    def type(self) -> str:
        """A short name of the implementation, used in messages and status."""
        ...

    def set_routes(self, stable_weight: int, canary_weight: int, mirror_percent: int) -> None:
        """Make the route send these shares; a no-op when it already does."""
        ...

    def get_routes(self) -> Routes:
        """Read the shares the route sends now."""
        ...

    def finalize(self) -> None:
        """Give the route back: all traffic to stable, no canary backend, no mirror."""
        ...
