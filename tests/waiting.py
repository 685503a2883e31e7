"""Waiting on conditions with a deadline: the only synchronisation tests use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeoutError(AssertionError):
    """A condition did not hold before its deadline."""


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns something truthy; return that value.

    Exceptions raised by the probe count as "not yet" and the last one is
    reported if the deadline passes, so a flaky read does not fail a test but a
    persistent error is still shown.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: T | None = None
    while True:
        try:
            last_value = probe()
            if last_value:
                return last_value
        except Exception as error:  # reported below if it persists
            last_error = error
        if time.monotonic() >= deadline:
            detail = (
                f"; last error: {last_error!r}" if last_error else f"; last value: {last_value!r}"
            )
            raise ConditionTimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}{detail}"
            )
        time.sleep(interval)
