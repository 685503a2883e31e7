"""When a release's next pass runs: on a change, when something is due, or at a slow resync.

Each release has one loop (a kopf daemon, see ``handlers``) that sleeps until
the first of:
- a trigger: the release itself changed (kopf's event), or a watched object
  it reads did (``kube.views`` reports a ``Change``; ``Routing`` says whose);
- the due time ``plan()`` gives (``Decision.requeue_after``): the next
  analysis interval, the end of a step, a webhook retry, a deadline; while a
  release is in flight and ``plan()`` names none, every ``busy_interval``;
- the jittered slow resync (``resync``, minutes), a safety net for anything
  missed;
- after a failed pass, its backoff (``backoff.py``) instead of all of these.
At most ``worker_limit`` passes run at once; the passes waiting for a slot and those
running are counted for the operator's metrics. A free slot goes to the most urgent
waiter (``Priority``): a pass whose due time came (an SLO check, a step end, a deadline)
or that carries a user's action goes before passes woken by a change, and those before
resyncs, polls and retries. In a wave (a new version for hundreds of releases at once)
the changes queue, and a check due meanwhile would otherwise wait behind all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

from modelrelease.api.constants import ConditionType, Reason, TemplateKind
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.conditions import find
from modelrelease.core.slos import template_keys
from modelrelease.kube.views import (
    AUTOSCALERS,
    CLUSTER_SLO_TEMPLATES,
    DEPLOYMENTS,
    GPU,
    HTTP_ROUTES,
    PODS,
    SERVICES,
    SLO_TEMPLATES,
    VIRTUAL_SERVICES,
    Change,
)

Key = tuple[str, str]  # (namespace, name) of a release
Watched = tuple[str, str, str]  # (kind, namespace, name) of an object a release reads

RESYNC_JITTER = 0.2
"""A resync waits between 80% and 100% of the interval, so releases do not resync in step."""
# Kinds whose Change names its release: owned objects by their label, and HPAs by the
# release owning the Deployment they scale (``kube.views``).
BY_RELEASE_KINDS = frozenset({DEPLOYMENTS.kind, PODS.kind, SERVICES.kind, AUTOSCALERS.kind})

logger = logging.getLogger(__name__)


# --- which release wakes on which change (pure) -----------------------------------------------


@dataclass(frozen=True)
class Interests:
    """What a release reads besides the objects labelled with its name."""

    objects: frozenset[Watched] = frozenset()
    gpus: bool = False  # waiting for GPUs to free up


def interests_of(
    namespace: str, release: str, spec: ModelReleaseSpec, status: ModelReleaseStatus
) -> Interests:
    objects: set[Watched] = set()
    gateway_api = spec.traffic.gateway_api
    if gateway_api is not None:
        # An owned route is named after the release (``routers.gatewayapi_owned``).
        route = gateway_api.http_route if gateway_api.http_route is not None else release
        objects.add((HTTP_ROUTES.kind, namespace, route))
    istio = spec.traffic.istio
    if istio is not None:
        service = istio.virtual_service if istio.virtual_service is not None else release
        objects.add((VIRTUAL_SERVICES, namespace, service))
    for kind, name in template_keys(spec.analysis):
        if kind is TemplateKind.SLO_TEMPLATE:
            objects.add((SLO_TEMPLATES.kind, namespace, name))
        else:
            objects.add((CLUSTER_SLO_TEMPLATES.kind, "", name))
    return Interests(frozenset(objects), waiting_for_gpus(status))


def waiting_for_gpus(status: ModelReleaseStatus) -> bool:
    progressing = find(status.conditions, ConditionType.PROGRESSING)
    return progressing is not None and progressing.reason == Reason.INSUFFICIENT_GPU


@dataclass
class Routing:
    """Releases by what they read; a change is routed to the releases it concerns."""

    _interests: dict[Key, Interests] = field(default_factory=dict)
    _readers: dict[Watched, set[Key]] = field(default_factory=dict)
    _waiting_for_gpus: set[Key] = field(default_factory=set)

    def remember(self, key: Key, interests: Interests) -> None:
        self.forget(key)
        self._interests[key] = interests
        for watched in interests.objects:
            self._readers.setdefault(watched, set()).add(key)
        if interests.gpus:
            self._waiting_for_gpus.add(key)

    def forget(self, key: Key) -> None:
        old = self._interests.pop(key, None)
        if old is None:
            return
        for watched in old.objects:
            readers = self._readers.get(watched, set())
            readers.discard(key)
            if not readers:
                self._readers.pop(watched, None)
        self._waiting_for_gpus.discard(key)

    def releases(self, change: Change) -> set[Key]:
        if change.kind == GPU:
            return set(self._waiting_for_gpus)
        if change.kind in BY_RELEASE_KINDS:
            return set() if change.release is None else {(change.namespace, change.release)}
        return set(self._readers.get((change.kind, change.namespace, change.name), set()))


# --- when the next pass is due (pure) ----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a pass says about the next one."""

    requeue_after: float | None = None  # plan() says something is due then
    in_flight: bool = False  # a challenger is (or is about to be) on its way
    retry_in: float | None = None  # the pass failed or is backing off: retry then
    interests: Interests | None = None  # None: unknown this pass (keep the last ones)


def next_wait(outcome: Outcome, busy_interval: float, resync: float, jitter: float) -> float:
    """Seconds until the next pass if nothing changes; ``jitter`` in [0, 1)."""
    if outcome.retry_in is not None:
        return outcome.retry_in
    wait = resync * (1.0 - RESYNC_JITTER * jitter)
    if outcome.requeue_after is not None:
        wait = min(wait, outcome.requeue_after)
    elif outcome.in_flight:
        wait = min(wait, busy_interval)
    return max(wait, 0.0)


class Priority(IntEnum):
    """Which waiting pass a free slot goes to first (lower first; FIFO within one)."""

    DUE = 0  # plan() said something is due now, or the release carries a user's action
    CHANGE = 1  # the release or something it reads changed; a release's first pass
    ROUTINE = 2  # a resync, a poll while in flight, a retry after a failed pass


def timed_priority(outcome: Outcome, wait: float) -> Priority:
    """The priority of a pass that comes because ``wait`` (``next_wait``) ran out."""
    due = outcome.requeue_after
    if outcome.retry_in is None and due is not None and wait >= max(due, 0.0):
        return Priority.DUE
    return Priority.ROUTINE


class Slots:
    """``limit`` slots; a freed one goes to the waiter of the lowest ``Priority``, the
    earliest among equals. One event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the worker limit must be at least 1, got {limit}")
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: Priority, due_at: float | None = None) -> None:
        """A slot; a waiter queued with a lower priority moves up to ``DUE`` at ``due_at``
        (the event loop's clock), when what the pass has to do falls due as it waits."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._order), granted))
        upgrade = None
        if due_at is not None and priority > Priority.DUE:
            # A second entry for the same waiter; whichever is reached first grants it.
            upgrade = loop.call_at(due_at, self._enqueue, Priority.DUE, granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # handed over just as it was cancelled: pass it on
            else:
                granted.cancel()  # skipped by release()
            raise
        finally:
            if upgrade is not None:
                upgrade.cancel()

    def has_due_waiter(self) -> bool:
        return any(p == Priority.DUE and not g.done() for p, _, g in self._waiters)

    def _enqueue(self, priority: Priority, granted: asyncio.Future[None]) -> None:
        if not granted.done():
            heapq.heappush(self._waiters, (int(priority), next(self._order), granted))

    def release(self) -> None:
        while self._waiters:
            _, _, granted = heapq.heappop(self._waiters)
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1


# --- the loops ---------------------------------------------------------------------------


class Scheduler:
    """The triggers, the routing and the bound on concurrent passes (one event loop)."""

    def __init__(self, worker_limit: int, busy_interval: float, resync: float) -> None:
        self.routing = Routing()
        self._slots = Slots(worker_limit)
        self._triggers: dict[Key, asyncio.Event] = {}
        self._urgent: set[Key] = set()  # woken for a user's action
        self._busy_interval = busy_interval
        self._resync = resync
        self.running = 0  # passes running now (a gauge for tests and telemetry)
        self.waiting = 0  # passes due but waiting for a slot (the queue's depth)

    def wake(self, key: Key, urgent: bool = False) -> None:
        """Run a pass of ``key`` soon; ``urgent`` (a user's action) puts it first in line."""
        trigger = self._triggers.get(key)
        if trigger is not None:
            trigger.set()
            if urgent:
                self._urgent.add(key)

    def wake_all(self) -> None:
        """Every release, e.g. when this replica starts leading."""
        for trigger in self._triggers.values():
            trigger.set()

    def changed(self, change: Change) -> None:
        for key in self.routing.releases(change):
            self.wake(key)

    @contextlib.asynccontextmanager
    async def _slot(self, priority: Priority, due_at: float | None) -> AsyncIterator[None]:
        """One of the ``worker_limit`` slots; ``waiting`` counts the passes queued for one."""
        self.waiting += 1
        try:
            await self._slots.acquire(priority, due_at)
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

    async def serve(
        self,
        key: Key,
        run_pass: Callable[[], Awaitable[Outcome]],
        stopped: Callable[[], Awaitable[object]],
        is_stopped: Callable[[], bool],
    ) -> None:
        """Run passes of ``key`` until ``stopped``: at once, then on triggers and due times."""
        trigger = self._triggers[key] = asyncio.Event()
        loop = asyncio.get_running_loop()
        priority, due_at = Priority.CHANGE, None
        try:
            while not is_stopped():
                async with self._slot(priority, due_at):
                    trigger.clear()  # what changes from here on is seen by the next pass
                    self._urgent.discard(key)
                    outcome = await run_pass()
                if outcome.interests is not None:
                    self.routing.remember(key, outcome.interests)
                wait = next_wait(outcome, self._busy_interval, self._resync, random.random())
                logger.debug(
                    f"{key[0]}/{key[1]}: {outcome}; next pass in {wait:.1f}s or on a change"
                )
                timed = timed_priority(outcome, wait)
                due_at = loop.time() + wait if timed is Priority.DUE else None
                await _first_of(trigger.wait(), stopped(), seconds=wait)
                if key in self._urgent:
                    priority = Priority.DUE
                elif trigger.is_set():
                    priority = Priority.CHANGE
                else:
                    priority = timed
        finally:
            # A release deleted and created again under its name has a new loop by now.
            if self._triggers.get(key) is trigger:
                del self._triggers[key]
                self.routing.forget(key)
                self._urgent.discard(key)


async def _first_of(*waits: Awaitable[object], seconds: float) -> None:
    """Until one of ``waits`` is done, or ``seconds`` have passed."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
