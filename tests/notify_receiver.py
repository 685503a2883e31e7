"""A notification receiver on 127.0.0.1 for the tests: it records every POST (path,
headers, raw body) and answers with the statuses it is told, per path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    # Per path, the statuses to answer with, in order; 200 once they run out.
    answers: dict[str, list[int]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)  # paths answering 503 until removed
    slow: dict[str, float] = field(default_factory=dict)  # seconds a path takes to answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.received if request.path == path]

    def delivered(self, path: str) -> list[Received]:
        """The requests to ``path`` that were answered 2xx."""
        return [request for request in self.at(path) if 200 <= request.status < 300]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            time.sleep(state.slow.get(self.path, 0.0))
            with state.lock:
                queue = state.answers.get(self.path) or []
                status = queue.pop(0) if queue else 200
                if self.path in state.down:
                    status = 503
                headers = dict(self.headers.items())
                state.received.append(Received(self.path, headers, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
