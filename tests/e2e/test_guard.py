"""The sequential SLO guard end to end: a canary at the default 30 s interval whose
challenger fails a fifth of its requests is rolled back by the guard well before the
first interval check, from real counters scraped by Prometheus every second."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from modelrelease.api.models import ModelReleaseSpec, ModelReleaseStatus
from modelrelease.core.guard import SETTLE_SECONDS, GuardReading, guard_queries, judge
from modelrelease.core.slos import resolve_slos
from modelrelease.metrics.guard import samples
from modelrelease.metrics.templating import QueryContext

from tests.e2e.conftest import (
    ERROR_RATIO,
    WINDOW,
    Cluster,
    Process,
    Simulator,
    http_route,
    model_release,
    wait_champion_version,
    wait_phase,
    wait_weights,
)
from tests.waiting import wait_for

FAILED = (
    'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}},finished_reason="error"}'
)
FINISHED = 'vllm:request_success_total{namespace="{{namespace}}",{{revisionPods}}}'
INTERVAL_SECONDS = 30


def guarded_release(version: str, prometheus: str, **extra: Any) -> dict[str, Any]:
    slo = {
        "name": "error-ratio",
        "query": ERROR_RATIO.format(window=WINDOW),
        "max": 0.05,
        "bad": FAILED,
        "total": FINISHED,
    }
    release = model_release(
        version, steps=[(50, "10m")], slos=[slo], prometheus=prometheus, **extra
    )
    release["spec"]["analysis"]["interval"] = f"{INTERVAL_SECONDS}s"
    return release


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _matrix(prometheus: str, query: str) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10)
    answer.raise_for_status()
    return [
        (series["metric"], [(float(t), float(v)) for t, v in series["values"]])
        for series in answer.json()["data"]["result"]
    ]


def test_the_guard_rolls_back_a_failing_canary_before_the_first_interval_check(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    prometheus_url: str,
) -> None:
    cluster.apply(http_route(), guarded_release("1", prometheus_url))
    wait_champion_version(cluster, "1", 90)
    cluster.apply(guarded_release("2", prometheus_url, behaviour={"errorRatio": 0.2}))
    status = wait_phase(cluster, "RolledBack", 120, "the failing version to be rolled back")

    entry = status["history"][-1]
    assert (entry["outcome"], entry["reason"], entry["modelVersion"]) == (
        "RolledBack",
        "SLOGuardTripped",
        "2",
    )
    assert "sequential guard" in entry["message"]
    assert "error-ratio" in entry["message"]
    # Before the first interval check: no check ever ran on this challenger.
    assert not status.get("checks"), status.get("checks")
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert (degraded["status"], degraded["reason"]) == ("True", "SLOGuardTripped")
    # The step started when the challenger was Ready; the rollback came well inside
    # the first interval (measured from the route's move to the canary would be the
    # same within a pass).
    revision = entry["revision"]
    first_error = (simulator.revision(revision) or {}).get("firstUserErrorAt")
    assert first_error is not None
    took = _time(entry["time"]).timestamp() - first_error
    print(f"\nfirst failed request to rollback: {took:.1f} s (interval {INTERVAL_SECONDS} s)")
    assert took < INTERVAL_SECONDS - 5
    wait_weights(cluster, (100, 0))
    assert status["champion"]["modelVersion"] == "1"


def test_a_restarted_operator_goes_on_with_the_guards_saved_evidence(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    prometheus_url: str,
) -> None:
    """The evidence in status after a SIGKILL and a restart equals the fold of every
    batch since the step started, recomputed here from Prometheus: nothing was lost
    or counted twice, and nothing but the interval checks wrote it."""
    cluster.apply(http_route(), guarded_release("1", prometheus_url))
    wait_champion_version(cluster, "1", 90)
    # Healthy enough never to trip; the interval checks (10 s here) save the evidence.
    release = guarded_release("2", prometheus_url, behaviour={"errorRatio": 0.03})
    release["spec"]["analysis"]["interval"] = "10s"
    cluster.apply(release)

    def evidence() -> dict[str, Any] | None:
        checks = cluster.status().get("checks") or []
        guard = checks[0].get("guard") if checks else None
        return guard if guard and guard.get("through") else None

    before = wait_for(evidence, 120, "the guard's first saved evidence")
    operator.kill()
    killed_at = time.time()
    operator.start()

    def saved_since_restart() -> dict[str, Any] | None:
        # A check of the restarted operator that moved the evidence on. (One check may
        # leave it where it was: once on CI's loaded machine a restarted operator's first
        # check saved the same `through`; the next one moves it.)
        guard = evidence()
        checks = cluster.status().get("checks") or []
        fresh = checks and _time(checks[0]["time"]).timestamp() > killed_at + 1
        if not fresh or guard is None:
            return None
        return guard if _time(guard["through"]) > _time(before["through"]) else None

    after = wait_for(saved_since_restart, 60, "evidence moved on by the restarted operator")
    status = cluster.status()
    assert status["phase"] == "Progressing"
    assert after["revision"] == before["revision"]
    assert _time(after["through"]) > _time(before["through"]), (before, after)

    # The same fold, from the step's start to the saved moment, from Prometheus.
    spec = ModelReleaseSpec.model_validate(cluster.release()["spec"])
    unsaved = ModelReleaseStatus.model_validate({**status, "checks": []})
    revision = status["challenger"]["revision"]
    context = QueryContext(cluster.namespace, "chat", revision, "", revision, "10s")
    slos, problems = resolve_slos(spec.analysis, {}, context)
    assert not problems
    now = datetime.now(_time(after["through"]).tzinfo)
    (query,) = guard_queries(spec, unsaved, slos, now)
    assert query.log_e == 0.0
    bad, total = (_matrix(prometheus_url, text) for text in (query.bad, query.total))
    reading = GuardReading(samples=samples(bad, total))
    through = _time(after["through"])
    outcome = judge(query, reading, 0.05, 20.0, through + timedelta(seconds=SETTLE_SECONDS))
    assert outcome is not None
    assert outcome.checkpoint[0] == through
    assert abs(outcome.checkpoint[1] - after["logEValue"]) < 1e-6
