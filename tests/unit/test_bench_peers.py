"""The peers benchmark's pure parts: aggregation, the targets, reading pods and Canaries."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hack.bench.peers import (
    FAULT_AFTER_SECONDS,
    SETTINGS,
    Run,
    aggregate,
    argo_phase,
    fault_start,
    flagger_phase,
    markdown,
    modelrelease_phase,
    plan,
    read_runs,
    revision_label,
    target_verdicts,
)


def rolled_back(tool: str, failed: int, seconds: float = 10.0, setting: str = "defaults") -> Run:
    return Run(tool, setting, "errors-20", "rolled back", seconds, failed * 5, failed)


def test_aggregate_takes_medians_per_setting_fault_and_tool() -> None:
    runs = [
        rolled_back("modelrelease", 2, 8.0),
        rolled_back("modelrelease", 4, 12.0),
        rolled_back("modelrelease", 30, 40.0),
        rolled_back("flagger", 100, 600.0),
    ]
    ours, theirs = aggregate(runs)
    assert (ours.tool, ours.runs, ours.rolled_back) == ("modelrelease", 3, 3)
    assert ours.seconds_p50 == 12.0
    assert ours.seconds_p95 == 40.0
    assert ours.failed_p50 == 4
    assert ours.failed_max == 30
    assert ours.bad_p50 == 20
    assert (theirs.tool, theirs.failed_p50) == ("flagger", 100)


def test_early_rollbacks_and_timeouts_are_not_timed() -> None:
    runs = [
        Run("flagger", "matched", "errors-3", "rolled back", None, 0, 0, early=True),
        Run("flagger", "matched", "errors-3", "timeout", None),
        Run("flagger", "matched", "errors-3", "rolled back", 20.0, 50, 2),
    ]
    (row,) = aggregate(runs)
    assert row.false_rollbacks == 1
    assert row.seconds_p50 == 20.0
    # The timeout has no counts; the two judged runs do.
    assert row.failed_p50 == 1
    assert row.rolled_back == 2


def test_healthy_rows_time_promotions_and_count_false_rollbacks() -> None:
    runs = [
        Run("modelrelease", "matched", "healthy", "promoted", 70.0),
        Run("modelrelease", "matched", "healthy", "rolled back", None, early=True),
    ]
    (row,) = aggregate(runs)
    assert (row.promoted, row.false_rollbacks, row.seconds_p50) == (1, 1, 70.0)
    line = markdown([row], SETTINGS).splitlines()[-1]
    assert "| healthy | modelrelease | 2 | 1 / 1 | 1 | 70.0 s |" in line


def test_targets_at_the_defaults_want_a_tenth_of_flaggers_failures() -> None:
    met = aggregate([rolled_back("modelrelease", 9), rolled_back("flagger", 100)])
    assert target_verdicts(met) == ["- defaults, 0% -> 20% errors: met"]
    missed = aggregate([rolled_back("modelrelease", 11), rolled_back("flagger", 100)])
    (line,) = target_verdicts(missed)
    assert line == (
        "- defaults, 0% -> 20% errors: MISSED: failed requests 11, wanted a tenth of Flagger's 100"
    )


def test_targets_at_matched_settings_want_no_more_failures_nor_false_rollbacks() -> None:
    runs = [
        rolled_back("modelrelease", 5, setting="matched"),
        rolled_back("flagger", 5, setting="matched"),
        Run("modelrelease", "matched", "healthy", "rolled back", None, early=True),
        Run("flagger", "matched", "healthy", "promoted", 90.0),
    ]
    verdicts = target_verdicts(aggregate(runs))
    assert verdicts[0] == "- matched, 0% -> 20% errors: met"
    assert verdicts[1].startswith("- matched, healthy: MISSED: false rollbacks 1, Flagger 0")


def test_a_missing_tool_is_reported_as_not_measured() -> None:
    assert target_verdicts(aggregate([rolled_back("flagger", 100)])) == [
        "- defaults, 0% -> 20% errors: not measured for both tools"
    ]


def pod(revision: str, ready_at: str | None) -> dict[str, Any]:
    conditions = [] if ready_at is None else [
        {"type": "Ready", "status": "True", "lastTransitionTime": ready_at}
    ]  # fmt: skip
    return {
        "metadata": {"name": f"p-{revision}-{ready_at}", "namespace": "n",
                     "labels": {"modelrelease.dev/revision": revision}},
        "status": {"conditions": conditions},
    }  # fmt: skip


def test_the_fault_starts_after_the_revisions_first_ready_pod() -> None:
    pods = [
        pod("v2", "2026-01-01T00:00:10Z"),
        pod("v2", "2026-01-01T00:00:05Z"),
        pod("v2", None),
        pod("v1", "2026-01-01T00:00:00Z"),
    ]
    start = fault_start(pods, "v2")
    assert start is not None
    assert start - fault_start([pod("v2", "2026-01-01T00:00:00Z")], "v2") == 5.0  # type: ignore[operator]
    assert fault_start([pod("v2", None)], "v2") is None
    assert FAULT_AFTER_SECONDS == 20.0


def test_phases_of_both_tools() -> None:
    assert flagger_phase({"status": {"phase": "Failed"}}) == "rolled back"
    assert flagger_phase({"status": {"phase": "Succeeded"}}) == "promoted"
    assert flagger_phase({"status": {"phase": "Progressing"}}) == ""
    assert flagger_phase({}) == ""
    assert modelrelease_phase({"status": {"phase": "RolledBack"}}, "2.1.0") == "rolled back"
    done = {
        "metadata": {"generation": 3},
        "status": {
            "observedGeneration": 3,
            "phase": "Succeeded",
            "champion": {"modelVersion": "2.1.0"},
        },
    }
    assert modelrelease_phase(done, "2.1.0") == "promoted"
    assert modelrelease_phase(done, "2.2.0") == ""


def test_settings_and_labels() -> None:
    assert SETTINGS["defaults"].weights[:3] == [2, 4, 6]
    assert SETTINGS["defaults"].weights[-1] == 50
    assert SETTINGS["matched"].weights == [10, 20, 30, 40, 50]
    assert revision_label("2.10.0") == "v2-10-0"


def test_plan_runs_a_healthy_release_at_the_defaults_once() -> None:
    lanes = plan(["matched", "defaults"], ["errors-20", "healthy"], runs=3, default_runs=2)
    assert lanes == [
        ("matched", "errors-20", 3),
        ("matched", "healthy", 3),
        ("defaults", "errors-20", 2),
        ("defaults", "healthy", 1),
    ]


def test_recorded_runs_read_back() -> None:
    run = Run("flagger", "defaults", "latency", "rolled back", 612.5, 480, 0)
    lines = [json.dumps(dataclasses.asdict(run)), ""]
    assert read_runs(lines) == [run]


def test_the_latency_fault_is_judged_by_the_slow_requests_served() -> None:
    runs = [
        Run("modelrelease", "defaults", "latency", "rolled back", 15.0, 12, 0),
        Run("flagger", "defaults", "latency", "rolled back", 600.0, 480, 0),
    ]
    assert target_verdicts(aggregate(runs)) == ["- defaults, TTFT p95 0.3 s -> 1.2 s: met"]
    runs[0] = Run("modelrelease", "defaults", "latency", "rolled back", 15.0, 50, 0)
    (line,) = target_verdicts(aggregate(runs))
    assert line.endswith("MISSED: served requests 50, wanted a tenth of Flagger's 480")


def test_a_tool_without_a_finished_run_is_not_judged() -> None:
    runs = [
        Run("modelrelease", "defaults", "healthy", "timeout", None),
        Run("flagger", "defaults", "healthy", "promoted", 1700.0),
    ]
    assert target_verdicts(aggregate(runs)) == [
        "- defaults, healthy: no finished run for both tools"
    ]


def test_argo_rollouts_phases_follow_the_revision_under_release() -> None:
    aborted = {"status": {"currentPodHash": "h2", "stableRS": "h1", "abort": True}}
    assert argo_phase(aborted, "h2") == "rolled back"
    promoted = {"status": {"currentPodHash": "h2", "stableRS": "h2", "phase": "Healthy"}}
    assert argo_phase(promoted, "h2") == "promoted"
    assert argo_phase({"status": {"currentPodHash": "h2", "stableRS": "h1"}}, "h2") == ""
    # An earlier revision's abort says nothing about the one being released.
    assert argo_phase(aborted, "h3") == ""
    assert argo_phase({}, "h2") == ""


def test_argo_rollouts_settings_describe_its_own_schedule() -> None:
    matched, defaults = SETTINGS["matched"], SETTINGS["defaults"]
    assert matched.describe("argo-rollouts") == (
        "interval 10s, failureLimit 1, steps 10..50% every 10s"
    )
    assert defaults.describe("argo-rollouts") == (
        "interval 300s, failureLimit 3, steps 20..80% every 600s, analysis from step 2"
    )
    # Four 10-minute steps: a healthy release needs 40 minutes, and the timeout allows it.
    assert defaults.timeout("argo-rollouts") > 4 * 600
    assert matched.timeout("argo-rollouts") > 5 * 10


def test_targets_against_argo_rollouts_are_named() -> None:
    runs = [rolled_back("modelrelease", 5), rolled_back("argo-rollouts", 100)]
    assert target_verdicts(aggregate(runs), "argo-rollouts") == [
        "- defaults, 0% -> 20% errors (against Argo Rollouts): met"
    ]
    runs[0] = rolled_back("modelrelease", 20)
    (line,) = target_verdicts(aggregate(runs), "argo-rollouts")
    assert line.endswith("wanted a tenth of Argo Rollouts' 100")
