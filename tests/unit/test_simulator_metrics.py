"""The simulator's metrics, endpoints, target file and stats file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hack.simulator.behaviour import RequestResult
from hack.simulator.main import parse_args
from hack.simulator.metrics import (
    REQUEST_LATENCY_BUCKETS,
    TOKEN_STEP_BUCKETS,
    TTFT_BUCKETS,
    FamiliesCollector,
    Histogram,
    MetricsServer,
    PodMetrics,
    pod_metric_families,
)
from hack.simulator.routing import EntryPoint
from hack.simulator.stats import (
    RequestCounts,
    RevisionKey,
    read_stats,
    served,
    simulator_metric_families,
    snapshot,
    write_json_atomically,
)
from hack.simulator.targets import TargetsFile, remove_stale, target_group

OK = RequestResult(success=True, ttft=0.3, e2e=2.0, output_tokens=5, tpot=0.425, score=0.85)
FAILED = RequestResult(success=False, ttft=0.05, e2e=0.05, output_tokens=1, tpot=0.0, score=None)


def test_histogram_buckets_are_upper_bounds() -> None:
    histogram = Histogram((0.1, 0.5, 1.0))
    for value in (0.1, 0.2, 0.5, 3.0):
        histogram.observe(value)
    histogram.observe(0.05, times=2)
    assert histogram.cumulative() == [("0.1", 3.0), ("0.5", 5.0), ("1.0", 5.0), ("+Inf", 6.0)]
    assert histogram.count == 6
    assert histogram.total == pytest.approx(0.1 + 0.2 + 0.5 + 3.0 + 0.1)


def test_vllm_bucket_edges() -> None:
    # vllm/v1/metrics/buckets.py: the SLO thresholds people use sit on these edges.
    assert TTFT_BUCKETS[0] == 0.001
    assert TTFT_BUCKETS[-1] == 2560.0
    assert len(TTFT_BUCKETS) == 22
    assert 0.75 in TTFT_BUCKETS
    assert 2.0 not in TTFT_BUCKETS
    assert len(TOKEN_STEP_BUCKETS) == 19
    assert TOKEN_STEP_BUCKETS[-1] == 80.0
    assert len(REQUEST_LATENCY_BUCKETS) == 23
    assert REQUEST_LATENCY_BUCKETS[-1] == 7680.0
    for edges in (TTFT_BUCKETS, TOKEN_STEP_BUCKETS, REQUEST_LATENCY_BUCKETS):
        assert list(edges) == sorted(set(edges))


def exposition(metrics: PodMetrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(threading.Lock(), lambda: pod_metric_families(metrics)))
    text = generate_latest(registry).decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_pod_metrics_have_vllm_names_and_labels() -> None:
    metrics = PodMetrics("chat-8b")
    metrics.record(OK)
    metrics.record(OK)
    metrics.record(FAILED)
    metrics.set_load(in_flight=10, max_num_seqs=8)
    samples = exposition(metrics)
    vllm = {"engine": "0", "model_name": "chat-8b"}
    assert samples["vllm:num_requests_running"][key(**vllm)] == 8
    assert samples["vllm:num_requests_waiting"][key(**vllm)] == 2
    assert samples["vllm:kv_cache_usage_perc"][key(**vllm)] == 1.0
    success = samples["vllm:request_success_total"]
    assert success[key(**vllm, finished_reason="stop")] == 2
    assert success[key(**vllm, finished_reason="error")] == 1
    assert success[key(**vllm, finished_reason="length")] == 0
    ttft = samples["vllm:time_to_first_token_seconds_bucket"]
    assert ttft[key(**vllm, le="0.25")] == 0
    assert ttft[key(**vllm, le="0.5")] == 2
    assert samples["vllm:time_to_first_token_seconds_count"][key(**vllm)] == 2  # errors: none
    assert samples["vllm:e2e_request_latency_seconds_sum"][key(**vllm)] == pytest.approx(4.0)
    assert samples["vllm:inter_token_latency_seconds_count"][key(**vllm)] == 8  # 4 gaps x 2
    assert samples["vllm:time_per_output_token_seconds_count"][key(**vllm)] == 8
    assert samples["vllm:request_time_per_output_token_seconds_count"][key(**vllm)] == 2
    assert samples["vllm:generation_tokens_total"][key(**vllm)] == 10
    http = samples["http_requests_total"]
    handler = {"handler": "/v1/chat/completions", "method": "POST"}
    assert http[key(**handler, status="2xx")] == 2
    assert http[key(**handler, status="5xx")] == 1
    score = samples["model_prediction_score_bucket"]
    assert score[key(le="0.8", model_name="chat-8b")] == 0
    assert score[key(le="0.9", model_name="chat-8b")] == 2


def test_no_error_series_before_the_first_error() -> None:
    # Like prometheus-fastapi-instrumentator: a status series appears with its first request.
    metrics = PodMetrics("m")
    metrics.record(OK)
    statuses = {dict(labels)["status"] for labels in exposition(metrics)["http_requests_total"]}
    assert statuses == {"2xx"}


def test_the_endpoint_keeps_vllm_names_whatever_prometheus_asks_for() -> None:
    metrics = PodMetrics("m")
    metrics.record(OK)
    server = MetricsServer(
        FamiliesCollector(threading.Lock(), lambda: pod_metric_families(metrics))
    )
    try:
        request = urllib.request.Request(
            f"http://{server.address}/metrics",
            headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert 'vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 1.0' in body
        assert "vllm_e2e" not in body
    finally:
        server.close()


def test_simulator_metrics() -> None:
    counts = RequestCounts()
    entry = EntryPoint("HTTPRoute", "llm", "chat")
    counts.count_served(RevisionKey("llm", "chat", "b"), "mirror", success=False)
    counts.count_routed(entry, "chat-canary", "user", 503)
    families = {family.name: family for family in simulator_metric_families(counts)}
    [served_sample] = families["simulator_requests"].samples
    assert served_sample.labels == {
        "namespace": "llm",
        "release": "chat",
        "revision": "b",
        "kind": "mirror",
        "outcome": "error",
    }
    [routed_sample] = families["simulator_route_requests"].samples
    assert routed_sample.labels == {
        "namespace": "llm",
        "route": "HTTPRoute/chat",
        "backend": "chat-canary",
        "kind": "user",
        "code": "503",
    }


def test_stats_file_round_trip(tmp_path: Path) -> None:
    counts = RequestCounts()
    three = RevisionKey("llm", "chat", "v3")
    for second in range(4):
        counts.count_served(three, "user", success=True, at=10.0 + second)
    counts.count_served(three, "user", success=False, at=12.5)
    counts.count_served(three, "mirror", success=True, at=9.0)
    idle = RevisionKey("llm", "chat", "v4")
    document = snapshot(counts, [(three, 1), (idle, 2)], {}, "sim", 1.0, 2.0)
    path = tmp_path / "nested" / "stats.json"
    write_json_atomically(path, document)
    stats = read_stats(path)
    assert served(stats, "v3") == 5
    assert served(stats, "v3", outcome="error") == 1
    assert served(stats, "v3", kind="mirror") == 1
    assert served(stats, "v3", namespace="elsewhere") == 0
    assert served(stats, "v4") == 0
    assert [row["pods"] for row in stats["revisions"]] == [1, 2]
    row = stats["revisions"][0]
    assert (row["firstUserRequestAt"], row["lastUserRequestAt"]) == (10.0, 13.0)
    assert row["firstUserErrorAt"] == 12.5  # the first bad request the users got
    assert stats["revisions"][1]["firstUserRequestAt"] is None
    assert [p.name for p in path.parent.iterdir()] == ["stats.json"]  # no temporary left


def test_target_file(tmp_path: Path) -> None:
    targets = TargetsFile(tmp_path, pid=4242)
    group = target_group("127.0.0.1:1234", {"revision": "a", "namespace": "llm"})
    assert targets.write([group])
    assert not targets.write([group])  # unchanged: not rewritten
    assert json.loads((tmp_path / "simulator-4242.json").read_text()) == [
        {"targets": ["127.0.0.1:1234"], "labels": {"namespace": "llm", "revision": "a"}}
    ]
    targets.remove()
    assert not list(tmp_path.iterdir())


def test_stale_target_files_are_removed(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"simulator-{finished.stdout.strip()}.json"
    alive = tmp_path / f"simulator-{os.getpid()}.json"
    other = tmp_path / "operator.json"
    for path in (dead, alive, other):
        path.write_text("[]")
    assert remove_stale(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


def test_command_line_defaults() -> None:
    args = parse_args(["--namespace", "llm", "--seed", "3"])
    assert args.namespace == "llm"
    assert args.seed == 3
    assert args.tick == 0.1
    assert args.targets_dir.parts[-3:] == (".local-cluster", "prometheus", "targets")
    with pytest.raises(SystemExit):
        parse_args(["--tick", "0"])


def test_requests_no_pod_saw_are_reported_apart_from_pod_errors() -> None:
    counts = RequestCounts()
    entry = EntryPoint("HTTPRoute", "llm", "chat")
    counts.count_routed(entry, "chat-canary", "user", 500)  # a pod answered 500
    counts.count_routed(entry, "chat-canary", "user", 503, unserved=True)  # no ready pod
    counts.count_routed(entry, "chat-gone", "mirror", 500, unserved=True)  # no such Service
    [row] = snapshot(counts, [], {entry: 1.0}, "sim", 0.0, 1.0)["entrypoints"]
    assert len(row["requests"]) == 3
    assert row["unserved"] == [
        {"backend": "chat-canary", "kind": "user", "code": 503, "count": 1},
        {"backend": "chat-gone", "kind": "mirror", "code": 500, "count": 1},
    ]
