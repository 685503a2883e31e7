"""Durations as users write them in the spec: ``30s``, ``5m``, ``1h30m``, ``1.5h``, ``250ms``.

The same grammar is enforced three times from this one place: by
:func:`parse_duration` (the operator), by the pydantic ``Duration`` type and by
the CEL rule the CRD generator puts on every duration field (the API server).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

DURATION_MAX_LENGTH = 32
# RE2 and Python agree on these patterns, and they need no backslash, so a CEL
# string literal can hold them verbatim.
DURATION_PATTERN = "^([0-9]+([.][0-9]+)?(ms|s|m|h))+$"
ZERO_DURATION_PATTERN = "^(0+([.]0+)?(ms|s|m|h))+$"
DURATION_HINT = "a positive duration such as 30s, 5m, 1h30m or 1.5h (units: ms, s, m, h)"

_DURATION = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]+(?:[.][0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Return the number of seconds in ``text``; raise ``ValueError`` if it is not a
    positive duration in the spec's grammar."""
    if len(text) > DURATION_MAX_LENGTH or not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration: use {DURATION_HINT}")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"{text!r} is zero: use {DURATION_HINT}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest spec-style text for ``seconds`` (``90`` -> ``1m30s``), for messages."""
    if seconds <= 0:
        return "0s"
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs else "")
    parts.append(f"{millis}ms" if millis else "")
    return "".join(parts)


def _validate_duration(text: str) -> str:
    parse_duration(text)
    return text


DURATION_CEL_RULE = (
    f"self.matches('{DURATION_PATTERN}') && !self.matches('{ZERO_DURATION_PATTERN}')"
)

DURATION_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "maxLength": DURATION_MAX_LENGTH,
    "x-kubernetes-validations": [
        {"rule": DURATION_CEL_RULE, "message": f"must be {DURATION_HINT}"},
    ],
}

Duration = Annotated[
    str,
    AfterValidator(_validate_duration),
    WithJsonSchema(DURATION_JSON_SCHEMA),
]
"""A positive duration string; use :func:`parse_duration` for its seconds."""
