"""When passes run: who wakes on which change, due time vs trigger vs resync, the bound."""

from __future__ import annotations

import asyncio
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
    Routing,
    Scheduler,
    interests_of,
    next_wait,
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
