"""The chart's defaults are the operator's: a value left alone means the flag's default."""

from __future__ import annotations

from pathlib import Path

import yaml
from modelrelease.api.durations import parse_duration
from modelrelease.settings import OperatorConfig, parse_args

VALUES = Path(__file__).resolve().parents[2] / "charts" / "modelrelease-operator" / "values.yaml"


def test_reconcile_and_leader_election_values_default_to_the_flags_defaults() -> None:
    values = yaml.safe_load(VALUES.read_text())
    flags = parse_args([])
    reconcile = values["reconcile"]
    assert reconcile["interval"] == flags.reconcile_interval
    assert reconcile["resyncInterval"] == flags.resync_interval
    assert reconcile["workerLimit"] == flags.worker_limit
    assert reconcile["kubeQPS"] == flags.kube_qps
    assert reconcile["kubeBurst"] == flags.kube_burst
    election = values["leaderElection"]
    timing = OperatorConfig().lease_timing
    assert parse_duration(election["leaseDuration"]) == timing.lease_duration
    assert parse_duration(election["renewDeadline"]) == timing.renew_deadline
    assert parse_duration(election["retryPeriod"]) == timing.retry_period


def test_analysis_default_values_are_the_flags_defaults() -> None:
    values = yaml.safe_load(VALUES.read_text())["analysisDefaults"]
    flags = parse_args([]).analysis_defaults
    assert values["interval"] == flags.interval
    assert values["maxInconclusive"] == flags.max_inconclusive
    assert values["onError"]["action"] == flags.on_error_action.value
    assert values["onError"]["after"] == flags.on_error_after
