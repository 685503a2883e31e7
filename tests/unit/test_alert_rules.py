"""The alert rules shipped in the chart: valid (`promtool check rules`) and doing what they
say on input series (`promtool test rules`, tests/alerts/*.test.yaml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import CACHE

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "modelrelease-operator" / "alerts" / "modelrelease.rules.yaml"
RULE_TESTS = sorted((ROOT / "tests" / "alerts").glob("*.test.yaml"))


def promtool() -> str:
    cached = CACHE / "bin" / "promtool"
    found = str(cached) if cached.exists() else shutil.which("promtool")
    assert found, "promtool is missing: `hack/tools.sh promtool` (or `make unit`) fetches it"
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rules_file_is_valid() -> None:
    result = run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule_test", RULE_TESTS, ids=lambda path: path.name)
def test_the_alerts_fire_on_their_input_series(rule_test: Path) -> None:
    result = run("test", "rules", str(rule_test))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {
                check["alertname"]
                for check in case.get("alert_rule_test", [])
                if check.get("exp_alerts")
            }
    assert alerts - tested == set(), "alerts without a test that fires them"
