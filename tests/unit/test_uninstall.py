"""`modelrelease-operator remove-finalizers` (the chart's uninstall hook), without a
cluster: which finalizer it drops, where it looks, and its command line.
(tests/cluster/test_uninstall.py runs it against the local cluster.)"""

from __future__ import annotations

import pytest
from modelrelease import __main__ as entry
from modelrelease import uninstall
from modelrelease.settings import FINALIZER


def test_only_the_operators_finalizer_is_dropped() -> None:
    assert uninstall.without_operator_finalizer([FINALIZER]) == []
    assert uninstall.without_operator_finalizer(["a/b", FINALIZER, "c/d"]) == ["a/b", "c/d"]
    assert uninstall.without_operator_finalizer(["a/b"]) is None
    assert uninstall.without_operator_finalizer([]) is None


def test_named_namespaces_are_listed_one_by_one_and_globs_cluster_wide() -> None:
    named = uninstall.release_collections(["team-a", "team-b", "team-a"])
    assert [c.namespace for c in named] == ["team-a", "team-b"]
    (everywhere,) = uninstall.release_collections([])
    assert everywhere.namespace is None
    (globbed,) = uninstall.release_collections(["team-a", "ml-*"])
    assert globbed.namespace is None
    assert uninstall.in_scope("ml-prod", ["team-a", "ml-*"])
    assert not uninstall.in_scope("other", ["team-a", "ml-*"])
    assert uninstall.in_scope("anything", [])


def test_the_hooks_command_line() -> None:
    config = uninstall.parse_args(
        ["--stop-deployment=op", "--stop-namespace=ops", "--timeout=30", "-n", "team-a"]
    )
    assert config == uninstall.UninstallConfig(("team-a",), "op", "ops", 30.0)


def test_the_operators_entry_point_runs_the_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        entry.main([uninstall.COMMAND, "--help"])
    assert exited.value.code == 0
    assert "--stop-deployment" in capsys.readouterr().out
