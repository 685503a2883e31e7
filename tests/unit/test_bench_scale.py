"""The scale benchmark's pure parts: audit log lines, windows, lateness, /proc, percentiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hack.bench.audit import Window, log_files, parse_line, read_requests, tally
from hack.bench.scale import (
    Lateness,
    Sample,
    cpu_seconds,
    lateness,
    record,
    rss_mib,
    usage,
)
from hack.bench.time_to_rollback import percentile

T0 = datetime(2026, 11, 30, 22, 0, 0, tzinfo=UTC)


def audit_line(
    verb: str = "get",
    at: datetime = T0,
    user: str = "modelrelease-operator",
    resource: str = "modelreleases",
    subresource: str | None = None,
    code: int = 200,
    stage: str = "ResponseComplete",
) -> str:
    ref = {"resource": resource, "namespace": "ns", "name": "m0001", "apiVersion": "v1alpha1"}
    if subresource:
        ref["subresource"] = subresource
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "stage": stage,
            "verb": verb,
            "user": {"username": user, "groups": ["system:masters", "modelrelease:operators"]},
            "objectRef": ref,
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "stageTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    )


def test_parse_line_reads_what_a_finished_request_says() -> None:
    request = parse_line(audit_line("patch", subresource="status", code=429))
    assert request is not None
    assert (request.verb, request.resource, request.subresource) == (
        "patch",
        "modelreleases",
        "status",
    )
    assert (request.user, request.namespace, request.name) == (
        "modelrelease-operator",
        "ns",
        "m0001",
    )
    assert request.code == 429
    assert request.at == T0
    assert request.write


@pytest.mark.parametrize(
    "line",
    [
        audit_line(stage="RequestReceived"),
        audit_line(stage="ResponseStarted"),
        '{"kind": "Event", "stage": "ResponseComp',  # torn last line while the server writes
        "",
        "[]",
    ],
)
def test_parse_line_skips_what_is_not_a_finished_request(line: str) -> None:
    assert parse_line(line) is None


def test_tally_counts_by_verb_writes_status_writes_and_429_per_window() -> None:
    lines = [
        audit_line("get", T0),
        audit_line("list", T0 + timedelta(seconds=1), resource="pods"),
        audit_line("patch", T0 + timedelta(seconds=2), subresource="status"),
        audit_line("patch", T0 + timedelta(seconds=3)),
        audit_line("get", T0 + timedelta(seconds=4), code=429),
        audit_line("get", T0 + timedelta(seconds=10)),  # outside "early", inside "all"
    ]
    requests = [r for r in map(parse_line, lines) if r is not None]
    windows = {
        "early": Window(T0, T0 + timedelta(seconds=10)),
        "all": Window(T0, T0 + timedelta(seconds=60)),
    }
    tallies = tally(requests, windows)
    early = tallies["early"]
    assert early.requests == 5
    assert early.by_verb == {"get": 2, "list": 1, "patch": 2}
    assert (early.writes, early.status_writes, early.throttled) == (2, 1, 1)
    assert tallies["all"].requests == 6
    assert windows["all"].seconds == 60


def test_read_requests_takes_rotated_files_oldest_first_and_one_user(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    (tmp_path / "audit-2026-11-30T22-00-00.000.log").write_text(audit_line("create", T0) + "\n")
    log.write_text(
        "\n".join(
            [
                audit_line("get", T0 + timedelta(seconds=1)),
                audit_line("get", T0 + timedelta(seconds=2), user="admin"),
            ]
        )
        + "\n"
    )
    (tmp_path / "audit-policy.yaml").write_text("not a log")
    assert [f.name for f in log_files(log)] == ["audit-2026-11-30T22-00-00.000.log", "audit.log"]
    assert [r.verb for r in read_requests(log, "modelrelease-operator")] == ["create", "get"]


def status(
    step_start: datetime | None, checks: list[tuple[datetime, str]], held: float = 0, **more: object
) -> dict[str, object]:
    stage = {"stepStartTime": step_start.isoformat(), "heldSeconds": held} if step_start else {}
    return {
        "currentStage": stage,
        "checks": [{"name": "probe", "time": t.isoformat(), "verdict": v} for t, v in checks],
        **more,
    }


def test_lateness_of_checks_follows_the_due_rule() -> None:
    start = T0
    first = start + timedelta(seconds=31.5)  # due at start + 30 s
    second = first + timedelta(seconds=30.25)  # due at first + 30 s
    before = status(start, [])
    after_first = status(start, [(first, "Pass")])
    after_second = status(start, [(second, "Pass")])
    assert lateness(before, after_first, 30, 10, first).checks == [pytest.approx(1.5)]
    assert lateness(after_first, after_second, 30, 10, second).checks == [pytest.approx(0.25)]
    assert lateness(after_second, after_second, 30, 10, second).checks == []  # nothing new


def test_a_check_of_an_earlier_step_is_not_a_tick_of_this_one() -> None:
    old = T0 - timedelta(seconds=5)
    now = T0 + timedelta(seconds=1)
    assert lateness(status(T0, [(old, "Pass")]), status(T0, [(old, "Pass")]), 30, 10, now) == (
        Lateness()
    )
    assert lateness({}, status(T0, [(old, "Pass")]), 30, 10, now) == Lateness()


def test_lateness_of_a_stage_end_is_from_the_later_of_its_clock_and_its_first_pass() -> None:
    check = T0 + timedelta(seconds=30)
    before = status(T0, [(check, "Pass")], held=5, stagesPassed=[])
    # the pass that ran the check ended the stage: no current stage, the stage passed
    after = {"checks": before["checks"], "stagesPassed": ["canary"]}
    seen = check + timedelta(seconds=2)
    assert lateness(before, after, 30, 10, seen).steps == [pytest.approx(2.0)]
    # the clock binds when the step (plus the time it was held) outlasts the first pass
    assert lateness(before, after, 30, 40, seen).steps == [pytest.approx(2.0 - 15.0)]
    # no stage passed (a rollback, or the same stage still running): no stage end
    assert lateness(before, {**after, "stagesPassed": []}, 30, 10, seen).steps == []
    assert lateness({}, after, 30, 10, seen).steps == []


def test_proc_parsing() -> None:
    assert rss_mib("Name:\tpython\nVmRSS:\t  204800 kB\nThreads:\t5\n") == 200.0
    with pytest.raises(ValueError, match="VmRSS"):
        rss_mib("Name:\tpython\n")
    stat = "4242 (python -m (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5"
    assert cpu_seconds(stat, 100) == 3.0


def test_usage_counts_each_process_cpu_from_its_own_first_sample() -> None:
    samples = [
        Sample(0, 1, 100, 10.0),
        Sample(30, 1, 120, 25.0),  # 15 s of CPU by the first process
        Sample(31, 2, 80, 0.5),  # a restart
        Sample(60, 2, 90, 5.5),  # 5 s by the second
        Sample(90, 2, 95, 9.0),  # outside the window
    ]
    found = usage(samples, 0, 60)
    assert found is not None
    assert found.cpu_per_minute == pytest.approx(20.0)
    assert (found.rss_peak, found.rss_mean) == (120, pytest.approx(97.5))
    assert usage(samples, 100, 200) is None


@pytest.mark.parametrize(("q", "expected"), [(0.0, 0.0), (0.5, 50.0), (0.99, 99.0), (1.0, 100.0)])
def test_percentile_is_the_value_at_the_rounded_position(q: float, expected: float) -> None:
    values = [float(v) for v in range(100, -1, -1)]  # 101 values, unsorted
    assert percentile(values, q) == expected
    assert percentile([3.0], q) == 3.0


def test_record_appends_under_the_scale_heading_once(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Chaos\n\ntext\n")
    record(doc, "| a | b |", "scale.py --quick", "abc1234")
    record(doc, "| c | d |", "scale.py", "def5678")
    text = doc.read_text()
    assert text.count("## Scale") == 1
    assert text.index("## Chaos") < text.index("## Scale") < text.index("abc1234")
    assert text.index("| a | b |") < text.index("def5678") < text.index("| c | d |")
    assert "    scale.py --quick\n" in text


def test_a_403_is_rbacs_only_when_authorization_did_not_allow_it() -> None:
    line = json.loads(audit_line("create", resource="events", code=403))
    line["annotations"] = {"authorization.k8s.io/decision": "forbid"}
    forbidden = parse_line(json.dumps(line))
    line["annotations"] = {"authorization.k8s.io/decision": "allow"}  # then admission said no
    terminating = parse_line(json.dumps(line))
    assert forbidden is not None
    assert forbidden.forbidden_by_rbac
    assert terminating is not None
    assert not terminating.forbidden_by_rbac
