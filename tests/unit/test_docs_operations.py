"""docs/operations.md: every reason has a row in the troubleshooting table."""

from __future__ import annotations

import re
from pathlib import Path

from modelrelease.api.constants import Reason

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"


def troubleshooting_rows() -> dict[str, str]:
    text = OPERATIONS.read_text()
    table = text.split("## Troubleshooting", 1)[1]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        match = re.match(
            r"^\| `(?P<reason>[A-Za-z]+)` \| (?P<means>[^|]+) \| (?P<todo>.+) \|$", line
        )
        if match:
            rows[match["reason"]] = match["todo"].strip()
    return rows


def test_every_reason_has_a_row_saying_what_to_do() -> None:
    rows = troubleshooting_rows()
    missing = sorted(reason.value for reason in Reason if reason.value not in rows)
    assert not missing, f"add these reasons to the troubleshooting table of {OPERATIONS}: {missing}"
    stale = sorted(set(rows) - {reason.value for reason in Reason})
    assert not stale, f"rows for reasons that no longer exist: {stale}"
    assert all(todo for todo in rows.values())
