"""A generic webhook: a JSON body signed with HMAC-SHA256 (pure).

What is signed: the bytes ``<timestamp>.<body>``, where ``<timestamp>`` is the
decimal Unix time in seconds sent in ``X-ModelRelease-Timestamp`` (ASCII) and
``<body>`` the request body exactly as sent (UTF-8 JSON). The signature is
``X-ModelRelease-Signature: sha256=<lowercase hex HMAC-SHA256 keyed with the
Secret's signingKey>``. A receiver recomputes it over the raw body, compares in
constant time, and refuses a timestamp more than five minutes from its clock
(a replayed request is then refused); ``X-ModelRelease-Delivery`` is the
notification's id, the same on every retry, to drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from modelrelease.notify.message import Notice, slo_text, title

HEADER_SIGNATURE = "X-ModelRelease-Signature"
HEADER_TIMESTAMP = "X-ModelRelease-Timestamp"
HEADER_DELIVERY = "X-ModelRelease-Delivery"
HEADER_EVENT = "X-ModelRelease-Event"
SIGNATURE_PREFIX = "sha256="
TOLERANCE_SECONDS = 300


def body(notice: Notice) -> dict[str, Any]:
    n = notice.notification
    slo = None
    if n.slo is not None:
        slo = {"name": n.slo, "value": n.slo_value, "min": n.slo_min, "max": n.slo_max}
    return {
        "id": n.id,
        "type": n.type.value,
        "time": n.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "namespace": notice.namespace,
        "release": notice.release,
        "revision": n.revision,
        "model": {"name": n.model_name, "version": n.model_version},
        "championVersion": n.champion_version,
        "stage": n.stage,
        "reason": n.reason,
        "message": n.message,
        "slo": slo,
        "summary": title(notice) + (f"; {slo_text(n)}" if slo is not None else ""),
    }


def encode(document: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def signed_bytes(timestamp: int, raw_body: bytes) -> bytes:
    return str(timestamp).encode() + b"." + raw_body


def signature(key: bytes, timestamp: int, raw_body: bytes) -> str:
    digest = hmac.new(key, signed_bytes(timestamp, raw_body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def headers(key: bytes, timestamp: int, raw_body: bytes, notice: Notice) -> dict[str, str]:
    return {
        HEADER_SIGNATURE: signature(key, timestamp, raw_body),
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_EVENT: notice.type.value,
    }


def verify(
    key: bytes,
    raw_body: bytes,
    timestamp: str,
    signature_header: str,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature over ``<timestamp>.<body>``, and the timestamp
    within ``tolerance`` seconds of ``now`` (so a captured request cannot be replayed)."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs(now - moment) > tolerance:
        return False
    return hmac.compare_digest(signature(key, moment, raw_body), signature_header)
