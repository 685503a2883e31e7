"""The cluster suites share the root fixtures (tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from modelrelease.core.manifests import Owner

from tests.conftest import FIELD_MANAGER, install_crds

__all__ = ["FIELD_MANAGER", "install_crds", "owning_release"]


def owning_release(
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    namespace: str,
    traffic: dict[str, Any],
) -> Owner:
    """A real ModelRelease ``chat`` routed by ``traffic`` (no operator runs), so the
    garbage collector keeps the children that name it as their owner."""
    release = {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": "chat", "namespace": namespace},
        "spec": {
            "model": {"name": "chat-8b", "version": "1"},
            "replicas": 1,
            "template": {"spec": {"containers": [{"name": "server", "image": "vllm"}]}},
            "port": 8000,
            "traffic": traffic,
            "stages": [{"canary": {"steps": [{"weight": 50, "duration": "1m"}]}}],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(release))
    uid = kubectl("get", "modelrelease", "chat", "-n", namespace, "-o", "jsonpath={.metadata.uid}")
    return Owner("chat", namespace, uid.stdout)
