"""The Argo CD health check's generated files are current (testdata from the operator's own
statuses, health_test.yaml, the argocd-cm snippet); tests/cluster runs the Lua itself."""

from __future__ import annotations

import yaml

from hack.argocd_health import CUSTOMIZATION, SNIPPET, SNIPPET_KEY, stale_files


def test_generated_files_match_what_the_operator_writes_today() -> None:
    stale = [str(path) for path in stale_files()]
    assert stale == [], "out of date; run: python -m hack.argocd_health --write"


def test_argocd_cm_snippet_carries_health_lua_unchanged() -> None:
    config_map = yaml.safe_load(SNIPPET.read_text())
    assert (config_map["kind"], config_map["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert config_map["data"] == {SNIPPET_KEY: (CUSTOMIZATION / "health.lua").read_text()}


def test_every_health_status_is_covered() -> None:
    tests = yaml.safe_load((CUSTOMIZATION / "health_test.yaml").read_text())["tests"]
    statuses = {case["healthStatus"]["status"] for case in tests}
    assert statuses == {"Healthy", "Progressing", "Suspended", "Degraded"}
    for case in tests:
        assert (CUSTOMIZATION / case["inputPath"]).is_file()
        assert case["healthStatus"]["message"], case["inputPath"]
