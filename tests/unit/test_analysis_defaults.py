"""Cluster-wide analysis defaults: the operator's flags fill what a release leaves out,
and a value in the release always wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from modelrelease.api.constants import OnErrorAction
from modelrelease.api.models import (
    BUILT_IN_ANALYSIS_DEFAULTS,
    AnalysisDefaults,
    AnalysisSpec,
    ModelReleaseSpec,
)
from modelrelease.settings import parse_args

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = AnalysisDefaults(
    interval="1m", max_inconclusive=3, on_error_action=OnErrorAction.HOLD, on_error_after="20m"
)
PROMETHEUS = {"address": "http://prometheus:9090"}


def analysis(raw: dict[str, Any], defaults: AnalysisDefaults | None = None) -> AnalysisSpec:
    context = defaults.context() if defaults else None
    return AnalysisSpec.model_validate({"prometheus": PROMETHEUS, **raw}, context=context)


def test_fields_a_release_leaves_out_take_the_clusters_defaults() -> None:
    filled = analysis({}, CLUSTER)
    assert filled.interval == "1m"
    assert filled.max_inconclusive == 3
    assert filled.on_error.action is OnErrorAction.HOLD
    assert filled.on_error.after == "20m"


def test_a_value_in_the_release_always_wins() -> None:
    own = analysis(
        {"interval": "10s", "maxInconclusive": 0, "onError": {"action": "rollback"}}, CLUSTER
    )
    assert own.interval == "10s"
    assert own.max_inconclusive == 0  # falsy, still the release's
    assert own.on_error.action is OnErrorAction.ROLLBACK
    assert own.on_error.after == "20m"  # the one field it left out


def test_without_the_operators_context_the_built_in_defaults_apply() -> None:
    """The kubectl plugin and the tests read specs without the operator's flags."""
    built_in = analysis({})
    assert built_in.interval == BUILT_IN_ANALYSIS_DEFAULTS.interval == "30s"
    assert built_in.max_inconclusive == 10
    assert built_in.on_error.action is OnErrorAction.ROLLBACK
    assert built_in.on_error.after == "5m"


def test_a_whole_spec_read_with_the_context_gets_the_defaults() -> None:
    example = next(
        doc
        for doc in yaml.safe_load_all(
            (ROOT / "examples" / "vllm-chat-gateway-canary.yaml").read_text()
        )
        if doc and doc.get("kind") == "ModelRelease"
    )
    raw = dict(example["spec"])
    raw["analysis"] = {k: v for k, v in raw["analysis"].items() if k != "interval"}
    spec = ModelReleaseSpec.model_validate(raw, context=CLUSTER.context())
    assert spec.analysis is not None
    assert spec.analysis.interval == "1m"


def test_the_crd_defaults_none_of_these_fields() -> None:
    """A CRD default would be stored by the API server: the operator could not tell it
    from a value the user wrote, and the cluster's default would never apply."""
    crd = yaml.safe_load((ROOT / "crds" / "modelrelease.dev_modelreleases.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = schema["properties"]["spec"]["properties"]["analysis"]["properties"]
    for name in ("interval", "maxInconclusive"):
        assert "default" not in fields[name]
        assert "--default-" in fields[name]["description"]
    assert "default" not in fields["onError"]
    for name in ("action", "after"):
        assert "default" not in fields["onError"]["properties"][name]
    # Neighbours keep theirs: only the cluster-wide fields moved to the operator.
    assert fields["guard"]["properties"]["period"]["default"] == "2s"


def test_the_flags_set_the_defaults() -> None:
    config = parse_args(
        [
            "--default-analysis-interval=2m",
            "--default-max-inconclusive=5",
            "--default-on-error-action=hold",
            "--default-on-error-after=1h",
        ]
    )
    assert config.analysis_defaults == AnalysisDefaults("2m", 5, OnErrorAction.HOLD, "1h")
    assert parse_args([]).analysis_defaults == BUILT_IN_ANALYSIS_DEFAULTS


@pytest.mark.parametrize(
    "flag",
    [
        "--default-analysis-interval=30",
        "--default-on-error-after=0s",
        "--default-max-inconclusive=-1",
        "--default-on-error-action=ignore",
    ],
)
def test_bad_defaults_stop_the_operator_at_start(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args([flag])
    assert "default" in capsys.readouterr().err
