"""``kubectl modelrelease status NAME [--watch] [-o json|yaml]``.

With ``--watch`` the view follows a watch on the release (not polling) and is
redrawn in place on a terminal; the clock of the current step ticks client-side.
The route, Events and GPUs are re-read when the release changes and every few
seconds. The command ends when the release settles in a terminal phase, with
the exit code of that phase, so CI can wait on a release.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from modelrelease.cli.cluster import Cluster, iterate
from modelrelease.cli.render import (
    TERMINAL_EXIT_CODES,
    StatusInputs,
    settled_phase,
    status_view,
)

Json = dict[str, Any]
TICK_SECONDS = 1.0
REFRESH_SECONDS = 3.0  # route and Events
GPU_REFRESH_SECONDS = 15.0  # Nodes and Pods of the whole cluster: seldom
FINAL_ROUTE_SECONDS = 5.0
CLEAR = "\x1b[H\x1b[2J"


class Screen:
    """Draws frames: in place on a terminal, appended (only when changed) otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self.last = ""

    def show(self, text: str, tick: bool = False) -> None:
        if self.live:
            self.out.write(CLEAR + text + "\n")
        elif not tick and text != self.last:
            if self.last:
                self.out.write("\n")
            self.out.write(text + "\n")
        else:
            return
        self.last = text
        self.out.flush()


def dump(release: Json, output: str) -> str:
    if output == "json":
        return json.dumps(release, indent=2)
    return yaml.safe_dump(release, sort_keys=False)


def run(cluster: Cluster, name: str, watch: bool, output: str | None) -> int:
    release = cluster.release(name)
    if not watch:
        if output:
            sys.stdout.write(dump(release, output).rstrip("\n") + "\n")
        else:
            print(status_view(cluster.status_inputs(release)))
        return 0
    if output:
        return _watch_documents(cluster, release, output)
    return _watch_view(cluster, release)


def _watch_documents(cluster: Cluster, release: Json, output: str) -> int:
    separator = "---\n" if output == "yaml" else ""
    sys.stdout.write(separator + dump(release, output).rstrip("\n") + "\n")
    sys.stdout.flush()
    if (code := _exit_code(release)) is not None:
        return code
    meta = release["metadata"]
    with cluster.follow(meta["name"], meta["resourceVersion"]) as updates:
        for item in iterate(updates, TICK_SECONDS):
            if item is None:
                continue
            sys.stdout.write(separator + dump(item, output).rstrip("\n") + "\n")
            sys.stdout.flush()
            if (code := _exit_code(item)) is not None:
                return code
    return 0  # not reached: the watch ends only with an error


def _watch_view(cluster: Cluster, release: Json) -> int:
    screen = Screen(sys.stdout)
    inputs = cluster.status_inputs(release)
    screen.show(status_view(inputs))
    meta = release["metadata"]
    code = _exit_code(release)
    if code is None:
        with cluster.follow(meta["name"], meta["resourceVersion"]) as updates:
            release, code = _follow_view(cluster, screen, release, inputs, updates)
    screen.show(status_view(_final(cluster, release)))
    phase = settled_phase(release)
    print(f"{meta['name']} ended {phase}: exit code {code}", file=sys.stderr)
    return code


def _follow_view(
    cluster: Cluster,
    screen: Screen,
    release: Json,
    inputs: StatusInputs,
    updates: queue.Queue[Json | BaseException],
) -> tuple[Json, int]:
    """Redraw on each new version of the release and every second; return the last one
    and its exit code once it settles."""
    refreshed = gpus_refreshed = time.monotonic()
    while (code := _exit_code(release)) is None:
        item = next(iterate(updates, TICK_SECONDS))
        now = time.monotonic()
        if item is not None or now - refreshed >= REFRESH_SECONDS:
            release = item if item is not None else release
            with_gpus = now - gpus_refreshed >= GPU_REFRESH_SECONDS
            fresh = cluster.status_inputs(release, with_gpus=with_gpus)
            inputs = fresh if with_gpus else replace(fresh, gpus=inputs.gpus)
            refreshed = now
            gpus_refreshed = now if with_gpus else gpus_refreshed
        else:
            inputs = replace(inputs, now=datetime.now(UTC))
        screen.show(status_view(inputs), tick=item is None)
    return release, code


def _final(cluster: Cluster, release: Json) -> StatusInputs:
    """The last frame, once the route shows the end too: a pass writes status just
    before it moves the route, so the status that ends the watch can come first."""
    deadline = time.monotonic() + FINAL_ROUTE_SECONDS
    while True:
        inputs = cluster.status_inputs(release)
        routes = inputs.routes
        ended = routes is None or routes.canary_weight == routes.mirror_percent == 0
        if ended or time.monotonic() >= deadline:
            return inputs
        time.sleep(TICK_SECONDS / 4)


def _exit_code(release: Json) -> int | None:
    phase = settled_phase(release)
    return None if phase is None else TERMINAL_EXIT_CODES[phase]
