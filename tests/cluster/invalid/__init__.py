"""The catalog of manifests the API server must reject: one YAML file per case.

A case file starts with comment lines: a one-line summary, then one or more
``# expect: <fragment>`` lines. The case passes when the API server rejects the
manifest and its error message contains every fragment (a field path, and what
is allowed). To add a case, copy a file, break one thing, and write down what
the server says about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATALOG_DIR = Path(__file__).resolve().parent
EXPECT_PREFIX = "# expect:"


@dataclass(frozen=True)
class InvalidCase:
    """One manifest the API must refuse, and what the refusal must say."""

    name: str
    summary: str
    expected: tuple[str, ...]
    manifest: str

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(self.manifest)
        return document


def _parse(path: Path) -> InvalidCase:
    text = path.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    expected = tuple(
        line[len(EXPECT_PREFIX) :].strip() for line in header if line.startswith(EXPECT_PREFIX)
    )
    summaries = [line.lstrip("# ").strip() for line in header if not line.startswith(EXPECT_PREFIX)]
    if not expected or not all(expected):
        raise ValueError(
            f"{path.name}: no '{EXPECT_PREFIX} <message fragment>' line; every case must say "
            "what the API server's error has to contain"
        )
    return InvalidCase(
        name=path.stem,
        summary=summaries[0] if summaries else path.stem,
        expected=expected,
        manifest=text,
    )


def load_catalog(folder: Path = CATALOG_DIR) -> list[InvalidCase]:
    """Every case of the catalog, sorted by name."""
    return [_parse(path) for path in sorted(folder.glob("*.yaml"))]
