"""The fault-injection mode of the Kubernetes client (used by the chaos suite)."""

from __future__ import annotations

from typing import NoReturn

import pytest
from modelrelease.kube.errors import KubeError
from modelrelease.kube.faults import ENV, KILLED_EXIT_CODE, FaultInjection, Mode


class ExitedError(Exception):
    pass


def _exit(code: int) -> NoReturn:
    raise ExitedError(code)


def _faults(value: str) -> FaultInjection:
    faults = FaultInjection.parse(value)
    faults.exit = _exit
    return faults


def test_off_unless_set() -> None:
    assert FaultInjection.from_env({}) is None
    assert FaultInjection.from_env({ENV: ""}) is None


@pytest.mark.parametrize("value", ["fail-write", "fail-write=0", "explode=2", "kill-after-write=x"])
def test_invalid_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match=ENV):
        FaultInjection.parse(value)


def test_fail_write_fails_the_nth_write_of_a_pass_once() -> None:
    faults = _faults("fail-write=2")
    assert faults.mode is Mode.FAIL_WRITE
    faults.begin_pass()
    faults.before_write("first")
    with pytest.raises(KubeError, match="second"):
        faults.before_write("second")
    faults.begin_pass()
    for what in ("first", "second", "third"):
        faults.before_write(what)  # fired once already


def test_kill_after_write_exits_after_the_nth_write() -> None:
    faults = _faults("kill-after-write=2")
    faults.begin_pass()
    faults.before_write("first")
    faults.after_write("first")
    faults.before_write("second")
    with pytest.raises(ExitedError) as exited:
        faults.after_write("second")
    assert exited.value.args == (KILLED_EXIT_CODE,)


def test_kill_before_status_exits_before_the_nth_status_write() -> None:
    faults = _faults("kill-before-status=2")
    faults.begin_pass()
    faults.before_status()  # the first pass that writes status: not yet
    faults.before_write("status")
    faults.begin_pass()
    faults.before_write("scale")  # a pass that writes no status: not counted
    faults.begin_pass()
    with pytest.raises(ExitedError):
        faults.before_status()
