"""The kubectl plugin's status summary and its command line."""

from __future__ import annotations

import pytest
from modelrelease.cli.main import _parser, format_status


def test_status_summary_names_phase_stage_checks_and_history() -> None:
    release = {
        "metadata": {"namespace": "llm", "name": "chat"},
        "status": {
            "phase": "Progressing",
            "message": "canary step 2 of 3",
            "champion": {"revision": "aaa", "modelVersion": "1.0", "replicas": 4},
            "challenger": {"revision": "bbb", "modelVersion": "2.0", "readyReplicas": 1},
            "currentStage": {"index": 1, "type": "canary", "step": 1, "weight": 25},
            "checks": [{"name": "error-ratio", "value": 0.004, "verdict": "Pass"}],
            "history": [{"revision": "ccc", "modelVersion": "0.9", "outcome": "RolledBack"}],
        },
    }
    text = format_status(release)
    assert text.splitlines()[0] == "llm/chat: Progressing"
    assert "challenger bbb model 2.0 ready 1/0" in text
    assert "weight 25%" in text
    assert "error-ratio: 0.004 (Pass" in text
    assert "RolledBack" in text


def test_a_release_without_status_reads_as_pending() -> None:
    assert format_status({"metadata": {"namespace": "a", "name": "b"}}) == "a/b: Pending"


def test_unknown_action_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["promotee", "chat"])


def test_every_action_takes_a_name_and_namespace() -> None:
    args = _parser().parse_args(["approve", "chat", "-n", "llm"])
    assert (args.command, args.name, args.namespace) == ("approve", "chat", "llm")
