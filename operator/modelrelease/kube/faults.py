"""Fault injection for the chaos suite: fail or crash at a chosen write of a reconcile pass.

Off unless ``MODELRELEASE_FAULT_INJECTION`` is set to one of:

- ``fail-write=N``: the N-th write of a pass raises ``KubeError``, once per process,
  as a rejected or lost API call would;
- ``kill-after-write=N``: the process exits at once (no clean-up, no status write,
  like SIGKILL) right after the N-th write of a pass;
- ``kill-before-status=N``: the process exits right before the status write of the
  N-th pass (since it started) that writes its status, so that status write and every
  write after it are lost; armed just before a transition, N = 1, 2, ... hits each of
  the transition's passes in turn.

A write is a create, update, scale, delete or patch the operator's Kubernetes client
sends, the release's own status and annotation included (a pass writes its status
first, then acts). Counts are per process: use it with one release per operator.
Never set it in production.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn

from modelrelease.kube.errors import KubeError

ENV = "MODELRELEASE_FAULT_INJECTION"
KILLED_EXIT_CODE = 137  # what a shell reports for SIGKILL

log = logging.getLogger("modelrelease.faults")


class Mode(StrEnum):
    FAIL_WRITE = "fail-write"
    KILL_AFTER_WRITE = "kill-after-write"
    KILL_BEFORE_STATUS = "kill-before-status"


def _exit(code: int) -> NoReturn:
    os._exit(code)


@dataclass
class FaultInjection:
    """Counts the writes of the current pass and fires the configured fault."""

    mode: Mode
    at: int
    exit: Callable[[int], NoReturn] = field(default=_exit, repr=False)
    writes: int = 0
    status_writes: int = 0
    fired: bool = False

    @classmethod
    def parse(cls, value: str) -> FaultInjection:
        mode, _, number = value.strip().partition("=")
        try:
            parsed = cls(Mode(mode), int(number))
        except ValueError:
            parsed = None
        if parsed is None or parsed.at < 1:
            modes = ", ".join(f"{m.value}=N" for m in Mode)
            raise ValueError(f"{ENV}={value!r} is not one of {modes} with N >= 1")
        return parsed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> FaultInjection | None:
        value = environ.get(ENV, "")
        if not value:
            return None
        faults = cls.parse(value)
        log.warning(f"fault injection is ON ({ENV}={value}): for chaos tests only")
        return faults

    def begin_pass(self) -> None:
        self.writes = 0

    def before_write(self, what: str) -> None:
        self.writes += 1
        if self.mode is Mode.FAIL_WRITE and not self.fired and self.writes == self.at:
            self.fired = True
            log.warning(f"fault injection: failing write {self.writes} of this pass: {what}")
            raise KubeError(f"{what}: failed by fault injection ({ENV})")

    def after_write(self, what: str) -> None:
        if self.mode is Mode.KILL_AFTER_WRITE and self.writes == self.at:
            self._die(f"exiting after write {self.writes} of this pass: {what}")

    def before_status(self) -> None:
        """Called before a pass writes the release's status (before ``before_write``)."""
        self.status_writes += 1
        if self.mode is Mode.KILL_BEFORE_STATUS and self.status_writes == self.at:
            self._die(f"exiting before status write {self.at}: that pass acts on nothing")

    def _die(self, message: str) -> NoReturn:
        log.critical(f"fault injection: {message}")
        self.exit(KILLED_EXIT_CODE)
