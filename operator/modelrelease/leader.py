"""Leader election on a ``coordination.k8s.io/v1`` Lease, with fencing.

The semantics are client-go's ``leaderelection``:

- a replica takes the Lease when it is free (no holder, or released) or expired;
  expiry is judged by the candidate's own clock: the record must not have changed
  for ``leaseDurationSeconds`` since the candidate first saw it (no trust in the
  other host's wall clock);
- the leader renews every retry period, and stands down when it has not renewed
  for the renew deadline;
- every write of the Lease carries the ``resourceVersion`` it was decided from,
  so two candidates never both win;
- on a clean shutdown the leader stops acting, then releases the Lease so the
  standby takes over at once.

Fencing: a replica may act only while ``now < start of its last successful renew
+ renew deadline``. A candidate first sees that renew after it was written, and
waits a whole lease duration from then, so the deposed leader stops acting at least
``lease duration - renew deadline`` before anyone else can start (5 s with the
defaults), whatever the network delays of the Lease requests.

The decisions are pure functions over a :class:`Standing` (what this replica saw
and when); :class:`LeaderElector` does the I/O around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from modelrelease import telemetry
from modelrelease.kube.errors import KubeError, NotLeaderError, WriteConflictError

DEFAULT_LEASE_NAME = "modelrelease-operator"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
RELEASED_DURATION_SECONDS = 1  # what client-go writes when it releases a Lease

log = logging.getLogger("modelrelease.leader")


# --- pure part ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds. Kubernetes controllers use 15 / 10 / 2; 12 / 8 / 2 keeps a 4 s fencing
    margin and lets a standby act within 15 s of a dead leader's last renewal, which a
    15 s lease cannot (the takeover lands a lease duration after the standby saw that
    renewal: docs/benchmarks.md, "Failover")."""

    lease_duration: float = 12.0
    renew_deadline: float = 8.0
    retry_period: float = 2.0

    def problem(self) -> str | None:
        """Why these settings cannot fence, or None when they can."""
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            return (
                f"leader election needs 0 < retry period ({self.retry_period:g}s) < renew "
                f"deadline ({self.renew_deadline:g}s) < lease duration "
                f"({self.lease_duration:g}s): a leader must stop acting before its Lease "
                "can expire; raise --lease-duration or lower --renew-deadline"
            )
        return None

    @property
    def lease_duration_seconds(self) -> int:
        return math.ceil(self.lease_duration)


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec and resourceVersion ("" for one not stored yet)."""

    holder: str
    duration_seconds: int
    acquired: datetime | None
    renewed: datetime | None
    transitions: int
    version: str = ""


@dataclass(frozen=True)
class Standing:
    """What one replica knows, in its own monotonic seconds.

    ``observed_at`` is when the current record was first seen (its expiry counts
    from there); ``renewed_at`` is when the last successful write of the Lease by
    this replica started (None: never, or released).
    """

    observed: LeaseRecord | None = None
    observed_at: float = 0.0
    renewed_at: float | None = None


@dataclass(frozen=True)
class Wait:
    """Stand by: look at the Lease again at ``until``."""

    until: float


@dataclass(frozen=True)
class Claim:
    """Write ``record`` (create when its version is empty, else update from that version)."""

    record: LeaseRecord


def observe(standing: Standing, record: LeaseRecord | None, now: float) -> Standing:
    """Take in a read of the Lease; a record seen before keeps its first-seen time."""
    seen = standing.observed
    if record is not None and seen is not None and record.version == seen.version:
        return standing
    return replace(standing, observed=record, observed_at=now)


def decide(
    standing: Standing, identity: str, timing: Timing, now: float, wall: datetime
) -> Wait | Claim:
    """Create, take over, renew, or wait for the Lease."""
    record = standing.observed
    seconds = timing.lease_duration_seconds
    if record is None:
        return Claim(LeaseRecord(identity, seconds, wall, wall, 0))
    if record.holder == identity:
        return Claim(replace(record, duration_seconds=seconds, renewed=wall))
    expires = standing.observed_at + record.duration_seconds
    if record.holder and now < expires:
        return Wait(until=min(expires, now + timing.retry_period))
    return Claim(LeaseRecord(identity, seconds, wall, wall, record.transitions + 1, record.version))


def written(standing: Standing, stored: LeaseRecord, started: float, now: float) -> Standing:
    """A claim succeeded: this replica leads from ``started`` (when the write was sent)."""
    return Standing(observed=stored, observed_at=now, renewed_at=started)


def may_act(standing: Standing, timing: Timing, now: float) -> bool:
    """True only while the last successful renew is younger than the renew deadline."""
    return standing.renewed_at is not None and now < standing.renewed_at + timing.renew_deadline


def released(standing: Standing, identity: str, wall: datetime) -> LeaseRecord | None:
    """The record that gives the Lease up, when this replica is its holder."""
    record = standing.observed
    if record is None or record.holder != identity:
        return None
    return replace(
        record, holder="", duration_seconds=RELEASED_DURATION_SECONDS, acquired=wall, renewed=wall
    )


# --- I/O ---------------------------------------------------------------------------------------


class LeaseStore(Protocol):
    """Reads and conditional writes of one Lease (``kube.lease.KubeLeaseStore``)."""

    @property
    def where(self) -> str: ...

    def get(self) -> LeaseRecord | None: ...

    def claim(self, record: LeaseRecord) -> LeaseRecord:
        """Create, or update from ``record.version``; WriteConflictError when it moved."""
        ...


def default_namespace() -> str:
    """The pod's namespace (downward API or service-account file), else ``default``."""
    if namespace := os.environ.get("POD_NAMESPACE"):
        return namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def new_identity() -> str:
    """Pod name (or host name) and a random suffix: a restarted process is a new candidate."""
    name = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{name}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Holds, renews and releases the Lease; answers ``may_act`` for fencing.

    Lease requests run on a thread of their own so that passes busy on the
    default executor never delay a renewal.
    """

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: Timing,
        clock: Callable[[], float] = time.monotonic,
        on_started_leading: Callable[[], None] = lambda: None,
    ) -> None:
        self.identity = identity
        self.timing = timing
        self._store = store
        self._clock = clock
        self._on_started_leading = on_started_leading
        self._standing = Standing()
        self._leading = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leader-election")
        self._last_holder: str | None = None
        self._stopped = False

    def may_act(self) -> bool:
        return not self._stopped and may_act(self._standing, self.timing, self._clock())

    def check_write(self, what: str) -> None:
        """The Kubernetes client's write guard: refuse every write while not leading."""
        if not self.may_act():
            telemetry.FENCED_WRITES.inc()
            raise NotLeaderError(
                f"{what}: not sent, this replica ({self.identity}) does not hold the Lease "
                f"{self._store.where} (or could not renew it within "
                f"{self.timing.renew_deadline:g}s); the leader does the writes"
            )

    async def wait_leading(self) -> bool:
        """Whether this replica may act, after waiting long enough to take over a dead leader."""
        timeout = self.timing.lease_duration + self.timing.retry_period
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._leading.wait(), timeout)
        return self.may_act()

    async def run(self) -> None:
        """Contend for the Lease until cancelled."""
        log.info(f"leader election on the Lease {self._store.where} as {self.identity}")
        loop = asyncio.get_running_loop()
        while True:
            wake = await loop.run_in_executor(self._executor, self._tick)
            self._notice()
            renewed_at = self._standing.renewed_at
            if self._leading.is_set() and renewed_at is not None:
                wake = min(wake, renewed_at + self.timing.renew_deadline)
            await asyncio.sleep(max(0.0, wake - self._clock()))

    async def release(self) -> None:
        """Stop acting, then give the Lease up so the standby need not wait for it to expire.

        The release queues behind a Lease request in flight (one thread), so that
        request cannot make this replica the holder again afterwards.
        """
        self._stopped = True
        self._notice()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._give_up)
        self._executor.shutdown(wait=False)

    def _give_up(self) -> None:
        record = released(self._standing, self.identity, datetime.now(UTC))
        if record is None:
            return
        try:
            self._store.claim(record)
        except KubeError as error:
            log.warning(f"could not release the Lease (it expires by itself): {error}")
            return
        log.info(f"released the Lease {self._store.where}")

    def _tick(self) -> float:
        """One look at the Lease, and the claim it calls for; when to look again."""
        try:
            self._standing = observe(self._standing, self._store.get(), self._clock())
            step = decide(
                self._standing, self.identity, self.timing, self._clock(), datetime.now(UTC)
            )
            if isinstance(step, Wait):
                return step.until
            started = self._clock()
            stored = self._store.claim(step.record)
            self._standing = written(self._standing, stored, started, self._clock())
            return started + self.timing.retry_period
        except WriteConflictError:
            log.debug("the Lease changed while claiming it; reading it again")
        except KubeError as error:
            log.warning(f"leader election: {error}; retrying in {self.timing.retry_period:g}s")
        return self._clock() + self.timing.retry_period

    def _notice(self) -> None:
        """Log, count and signal changes of leadership and of the holder."""
        leading = self.may_act()
        if leading and not self._leading.is_set():
            self._leading.set()
            telemetry.LEADER.set(1)
            log.info(f"started leading: this replica holds the Lease {self._store.where}")
            self._on_started_leading()
        elif not leading and self._leading.is_set():
            self._leading.clear()
            telemetry.LEADER.set(0)
            telemetry.forget_all()  # the next leader reports the releases; no stale copies
            if self._stopped:
                log.info("stopped leading: shutting down (no pass runs from here on)")
            else:
                log.warning(
                    f"stopped leading: could not renew the Lease {self._store.where} within "
                    f"{self.timing.renew_deadline:g}s; no pass runs and no write is sent until "
                    "this replica holds it again"
                )
        observed = self._standing.observed
        holder = observed.holder if observed is not None else None
        if observed is not None and holder and not leading and holder != self._last_holder:
            log.info(
                f"standing by: the Lease {self._store.where} is held by {holder}; this replica "
                f"takes over if it is not renewed for {observed.duration_seconds}s"
            )
        self._last_holder = holder
