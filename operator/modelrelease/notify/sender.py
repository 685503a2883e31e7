"""Delivery of pending notifications, beside the passes (asyncio).

A pass only calls :meth:`Notifier.enqueue`, which never waits: the jobs go into a
bounded queue that a few worker tasks drain. Each receiver of a release is a
lane: its notifications go out one at a time, in the order they were decided,
so a chat never shows "promoted" before "started". A worker reads the receiver's
Secret, POSTs the message, and retries what may succeed later (transport
errors, HTTP 408, 425, 429 and 5xx) with exponential backoff and jitter,
honouring ``Retry-After``; a retry waits on a timer, not in a worker, so one
slow receiver does not hold the others. What is settled (delivered, or given
up) is kept in memory until a pass has recorded it in status, and the release
is woken for that pass. A job that finds the queue full is dropped: it is
still pending in status, and a later pass enqueues it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

import httpx

from modelrelease.api.models import NotificationReceiver, NotificationsSpec, PendingNotification
from modelrelease.core.notifications import DeliveryKey, Settled, delivery_key
from modelrelease.notify.message import Notice
from modelrelease.notify.targets import SecretData, Target, request, target

Key = tuple[str, str]  # (namespace, name) of a release
SecretReader = Callable[[str, str], SecretData | None]

logger = logging.getLogger(__name__)


# --- retries (pure) --------------------------------------------------------------------------


class SecretUnreadableError(Exception):
    """The API server did not answer the read of a receiver's Secret."""


class Answer(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


RETRIED_STATUSES = frozenset({408, 425, 429})


def classify(status_code: int) -> Answer:
    """What an HTTP status means for the delivery."""
    if 200 <= status_code < 300:
        return Answer.DELIVERED
    if status_code in RETRIED_STATUSES or status_code >= 500:
        return Answer.RETRY
    return Answer.REFUSED


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in its seconds form; None when absent or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    """Attempts in all; then the notification is given up (a Warning Event says so)."""
    base: float = 1.0
    cap: float = 60.0
    timeout: float = 10.0
    """Seconds one POST may take."""

    def delay(self, failures: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds before the next attempt after ``failures`` failed ones; ``jitter`` in
        [0, 1) takes between half and all of the doubling delay. A ``Retry-After``
        longer than that is honoured, up to ``cap``."""
        backoff = min(self.cap, self.base * float(2 ** (failures - 1))) * (0.5 + jitter / 2)
        if retry_after is not None:
            return min(self.cap, max(backoff, retry_after))
        return backoff


# --- jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    key: Key
    release: str
    notification: PendingNotification
    receiver: NotificationReceiver
    failures: int = 0

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def delivery(self) -> DeliveryKey:
        return delivery_key(self.notification)

    @property
    def lane(self) -> tuple[Key, str]:
        return self.key, self.receiver.name


@dataclass(frozen=True)
class Check:
    """Read every receiver's Secret and report what is wrong (after a spec change)."""

    key: Key
    receivers: tuple[NotificationReceiver, ...]


@dataclass
class Notifier:
    read_secret: SecretReader
    on_settled: Callable[[Key], None] = lambda key: None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    queue_size: int = 256
    workers: int = 4
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = random.random
    http: httpx.AsyncClient | None = None
    _queue: asyncio.Queue[Job | Check] | None = field(default=None, init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _timers: set[asyncio.TimerHandle] = field(default_factory=set, init=False)
    _active: set[tuple[Key, DeliveryKey]] = field(default_factory=set, init=False)
    # Per release and receiver, the jobs in order; the first is queued, sent or waiting.
    _lanes: dict[tuple[Key, str], deque[Job]] = field(default_factory=dict, init=False)
    _settled: dict[Key, dict[DeliveryKey, Settled]] = field(default_factory=dict, init=False)
    _problems: dict[Key, list[str]] = field(default_factory=dict, init=False)

    # --- life ---

    def start(self) -> None:
        """Start the workers (in the running event loop)."""
        if self._queue is not None:
            return
        self._queue = asyncio.Queue(self.queue_size)
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=self.policy.timeout)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.http is not None:
            await self.http.aclose()

    @property
    def depth(self) -> int:
        """Jobs queued, in delivery or waiting for a retry."""
        return len(self._active)

    # --- what a pass calls (never waits) ---

    def enqueue(
        self,
        key: Key,
        release: str,
        pending: list[PendingNotification],
        spec: NotificationsSpec | None,
    ) -> int:
        """Queue what is pending and not already queued or settled; how many were queued."""
        if self._queue is None or spec is None:
            return 0
        receivers = {receiver.name: receiver for receiver in spec.receivers}
        settled = self._settled.get(key, {})
        queued = 0
        for notification in pending:
            delivery = delivery_key(notification)
            receiver = receivers.get(notification.receiver)
            if receiver is None or delivery in settled or (key, delivery) in self._active:
                continue
            job = Job(key, release, notification, receiver)
            lane = self._lanes.setdefault(job.lane, deque())
            lane.append(job)
            self._active.add((key, delivery))
            if len(lane) == 1 and not self._put(job):
                self._drop_lane(job.lane)
                continue
            queued += 1
        return queued

    def check(self, key: Key, spec: NotificationsSpec) -> None:
        """Check the receivers' Secrets in the background; problems come back through
        :meth:`problems` in a later pass."""
        if self._queue is not None:
            self._put(Check(key, tuple(spec.receivers)))

    def settled(self, key: Key) -> dict[DeliveryKey, Settled]:
        return dict(self._settled.get(key, {}))

    def recorded(self, key: Key, deliveries: list[DeliveryKey]) -> None:
        """A pass wrote these settled deliveries into status: forget them."""
        settled = self._settled.get(key)
        if settled is None:
            return
        for delivery in deliveries:
            settled.pop(delivery, None)
        if not settled:
            self._settled.pop(key, None)

    def problems(self, key: Key) -> list[str]:
        """What the last check found wrong with the receivers (until :meth:`clear_problems`)."""
        return list(self._problems.get(key, []))

    def clear_problems(self, key: Key, posted: list[str]) -> None:
        """A pass posted these problems as Events (a check may have found new ones since)."""
        left = [problem for problem in self._problems.get(key, []) if problem not in posted]
        if left:
            self._problems[key] = left
        else:
            self._problems.pop(key, None)

    def forget(self, key: Key) -> None:
        """The release is gone."""
        self._settled.pop(key, None)
        self._problems.pop(key, None)
        for lane in [lane for lane in self._lanes if lane[0] == key]:
            self._drop_lane(lane)

    def _drop_lane(self, lane: tuple[Key, str]) -> None:
        """Forget the lane's jobs: still pending in status, a later pass queues them again."""
        for job in self._lanes.pop(lane, deque()):
            self._active.discard((job.key, job.delivery))

    def _put(self, job: Job | Check) -> bool:
        assert self._queue is not None
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            logger.warning(
                f"the notification queue is full ({self.queue_size}); "
                f"{job.key[0]}/{job.key[1]} retries at its next pass"
            )
            return False
        return True

    # --- workers ---

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                if isinstance(job, Check):
                    await self._check(job)
                else:
                    await self._attempt(job)
            except Exception as error:  # a bug must not kill the worker
                logger.exception("notification delivery failed unexpectedly")
                if isinstance(job, Job):
                    self._settle(job, Settled(False, f"unexpected error {type(error).__name__}"))
            finally:
                self._queue.task_done()

    async def _check(self, check: Check) -> None:
        problems = []
        for receiver in check.receivers:
            try:
                found: Target | str = await self._target(check.key[0], receiver)
            except SecretUnreadableError as error:
                found = str(error)
            if isinstance(found, str):
                problems.append(
                    f"{found}; its notifications are not sent until this is fixed, "
                    "the release goes on"
                )
        if problems:
            self._problems[check.key] = problems
            self.on_settled(check.key)

    async def _target(self, namespace: str, receiver: NotificationReceiver) -> Target | str:
        """The receiver's target, or what is wrong with its Secret; raises
        :class:`SecretUnreadableError` when the Secret could not be read (worth a retry)."""
        try:
            secret = await asyncio.to_thread(self.read_secret, namespace, receiver.secret_name)
        except Exception as error:
            raise SecretUnreadableError(
                f"could not read Secret {namespace}/{receiver.secret_name} ({type(error).__name__})"
            ) from error
        return target(receiver, namespace, secret)

    async def _attempt(self, job: Job) -> None:
        try:
            found = await self._target(job.namespace, job.receiver)
        except SecretUnreadableError as error:
            self._retry_or_give_up(job, str(error), None, "")
            return
        if isinstance(found, str):
            self._settle(job, Settled(False, found))
            return
        assert self.http is not None
        notice = Notice(job.namespace, job.release, job.notification)
        outgoing = request(found, notice, int(self.clock()))
        try:
            response = await self.http.post(
                outgoing.url,
                content=outgoing.content,
                headers=dict(outgoing.headers),
                timeout=self.policy.timeout,
            )
        except httpx.HTTPError as error:
            # The error's text can hold the URL: only its kind is shown.
            self._retry_or_give_up(job, type(error).__name__, None, found.source)
            return
        answer = classify(response.status_code)
        if answer is Answer.DELIVERED:
            logger.info(
                f"notification {job.notification.type.value} of {job.namespace}/{job.release} "
                f"delivered to receiver {job.receiver.name} ({job.notification.id})"
            )
            self._settle(job, Settled(True))
        elif answer is Answer.REFUSED:
            self._settle(
                job,
                Settled(
                    False,
                    f"the receiver answered HTTP {response.status_code}, which is not retried; "
                    f"check the URL in {found.source} and the receiver's configuration",
                ),
            )
        else:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            self._retry_or_give_up(job, f"HTTP {response.status_code}", wait, found.source)

    def _retry_or_give_up(self, job: Job, why: str, retry_after: float | None, source: str) -> None:
        failures = job.failures + 1
        if failures >= self.policy.attempts:
            where = f"the URL in {source}" if source else "the Secret"
            self._settle(
                job,
                Settled(
                    False,
                    f"{failures} attempts failed, the last with {why}; check the receiver "
                    f"and {where}",
                ),
            )
            return
        delay = self.policy.delay(failures, self.jitter(), retry_after)
        logger.info(
            f"notification {job.notification.id} to receiver {job.receiver.name} failed "
            f"({why}); attempt {failures + 1} of {self.policy.attempts} in {delay:.1f}s"
        )
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def again() -> None:
            if timer is not None:
                self._timers.discard(timer)
            if (job.key, job.delivery) not in self._active:
                return  # the release is gone
            if not self._put(replace(job, failures=failures)):
                self._drop_lane(job.lane)

        timer = loop.call_later(delay, again)
        self._timers.add(timer)

    def _next_in_lane(self, job: Job) -> None:
        lane = self._lanes.get(job.lane)
        if lane and lane[0].delivery == job.delivery:
            lane.popleft()
        if not lane:
            self._lanes.pop(job.lane, None)
            return
        if not self._put(lane[0]):
            self._drop_lane(job.lane)

    def _settle(self, job: Job, outcome: Settled) -> None:
        if (job.key, job.delivery) not in self._active:
            return  # the release is gone
        self._active.discard((job.key, job.delivery))
        self._settled.setdefault(job.key, {})[job.delivery] = outcome
        self._next_in_lane(job)
        if not outcome.delivered:
            logger.warning(
                f"notification {job.notification.id} to receiver {job.receiver.name} "
                f"given up: {outcome.message}"
            )
        self.on_settled(job.key)
