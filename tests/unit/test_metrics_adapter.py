"""The test metrics adapter's pure parts: label selectors to PromQL, paths to answers.

What it does with the API server and Prometheus is tested end to end by
tests/e2e/test_autoscaling.py (the HPA controller reads it through the aggregator).
"""

from __future__ import annotations

import pytest

from hack.metrics_adapter import (
    GROUP_VERSION,
    Adapter,
    Prometheus,
    SelectorError,
    label_matchers,
    promql,
    quantity,
    registration,
)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", 'namespace="llm"'),
        ("release=chat", 'namespace="llm",release="chat"'),
        ("release==chat,revision!=abc", 'namespace="llm",release="chat",revision!="abc"'),
        ("revision in (a.b, c)", r'namespace="llm",revision=~"a\\.b|c"'),
        ("revision notin (x)", 'namespace="llm",revision!~"x"'),
        ("release,!revision", 'namespace="llm",release!="",revision=""'),
    ],
)
def test_a_label_selector_becomes_label_matchers(selector: str, expected: str) -> None:
    assert label_matchers("llm", selector) == expected


@pytest.mark.parametrize("selector", ["modelrelease.dev/release=chat", "a=(b", "!a=b"])
def test_a_selector_prometheus_cannot_express_is_refused(selector: str) -> None:
    with pytest.raises(SelectorError):
        label_matchers("llm", selector)


def test_a_metric_is_summed_unless_a_template_says_otherwise() -> None:
    matchers = 'namespace="llm",release="chat"'
    assert promql("vllm:num_requests_waiting", matchers, {}) == (
        'sum(vllm:num_requests_waiting{namespace="llm",release="chat"})'
    )
    template = "max(up{<<.LabelMatchers>>})"
    assert promql("up", matchers, {"up": template}) == f"max(up{{{matchers}}})"


def test_values_are_quantities_in_thousandths() -> None:
    assert quantity(17) == "17000m"
    assert quantity(1.375) == "1375m"
    assert quantity(0) == "0m"


class FixedPrometheus(Prometheus):
    def __init__(self, result: list[tuple[dict[str, str], float]]) -> None:
        super().__init__("http://unused")
        self.result = result
        self.queries: list[str] = []

    def query(self, expression: str) -> list[tuple[dict[str, str], float]]:
        self.queries.append(expression)
        return self.result


def test_the_external_metrics_path_answers_a_value_list() -> None:
    prometheus = FixedPrometheus([({}, 3.5), ({"x": "nan"}, float("nan"))])
    adapter = Adapter(prometheus, {})
    path = f"/apis/{GROUP_VERSION}/namespaces/llm/vllm%3Anum_requests_waiting"
    code, body = adapter.answer(path, {"labelSelector": ["release=chat"]})
    assert code == 200
    assert body["kind"] == "ExternalMetricValueList"
    [item] = body["items"]  # NaN is no value
    assert item["metricName"] == "vllm:num_requests_waiting"
    assert item["value"] == "3500m"
    assert prometheus.queries == ['sum(vllm:num_requests_waiting{namespace="llm",release="chat"})']


def test_discovery_lists_a_resource_nobody_lists_or_deletes() -> None:
    code, body = Adapter(FixedPrometheus([]), {}).answer(f"/apis/{GROUP_VERSION}", {})
    assert code == 200
    [resource] = body["resources"]
    assert resource["verbs"] == ["get"]  # the namespace controller skips it


def test_unknown_paths_and_bad_selectors_are_errors() -> None:
    adapter = Adapter(FixedPrometheus([]), {})
    assert adapter.answer("/apis", {})[0] == 404
    path = f"/apis/{GROUP_VERSION}/namespaces/llm/up"
    code, body = adapter.answer(path, {"labelSelector": ["app.kubernetes.io/name=x"]})
    assert code == 400
    assert "not a Prometheus label name" in body["message"]


def test_registration_points_the_aggregator_at_localhost() -> None:
    service, apiservice = registration("llm", 6443, b"PEM")
    assert service["spec"] == {"type": "ExternalName", "externalName": "localhost"}
    assert apiservice["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    assert apiservice["spec"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": "llm",
        "port": 6443,
    }
    assert "insecureSkipTLSVerify" not in apiservice["spec"]
