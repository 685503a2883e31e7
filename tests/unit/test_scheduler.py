"""When passes run: who wakes on which change, due time vs trigger vs resync, the bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from modelrelease.api.constants import ConditionStatus, ConditionType, Reason
from modelrelease.api.models import Condition, ModelReleaseStatus
from modelrelease.kube.views import (
    AUTOSCALERS,
    CLUSTER_SLO_TEMPLATES,
    DEPLOYMENTS,
    GPU,
    HTTP_ROUTES,
    PODS,
    SERVICES,
    SLO_TEMPLATES,
    Change,
)
from modelrelease.scheduler import (
    Interests,
    Outcome,
    Priority,
    Routing,
    Scheduler,
    Slots,
    interests_of,
    next_wait,
    timed_priority,
)

from tests.unit.test_plan import make_spec

CHAT = ("ns", "chat")
OTHER = ("ns", "other")


def insufficient_gpu() -> ModelReleaseStatus:
    condition = Condition(
        type=ConditionType.PROGRESSING,
        status=ConditionStatus.FALSE,
        reason=Reason.INSUFFICIENT_GPU,
        message="holding",
        last_transition_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return ModelReleaseStatus(conditions=[condition])


# --- routing ----------------------------------------------------------------------------------


def test_interests_are_the_route_and_the_templates_of_the_spec() -> None:
    spec = make_spec()
    raw = spec.model_dump(by_alias=True, exclude_none=True)
    raw["analysis"]["slos"] = [
        {"name": "a", "templateRef": {"name": "errors", "kind": "SLOTemplate"}, "max": 1},
        {
            "name": "b",
            "templateRef": {"name": "latency", "kind": "ClusterSLOTemplate"},
            "max": 1,
        },
    ]
    spec = type(spec).model_validate(raw)
    interests = interests_of("ns", "chat", spec, ModelReleaseStatus())
    assert interests == Interests(
        frozenset(
            {
                (HTTP_ROUTES.kind, "ns", "chat"),
                (SLO_TEMPLATES.kind, "ns", "errors"),
                (CLUSTER_SLO_TEMPLATES.kind, "", "latency"),
            }
        ),
        gpus=False,
    )
    assert interests_of("ns", "chat", spec, insufficient_gpu()).gpus


@pytest.mark.parametrize(
    ("change", "woken"),
    [
        (Change(DEPLOYMENTS.kind, "ns", "chat-abc", "chat"), {CHAT}),
        (Change(PODS.kind, "ns", "chat-abc-1", "other"), {OTHER}),
        (Change(SERVICES.kind, "ns", "chat-stable", "chat"), {CHAT}),
        (Change(PODS.kind, "ns", "unlabelled", None), set()),
        # An HPA's Change names the release owning the Deployment it scales (kube.views).
        (Change(AUTOSCALERS.kind, "ns", "any-name", "chat"), {CHAT}),
        (Change(AUTOSCALERS.kind, "ns", "on-someone-elses", None), set()),
        (Change(HTTP_ROUTES.kind, "ns", "shared"), {CHAT, OTHER}),
        (Change(HTTP_ROUTES.kind, "elsewhere", "shared"), set()),
        (Change(SLO_TEMPLATES.kind, "ns", "errors"), {CHAT}),
        (Change(CLUSTER_SLO_TEMPLATES.kind, "", "latency"), {OTHER}),
        (Change(GPU), {OTHER}),
    ],
)
def test_a_change_wakes_the_releases_that_read_it(
    change: Change, woken: set[tuple[str, str]]
) -> None:
    routing = Routing()
    routing.remember(
        CHAT,
        Interests(
            frozenset({(HTTP_ROUTES.kind, "ns", "shared"), (SLO_TEMPLATES.kind, "ns", "errors")})
        ),
    )
    routing.remember(
        OTHER,
        Interests(
            frozenset(
                {(HTTP_ROUTES.kind, "ns", "shared"), (CLUSTER_SLO_TEMPLATES.kind, "", "latency")}
            ),
            gpus=True,
        ),
    )
    assert routing.releases(change) == woken


def test_a_forgotten_or_changed_interest_wakes_no_more() -> None:
    routing = Routing()
    route = (HTTP_ROUTES.kind, "ns", "old")
    routing.remember(CHAT, Interests(frozenset({route}), gpus=True))
    routing.remember(CHAT, Interests(frozenset({(HTTP_ROUTES.kind, "ns", "new")})))
    assert routing.releases(Change(HTTP_ROUTES.kind, "ns", "old")) == set()
    assert routing.releases(Change(GPU)) == set()
    routing.forget(CHAT)
    assert routing.releases(Change(HTTP_ROUTES.kind, "ns", "new")) == set()


# --- due time vs resync -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "jitter", "expected"),
    [
        (Outcome(), 0.0, 300.0),  # at rest: the resync
        (Outcome(), 0.999, 300.0 * (1 - 0.2 * 0.999)),  # jittered, never beyond it
        (Outcome(in_flight=True), 0.0, 2.0),  # in flight, plan() names no due time
        (Outcome(requeue_after=7.5, in_flight=True), 0.0, 7.5),  # the due time wins
        (Outcome(requeue_after=900.0), 0.0, 300.0),  # the resync still bounds it
        (Outcome(requeue_after=-1.0), 0.0, 0.0),  # overdue: at once
        (Outcome(requeue_after=1.0, retry_in=40.0), 0.0, 40.0),  # backing off
    ],
)
def test_next_wait(outcome: Outcome, jitter: float, expected: float) -> None:
    assert next_wait(outcome, busy_interval=2.0, resync=300.0, jitter=jitter) == pytest.approx(
        expected
    )


# --- the loops --------------------------------------------------------------------------------


class Release:
    """A release loop under test: counts passes, returns a chosen outcome."""

    def __init__(self, scheduler: Scheduler, key: tuple[str, str], outcome: Outcome) -> None:
        self.passes = 0
        self.counted = asyncio.Condition()
        self.outcome = outcome
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(
            scheduler.serve(key, self.run, self.stop.wait, self.stop.is_set)
        )
        self.overlap = 0
        self.queued = 0
        self.scheduler = scheduler

    async def run(self) -> Outcome:
        self.overlap = max(self.overlap, self.scheduler.running)
        self.queued = max(self.queued, self.scheduler.waiting)
        await asyncio.sleep(0.05)  # a pass takes a while: others queue for a slot meanwhile
        async with self.counted:
            self.passes += 1
            self.counted.notify_all()
        return self.outcome

    async def until(self, passes: int, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds), self.counted:
            await self.counted.wait_for(lambda: self.passes >= passes)


def test_a_trigger_runs_a_pass_at_once_and_a_release_at_rest_stays_quiet() -> None:
    async def scenario() -> None:
        scheduler = Scheduler(worker_limit=4, busy_interval=60.0, resync=300.0)
        release = Release(
            scheduler,
            CHAT,
            Outcome(interests=Interests(frozenset({(HTTP_ROUTES.kind, "ns", "r")}))),
        )
        await release.until(1)  # the first pass runs at start
        await asyncio.sleep(0.3)
        assert release.passes == 1  # nothing changed, nothing due
        scheduler.changed(Change(HTTP_ROUTES.kind, "ns", "r"))
        await release.until(2, seconds=1.0)
        scheduler.changed(Change(HTTP_ROUTES.kind, "ns", "unrelated"))
        await asyncio.sleep(0.3)
        assert release.passes == 2
        release.stop.set()
        await asyncio.wait_for(release.task, 1.0)

    asyncio.run(scenario())


def test_a_due_time_runs_the_next_pass_without_a_trigger() -> None:
    async def scenario() -> None:
        scheduler = Scheduler(worker_limit=4, busy_interval=60.0, resync=300.0)
        release = Release(scheduler, CHAT, Outcome(requeue_after=0.2))
        await release.until(3, seconds=3.0)
        release.stop.set()
        await asyncio.wait_for(release.task, 1.0)

    asyncio.run(scenario())


def test_the_worker_limit_bounds_passes_running_at_once() -> None:
    async def scenario() -> None:
        scheduler = Scheduler(worker_limit=2, busy_interval=0.0, resync=300.0)
        releases = [Release(scheduler, ("ns", f"r{i}"), Outcome(in_flight=True)) for i in range(6)]
        for release in releases:
            await release.until(3)
        assert max(release.overlap for release in releases) == 2
        # Six releases always due, two slots: the others queue (the queue-depth gauge).
        assert max(release.queued for release in releases) >= 1
        for release in releases:
            release.stop.set()
        await asyncio.wait_for(asyncio.gather(*(r.task for r in releases)), 2.0)
        assert (scheduler.waiting, scheduler.running) == (0, 0)

    asyncio.run(scenario())


# --- who gets a free slot first ---------------------------------------------------------------


async def until(predicate: Callable[[], bool], seconds: float = 2.0) -> None:
    """Until ``predicate()`` holds; fails after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not within {seconds}s: {predicate}")


@pytest.mark.parametrize(
    ("outcome", "wait", "expected"),
    [
        (Outcome(requeue_after=3.0), 3.0, Priority.DUE),  # the due time came
        (Outcome(requeue_after=-1.0), 0.0, Priority.DUE),  # overdue
        (Outcome(requeue_after=900.0), 250.0, Priority.ROUTINE),  # the resync came first
        (Outcome(in_flight=True), 2.0, Priority.ROUTINE),  # a poll
        (Outcome(requeue_after=3.0, retry_in=8.0), 8.0, Priority.ROUTINE),  # a retry
        (Outcome(), 280.0, Priority.ROUTINE),  # a resync at rest
    ],
)
def test_timed_priority(outcome: Outcome, wait: float, expected: Priority) -> None:
    assert timed_priority(outcome, wait) is expected


def test_a_freed_slot_goes_to_the_most_urgent_waiter_then_the_earliest() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        await slots.acquire(Priority.ROUTINE)  # held: everyone below queues
        order: list[str] = []

        async def waiter(name: str, priority: Priority) -> None:
            await slots.acquire(priority)
            order.append(name)
            slots.release()

        names = [
            ("resync", Priority.ROUTINE),
            ("change-1", Priority.CHANGE),
            ("check", Priority.DUE),
            ("change-2", Priority.CHANGE),
        ]
        tasks = []
        for name, priority in names:
            tasks.append(asyncio.create_task(waiter(name, priority)))
            await asyncio.sleep(0)  # queued in this order
        slots.release()
        await asyncio.wait_for(asyncio.gather(*tasks), 1.0)
        return order

    assert asyncio.run(scenario()) == ["check", "change-1", "change-2", "resync"]


def test_a_waiter_whose_work_falls_due_as_it_waits_moves_up() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        await slots.acquire(Priority.CHANGE)
        order: list[str] = []
        loop = asyncio.get_running_loop()

        async def waiter(name: str, due_at: float | None) -> None:
            await slots.acquire(Priority.CHANGE, due_at)
            order.append(name)
            slots.release()

        tasks = [asyncio.create_task(waiter(f"change-{i}", None)) for i in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(waiter("falls-due", loop.time() + 0.05)))
        await until(slots.has_due_waiter)
        slots.release()
        await asyncio.wait_for(asyncio.gather(*tasks), 1.0)
        return order

    assert asyncio.run(scenario()) == ["falls-due", "change-0", "change-1", "change-2"]


def test_a_cancelled_waiter_loses_no_slot() -> None:
    async def scenario() -> None:
        slots = Slots(1)
        await slots.acquire(Priority.CHANGE)
        gone = asyncio.create_task(slots.acquire(Priority.DUE))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        slots.release()
        # Cancelled while queued: the slot is free again, not handed to the dead waiter.
        await asyncio.wait_for(slots.acquire(Priority.ROUTINE), 0.5)
        # Cancelled just as the slot was handed over: it is passed on, not lost.
        late = asyncio.create_task(slots.acquire(Priority.CHANGE))
        await asyncio.sleep(0)
        slots.release()  # handed to ``late``, which has not resumed yet
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        await asyncio.wait_for(slots.acquire(Priority.CHANGE), 0.5)

    asyncio.run(scenario())


def test_a_due_check_overtakes_a_wave_of_changes() -> None:
    """One slot, held; a wave of releases woken by a change queues for it, then a release
    whose check comes due: the freed slot goes to the check, then to the wave in order."""

    async def scenario() -> list[str]:
        scheduler = Scheduler(worker_limit=1, busy_interval=60.0, resync=300.0)
        ran: list[str] = []
        unblock = asyncio.Event()
        stops: list[asyncio.Event] = []

        def start(name: str, run: Callable[[], Awaitable[Outcome]]) -> asyncio.Task[None]:
            stop = asyncio.Event()
            stops.append(stop)
            return asyncio.create_task(scheduler.serve(("ns", name), run, stop.wait, stop.is_set))

        async def checking() -> Outcome:
            ran.append("checking")
            return Outcome(requeue_after=0.2 if ran.count("checking") == 1 else None)

        async def blocker() -> Outcome:
            ran.append("blocker")
            await unblock.wait()
            return Outcome()

        def wave(name: str) -> Callable[[], Awaitable[Outcome]]:
            async def run() -> Outcome:
                ran.append(name)
                return Outcome()

            return run

        tasks = [start("checking", checking)]
        await until(lambda: "checking" in ran)  # its first pass; its check is due in 0.2 s
        tasks.append(start("blocker", blocker))
        await until(lambda: "blocker" in ran)  # holds the only slot
        tasks += [start(f"wave-{i}", wave(f"wave-{i}")) for i in range(5)]
        await until(lambda: scheduler.waiting == 6)  # the wave, then the due check, queued
        unblock.set()
        await until(lambda: len(ran) == 8)
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 2.0)
        return ran[2:]

    assert asyncio.run(scenario()) == ["checking", *(f"wave-{i}" for i in range(5))]
