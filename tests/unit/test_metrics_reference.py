"""docs/metrics.md, the dashboard and the alert rules name only metrics the operator serves,
and the reference lists every one it serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from modelrelease import telemetry
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "metrics.md"
DASHBOARD = ROOT / "charts" / "modelrelease-operator" / "dashboards" / "modelrelease.json"
RULES = ROOT / "charts" / "modelrelease-operator" / "alerts" / "modelrelease.rules.yaml"
NAME = re.compile(r"\bmodelrelease_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "info": ("_info",)}


def served() -> dict[str, set[str]]:
    """Family name as documented -> the sample names PromQL selects."""
    families: dict[str, set[str]] = {}
    for metric in vars(telemetry).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        for family in metric.describe():
            suffixes = SUFFIXES.get(family.type, ("",))
            samples = {family.name + suffix for suffix in suffixes}
            documented = family.name + suffixes[0] if family.type != "histogram" else family.name
            families[documented] = samples
    return families


def test_the_reference_lists_every_metric_and_only_those() -> None:
    documented = set(NAME.findall(REFERENCE.read_text()))
    families = served()
    assert set(families) - documented == set(), "served but not in docs/metrics.md"
    samples = set(families) | {s for names in families.values() for s in names}
    assert documented - samples == set(), "in docs/metrics.md but not served"


def test_dashboard_and_alerts_use_only_served_metrics() -> None:
    samples = {s for names in served().values() for s in names}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    rules = yaml.safe_load(RULES.read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used - samples == set()


def test_every_release_panel_selects_the_rows_release() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    in_release_row = False
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            in_release_row = panel.get("repeat") == "release"
            continue
        for target in panel["targets"]:
            assert target["refId"], panel["title"]
            if in_release_row:
                assert 'release="$release"' in target["expr"], panel["title"]
            else:
                assert 'job=~"$job"' in target["expr"], panel["title"]
