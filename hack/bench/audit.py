"""The local cluster's API server audit log: who asked for what, counted per time window.

`hack/local-cluster.sh up` with ``MODELRELEASE_AUDIT=1`` logs the requests of the
operators' group (user ``modelrelease-operator`` and any `identity` made for it) as JSON
lines at Metadata level, one line per finished request, in ``$STATE/audit.log`` and, once
it is rotated, ``audit-<time>.log`` beside it. Benchmarks read it after the fact to count
an operator's requests by verb, its writes and the requests the API server throttled.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
THROTTLED = 429


@dataclass(frozen=True)
class Request:
    """One finished API request."""

    at: datetime
    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    api_group: str = ""  # "" for the core group
    authorization: str = ""  # "allow" or "forbid": RBAC's decision, before admission

    @property
    def forbidden_by_rbac(self) -> bool:
        """Refused by authorization. A 403 after an "allow" came from admission (a write
        into a namespace being deleted, for one), not from missing rights."""
        return self.code == 403 and self.authorization != "allow"

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS


def parse_line(line: str) -> Request | None:
    """The request an audit line describes; None for anything but a finished request
    (a torn last line while the API server writes, another stage, no timestamp)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("stage") not in ("ResponseComplete", "Panic"):
        return None
    received = event.get("requestReceivedTimestamp")
    if not received:
        return None
    ref = event.get("objectRef") or {}
    return Request(
        at=datetime.fromisoformat(received),
        user=(event.get("user") or {}).get("username", ""),
        verb=event.get("verb", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int((event.get("responseStatus") or {}).get("code", 0)),
        api_group=ref.get("apiGroup", ""),
        authorization=(event.get("annotations") or {}).get("authorization.k8s.io/decision", ""),
    )


def log_files(path: Path) -> list[Path]:
    """The log and its rotated predecessors (``audit-<time>.log``), oldest first."""
    rotated = sorted(path.parent.glob(f"{path.stem}-*{path.suffix}"))
    return [*rotated, path] if path.exists() else rotated


def read_requests(path: Path, user: str) -> Iterator[Request]:
    """Every finished request of `user` in the log and its rotated files."""
    for file in log_files(path):
        with file.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                request = parse_line(line)
                if request is not None and request.user == user:
                    yield request


@dataclass
class Tally:
    """Requests in one window, by verb, with the writes and the throttled ones."""

    by_verb: Counter[str] = field(default_factory=Counter)
    status_writes: int = 0
    writes: int = 0
    throttled: int = 0

    @property
    def requests(self) -> int:
        return sum(self.by_verb.values())

    def add(self, request: Request) -> None:
        self.by_verb[request.verb] += 1
        self.writes += request.write
        self.status_writes += request.write and request.subresource == "status"
        self.throttled += request.code == THROTTLED


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def tally(requests: Iterable[Request], windows: Mapping[str, Window]) -> dict[str, Tally]:
    """Each window's tally of the requests received in it (windows may overlap)."""
    tallies = {name: Tally() for name in windows}
    for request in requests:
        for name, window in windows.items():
            if request.at in window:
                tallies[name].add(request)
    return tallies
