"""A small RFC 6902 applier for the in-memory route stores of the router tests.

It does what the API server does with the routers' patches (``test``, ``add``,
``replace``, ``remove``), and raises WriteConflictError where the API server
answers 422 to a failed ``test``, as ``kube.KubeClient`` translates it.
"""

from __future__ import annotations

import copy
from typing import Any

from modelrelease.kube.errors import WriteConflictError


def apply(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    result = copy.deepcopy(document)
    for operation in operations:
        *parents, last = [_token(part) for part in operation["path"].split("/")[1:]]
        node: Any = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        match operation["op"]:
            case "test":
                if node[key] != operation["value"]:
                    raise WriteConflictError(f"testing value {operation['path']} failed")
            case "add" | "replace":
                node[key] = copy.deepcopy(operation["value"])
            case "remove":
                del node[key]
            case other:
                raise AssertionError(f"the routers never send {other!r}")
    return result


def _token(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
