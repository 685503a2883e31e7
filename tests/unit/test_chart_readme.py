"""The chart's README is generated from values.yaml, and every value is described."""

from __future__ import annotations

import pytest

from hack import chart_readme


def test_the_chart_readme_is_generated_from_the_values() -> None:
    assert chart_readme.main(["--check"]) == 0, "run `python -m hack.chart_readme --write`"


def test_a_value_without_a_description_is_refused() -> None:
    with pytest.raises(ValueError, match="replicas has no `# --` comment"):
        chart_readme.rows("# -- described\nimage: x\nreplicas: 2\n")


def test_a_described_parent_covers_its_keys_and_described_keys_get_rows() -> None:
    rows = chart_readme.rows(
        "# -- The probe.\nprobe:\n  # -- Its port.\n  port: 8081\n  period: 5\n"
    )
    assert [(row.path, row.default) for row in rows] == [
        ("probe", {"port": 8081, "period": 5}),
        ("probe.port", 8081),
    ]
