"""Pure builders of the objects the operator owns: Deployments and Services.

Every owned object carries an ownerReference to its ModelRelease and the
labels ``modelrelease.dev/release`` and ``modelrelease.dev/revision``; pods
carry them too, so PromQL can select by revision. Pods also carry the model's
identity (environment and annotations) so a running pod says what it serves.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from modelrelease.api.constants import (
    API_VERSION,
    GROUP,
    KIND_MODEL_RELEASE,
    LABEL_RELEASE,
    LABEL_REVISION,
)
from modelrelease.api.models import ModelReleaseSpec, ModelSpec
from modelrelease.core.revision import canonical_json

Json = dict[str, Any]

STABLE = "stable"
CANARY = "canary"
PORT_NAME = "http"

ANNOTATION_MODEL_NAME = f"{GROUP}/model-name"
ANNOTATION_MODEL_VERSION = f"{GROUP}/model-version"
ANNOTATION_MODEL_URI = f"{GROUP}/model-uri"
ANNOTATION_MODEL_METADATA = f"{GROUP}/model-metadata"
# Hash of the manifest the operator last applied, to skip writes that change nothing.
ANNOTATION_MANIFEST_HASH = f"{GROUP}/manifest-hash"

ENV_MODEL_URI = "MODEL_URI"
ENV_MODEL_NAME = "MODEL_NAME"
ENV_MODEL_VERSION = "MODEL_VERSION"


@dataclass(frozen=True)
class Owner:
    """The ModelRelease that owns the objects."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> Json:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND_MODEL_RELEASE,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def deployment_name(release: str, revision: str) -> str:
    return f"{release}-{revision}"


def service_name(release: str, role: str) -> str:
    return f"{release}-{role}"


def revision_labels(release: str, revision: str) -> dict[str, str]:
    return {LABEL_RELEASE: release, LABEL_REVISION: revision}


def model_annotations(model: ModelSpec) -> dict[str, str]:
    annotations = {
        ANNOTATION_MODEL_NAME: model.name,
        ANNOTATION_MODEL_VERSION: model.version,
    }
    if model.uri is not None:
        annotations[ANNOTATION_MODEL_URI] = model.uri
    if model.metadata:
        annotations[ANNOTATION_MODEL_METADATA] = canonical_json(model.metadata)
    return annotations


def model_from_annotations(annotations: dict[str, str]) -> ModelSpec | None:
    """The model a Deployment serves, read back from its annotations."""
    name = annotations.get(ANNOTATION_MODEL_NAME)
    version = annotations.get(ANNOTATION_MODEL_VERSION)
    if not name or not version:
        return None
    try:
        metadata = json.loads(annotations.get(ANNOTATION_MODEL_METADATA) or "{}")
    except ValueError:
        metadata = {}
    return ModelSpec(
        name=name,
        version=version,
        uri=annotations.get(ANNOTATION_MODEL_URI),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def _model_env(model: ModelSpec) -> list[Json]:
    env = [
        {"name": ENV_MODEL_NAME, "value": model.name},
        {"name": ENV_MODEL_VERSION, "value": model.version},
    ]
    if model.uri is not None:
        env.append({"name": ENV_MODEL_URI, "value": model.uri})
    return env


def _with_env(container: Json, extra: list[Json]) -> Json:
    names = {item["name"] for item in extra}
    kept = [item for item in container.get("env") or [] if item.get("name") not in names]
    return {**container, "env": [*kept, *extra]}


def pod_template(spec: ModelReleaseSpec, release: str, revision: str) -> Json:
    """The user's pod template plus the operator's labels, annotations and env."""
    template = copy.deepcopy(spec.template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **revision_labels(release, revision)}
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        **model_annotations(spec.model),
    }
    pod_spec = template["spec"]
    env = _model_env(spec.model)
    pod_spec["containers"] = [_with_env(c, env) for c in pod_spec["containers"]]
    return template


def deployment_manifest(spec: ModelReleaseSpec, owner: Owner, revision: str, replicas: int) -> Json:
    """The Deployment ``<release>-<revision>`` serving the spec's model and template."""
    labels = revision_labels(owner.name, revision)
    body: Json = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(owner.name, revision),
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": model_annotations(spec.model),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(spec, owner.name, revision),
        },
    }
    body["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH] = manifest_hash(body)
    return body


def service_manifest(spec: ModelReleaseSpec, owner: Owner, role: str, revision: str) -> Json:
    """``<release>-stable`` or ``<release>-canary``, selecting one revision's pods."""
    body: Json = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(owner.name, role),
            "namespace": owner.namespace,
            "labels": revision_labels(owner.name, revision),
            "annotations": {},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": revision_labels(owner.name, revision),
            "ports": [
                {"name": PORT_NAME, "port": spec.port, "targetPort": spec.port, "protocol": "TCP"}
            ],
        },
    }
    body["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH] = manifest_hash(body)
    return body


def manifest_hash(body: Json) -> str:
    """A short hash of a manifest without its own hash annotation."""
    stripped = copy.deepcopy(body)
    stripped["metadata"].get("annotations", {}).pop(ANNOTATION_MANIFEST_HASH, None)
    stripped.get("spec", {}).pop("replicas", None)  # scaling is not a manifest change
    return hashlib.sha256(canonical_json(stripped).encode()).hexdigest()[:16]


def drifted(desired: Json, observed: Json) -> bool:
    """Whether ``observed`` lost any field the operator sets in ``desired``.

    Only the operator's own fields count (the API server adds defaults, other
    controllers add their annotations), compared after the server's
    normalisations (quantities such as ``0.5`` / ``500m``, numbers as strings).
    ``spec.replicas`` is left out: scaling is decided by the plan, not here.
    """
    wanted = copy.deepcopy(desired)
    wanted.get("spec", {}).pop("replicas", None)
    # The object's identity, not its content (a listed object need not repeat them).
    wanted.pop("apiVersion", None)
    wanted.pop("kind", None)
    return not _contains(observed, wanted)


def _contains(observed: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        if not wanted:
            return observed in (None, {})
        if not isinstance(observed, dict):
            return False
        return all(_contains(observed.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return observed in (None, [])
        if not isinstance(observed, list) or len(observed) != len(wanted):
            return False
        return all(_contains(o, w) for o, w in zip(observed, wanted, strict=True))
    if wanted is None or observed == wanted:
        return True
    return bool(_scalar(observed) == _scalar(wanted))


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def _scalar(value: Any) -> Any:
    """Numbers and Kubernetes quantities as exact decimals; other values as they are."""
    if isinstance(value, bool) or value is None:
        return value
    match = _QUANTITY.match(str(value)) if isinstance(value, (int, float, str)) else None
    if match is None:
        return value
    try:
        return Decimal(match.group(1)) * _SUFFIX.get(match.group(2) or "", Decimal(1))
    except ArithmeticError:  # not a number, or not one a quantity can be ("12e3456789")
        return value
