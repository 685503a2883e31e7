"""Prometheus file-based service discovery: the simulator's target file.

One file per simulator process, ``simulator-<pid>.json``, in the folder the
local Prometheus watches. It is replaced atomically (a temporary dot-file that
the ``*.json`` glob does not match, then a rename), rewritten only when its
content changes, and removed when the simulator stops. A file left by a
simulator that was killed is removed by the next one that starts.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hack.simulator.stats import write_json_atomically

FILE_PATTERN = re.compile(r"^simulator-(\d+)\.json$")


def target_group(address: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"targets": [address], "labels": dict(sorted(labels.items()))}


class TargetsFile:
    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.path = directory / f"simulator-{os.getpid() if pid is None else pid}.json"
        self._written: list[dict[str, Any]] | None = None

    def write(self, groups: Sequence[Mapping[str, Any]]) -> bool:
        """Write the groups if they differ from the last write; True when written."""
        document = sorted((dict(group) for group in groups), key=lambda g: g["targets"])
        if document == self._written:
            return False
        write_json_atomically(self.path, document)
        self._written = document
        return True

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self._written = None


def remove_stale(directory: Path) -> list[Path]:
    """Remove target files of simulator processes that no longer run."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = FILE_PATTERN.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True
