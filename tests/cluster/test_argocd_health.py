"""The ModelRelease health check run by Argo CD's own Lua runtime (util/lua of argo-cd,
gopher-lua), through hack/argocd-health: every case of health_test.yaml, as an argocd-cm
override (no standard libraries) and as a built-in script. No cluster needed; the harness
is built by `make tools` (hack/tools.sh argocd-health)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hack.argocd_health import CUSTOMIZATION
from tests.conftest import CACHE

HARNESS = CACHE / "bin" / "argocd-health"


def _run(directory: str) -> subprocess.CompletedProcess[str]:
    if not HARNESS.exists():
        pytest.fail(f"{HARNESS} is missing: run `hack/tools.sh argocd-health`", pytrace=False)
    return subprocess.run(
        [str(HARNESS), directory], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_case_passes_in_argo_cds_lua_runtime() -> None:
    result = _run(str(CUSTOMIZATION))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load((CUSTOMIZATION / "health_test.yaml").read_text())["tests"]
    passed = [line for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert len(passed) == len(cases)


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    directory = tmp_path / "ModelRelease"
    shutil.copytree(CUSTOMIZATION, directory)
    suite = directory / "health_test.yaml"
    tests = yaml.safe_load(suite.read_text())
    tests["tests"][0]["healthStatus"]["status"] = "Suspended"
    suite.write_text(yaml.safe_dump(tests))
    result = _run(str(directory))
    assert result.returncode == 1
    assert f"FAIL {tests['tests'][0]['inputPath']}" in result.stdout
