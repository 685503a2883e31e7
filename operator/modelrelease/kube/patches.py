"""JSON merge patches (RFC 7386) that turn one document into another."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def merge_patch(old: Json, new: Json) -> Json:
    """The smallest merge patch taking ``old`` to ``new``.

    Removed keys become ``None`` (merge-patch deletion), nested objects are
    diffed recursively, and lists are replaced whole, as RFC 7386 requires.
    """
    patch: Json = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch
