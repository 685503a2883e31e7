"""Validation at the door: the real API server rejects every case of the invalid catalog
with a message naming the field and what is allowed, and presents the API well
(`kubectl explain`, `kubectl get` columns, the status subresource)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from modelrelease.api.constants import (
    CATEGORY,
    GROUP,
    PLURAL_CLUSTER_SLO_TEMPLATES,
    PLURAL_MODEL_RELEASES,
    PLURAL_SLO_TEMPLATES,
)

from tests.cluster.conftest import FIELD_MANAGER
from tests.cluster.invalid import InvalidCase, load_catalog

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

ROOT = Path(__file__).resolve().parents[2]
CASES = load_catalog()


@pytest.fixture(scope="module")
def api_namespace(kubectl: Kubectl, modelrelease_crds: None) -> Iterator[str]:
    """The CRDs installed and one namespace shared by this module's cases."""
    name = f"t-api-validation-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(kubectl: Kubectl, namespace: str, manifest: str) -> subprocess.CompletedProcess[str]:
    """``kubectl apply --server-side`` with strict field validation, as a user would."""
    return kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        f"--field-manager={FIELD_MANAGER}",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifest,
        check=False,
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_invalid_manifest_is_rejected_with_a_clear_message(
    case: InvalidCase, kubectl: Kubectl, api_namespace: str
) -> None:
    result = apply(kubectl, api_namespace, case.manifest)
    assert result.returncode != 0, (
        f"the API server accepted tests/cluster/invalid/{case.name}.yaml ({case.summary}); "
        f"the CRD schema must reject it. Output:\n{result.stdout}"
    )
    missing = [fragment for fragment in case.expected if fragment not in result.stderr]
    assert not missing, (
        f"tests/cluster/invalid/{case.name}.yaml was rejected, but the message lacks "
        f"{missing!r}. The API server said:\n{result.stderr}"
    )


VALID_RELEASE = """
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata:
  name: chat
spec:
  model: {name: chat-8b, version: "2.1.0"}
  template:
    spec:
      containers: [{name: server, image: vllm/vllm-openai:v0.9.2}]
  traffic: {gatewayAPI: {httpRoute: chat}}
  stages:
    - name: ramp
      canary: {steps: [{weight: 10, duration: 5m}, {weight: 50, duration: 10m}]}
"""


def test_the_catalogs_base_manifest_is_valid(kubectl: Kubectl, api_namespace: str) -> None:
    """Each invalid case differs from a valid release by one thing, so it fails for its own
    reason; this is that valid release (the catalog's base, trimmed)."""
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        api_namespace,
        "-f",
        "-",
        input=VALID_RELEASE,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_defaults_are_filled_in_by_the_api_server(kubectl: Kubectl, api_namespace: str) -> None:
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        api_namespace,
        "-o",
        "json",
        "-f",
        "-",
        input=VALID_RELEASE,
    )
    spec = json.loads(result.stdout)["spec"]
    assert spec["replicas"] == 1
    assert spec["port"] == 8000
    assert spec["progressDeadline"] == "20m"
    assert spec["capacity"] == {"mode": "conserve", "maxSurge": 1, "autoscaledNodes": False}
    assert spec["rollback"] == {"automatic": True}
    assert spec["revisionHistoryLimit"] == 2
    assert spec["paused"] is False


def test_kubectl_explain_shows_the_descriptions(kubectl: Kubectl, api_namespace: str) -> None:
    stages = kubectl("explain", "modelrelease.spec.stages").stdout
    assert "The stages a new revision goes through" in stages
    for field in ("shadow", "canary", "championChallenger", "approval", "webhook", "name"):
        assert field in stages, f"`kubectl explain modelrelease.spec.stages` lacks {field}"
    steps = kubectl("explain", "mrel.spec.stages.canary.steps.weight").stdout
    assert "Percent of traffic to the challenger" in steps


def test_kubectl_get_shows_phase_stage_weight_and_versions(
    kubectl: Kubectl, api_namespace: str
) -> None:
    apply(kubectl, api_namespace, VALID_RELEASE).check_returncode()
    status = {
        "status": {
            "phase": "Progressing",
            "champion": {"revision": "0123456789", "modelVersion": "2.0.0", "replicas": 1},
            "challenger": {"revision": "abcdef0123", "modelVersion": "2.1.0", "replicas": 1},
            "currentStage": {"index": 0, "type": "canary", "name": "ramp", "step": 1, "weight": 50},
            "replicas": 2,
            "readyReplicas": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "StepAdvanced",
                    "message": "canary step 2 of 2: 50% of traffic on the challenger",
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                }
            ],
        }
    }
    kubectl(
        "patch",
        "modelrelease",
        "chat",
        "-n",
        api_namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    table = kubectl("get", "mrel", "chat", "-n", api_namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME", "PHASE", "STAGE", "WEIGHT", "CHAMPION", "CHALLENGER", "DESIRED", "READY", "AGE"
    ]  # fmt: skip
    assert table[1].split()[:8] == ["chat", "Progressing", "ramp", "50", "2.0.0", "2.1.0", "1", "1"]
    stored = yaml.safe_load(
        kubectl("get", "mrel", "chat", "-n", api_namespace, "-o", "yaml").stdout
    )
    assert stored["status"]["conditions"][0]["reason"] == "StepAdvanced"


def test_the_category_lists_every_kind(kubectl: Kubectl, api_namespace: str) -> None:
    resources = kubectl("api-resources", f"--categories={CATEGORY}", "-o", "name").stdout.split()
    assert sorted(resources) == sorted(
        f"{plural}.{GROUP}"
        for plural in (PLURAL_MODEL_RELEASES, PLURAL_SLO_TEMPLATES, PLURAL_CLUSTER_SLO_TEMPLATES)
    )


@pytest.mark.parametrize(
    "plural", [PLURAL_MODEL_RELEASES, PLURAL_SLO_TEMPLATES, PLURAL_CLUSTER_SLO_TEMPLATES]
)
def test_the_api_server_stores_the_crds_exactly_as_generated(
    plural: str, kubectl: Kubectl, api_namespace: str
) -> None:
    """Anything the server normalises away (an empty map, say) would make every apply a
    change: GitOps tools would show drift and a second field manager (helm after kubectl)
    would get a server-side-apply conflict."""
    live = json.loads(kubectl("get", "crd", f"{plural}.{GROUP}", "-o", "json").stdout)
    generated = yaml.safe_load((ROOT / "crds" / f"{GROUP}_{plural}.yaml").read_text())
    assert live["spec"]["versions"] == generated["spec"]["versions"]
    assert live["spec"]["names"] == generated["spec"]["names"]
