"""The operator's metrics, the Grafana dashboard's queries and the series' end, on a real release.

The operator serves its metrics; the local Prometheus scrapes it through a file-based
target (the way it finds the simulator's pods), under the job name the alert rules
assume. A release goes through a canary step with an SLO and a champion-challenger
stage that stays inconclusive and promotes at maxDuration. Meanwhile the test reads
the metrics endpoint itself; afterwards it runs every query of the dashboard shipped
in the chart against Prometheus, with the dashboard's variables set to this release.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    RELEASE,
    Cluster,
    Kubectl,
    Process,
    Simulator,
    _delete_releases,
    _env,
    _report,
    error_ratio_slo,
    free_port,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "modelrelease-operator" / "dashboards" / "modelrelease.json"
JOB = "modelrelease-operator"  # the job name the alert rules' plain file assumes
ERROR_RATIO = 0.02  # both revisions: the comparison stays undecided
SLO_MAX = 0.3  # far above 2%: a few unlucky requests early in a window never fail the SLO
RATE_INTERVAL = "10s"  # $__rate_interval: ten scrapes at the local Prometheus's 1 s
ERRORS_METRIC = {
    "name": "errors",
    "kind": "ratio",
    "bad": (
        'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}},'
        'finished_reason="error"}'
    ),
    "total": 'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}}}',
}

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class MeteredOperator:
    process: Process
    port: int

    def scrape(self) -> Series:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@pytest.fixture
def metered_operator(
    kubeconfig: str,
    namespace: str,
    kubectl: Kubectl,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    modelrelease_crds: None,
    prometheus_targets_dir: Path,
) -> Iterator[MeteredOperator]:
    """The operator with its metrics served and scraped by the local Prometheus."""
    port = free_port()
    command = [sys.executable, "-m", "modelrelease", "--namespace", namespace,
               "--liveness", "", "--reconcile-interval", "1",
               "--metrics-port", str(port)]  # fmt: skip
    process = Process("operator", command, _env(kubeconfig), tmp_path / "operator.log")
    target = prometheus_targets_dir / f"operator-{namespace}.json"
    groups = [{"targets": [f"127.0.0.1:{port}"], "labels": {"job": JOB, "test": namespace}}]
    target.write_text(json.dumps(groups))
    process.start()
    try:
        yield MeteredOperator(process, port)
    finally:
        _delete_releases(process, kubectl, namespace)
        target.unlink(missing_ok=True)
        process.stop()
        _report(request, process)


def release(version: str, prometheus: str) -> dict[str, Any]:
    manifest = model_release(
        version,
        behaviour={"errorRatio": ERROR_RATIO},
        steps=[(30, "6s")],
        slos=[error_ratio_slo(max=SLO_MAX)],
        prometheus=prometheus,
    )
    manifest["spec"]["stages"].append(
        {
            "name": "bake-off",
            "championChallenger": {
                "weight": 50,
                "maxDuration": "20s",
                "onInconclusive": "promote",
                "metrics": [ERRORS_METRIC],
            },
        }
    )
    for container in manifest["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)  # the shared cluster's GPUs go to the capacity tests
    return manifest


def of_release(series: Series, namespace: str, name: str, **labels: str) -> Series:
    """The samples called ``name`` of the test's release with ``labels`` among theirs."""
    wanted = {"namespace": namespace, "release": RELEASE, **labels}.items()
    return {key: value for key, value in series.items() if key[0] == name and wanted <= key[1]}


def one(series: Series, namespace: str, name: str, **labels: str) -> float | None:
    found = of_release(series, namespace, name, **labels)
    return next(iter(found.values())) if len(found) == 1 else None


def test_metrics_and_dashboard_follow_a_release_and_go_with_it(
    cluster: Cluster,
    metered_operator: MeteredOperator,
    simulator: Simulator,
    prometheus_url: str,
    namespace: str,
) -> None:
    operator = metered_operator
    cluster.apply(http_route(rate=100.0), release("1", prometheus_url))
    wait_champion_version(cluster, "1", 90)
    started = time.time()
    cluster.apply(release("2", prometheus_url))

    # --- the endpoint, during the canary step -------------------------------------------
    def in_canary() -> Series | None:
        series = operator.scrape()
        stage = of_release(series, namespace, "modelrelease_stage_info", type="canary")
        has_value = one(series, namespace, "modelrelease_slo_value", slo="error-ratio")
        return series if stage and has_value is not None else None

    series = wait_for(in_canary, 90, "the canary step and an SLO value in the metrics")
    assert one(series, namespace, "modelrelease_phase", phase="Progressing") == 1
    assert one(series, namespace, "modelrelease_phase", phase="Succeeded") == 0
    assert one(series, namespace, "modelrelease_slo_threshold", slo="error-ratio") == SLO_MAX
    assert one(series, namespace, "modelrelease_step_expected_duration_seconds") == 6
    step_start = one(series, namespace, "modelrelease_step_start_timestamp_seconds")
    assert step_start is not None
    assert started - 5 < step_start <= time.time()
    assert one(series, namespace, "modelrelease_revision_info", role="challenger") == 1

    def weight_30() -> bool:
        return one(operator.scrape(), namespace, "modelrelease_canary_weight_percent") == 30

    wait_for(weight_30, 30, "the canary weight (30%) in the metrics")

    # --- the endpoint, during the bake-off -----------------------------------------------
    def compared() -> Series | None:
        series = operator.scrape()
        bounds = [
            one(series, namespace, name, metric="errors")
            for name in (
                "modelrelease_comparison_estimate",
                "modelrelease_comparison_lower_bound",
                "modelrelease_comparison_upper_bound",
                "modelrelease_comparison_e_value",
            )
        ]
        return series if None not in bounds else None

    series = wait_for(compared, 90, "the comparison's estimate, bounds and e-value")
    assert one(series, namespace, "modelrelease_step_expected_duration_seconds") == 20
    lower = one(series, namespace, "modelrelease_comparison_lower_bound", metric="errors")
    upper = one(series, namespace, "modelrelease_comparison_upper_bound", metric="errors")
    assert lower is not None
    assert upper is not None
    assert lower <= upper

    # --- the end -------------------------------------------------------------------------
    wait_phase(cluster, "Succeeded", 120, "the challenger promoted at maxDuration")
    wait_champion_version(cluster, "2", 30)

    def finished() -> Series | None:
        series = operator.scrape()
        return series if one(series, namespace, "modelrelease_phase", phase="Succeeded") else None

    series = wait_for(finished, 30, "phase Succeeded in the metrics")
    assert one(series, namespace, "modelrelease_promotions_total") == 1
    assert one(series, namespace, "modelrelease_rollbacks_total") == 0
    assert one(series, namespace, "modelrelease_comparisons_inconclusive_total") == 1
    assert not of_release(series, namespace, "modelrelease_stage_info")
    promoted = series.get(
        ("modelrelease_time_to_promote_seconds_count", frozenset({("namespace", namespace)}))
    )
    assert promoted == 1, "one promotion timed"

    # --- every panel of the dashboard has data in Prometheus --------------------------
    window = (started - 5, time.time())
    wait_for(
        lambda: _scraped_since(prometheus_url, namespace, window[1]),
        30,
        "Prometheus to scrape the operator after the promotion",
    )
    missing = _panels_without_data(prometheus_url, namespace, window)
    assert not missing, "dashboard panels without data:\n" + "\n".join(missing)

    # --- deletion: every series of the release goes -------------------------------------
    cluster.kubectl("delete", "modelrelease", RELEASE, "-n", namespace, "--wait=true")

    def gone() -> bool:
        return not [
            key
            for key in operator.scrape()
            if ("namespace", namespace) in key[1] and ("release", RELEASE) in key[1]
        ]

    wait_for(gone, 30, "the deleted release's series to disappear from the metrics")


# --- Prometheus ------------------------------------------------------------------------------


def _query(prometheus: str, path: str, **params: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        answer = json.load(reply)
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _scraped_since(prometheus: str, namespace: str, since: float) -> bool:
    """Whether Prometheus holds a scrape of this test's operator newer than ``since``."""
    result = _query(prometheus, "query", query=f'timestamp(up{{job="{JOB}",test="{namespace}"}})')
    return bool(result) and float(result[0]["value"][1]) > since


def _substitute(expr: str, namespace: str, window: tuple[float, float]) -> str:
    values = {
        "namespace": namespace,  # a DNS label: nothing to escape in a regex
        "release": RELEASE,
        "job": JOB,
        "__rate_interval": RATE_INTERVAL,
        "__range": f"{int(window[1] - window[0]) + 1}s",
    }
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def _panels_without_data(prometheus: str, namespace: str, window: tuple[float, float]) -> list[str]:
    """'panel title: query' for every query of the dashboard that returns no series."""
    dashboard = json.loads(DASHBOARD.read_text())
    missing: list[str] = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = _substitute(target["expr"], namespace, window)
            result = _query(
                prometheus,
                "query_range",
                query=expr,
                start=f"{window[0]:.3f}",
                end=f"{window[1]:.3f}",
                step="1",
            )
            if not result:
                missing.append(f"{panel['title']} ({target['refId']}): {expr}")
    return missing
