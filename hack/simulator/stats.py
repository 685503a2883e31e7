"""Counts of requests per revision and per route, as metrics and as a JSON file.

``simulator_requests_total{namespace, release, revision, kind, outcome}`` counts
the requests pods served (``kind`` is ``user`` or ``mirror``; ``outcome`` is
``success`` or ``error``), counted when a request reaches a pod.
``simulator_route_requests_total{namespace, route, backend, kind, code}``
counts what each entry point answered, including 503 (no ready pod) and 500
(no usable backend) that no pod saw.

The JSON snapshot (``--stats-file``) holds the same numbers so that the demo
and the benchmarks can read "how many user requests did revision X serve"
without Prometheus; :func:`read_stats` and :func:`served` read it back.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from hack.simulator.routing import EntryPoint

USER = "user"
MIRROR = "mirror"
SUCCESS = "success"
ERROR = "error"


@dataclass(frozen=True, order=True)
class RevisionKey:
    namespace: str
    release: str
    revision: str


@dataclass
class RequestCounts:
    """Monotonic counters. Not thread-safe: guard with the engine's lock."""

    served: dict[tuple[RevisionKey, str, str], int] = field(default_factory=dict)
    routed: dict[tuple[EntryPoint, str, str, int], int] = field(default_factory=dict)
    # The subset of `routed` that no pod saw: no ready pod (503), no such Service (500).
    unserved: dict[tuple[EntryPoint, str, str, int], int] = field(default_factory=dict)
    # When each (revision, kind, outcome) was first and last served (Unix seconds).
    first_at: dict[tuple[RevisionKey, str, str], float] = field(default_factory=dict)
    last_at: dict[tuple[RevisionKey, str, str], float] = field(default_factory=dict)

    def count_served(
        self, revision: RevisionKey, kind: str, success: bool, at: float | None = None
    ) -> None:
        key = (revision, kind, SUCCESS if success else ERROR)
        self.served[key] = self.served.get(key, 0) + 1
        if at is not None:
            self.first_at.setdefault(key, at)
            self.last_at[key] = at

    def count_routed(
        self, entry: EntryPoint, backend: str, kind: str, code: int, unserved: bool = False
    ) -> None:
        key = (entry, backend, kind, code)
        self.routed[key] = self.routed.get(key, 0) + 1
        if unserved:
            self.unserved[key] = self.unserved.get(key, 0) + 1

    def served_total(self, revision: RevisionKey, kind: str = USER) -> int:
        return sum(self.served.get((revision, kind, outcome), 0) for outcome in (SUCCESS, ERROR))


def simulator_metric_families(counts: RequestCounts) -> list[Metric]:
    served = CounterMetricFamily(
        "simulator_requests",
        "Requests served by simulated pods, by revision, kind (user or mirror) and outcome.",
        labels=("namespace", "release", "revision", "kind", "outcome"),
    )
    for (revision, kind, outcome), count in sorted(counts.served.items()):
        served.add_metric(
            [revision.namespace, revision.release, revision.revision, kind, outcome], count
        )
    routed = CounterMetricFamily(
        "simulator_route_requests",
        "Requests answered per entry point and backend, by kind and HTTP status code.",
        labels=("namespace", "route", "backend", "kind", "code"),
    )
    for (entry, backend, kind, code), count in sorted(counts.routed.items()):
        route = f"{entry.kind}/{entry.name}"
        routed.add_metric([entry.namespace, route, backend, kind, str(code)], count)
    return [served, routed]


def snapshot(
    counts: RequestCounts,
    revisions: Iterable[tuple[RevisionKey, int]],
    rates: Mapping[EntryPoint, float],
    simulator: str,
    started_at: float,
    now: float,
) -> dict[str, Any]:
    """The JSON document written to the stats file.

    ``revisions`` lists every revision with its number of known pods, so that a
    revision that has pods but no requests yet is there with zeros.
    """
    pods = dict(revisions)
    keys = sorted(set(pods) | {revision for revision, _, _ in counts.served})
    revision_rows = [_revision_row(counts, key, pods.get(key, 0)) for key in keys]
    entries = sorted(set(rates) | {entry for entry, _, _, _ in counts.routed})
    entry_rows = []
    for entry in entries:
        answers = [
            {"backend": backend, "kind": kind, "code": code, "count": count}
            for (e, backend, kind, code), count in sorted(counts.routed.items())
            if e == entry
        ]
        unserved = [
            {"backend": backend, "kind": kind, "code": code, "count": count}
            for (e, backend, kind, code), count in sorted(counts.unserved.items())
            if e == entry
        ]
        entry_rows.append(
            {
                "namespace": entry.namespace,
                "kind": entry.kind,
                "name": entry.name,
                "rate": rates.get(entry, 0.0),
                "requests": answers,
                "unserved": unserved,
            }
        )
    return {
        "simulator": simulator,
        "startedAt": started_at,
        "time": now,
        "revisions": revision_rows,
        "entrypoints": entry_rows,
    }


def _revision_row(counts: RequestCounts, key: RevisionKey, pods: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "namespace": key.namespace,
        "release": key.release,
        "revision": key.revision,
        "pods": pods,
    }
    for kind in (USER, MIRROR):
        row[kind] = {
            outcome: counts.served.get((key, kind, outcome), 0) for outcome in (SUCCESS, ERROR)
        }
    user = [(key, USER, outcome) for outcome in (SUCCESS, ERROR)]
    firsts = [counts.first_at[k] for k in user if k in counts.first_at]
    lasts = [counts.last_at[k] for k in user if k in counts.last_at]
    row["firstUserRequestAt"] = min(firsts, default=None)
    row["lastUserRequestAt"] = max(lasts, default=None)
    row["firstUserErrorAt"] = counts.first_at.get((key, USER, ERROR))
    return row


def write_json_atomically(path: Path, document: object) -> None:
    """Readers never see a half-written file: write a temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=1, sort_keys=True)
            stream.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_stats(path: str | Path) -> dict[str, Any]:
    with open(path) as stream:
        document: dict[str, Any] = json.load(stream)
    return document


def served(
    stats: Mapping[str, Any],
    revision: str,
    *,
    kind: str = USER,
    outcome: str | None = None,
    namespace: str | None = None,
) -> int:
    """Requests of a kind a revision served (both outcomes unless one is named)."""
    total = 0
    for row in stats.get("revisions", []):
        if row["revision"] != revision or (namespace is not None and row["namespace"] != namespace):
            continue
        counts = row.get(kind, {})
        total += counts.get(outcome, 0) if outcome else sum(counts.values())
    return int(total)
