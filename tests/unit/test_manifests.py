"""Revision hashes, child manifests, observation parsing and status patches (pure)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.models import ModelReleaseSpec, ModelSpec
from modelrelease.core.manifests import (
    ANNOTATION_MANIFEST_HASH,
    Owner,
    deployment_manifest,
    drifted,
    model_from_annotations,
    service_manifest,
)
from modelrelease.core.observation import deployment_state, parse_action
from modelrelease.core.revision import revision_of
from modelrelease.kube.patches import merge_patch

OWNER = Owner(name="chat", namespace="llm", uid="uid-1")


def _spec(**model: Any) -> ModelReleaseSpec:
    return ModelReleaseSpec.model_validate(
        {
            "model": {"name": "chat-8b", "version": "1", **model},
            "replicas": 3,
            "port": 8080,
            "template": {
                "metadata": {"labels": {"team": "llm"}, "annotations": {"a": "b"}},
                "spec": {
                    "containers": [
                        {"name": "server", "image": "vllm:1", "env": [{"name": "X", "value": "1"}]},
                        {"name": "sidecar", "image": "proxy:1"},
                    ]
                },
            },
            "traffic": {"gatewayAPI": {"httpRoute": "chat"}},
            "stages": [{"canary": {"steps": [{"weight": 10, "duration": "1m"}]}}],
        }
    )


def test_revision_is_ten_hex_characters_and_stable() -> None:
    spec = _spec()
    revision = revision_of(spec.model, spec.template)
    assert len(revision) == 10
    assert int(revision, 16) >= 0
    assert revision == revision_of(_spec().model, _spec().template)


def test_revision_changes_with_model_or_template_only() -> None:
    base = _spec()
    other_version = _spec(version="2")
    assert revision_of(base.model, base.template) != revision_of(
        other_version.model, other_version.template
    )
    template = dict(base.template, spec={"containers": [{"name": "server", "image": "vllm:2"}]})
    assert revision_of(base.model, base.template) != revision_of(base.model, template)
    # Explicit defaults do not change the identity.
    assert revision_of(base.model, base.template) == revision_of(
        _spec(metadata={}).model, base.template
    )


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=4))
def test_revision_ignores_key_order(metadata: dict[str, str]) -> None:
    forward = ModelSpec(name="m", version="1", metadata=metadata)
    backward = ModelSpec(name="m", version="1", metadata=dict(reversed(list(metadata.items()))))
    assert revision_of(forward, {"spec": {}}) == revision_of(backward, {"spec": {}})


def test_deployment_manifest_labels_owner_and_model() -> None:
    spec = _spec(uri="s3://models/chat/1", metadata={"dataset": "2026-10"})
    body = deployment_manifest(spec, OWNER, "abc1234567", 2)
    labels = {"modelrelease.dev/release": "chat", "modelrelease.dev/revision": "abc1234567"}
    assert body["metadata"]["name"] == "chat-abc1234567"
    assert body["metadata"]["labels"] == labels
    assert body["spec"]["selector"] == {"matchLabels": labels}
    assert body["spec"]["replicas"] == 2
    owner = body["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ModelRelease"
    assert owner["uid"] == "uid-1"
    assert owner["controller"] is True
    pod = body["spec"]["template"]
    assert pod["metadata"]["labels"] == {"team": "llm", **labels}
    assert pod["metadata"]["annotations"]["a"] == "b"
    assert pod["metadata"]["annotations"]["modelrelease.dev/model-version"] == "1"
    for container in pod["spec"]["containers"]:
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["MODEL_URI"] == "s3://models/chat/1"
        assert env["MODEL_VERSION"] == "1"
    assert pod["spec"]["containers"][0]["env"][0] == {"name": "X", "value": "1"}
    model = model_from_annotations(body["metadata"]["annotations"])
    assert model == spec.model
    # The spec object itself is not changed by building a manifest.
    assert "labels" in spec.template["metadata"]
    assert "modelrelease.dev/revision" not in spec.template["metadata"]["labels"]


def test_manifest_hash_ignores_replicas_but_not_the_template() -> None:
    spec = _spec()
    one = deployment_manifest(spec, OWNER, "r", 1)["metadata"]["annotations"]
    two = deployment_manifest(spec, OWNER, "r", 5)["metadata"]["annotations"]
    other = deployment_manifest(_spec(version="2"), OWNER, "r", 1)["metadata"]["annotations"]
    assert one[ANNOTATION_MANIFEST_HASH] == two[ANNOTATION_MANIFEST_HASH]
    assert one[ANNOTATION_MANIFEST_HASH] != other[ANNOTATION_MANIFEST_HASH]


def test_service_selects_one_revision_on_port_http() -> None:
    body = service_manifest(_spec(), OWNER, "stable", "abc1234567")
    assert body["metadata"]["name"] == "chat-stable"
    assert body["spec"]["selector"] == {
        "modelrelease.dev/release": "chat",
        "modelrelease.dev/revision": "abc1234567",
    }
    assert body["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}
    ]
    assert body["metadata"]["ownerReferences"][0]["name"] == "chat"


def test_deployment_state_reads_what_the_plan_needs() -> None:
    body = deployment_manifest(_spec(), OWNER, "abc1234567", 3)
    body["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    body["status"] = {"readyReplicas": 2, "updatedReplicas": 3}
    state = deployment_state(body)
    assert state is not None
    assert (state.revision, state.replicas, state.ready_replicas) == ("abc1234567", 3, 2)
    assert not state.ready
    assert state.created is not None
    assert state.model is not None
    assert state.model.version == "1"
    assert deployment_state({"metadata": {"name": "x"}}) is None


def test_parse_action() -> None:
    assert parse_action(None) == (None, None)
    assert parse_action(" Retry ")[0] == "retry"
    assert parse_action("explode") == (None, "explode")


def test_merge_patch_removes_and_nests() -> None:
    old = {"phase": "Progressing", "currentStage": {"step": 1, "stepStartTime": "t"}, "x": [1]}
    new = {"phase": "Succeeded", "currentStage": {"step": 2}, "x": [1], "champion": {"r": "a"}}
    assert merge_patch(old, new) == {
        "phase": "Succeeded",
        "currentStage": {"step": 2, "stepStartTime": None},
        "champion": {"r": "a"},
    }
    assert merge_patch(new, new) == {}
    assert merge_patch({"currentStage": {"step": 1}}, {}) == {"currentStage": None}


JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


def _apply(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _apply(result.get(key), value)
    return result


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(
    st.dictionaries(st.text(max_size=3), JSON, max_size=4),
    st.dictionaries(st.text(max_size=3), JSON, max_size=4),
)
def test_merge_patch_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    old, new = _without_nulls(old), _without_nulls(new)
    assert _apply(old, merge_patch(old, new)) == new


def test_an_object_listed_without_its_kind_has_not_drifted() -> None:
    # A list names kind and apiVersion once for all its items; the object is the same.
    for manifest in (
        service_manifest(_spec(), OWNER, "stable", "abc"),
        deployment_manifest(_spec(), OWNER, "abc", 2),
    ):
        listed = {k: v for k, v in manifest.items() if k not in ("kind", "apiVersion")}
        assert not drifted(manifest, listed)
        edited = {**listed, "metadata": {**listed["metadata"], "labels": {}}}
        assert drifted(manifest, edited)


def test_a_revision_that_reads_as_a_huge_number_is_compared_as_text() -> None:
    # Revisions are hex: "83e1234567" also parses as 83 x 10^1234567, out of Decimal's range.
    for revision in ("83e1234567", "1e99999999"):
        manifest = service_manifest(_spec(), OWNER, "stable", revision)
        assert not drifted(manifest, manifest)
        other = service_manifest(_spec(), OWNER, "stable", "83e1234568")
        assert drifted(manifest, other)
