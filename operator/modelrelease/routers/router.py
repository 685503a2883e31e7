"""The traffic router contract: one small Protocol, one file per implementation.

A router moves user traffic between the two Services the operator owns,
``<release>-stable`` (champion) and ``<release>-canary`` (challenger), and can
mirror a share of requests to the challenger. Routers are synchronous: they
do Kubernetes I/O and run in a worker thread of the reconcile pass.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from modelrelease.api.constants import Reason
from modelrelease.core.observation import Problem
from modelrelease.core.routes import Routes
from modelrelease.kube.errors import WriteConflictError

__all__ = [
    "ConvergingRouter",
    "MirrorUnsupportedError",
    "RouteNotFoundError",
    "Router",
    "RouterError",
    "Routes",
    "json_patch",
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


@runtime_checkable
class ConvergingRouter(Router, Protocol):
    """A router that owns its route object and writes it back when someone changed it."""

    def converge(self) -> None:
        """Write the route back as built from the spec if it drifted; weights are kept."""
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


def json_patch(path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The narrowest write that turns the object at ``path`` from ``old`` into ``new``.

    RFC 6902 operations: first a ``test`` that the object is still ``old`` (so a
    concurrent change of this rule fails the patch, HTTP 422, and the write is
    retried from a fresh read), then one ``add``, ``replace`` or ``remove`` per
    key that differs. Nothing outside ``path`` is sent, so nothing else in the
    object can be overwritten from a stale copy, and a write by someone else
    elsewhere in the object (another rule, metadata, the gateway's status) does
    not make this one fail.
    """
    operations: list[dict[str, Any]] = [{"op": "test", "path": path, "value": old}]
    for key in sorted(set(old) | set(new)):
        where = f"{path}/{_pointer_token(key)}"
        if key not in new:
            operations.append({"op": "remove", "path": where})
        elif key not in old:
            operations.append({"op": "add", "path": where, "value": new[key]})
        elif old[key] != new[key]:
            operations.append({"op": "replace", "path": where, "value": new[key]})
    return operations


def _pointer_token(key: str) -> str:
    """A key as one JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
