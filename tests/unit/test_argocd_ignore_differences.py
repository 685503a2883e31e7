"""The Argo CD settings for an existing route (integrations/argocd/routes/), run the way
Argo CD runs them: each jqPathExpression as ``del(EXPR)``, in order, on live and Git's
route (``util/argo/normalizers`` of Argo CD v3.6.1, with gojq; here jq, the same
language); then, for ``RespectIgnoreDifferences=true``, the merge patch from the
normalized live route to the live route applied to the normalized Git route
(``normalizeTargetResources`` in its ``controller/sync.go``).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "integrations/argocd/routes"
SNIPPET = SNIPPETS / "application-existing-route.yaml"
ISTIO_SNIPPET = SNIPPETS / "application-existing-virtualservice.yaml"
JQ = shutil.which("jq")

pytestmark = pytest.mark.skipif(JQ is None, reason="jq is not installed (apt-get install jq)")

ADMIN = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "backendRefs": [{"group": "", "kind": "Service", "name": "admin", "port": 80, "weight": 1}],
}
GIT_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": []}}],
    "backendRefs": [{"group": "", "kind": "Service", "name": "chat-stable", "port": 8000}],
}


def _route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat", "namespace": "llm"},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": list(rules)},
    }


def _mid_canary(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule as the operator leaves it mid-canary, mirroring too."""
    live = copy.deepcopy(rule)
    live["backendRefs"] = [
        {"group": "", "kind": "Service", "name": "chat-stable", "port": 8000, "weight": 80},
        {"group": "", "kind": "Service", "name": "chat-canary", "port": 8000, "weight": 20},
    ]
    mirror = {"backendRef": {"name": "chat-canary", "port": 8000}, "percent": 10}
    live["filters"] = [*rule["filters"], {"type": "RequestMirror", "requestMirror": mirror}]
    return live


def _expressions(snippet: Path = SNIPPET) -> list[str]:
    application = yaml.safe_load(snippet.read_text())
    (ignored,) = application["spec"]["ignoreDifferences"]
    obj_kind = (ignored["group"], ignored["kind"])
    assert obj_kind in {
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("networking.istio.io", "VirtualService"),
    }
    assert application["spec"]["syncPolicy"]["syncOptions"] == [
        "ServerSideApply=true",
        "RespectIgnoreDifferences=true",
    ]
    expressions: list[str] = ignored["jqPathExpressions"]
    return expressions


def _normalized(obj: dict[str, Any], snippet: Path = SNIPPET) -> dict[str, Any]:
    assert JQ is not None
    document = json.dumps(obj)
    for expression in _expressions(snippet):
        document = subprocess.run(
            [JQ, "-c", f"del({expression})"], input=document, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(document)
    return result


def _merge_patch(original: Any, modified: Any) -> Any:
    """RFC 7386: objects key by key, anything else (lists too) replaced whole."""
    if not (isinstance(original, dict) and isinstance(modified, dict)):
        return modified
    patch = {key: None for key in original if key not in modified}
    for key, value in modified.items():
        if key not in original or original[key] != value:
            patch[key] = _merge_patch(original.get(key), value)
    return patch


def _apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _apply_merge_patch(result.get(key), value)
    return result


def test_mid_canary_the_application_stays_synced() -> None:
    git = _route(ADMIN, GIT_RULE)
    live = _route(ADMIN, _mid_canary(GIT_RULE))
    assert _normalized(live) == _normalized(git)


def test_a_change_elsewhere_in_the_route_is_still_a_difference() -> None:
    git = _route(ADMIN, GIT_RULE)
    edited_admin = copy.deepcopy(ADMIN)
    edited_admin["backendRefs"][0]["weight"] = 5
    live = _route(edited_admin, _mid_canary(GIT_RULE))
    assert _normalized(live) != _normalized(git)


def test_the_managed_rules_own_filters_are_ignored_too() -> None:
    """The cost of ignoring `.filters` whole: a filter of yours in that rule, changed
    live, is not seen either. Keep such filters stable, or in another rule."""
    git = _route(ADMIN, GIT_RULE)
    rule = _mid_canary(GIT_RULE)
    rule["filters"][0]["requestHeaderModifier"]["add"] = [{"name": "x", "value": "1"}]
    assert _normalized(_route(ADMIN, rule)) == _normalized(git)


def test_respect_ignore_differences_applies_the_whole_live_rules() -> None:
    """The live values of the ignored fields are copied into what is applied; because
    `spec.rules` is a list and a list is patched whole, that is all of the live rules,
    so a sync does not change the weights, and it does not apply a change made to the
    rules in Git either (docs/gitops.md)."""
    git = _route(ADMIN, GIT_RULE)
    live = _route(ADMIN, _mid_canary(GIT_RULE))
    changed_in_git = copy.deepcopy(git)
    changed_in_git["spec"]["rules"][0]["matches"][0]["path"]["value"] = "/ops"
    live_patch = _merge_patch(_normalized(live), live)
    applied = _apply_merge_patch(_normalized(changed_in_git), live_patch)
    assert applied["spec"]["rules"] == live["spec"]["rules"]
    assert applied["spec"]["parentRefs"] == git["spec"]["parentRefs"]


# --- Istio ------------------------------------------------------------------------------

ISTIO_ADMIN = {"name": "admin", "route": [{"destination": {"host": "admin"}}]}


def _virtual_service(*http: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "chat", "namespace": "llm"},
        "spec": {"hosts": ["chat.example.com"], "http": list(http)},
    }


@pytest.mark.parametrize("host", ["chat-stable", "chat-stable.llm.svc.cluster.local"])
def test_istio_mid_canary_the_application_stays_synced_and_other_routes_are_compared(
    host: str,
) -> None:
    git_route = {"name": "primary", "timeout": "60s", "route": [{"destination": {"host": host}}]}
    live_route = {
        **git_route,
        "route": [
            {"destination": {"host": host}, "weight": 80},
            {"destination": {"host": host.replace("stable", "canary")}, "weight": 20},
        ],
        "mirror": {"host": host.replace("stable", "canary")},
        "mirrorPercentage": {"value": 10},
    }
    git = _virtual_service(ISTIO_ADMIN, git_route)
    live = _virtual_service(ISTIO_ADMIN, live_route)
    assert _normalized(live, ISTIO_SNIPPET) == _normalized(git, ISTIO_SNIPPET)
    edited = copy.deepcopy(live)
    edited["spec"]["http"][1]["timeout"] = "5s"
    assert _normalized(edited, ISTIO_SNIPPET) != _normalized(git, ISTIO_SNIPPET)
    edited = copy.deepcopy(live)
    edited["spec"]["http"][0]["route"][0]["destination"]["host"] = "admin-v2"
    assert _normalized(edited, ISTIO_SNIPPET) != _normalized(git, ISTIO_SNIPPET)
