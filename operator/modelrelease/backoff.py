"""Exponential backoff with jitter for releases whose passes fail (invariant I6).

A pass that fails (the API server refuses a write, an unexpected error) is
not retried at the reconcile interval forever: each consecutive failure
doubles the wait, up to a cap, with random jitter so many failing releases
do not retry in lockstep. One good pass resets it. Kept in memory: a
restarted operator starts with a fresh, short delay.

A user's change cuts the wait short: each failure remembers the release's
*mark* (its generation and action annotation), and a release whose mark
differs is ready at once. A fixed spec, an abort or a rollback request is
then acted upon within a pass, not after up to five minutes of backoff; the
failure count stays, so a change that does not help backs off as before.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

Key = tuple[str, str]  # (namespace, name)
Mark = tuple[int, str]  # (metadata.generation, the action annotation or "")


@dataclass
class Backoff:
    base: float = 2.0
    cap: float = 300.0
    jitter: Callable[[], float] = field(default=random.random)
    _failures: dict[Key, int] = field(default_factory=dict)
    _retry_at: dict[Key, float] = field(default_factory=dict)
    _marks: dict[Key, Mark] = field(default_factory=dict)

    def ready(self, key: Key, now: float, mark: Mark | None = None) -> bool:
        """Whether a pass of ``key`` may run at ``now`` (monotonic seconds): its wait is
        over, or the release changed (``mark``) since the failure."""
        return self.remaining(key, now, mark) == 0.0

    def remaining(self, key: Key, now: float, mark: Mark | None = None) -> float:
        """Seconds until a pass of ``key`` may run (0 when it may now)."""
        if mark is not None and key in self._marks and self._marks[key] != mark:
            return 0.0
        return max(self._retry_at.get(key, 0.0) - now, 0.0)

    def failed(self, key: Key, now: float, mark: Mark | None = None) -> float:
        """Record a failure of a pass over the release as ``mark`` shows it; the seconds
        until the next attempt."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self.cap, self.base * float(2 ** (failures - 1)))
        delay *= 0.5 + self.jitter() / 2  # between half and all of it
        self._retry_at[key] = now + delay
        if mark is not None:
            self._marks[key] = mark
        else:
            self._marks.pop(key, None)
        return delay

    def succeeded(self, key: Key) -> None:
        self._failures.pop(key, None)
        self._retry_at.pop(key, None)
        self._marks.pop(key, None)

    def failures(self, key: Key) -> int:
        return self._failures.get(key, 0)
