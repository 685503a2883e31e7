"""The readiness endpoint: 200 once every watch of the views has listed, else 503.

kopf's own endpoint (``--liveness``) answers as soon as the operator runs, which
is what liveness needs and too early for readiness: a replica that is still
listing could not take over from the leader with a warm view. With the chart's
rolling update (``maxUnavailable: 0``), the old pod stops only once the new one
is Ready by this endpoint. A standby replica is Ready too: it is ready to lead.

Served from a daemon thread with the standard library, as the metrics endpoint
is: the check reads only thread-safe events (``Views.synced``).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_OK = 200
HTTP_UNAVAILABLE = 503
HTTP_NOT_FOUND = 404


def address(endpoint: str) -> tuple[str, int, str]:
    """Host, port and path of an ``http://host:port/path`` endpoint."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme != "http" or parts.port is None:
        raise ValueError(f"readiness endpoint {endpoint!r}: expected http://HOST:PORT/PATH")
    return parts.hostname or "0.0.0.0", parts.port, parts.path or "/"


def serve(endpoint: str, unready: Callable[[], list[str]]) -> ThreadingHTTPServer:
    """Answer GET ``path`` with 200, or 503 naming what ``unready`` says is missing."""
    host, port, path = address(endpoint)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != path:
                self._answer(HTTP_NOT_FOUND, "not found\n")
                return
            missing = unready()
            if missing:
                self._answer(HTTP_UNAVAILABLE, f"still listing: {', '.join(missing)}\n")
            else:
                self._answer(HTTP_OK, "ok\n")

        def _answer(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a probe every few seconds is not news

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="readiness", daemon=True).start()
    return server
