"""A revision: the identity of what is served, the hash of ``model`` and ``template``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modelrelease.api.models import ModelSpec

REVISION_LENGTH = 10


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def revision_of(model: ModelSpec, template: dict[str, Any]) -> str:
    """10 hex characters of the SHA-256 of the canonical JSON of model and template.

    Fields left at their defaults are omitted, so a later API version that adds
    an optional field does not change every existing revision.
    """
    document = {
        "model": model.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        "template": template,
    }
    digest = hashlib.sha256(canonical_json(document).encode()).hexdigest()
    return digest[:REVISION_LENGTH]
