"""vLLM-named metrics of one simulated pod, and their HTTP endpoints.

The names, label names and histogram bucket edges are vLLM's (``vllm/v1/metrics``:
``loggers.py`` and ``buckets.py``), so SLO queries written for a real vLLM
server work unchanged. The HTTP counter is the one vLLM's OpenAI server gets
from prometheus-fastapi-instrumentator: ``http_requests_total{handler, method,
status}`` with status codes grouped (``2xx``, ``5xx``).

The numbers live in plain objects the traffic engine updates under its lock; a
custom collector turns them into metric families when Prometheus scrapes.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hack.simulator.behaviour import RequestResult

# vLLM's bucket edges (vllm/v1/metrics/buckets.py).
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TOKEN_STEP_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_LATENCY_BUCKETS = (
    0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
# Not a vLLM metric: a classifier's prediction score, for output-drift comparisons.
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# vLLM creates every finished_reason series up front (FINISH_REASON_STRINGS).
FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")
VLLM_LABELS = ("model_name", "engine")
ENGINE = "0"
HANDLER = "/v1/chat/completions"


class Histogram:
    """Cumulative-on-read histogram with fixed upper bounds (``le``)."""

    def __init__(self, edges: Sequence[float]) -> None:
        self.edges = tuple(edges)
        self.counts = [0] * (len(self.edges) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        if times <= 0:
            return
        self.counts[bisect.bisect_left(self.edges, value)] += times
        self.total += value * times
        self.count += times

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        buckets = []
        for edge, count in zip((*self.edges, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bucket_label(edge), float(running)))
        return buckets


def bucket_label(edge: float) -> str:
    """The ``le`` value as prometheus_client writes it (1.0, 0.25, +Inf)."""
    return "+Inf" if edge == float("inf") else repr(float(edge))


class PodMetrics:
    """Everything one pod exposes. Not thread-safe: guard with the engine's lock."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(REQUEST_LATENCY_BUCKETS)
        self.inter_token = Histogram(TOKEN_STEP_BUCKETS)
        self.request_tpot = Histogram(TOKEN_STEP_BUCKETS)
        self.score = Histogram(SCORE_BUCKETS)
        self.finished = dict.fromkeys(FINISHED_REASONS, 0)
        self.http: dict[str, int] = {}  # grouped status ("2xx") -> requests
        self.generation_tokens = 0
        self.running = 0
        self.waiting = 0
        self.kv_cache_usage = 0.0

    def record(self, result: RequestResult) -> None:
        """A finished request. A failed one counts only as an error (no latencies)."""
        if not result.success:
            self.finished["error"] += 1
            self.http["5xx"] = self.http.get("5xx", 0) + 1
            return
        self.finished["stop"] += 1
        self.http["2xx"] = self.http.get("2xx", 0) + 1
        self.generation_tokens += result.output_tokens
        self.ttft.observe(result.ttft)
        self.e2e.observe(result.e2e)
        if result.output_tokens > 1:
            # One decoding pace per request: every token gap is the same.
            self.inter_token.observe(result.tpot, result.output_tokens - 1)
            self.request_tpot.observe(result.tpot)
        if result.score is not None:
            self.score.observe(result.score)

    def set_load(self, in_flight: int, max_num_seqs: int) -> None:
        """Requests in flight beyond the batch size wait; the KV cache fills with the batch."""
        self.running = min(in_flight, max_num_seqs)
        self.waiting = in_flight - self.running
        self.kv_cache_usage = self.running / max_num_seqs


def pod_metric_families(metrics: PodMetrics) -> list[Metric]:
    labels = [metrics.model_name, ENGINE]
    families: list[Metric] = []

    def histogram(name: str, documentation: str, data: Histogram) -> None:
        family = HistogramMetricFamily(name, documentation, labels=VLLM_LABELS)
        family.add_metric(labels, data.cumulative(), data.total)
        families.append(family)

    def gauge(name: str, documentation: str, value: float) -> None:
        family = GaugeMetricFamily(name, documentation, labels=VLLM_LABELS)
        family.add_metric(labels, value)
        families.append(family)

    gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        metrics.running,
    )
    gauge(
        "vllm:num_requests_waiting", "Number of requests waiting to be processed.", metrics.waiting
    )
    gauge(
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        metrics.kv_cache_usage,
    )
    success = CounterMetricFamily(
        "vllm:request_success",
        "Count of successfully processed requests.",
        labels=(*VLLM_LABELS, "finished_reason"),
    )
    for reason, count in metrics.finished.items():
        success.add_metric([*labels, reason], count)
    families.append(success)
    tokens = CounterMetricFamily(
        "vllm:generation_tokens", "Number of generation tokens processed.", labels=VLLM_LABELS
    )
    tokens.add_metric(labels, metrics.generation_tokens)
    families.append(tokens)
    histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        metrics.ttft,
    )
    histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        metrics.e2e,
    )
    histogram(
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        metrics.inter_token,
    )
    histogram(
        "vllm:time_per_output_token_seconds",
        "Histogram of time per output token in seconds. DEPRECATED: use "
        "vllm:inter_token_latency_seconds.",
        metrics.inter_token,
    )
    histogram(
        "vllm:request_time_per_output_token_seconds",
        "Histogram of time_per_output_token_seconds per request.",
        metrics.request_tpot,
    )
    score = HistogramMetricFamily(
        "model_prediction_score",
        "Histogram of the model's prediction score (simulated classifier output).",
        labels=("model_name",),
    )
    score.add_metric([metrics.model_name], metrics.score.cumulative(), metrics.score.total)
    families.append(score)
    http = CounterMetricFamily(
        "http_requests",
        "Total number of requests by method, status and handler.",
        labels=("handler", "method", "status"),
    )
    for status, count in sorted(metrics.http.items()):
        http.add_metric([HANDLER, "POST", status], count)
    families.append(http)
    return families


class FamiliesCollector(Collector):
    """Builds metric families on every scrape, under the lock that guards the data."""

    def __init__(self, lock: threading.Lock, build: Callable[[], Iterable[Metric]]) -> None:
        self._lock = lock
        self._build = build

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = list(self._build())
        yield from families


class MetricsServer:
    """An HTTP endpoint on 127.0.0.1 with an ephemeral port, in a daemon thread.

    It always answers in the classic text format (0.0.4): prometheus_client's
    OpenMetrics writer turns the colons of ``vllm:`` names into underscores when
    Prometheus asks for OpenMetrics, and SLO queries use vLLM's real names.
    """

    def __init__(self, collector: Collector, host: str = "127.0.0.1") -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-{self._server.server_port}"
        )
        self._thread.daemon = True
        self._thread.start()
        self.host = host
        self.port: int = self._server.server_port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
