"""Leader election: the pure decisions, a simulation of replicas over one Lease, fencing."""

from __future__ import annotations

import asyncio
import heapq
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client
from modelrelease.kube.client import KubeClient
from modelrelease.kube.errors import KubeError, NotLeaderError, WriteConflictError
from modelrelease.leader import (
    Claim,
    LeaderElector,
    LeaseRecord,
    Standing,
    Timing,
    Wait,
    decide,
    may_act,
    observe,
    released,
    written,
)
from modelrelease.settings import parse_args

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)
WALL = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ME, OTHER = "me_1", "other_2"


def _held_by(holder: str, version: str = "7", transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, 15, WALL, WALL, transitions, version)


# --- pure decisions ------------------------------------------------------------------------------


def test_a_missing_lease_is_created() -> None:
    step = decide(Standing(observed_at=100), ME, TIMING, 100, WALL)
    assert step == Claim(LeaseRecord(ME, 15, WALL, WALL, 0, ""))


def test_the_holder_renews_from_the_version_it_read() -> None:
    record = _held_by(ME)
    later = WALL + timedelta(seconds=2)
    step = decide(Standing(record, 100, renewed_at=98), ME, TIMING, 100, later)
    assert step == Claim(replace(record, renewed=later))


def test_a_lease_held_by_another_is_waited_for_until_it_expires() -> None:
    standing = Standing(_held_by(OTHER), observed_at=100)
    assert decide(standing, ME, TIMING, 101, WALL) == Wait(until=103)  # a look per retry period
    assert decide(standing, ME, TIMING, 114, WALL) == Wait(until=115)  # and one at expiry
    took = decide(standing, ME, TIMING, 115, WALL)
    assert took == Claim(LeaseRecord(ME, 15, WALL, WALL, 4, "7"))


def test_a_released_lease_is_taken_at_once() -> None:
    standing = Standing(replace(_held_by(""), duration_seconds=1), observed_at=100)
    step = decide(standing, ME, TIMING, 100, WALL)
    assert isinstance(step, Claim)
    assert (step.record.holder, step.record.transitions, step.record.version) == (ME, 4, "7")


def test_expiry_counts_from_when_a_record_was_first_seen_not_from_its_renew_time() -> None:
    # The other host's clock is an hour behind: its renewTime says nothing to this replica.
    stale_clock = replace(_held_by(OTHER), renewed=WALL - timedelta(hours=1))
    standing = observe(Standing(), stale_clock, now=100)
    assert isinstance(decide(standing, ME, TIMING, 101, WALL), Wait)
    # The same record seen again keeps its first-seen time; a renewed one restarts it.
    assert observe(standing, stale_clock, now=110).observed_at == 100
    renewed = replace(stale_clock, version="8")
    assert observe(standing, renewed, now=110).observed_at == 110


def test_may_act_only_within_the_renew_deadline_of_the_last_renew() -> None:
    standing = written(Standing(), _held_by(ME), started=100, now=100.5)
    assert may_act(standing, TIMING, 100.5)
    assert may_act(standing, TIMING, 109.99)
    assert not may_act(standing, TIMING, 110)
    assert not may_act(Standing(_held_by(ME), 100), TIMING, 100)  # never renewed by this process


def test_release_gives_the_lease_up_only_when_held() -> None:
    standing = Standing(_held_by(ME), 100, renewed_at=100)
    record = released(standing, ME, WALL)
    assert record is not None
    assert (record.holder, record.duration_seconds, record.version) == ("", 1, "7")
    assert released(Standing(_held_by(OTHER), 100), ME, WALL) is None


@pytest.mark.parametrize(
    ("timing", "fine"),
    [
        (Timing(15, 10, 2), True),
        (Timing(4, 3, 1), True),
        (Timing(10, 10, 2), False),  # a deposed leader could act while a new one does
        (Timing(15, 2, 2), False),
        (Timing(15, 10, 0), False),
    ],
)
def test_timing_must_let_a_leader_stop_before_its_lease_expires(timing: Timing, fine: bool) -> None:
    assert (timing.problem() is None) is fine


def test_flags() -> None:
    config = parse_args(["--leader-elect", "--lease-duration", "4s", "--renew-deadline", "3s"])
    assert config.leader_elect
    assert config.lease_timing == Timing(4, 3, 2)
    assert not parse_args(["--no-leader-elect"]).leader_elect
    with pytest.raises(SystemExit):
        parse_args(["--leader-elect", "--renew-deadline", "20s"])


# --- two or three replicas over one Lease ------------------------------------------------------


@dataclass
class Server:
    """The API server's copy of the Lease: writes succeed only from its current version."""

    record: LeaseRecord | None = None
    versions: int = 0

    def write(self, record: LeaseRecord) -> LeaseRecord | None:
        current = self.record.version if self.record is not None else ""
        if record.version != current:
            return None
        self.versions += 1
        self.record = replace(record, version=str(self.versions))
        return self.record


@dataclass
class Replica:
    identity: str
    offset: float  # its monotonic clock minus the simulation's
    dies_at: float
    standing: Standing = field(default_factory=Standing)
    led: list[float] = field(default_factory=list)  # times it could act at

    def local(self, now: float) -> float:
        return now + self.offset


@dataclass
class Simulation:
    """Replicas running the elector's steps, each request applied and answered after
    random delays (possibly never applied), interleaved in time order."""

    timing: Timing
    replicas: list[Replica]
    rng: random.Random
    max_latency: float
    loss: float
    server: Server = field(default_factory=Server)
    queue: list[tuple[float, int, int, str, object]] = field(default_factory=list)
    sequence: int = 0

    def at(self, time: float, index: int, what: str, payload: object = None) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, (time, self.sequence, index, what, payload))

    def latency(self) -> float:
        return self.rng.uniform(0, self.max_latency)

    def start(self) -> Simulation:
        for index in range(len(self.replicas)):
            self.at(self.rng.uniform(0, 1), index, "get")
        return self

    def run(self, until: float) -> None:
        while self.queue and self.queue[0][0] <= until:
            now, _, index, what, payload = heapq.heappop(self.queue)
            replica = self.replicas[index]
            if now < replica.dies_at:
                self.step(now, index, replica, what, payload)
                self.check_fencing(now)

    def step(self, now: float, index: int, replica: Replica, what: str, payload: object) -> None:
        local = replica.local(now)
        lost = self.rng.random() < self.loss
        if what == "get":  # request sent; read applied later, answered later still
            self.at(now + self.latency(), index, "read")
        elif what == "read":
            self.at(now + self.latency(), index, "seen", None if lost else (self.server.record,))
        elif what == "seen":
            if payload is None:  # the read failed: retry later
                self.at(now + self.timing.retry_period, index, "get")
                return
            (record,) = payload  # type: ignore[misc]
            replica.standing = observe(replica.standing, record, local)
            wall = WALL + timedelta(seconds=now)
            step = decide(replica.standing, replica.identity, self.timing, local, wall)
            if isinstance(step, Wait):
                self.at(step.until - replica.offset, index, "get")
            else:
                self.at(now + self.latency(), index, "apply", (step.record, local, lost))
        elif what == "apply":
            record, started, lost_request = payload  # type: ignore[misc]
            stored = None if lost_request else self.server.write(record)
            answer = None if lost else stored  # the write may land but its answer be lost
            self.at(now + self.latency(), index, "written", (answer, started))
        elif what == "written":
            stored, started = payload  # type: ignore[misc]
            if stored is not None:
                replica.standing = written(replica.standing, stored, started, local)
                self.at(started - replica.offset + self.timing.retry_period, index, "get")
            else:
                self.at(now + self.timing.retry_period, index, "get")

    def check_fencing(self, now: float) -> None:
        acting = [
            r
            for r in self.replicas
            if now < r.dies_at and may_act(r.standing, self.timing, r.local(now))
        ]
        assert len(acting) <= 1, f"at {now:.3f}s both {[r.identity for r in acting]} may act"
        for replica in acting:
            replica.led.append(now)


timings = st.sampled_from([Timing(15, 10, 2), Timing(4, 3, 1), Timing(2, 1.5, 0.5)])


@settings(max_examples=150, deadline=None)
@given(
    timing=timings,
    seed=st.integers(0, 2**32 - 1),
    replicas=st.integers(2, 3),
    max_latency=st.floats(0, 4),
    loss=st.sampled_from([0.0, 0.1, 0.4]),
    deaths=st.lists(st.floats(5, 90), min_size=3, max_size=3),
)
def test_never_two_replicas_may_act_at_once(
    timing: Timing,
    seed: int,
    replicas: int,
    max_latency: float,
    loss: float,
    deaths: list[float],
) -> None:
    rng = random.Random(seed)
    members = [
        Replica(f"r{i}", offset=rng.uniform(-1000, 1000), dies_at=deaths[i] if i == 0 else 1e9)
        for i in range(replicas)
    ]
    Simulation(timing, members, rng, max_latency, loss).start().run(until=120)


@settings(max_examples=100, deadline=None)
@given(
    timing=timings,
    seed=st.integers(0, 2**32 - 1),
    max_latency=st.floats(0, 0.3),
    death=st.floats(5, 60),
)
def test_the_standby_takes_over_within_a_lease_duration_of_the_leaders_last_renewal(
    timing: Timing, seed: int, max_latency: float, death: float
) -> None:
    rng = random.Random(seed)
    replicas = [Replica("a", 0.0, 1e9), Replica("b", 37.0, 1e9)]
    simulation = Simulation(timing, replicas, rng, max_latency, loss=0.0).start()
    simulation.run(until=death)
    leaders = [r for r in replicas if may_act(r.standing, timing, r.local(death))]
    assert leaders, "nobody leads although no request failed"
    leader = leaders[0]
    standby = next(r for r in replicas if r is not leader)
    leader.dies_at = death
    simulation.run(until=death + 3 * timing.lease_duration)
    took_over = next(t for t in standby.led if t > death)
    assert took_over - death <= timing.lease_duration + timing.retry_period + 6 * max_latency


# --- the elector around the store ----------------------------------------------------------------


@dataclass
class MemoryStore:
    server: Server = field(default_factory=Server)
    failing: bool = False
    where: str = "ns/modelrelease-operator"

    def get(self) -> LeaseRecord | None:
        if self.failing:
            raise KubeError("read the Lease: connection refused")
        return self.server.record

    def claim(self, record: LeaseRecord) -> LeaseRecord:
        if self.failing:
            raise KubeError("update the Lease: connection refused")
        stored = self.server.write(record)
        if stored is None:
            raise WriteConflictError("update the Lease: HTTP 409")
        return stored


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_elector_fences_writes_when_it_cannot_renew_and_releases_on_shutdown() -> None:
    store, clock = MemoryStore(), FakeClock()
    started: list[str] = []
    elector = LeaderElector(store, ME, TIMING, clock, lambda: started.append("led"))
    kube = KubeClient(client.ApiClient(), write_guard=elector.check_write)

    with pytest.raises(NotLeaderError, match="does not hold the Lease ns/modelrelease-operator"):
        elector.check_write("scale Deployment ns/chat-abc to 2")

    assert elector._tick() == 1002  # created the Lease: renew after one retry period
    elector._notice()
    assert elector.may_act()
    assert started == ["led"]

    store.failing = True
    clock.now = 1009.9
    elector._tick()
    assert elector.may_act()  # within the renew deadline of the last renew
    clock.now = 1010
    assert not elector.may_act()
    with pytest.raises(NotLeaderError, match="scale Deployment ns/chat-abc to 2: not sent"):
        kube.scale_deployment("ns", "chat-abc", 2)  # refused before any request is made

    store.failing = False
    elector._tick()  # still the holder in the record: renews from its version
    assert elector.may_act()
    asyncio.run(elector.release())
    assert not elector.may_act()
    assert store.server.record is not None
    assert store.server.record.holder == ""


def test_a_second_elector_waits_then_takes_over_a_lease_that_is_not_renewed() -> None:
    store, clock = MemoryStore(), FakeClock()
    first = LeaderElector(store, ME, TIMING, clock)
    second = LeaderElector(store, OTHER, TIMING, clock)
    first._tick()
    assert second._tick() == 1002  # held and fresh: look again in one retry period
    assert first.may_act()
    assert not second.may_act()
    clock.now = 1014.9
    assert second._tick() == 1015  # wake at the expiry
    assert not second.may_act()
    clock.now = 1015
    second._tick()
    assert second.may_act()
    assert not first.may_act()
    assert store.server.record is not None
    assert (store.server.record.holder, store.server.record.transitions) == (OTHER, 1)
