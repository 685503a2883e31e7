"""The chart's monitoring toggles: the Grafana dashboard ConfigMap and the PrometheusRule,
both off by default, both the very files kept in the chart for use without Helm."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.cluster.test_chart import CHART, helm

DASHBOARD = CHART / "dashboards" / "modelrelease.json"
RULES = CHART / "alerts" / "modelrelease.rules.yaml"


def render(*overrides: str) -> list[dict[str, Any]]:
    args = [arg for override in overrides for arg in ("--set", override)]
    rendered = helm("template", "t", str(CHART), "-n", "ops", *args)
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def dashboards(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]


def test_dashboard_and_alerts_are_off_by_default() -> None:
    documents = render()
    assert dashboards(documents) == []
    assert [d for d in documents if d["kind"] == "PrometheusRule"] == []


def test_the_dashboard_configmap_holds_the_dashboard_file() -> None:
    documents = render(
        "dashboards.enabled=true",
        "dashboards.namespace=monitoring",
        "dashboards.annotations.grafana_folder=Releases",
    )
    [config_map] = dashboards(documents)
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Releases"}
    shipped = json.loads(config_map["data"]["modelrelease.json"])
    assert shipped == json.loads(DASHBOARD.read_text())
    assert [p["repeat"] for p in shipped["panels"] if p.get("repeat")] == ["release"]


@pytest.mark.parametrize(
    ("overrides", "job"),
    [
        ((), "t-modelrelease-operator-metrics"),  # the metrics Service, as a ServiceMonitor
        (("prometheusRule.operatorJob=operators",), "operators"),
    ],
)
def test_the_prometheus_rule_holds_the_rules_file_with_the_operator_job(
    overrides: tuple[str, ...], job: str
) -> None:
    documents = render("prometheusRule.enabled=true", "prometheusRule.labels.prom=main", *overrides)
    [rule] = [d for d in documents if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["prom"] == "main"
    expected = yaml.safe_load(
        RULES.read_text().replace('job="modelrelease-operator"', f'job="{job}"')
    )
    assert rule["spec"] == expected
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert any(f'job="{job}"' in expr for expr in exprs)


@pytest.mark.parametrize(
    ("override", "complaint"),
    [("dashboards.enabled=yes", "enabled"), ("prometheusRule.enable=true", "enable")],
)
def test_the_schema_rejects_bad_monitoring_values(override: str, complaint: str) -> None:
    result = helm("template", "t", str(CHART), "--set", override)
    assert result.returncode != 0
    assert complaint in result.stderr
