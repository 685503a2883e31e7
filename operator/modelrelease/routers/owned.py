"""What the routers that own their route object share: metadata, drift, ownership.

An owned route (``gatewayAPI.ownedRoute``, ``istio.ownedVirtualService``) is built
whole from the ModelRelease, named after it, with an ownerReference to it, and
written by server-side apply only when the stored object differs from the built one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelrelease.api.constants import LABEL_RELEASE
from modelrelease.api.models import RouteMetadata
from modelrelease.core.manifests import ANNOTATION_MANIFEST_HASH, Owner, manifest_hash

Json = dict[str, Any]


def owned_object(
    api_version: str, kind: str, owner: Owner, metadata: RouteMetadata | None, spec: Json
) -> Json:
    """The whole object, with the release label, the ownerReference and the manifest hash."""
    labels = {**((metadata.labels if metadata else None) or {}), LABEL_RELEASE: owner.name}
    annotations = dict((metadata.annotations if metadata else None) or {})
    body: Json = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    }
    body["metadata"]["annotations"][ANNOTATION_MANIFEST_HASH] = manifest_hash(body)
    return body


def needs_apply(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether the object must be written: missing, built differently, or edited by someone."""
    if current is None:
        return True
    meta = current.get("metadata") or {}
    wanted = desired["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return bool(
        current.get("spec") != desired["spec"]
        or annotations.get(ANNOTATION_MANIFEST_HASH)
        != wanted["annotations"][ANNOTATION_MANIFEST_HASH]
        or any(labels.get(key) != value for key, value in wanted["labels"].items())
        or any(annotations.get(key) != value for key, value in wanted["annotations"].items())
        or not owned_by(current, str(wanted["ownerReferences"][0]["uid"]))
    )


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(reference.get("uid") == uid for reference in references)


def ownership_problem(
    current: Mapping[str, Any] | None, owner: Owner, kind: str, owned_field: str, by_name: str
) -> str | None:
    """Why an existing object named after the release must not be taken over, if it must not.

    ``owned_field`` is the spec field that asks for an owned route (for the message),
    ``by_name`` the one that weights an existing route in place instead.
    """
    if current is None or owned_by(current, owner.uid):
        return None
    references = (current.get("metadata") or {}).get("ownerReferences") or []
    holders = ", ".join(f"{ref.get('kind')} {ref.get('name')}" for ref in references)
    return (
        f"{kind} {owner.namespace}/{owner.name} exists and is not owned by ModelRelease "
        f"{owner.name} (owned by: {holders or 'nobody'}); {owned_field} creates the "
        f"{kind} under the release's name: delete or rename that {kind}, or name it in "
        f"{by_name} instead to let the operator weight it in place"
    )
