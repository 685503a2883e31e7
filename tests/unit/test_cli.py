"""The kubectl plugin without a cluster: its views, its command line, lint and completion."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelrelease.api.constants import Phase
from modelrelease.cli import completion, lint
from modelrelease.cli.main import main, parser
from modelrelease.cli.render import (
    GPUView,
    StatusInputs,
    age_text,
    history_table,
    list_table,
    settled_phase,
    status_view,
)
from modelrelease.core.routes import Routes

from tests.cluster.invalid import load_catalog

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def release(**status: Any) -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "tests/cluster/invalid/two-routers.yaml").read_text())["spec"]
    spec["traffic"] = {"gatewayAPI": {"httpRoute": "chat"}}
    spec["stages"] = [
        {
            "canary": {
                "steps": [{"weight": 10, "duration": "5m"}, {"weight": 50, "duration": "10m"}]
            }
        },
        {"approval": {}},
    ]
    return {
        "metadata": {
            "namespace": "llm",
            "name": "chat",
            "generation": 3,
            "creationTimestamp": stamp(7200),
        },
        "spec": spec,
        "status": {"observedGeneration": 3, **status},
    }


CANARY = {
    "phase": "Progressing",
    "message": "stage canary-1 step 2 at 50%: 4m of 10m",
    "champion": {
        "revision": "aaaaaaaaaa",
        "modelName": "chat-8b",
        "modelVersion": "1.0",
        "replicas": 2,
        "readyReplicas": 2,
    },
    "challenger": {
        "revision": "bbbbbbbbbb",
        "modelName": "chat-8b",
        "modelVersion": "2.0",
        "replicas": 1,
        "readyReplicas": 1,
    },
    "currentStage": {
        "index": 0,
        "type": "canary",
        "name": "canary-1",
        "step": 1,
        "weight": 50,
        "stepStartTime": stamp(300),
        "heldSeconds": 60,
    },
    "checks": [
        {
            "name": "error-ratio",
            "value": 0.004,
            "max": 0.01,
            "verdict": "Pass",
            "consecutiveFailures": 0,
        }
    ],
    "comparison": [
        {
            "metric": "errors",
            "estimate": 0.91,
            "lower": 0.62,
            "upper": 1.3,
            "eValue": 1.8,
            "verdict": "Inconclusive",
        }
    ],
}


def test_status_view_shows_every_part_with_time_left_from_the_timestamps() -> None:
    events = [
        {
            "type": "Normal",
            "reason": "StepAdvanced",
            "message": "step 2 at 50%",
            "lastTimestamp": stamp(240),
        },
    ]
    text = status_view(
        StatusInputs(
            release=release(**CANARY),
            now=NOW,
            routes=Routes(50, 50, 0),
            events=events,
            gpus=GPUView(per_pod=1, release_pods=3, free=5),
        )
    )
    lines = text.splitlines()
    assert lines[0] == "llm/chat  Progressing"
    assert "champion    aaaaaaaaaa  chat-8b 1.0  ready 2/2" in text
    assert "challenger  bbbbbbbbbb  chat-8b 2.0  ready 1/1" in text
    assert "stage       1/2 canary-1 (canary)  step 2/2 to 50%" in text
    # 300 s since the step started, 60 s of it held: 4m run of 10m, 6m left.
    assert "4m of 10m, 6m left" in text
    assert "route: stable 50% canary 50% mirror 0%" in text
    assert "error-ratio  0.004  <= 0.01    Pass     0 (limit 0)" in text
    assert "errors  0.91      [0.62, 1.3]  1.8      Inconclusive" in text
    assert "GPUs        1 per pod x 3 pods = 3 in use; 5 free on matching nodes" in text
    assert "4m  Normal  StepAdvanced  step 2 at 50%" in text


def test_the_clock_ticks_client_side() -> None:
    inputs = StatusInputs(release=release(**CANARY), now=NOW + timedelta(seconds=30))
    assert "4m30s of 10m, 5m30s left" in status_view(inputs)


def test_status_view_says_when_the_route_lags_or_cannot_be_read() -> None:
    lagging = status_view(StatusInputs(release(**CANARY), NOW, routes=Routes(90, 10, 0)))
    assert "(the route follows status within a pass)" in lagging
    unread = status_view(StatusInputs(release(**CANARY), NOW, route_note="not read (HTTPRoute x)"))
    assert "route: not read (HTTPRoute x)" in unread


def test_a_step_whose_pods_are_loading_has_no_clock_yet() -> None:
    stage = {**CANARY["currentStage"], "stepStartTime": None}
    text = status_view(StatusInputs(release(**{**CANARY, "currentStage": stage}), NOW))
    assert "clock not started (waiting for the challenger's pods to be Ready)" in text


def test_a_release_without_status_reads_as_pending() -> None:
    bare = {"metadata": {"namespace": "a", "name": "b"}}
    assert status_view(StatusInputs(bare, NOW)).splitlines()[0] == "a/b  Pending"


@pytest.mark.parametrize(
    ("phase", "observed", "expected"),
    [
        ("Succeeded", 3, Phase.SUCCEEDED),
        ("RolledBack", 3, Phase.ROLLED_BACK),
        ("Failed", 3, Phase.FAILED),
        ("Progressing", 3, None),
        ("Paused", 3, None),
        # Written for the previous spec: a watch started right after `kubectl apply` goes on.
        ("Succeeded", 2, None),
    ],
)
def test_the_watch_ends_only_on_a_terminal_phase_of_the_current_spec(
    phase: str, observed: int, expected: Phase | None
) -> None:
    obj = release(phase=phase)
    obj["status"]["observedGeneration"] = observed
    assert settled_phase(obj) == expected


def test_list_shows_phase_stage_weight_versions_and_age() -> None:
    table = list_table(
        [release(**CANARY), release(phase="Succeeded", champion=CANARY["champion"])], NOW, True
    )
    header, first, second = table.splitlines()
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "STAGE",
        "WEIGHT",
        "CHAMPION",
        "CHALLENGER",
        "AGE",
    ]
    assert first.split() == [
        "llm",
        "chat",
        "Progressing",
        "canary-1",
        "step",
        "2",
        "50%",
        "1.0",
        "(aaaaaaaaaa)",
        "2.0",
        "(bbbbbbbbbb)",
        "2h",
    ]
    assert second.split()[2:5] == ["Succeeded", "-", "-"]


def test_history_says_which_revisions_undo_can_return_to() -> None:
    entry = {
        "modelName": "chat-8b",
        "reason": "Promoted",
        "time": stamp(600),
        "modelMetadata": {"dataset": "2026-10"},
    }
    history = [
        {**entry, "revision": "0000000000", "modelVersion": "0.9", "outcome": "Promoted"},
        {
            **entry,
            "revision": "1111111111",
            "modelVersion": "0.95",
            "outcome": "RolledBack",
            "reason": "SLOFailed",
            "message": "error-ratio 0.2 > 0.01",
        },
        {**entry, "revision": "aaaaaaaaaa", "modelVersion": "1.0", "outcome": "Promoted"},
    ]
    table = history_table(
        release(champion=CANARY["champion"], history=history), ["0000000000"], NOW
    )
    rows = [line.split() for line in table.splitlines()]
    assert rows[0][:7] == ["REVISION", "MODEL", "VERSION", "OUTCOME", "REASON", "AGE", "UNDO"]
    assert rows[1][:8] == [
        "0000000000",
        "chat-8b",
        "0.9",
        "Promoted",
        "Promoted",
        "10m",
        "kept",
        "dataset=2026-10",
    ]
    assert rows[2][6] == "-"
    assert (
        rows[2][-5:] == ["error-ratio", "0.2", ">", "0.01"][-5:]
        or "error-ratio 0.2 > 0.01" in table
    )
    assert rows[3][6] == "serving"


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (119, "119s"), (600, "10m"), (3660, "1h1m"), (90000, "1d")]
)
def test_ages_read_like_kubectl(seconds: int, text: str) -> None:
    assert age_text(NOW, NOW - timedelta(seconds=seconds)) == text


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--context", "c", "-n", "llm", "status", "chat"],
        ["status", "chat", "--context", "c", "-n", "llm"],
        ["-n", "llm", "status", "--context", "c", "chat"],
    ],
)
def test_kubectl_flags_go_anywhere_on_the_line(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    assert (args.command, args.name, args.namespace, args.context) == ("status", "chat", "llm", "c")


def test_status_takes_watch_and_output() -> None:
    args = parser().parse_args(["status", "chat", "-w", "-o", "yaml"])
    assert (args.watch, args.output) == (True, "yaml")
    with pytest.raises(SystemExit) as error:
        parser().parse_args(["status", "chat", "-o", "wide"])
    assert error.value.code == 2


def test_unknown_command_is_refused_with_exit_code_2() -> None:
    with pytest.raises(SystemExit) as error:
        parser().parse_args(["promotee", "chat"])
    assert error.value.code == 2


def test_a_missing_kubeconfig_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["status", "chat", "--kubeconfig", str(missing)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: kubeconfig {missing} does not exist; pass --kubeconfig or set KUBECONFIG\n"
    )


def test_an_unreachable_server_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    assert main(["list", "--kubeconfig", str(kubeconfig), "--context", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the API server")
    assert len(err.splitlines()) == 1
    assert main(["list", "--kubeconfig", str(kubeconfig), "--context", "nope"]) == 2
    assert 'context "nope" is not in the kubeconfig' in capsys.readouterr().err


# --- lint ---------------------------------------------------------------------------------------


def _lint(text: str) -> list[lint.Finding]:
    documents, findings = lint.load("f.yaml", text)
    return findings + lint.lint(documents)


def test_lint_accepts_every_example_and_built_in_template() -> None:
    files = [
        *ROOT.glob("examples/*.yaml"),
        *ROOT.glob("charts/modelrelease-operator/files/slotemplates/*.yaml"),
    ]
    documents, findings = lint.read_sources([str(f) for f in files])
    assert not findings + lint.lint(documents)


CATALOG = load_catalog()


@pytest.mark.parametrize("case", CATALOG, ids=[case.name for case in CATALOG])
def test_lint_refuses_what_the_api_server_refuses(case: Any) -> None:
    findings = _lint(case.manifest)
    assert any(f.error for f in findings), case.name


def test_every_cel_rule_of_the_crds_has_a_lint_counterpart() -> None:
    """Each CEL message of the generated CRDs is said by lint for some invalid case."""
    rules: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(rule["message"] for rule in node.get("x-kubernetes-validations", []))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for path in ROOT.glob("crds/*.yaml"):
        collect(yaml.safe_load(path.read_text()))
    said = " ".join(str(f) for case in CATALOG for f in _lint(case.manifest))
    # The duration rule says "must be <hint>", the model's validator "use <hint>".
    missing = sorted({m for m in rules if m.removeprefix("must be ") not in said})
    assert rules
    assert not missing, f"CEL rules no lint finding repeats (add an invalid case): {missing}"


def test_lint_finds_query_variables_and_template_arguments_across_files() -> None:
    base = (ROOT / "tests/cluster/invalid/two-routers.yaml").read_text()
    doc = yaml.safe_load(base)
    doc["spec"]["traffic"] = {"gatewayAPI": {"httpRoute": "chat"}}
    doc["spec"]["analysis"]["slos"] = [
        {"name": "typo", "query": 'up{pod="{{revison}}"}', "max": 1},
        {
            "name": "args",
            "templateRef": {"kind": "SLOTemplate", "name": "errs"},
            "args": {"windoe": "1m"},
            "max": 1,
        },
        {
            "name": "elsewhere",
            "templateRef": {"kind": "ClusterSLOTemplate", "name": "in-cluster"},
            "max": 1,
        },
    ]
    template = {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "SLOTemplate",
        "metadata": {"name": "errs"},
        "spec": {"query": "rate(x[{{window}}])", "args": [{"name": "window"}]},
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat"},
    }
    findings = _lint(yaml.safe_dump_all([doc, template, route]))
    errors = [f.message for f in findings if f.error]
    warnings = [f.message for f in findings if not f.error]
    assert len(errors) == 2, findings
    assert "unknown query variable {{revison}}" in errors[0]
    assert "has no argument 'windoe'" in errors[1]
    assert len(warnings) == 1
    assert "ClusterSLOTemplate 'in-cluster'" in warnings[0]


def test_lint_reports_yaml_errors_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: modelrelease.dev/v1alpha1\nkind: [unclosed\n")
    assert main(["lint", str(broken)]) == 1
    out = capsys.readouterr().out
    assert (
        f"{broken}:3: error: not valid YAML" in out or f"{broken}:2: error: not valid YAML" in out
    )


def test_lint_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text((ROOT / "examples").glob("*.yaml").__next__().read_text())
    assert main(["lint", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(CATALOG[0].manifest)
    assert main(["lint", str(good), str(bad)]) == 1


# --- completion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([""], list(completion.COMMANDS)),
        (["st"], ["status"]),
        (["status", ""], ["chat", "code"]),
        (["status", "c"], ["chat", "code"]),
        (["-n", "llm", "status", "ch"], ["chat"]),
        (["status", "chat", "-o", ""], ["json", "yaml"]),
        (["promote", "chat", "--f"], ["--full"]),
        (["completion", ""], ["bash", "zsh"]),
        (["lint", ""], []),
    ],
)
def test_completion_candidates(words: list[str], expected: list[str]) -> None:
    assert completion.candidates(words, ["chat", "code"]) == expected


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_completion_scripts_call_the_completer(shell: str) -> None:
    assert "kubectl_complete-modelrelease" in completion.script(shell)


def test_the_entry_points_are_registered() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'kubectl-modelrelease = "modelrelease.cli.main:main"' in text
    assert '"kubectl_complete-modelrelease" = "modelrelease.cli.completion:complete_main"' in text


def test_the_krew_manifest_names_the_plugin_and_its_version() -> None:
    manifest = yaml.safe_load((ROOT / "plugins/modelrelease.yaml").read_text())
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "modelrelease"
    version = yaml.safe_load((ROOT / "charts/modelrelease-operator/Chart.yaml").read_text())[
        "appVersion"
    ]
    assert manifest["spec"]["version"] == f"v{version}"


def test_the_krew_manifest_checksum_is_the_archives() -> None:
    from hack import krew

    assert hashlib.sha256(krew.archive_bytes()).hexdigest() == krew.manifest_sha256()
