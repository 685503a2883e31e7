"""The traffic router contract: one small Protocol, one file per implementation.

A router moves user traffic between the two Services the operator owns,
``<release>-stable`` (champion) and ``<release>-canary`` (challenger), and can
mirror a share of requests to the challenger. Routers are synchronous: they
do Kubernetes I/O and run in a worker thread of the reconcile pass.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol

from modelrelease.api.constants import Reason
from modelrelease.core.observation import Problem
from modelrelease.core.routes import Routes
from modelrelease.kube.errors import WriteConflictError

__all__ = [
    "MirrorUnsupportedError",
    "RouteNotFoundError",
    "Router",
    "RouterError",
    "Routes",
    "router_problem",
    "write_with_retries",
]


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


def router_problem(error: RouterError) -> Problem:
    """The one mapping of router errors to problems in status."""
    if isinstance(error, MirrorUnsupportedError):
        return Problem(Reason.MIRROR_NOT_SUPPORTED, str(error))
    if isinstance(error, RouteNotFoundError):
        return Problem(Reason.ROUTE_NOT_FOUND, str(error))
    if isinstance(error, RuleNotFoundError):
        return Problem(Reason.ROUTE_RULE_NOT_FOUND, str(error))
    return Problem(Reason.RECONCILE_ERROR, str(error))


WRITE_ATTEMPTS = 4
RETRY_BASE_SECONDS = 0.1


def write_with_retries(write: Callable[[], None], attempts: int = WRITE_ATTEMPTS) -> None:
    """Run a read-modify-replace ``write`` again when the object changed meanwhile.

    Each retry waits a little longer, with jitter, so two writers (a GitOps
    sync, another controller) do not collide again in lockstep; the last
    conflict is raised for the pass to report and back off on.
    """
    for attempt in range(attempts):
        try:
            write()
            return
        except WriteConflictError:
            if attempt == attempts - 1:
                raise
            time.sleep(RETRY_BASE_SECONDS * 2**attempt * (0.5 + random.random() / 2))
