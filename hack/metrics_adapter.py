"""A test adapter: the Kubernetes external metrics API, answered from a Prometheus server.

Not a product component. It lets the local cluster's real HorizontalPodAutoscaler
controller read a Prometheus query through the real aggregation layer, so the e2e tests
can show an HPA scaling a ModelRelease on the simulator's load. On a real cluster use
KEDA (examples/autoscaling-keda.yaml) or prometheus-adapter instead.

    .venv/bin/python -m hack.metrics_adapter --prometheus http://127.0.0.1:19090 --port 6443

It serves ``external.metrics.k8s.io/v1beta1`` over HTTPS on 127.0.0.1 with a self-signed
certificate it makes at start (openssl). ``registration()`` gives the objects that point
the API server at it: a Service of type ExternalName (``localhost``; the aggregator then
dials ``https://localhost:PORT`` itself, no cluster network needed) and an APIService
whose caBundle is that certificate. Delete the APIService before stopping the adapter:
an APIService that does not answer holds up discovery, and with it namespace deletion.

A metric ``NAME`` asked for in namespace ``NS`` with the HPA's ``metric.selector`` is the
value of ``sum(NAME{namespace="NS", <selector>})``, or of the template given with
``--query NAME=TEMPLATE``, where ``<<.LabelMatchers>>`` stands for those label matchers
(prometheus-adapter's spelling), e.g. a 10 s average of the queue:

    --query 'vllm:num_requests_waiting=sum(avg_over_time(
             vllm:num_requests_waiting{<<.LabelMatchers>>}[10s]))'

An empty result is an empty list: the HPA reports that it got no metric and does not
scale, as with any adapter.

With ``--client-ca`` (the local cluster's ``pki/front-proxy-ca.crt``) only a client with
a certificate of that CA (the API server's aggregation layer, ``--proxy-client-cert-file``)
gets an answer; its ``X-Remote-User`` header, the user the HPA controller runs as, is
logged. Nothing else is authorised: it listens on the loopback interface of a test machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
LABEL_MATCHERS = "<<.LabelMatchers>>"
QUERY_TIMEOUT = 5.0
SERVICE_NAME = "modelrelease-test-metrics-adapter"

log = logging.getLogger("metrics-adapter")

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_REQUIREMENT = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[^\s=!,()]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?\s*"
)


class SelectorError(ValueError):
    """A label selector this adapter cannot turn into Prometheus label matchers."""


def _split_requirements(selector: str) -> list[str]:
    """Split on the commas outside parentheses (``a in (x,y),b=c``)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _quote(value: str) -> str:
    return json.dumps(value)


def label_matchers(namespace: str, selector: str) -> str:
    """Prometheus label matchers for a namespace and a Kubernetes label selector string."""
    matchers = [f"namespace={_quote(namespace)}"]
    for requirement in _split_requirements(selector):
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise SelectorError(f"cannot read the label selector requirement {requirement!r}")
        key = match["key"]
        if not _LABEL_NAME.match(key):
            raise SelectorError(
                f"label {key!r} is not a Prometheus label name: select on the target labels "
                "of the series (for the simulator: namespace, release, revision, pod)"
            )
        if match["op"]:
            if match["neg"]:
                raise SelectorError(f"cannot read the label selector requirement {requirement!r}")
            op = "!=" if match["op"] == "!=" else "="
            matchers.append(f"{key}{op}{_quote(match['value'])}")
        elif match["setop"]:
            values = [v.strip() for v in match["values"].split(",") if v.strip()]
            regex = "|".join(re.escape(v) for v in values)
            op = "=~" if match["setop"] == "in" else "!~"
            matchers.append(f"{key}{op}{_quote(regex)}")
        else:
            matchers.append(f'{key}=""' if match["neg"] else f'{key}!=""')
    return ",".join(matchers)


def promql(metric: str, matchers: str, templates: dict[str, str]) -> str:
    template = templates.get(metric, f"sum({metric}{{{LABEL_MATCHERS}}})")
    return template.replace(LABEL_MATCHERS, matchers)


def quantity(value: float) -> str:
    """A Kubernetes quantity in thousandths (what metrics APIs answer with)."""
    return f"{round(value * 1000)}m"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, expression: str) -> list[tuple[dict[str, str], float]]:
        """Instant vector or scalar result of ``expression``: (labels, value) pairs."""
        body = urllib.parse.urlencode({"query": expression}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=QUERY_TIMEOUT) as response:
            answer: dict[str, Any] = json.load(response)
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise ValueError(f"the query returns a {data['resultType']}, not a vector")
        return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


RESOURCE_LIST = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": GROUP_VERSION,
    # Only "get": the namespace controller and the garbage collector skip a resource
    # without list/delete verbs, so they never ask this adapter for anything.
    "resources": [
        {
            "name": "externalmetrics",
            "singularName": "",
            "namespaced": True,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }
    ],
}


class Adapter:
    def __init__(self, prometheus: Prometheus, templates: dict[str, str]) -> None:
        self.prometheus = prometheus
        self.templates = templates

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        prefix = ["apis", GROUP, VERSION]
        if parts == prefix:
            return 200, RESOURCE_LIST
        if len(parts) == 6 and parts[:3] == prefix and parts[3] == "namespaces":
            namespace, metric = parts[4], urllib.parse.unquote(parts[5])
            selector = (query.get("labelSelector") or [""])[0]
            return self.metric(namespace, metric, selector)
        return 404, _status(404, "NotFound", f"{path} is not served by this adapter")

    def metric(self, namespace: str, metric: str, selector: str) -> tuple[int, dict[str, Any]]:
        try:
            expression = promql(metric, label_matchers(namespace, selector), self.templates)
        except SelectorError as error:
            return 400, _status(400, "BadRequest", str(error))
        try:
            result = self.prometheus.query(expression)
        except (OSError, ValueError, KeyError, urllib.error.URLError) as error:
            log.warning("query %s failed: %s", expression, error)
            return 503, _status(503, "ServiceUnavailable", f"Prometheus query failed: {error}")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = [
            {
                "metricName": metric,
                "metricLabels": labels,
                "timestamp": now,
                "value": quantity(value),
            }
            for labels, value in result
            if value == value  # NaN (0/0) is no value
        ]
        log.info("%s -> %s", expression, [item["value"] for item in items])
        return 200, {
            "kind": "ExternalMetricValueList",
            "apiVersion": GROUP_VERSION,
            "metadata": {},
            "items": items,
        }


def _handler(adapter: Adapter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            log.debug("GET %s for %s", self.path, self.headers.get("X-Remote-User", "?"))
            code, body = adapter.answer(url.path, urllib.parse.parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


def make_certificate(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed serving certificate for ``names`` (DNS names) and 127.0.0.1."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    san = ",".join([f"DNS:{name}" for name in names] + ["IP:127.0.0.1"])
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=modelrelease-test-metrics-adapter", "-addext", f"subjectAltName={san}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_name(namespace: str, service: str = SERVICE_NAME) -> str:
    """The name the aggregator expects in the certificate: <service>.<namespace>.svc."""
    return f"{service}.{namespace}.svc"


def registration(
    namespace: str, port: int, ca_bundle: bytes, service: str = SERVICE_NAME
) -> list[dict[str, Any]]:
    """The Service and the APIService that send external metrics requests to the adapter."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"{VERSION}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"name": service, "namespace": namespace, "port": port},
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def _parse_query(value: str) -> tuple[str, str]:
    name, sep, template = value.partition("=")
    if not sep or not name or LABEL_MATCHERS not in template:
        raise argparse.ArgumentTypeError(f"expected NAME=TEMPLATE with {LABEL_MATCHERS}")
    return name, template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.metrics_adapter", description=__doc__)
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--port", type=int, required=True, help="HTTPS port on 127.0.0.1")
    parser.add_argument(
        "--tls-name",
        action="append",
        default=[],
        help="DNS name in the certificate (repeatable; e.g. server_name(namespace))",
    )
    parser.add_argument(
        "--cert-dir", type=Path, help="where the certificate goes (tls.crt, tls.key)"
    )
    parser.add_argument(
        "--client-ca", type=Path, help="require a client certificate of this CA (the aggregator's)"
    )
    parser.add_argument("--query", action="append", type=_parse_query, default=[])
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")

    directory = args.cert_dir or Path(tempfile.mkdtemp(prefix="metrics-adapter-"))
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(directory, [*args.tls_name, "localhost"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=args.client_ca)

    adapter = Adapter(Prometheus(args.prometheus), dict(args.query))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(adapter))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving %s on https://127.0.0.1:%d (certificate %s)", GROUP_VERSION, args.port, cert)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
