"""The ModelRelease API: pydantic models of the CRDs, shared constants, durations.

Import the models from :mod:`modelrelease.api.models`, names from
:mod:`modelrelease.api.constants` and :func:`parse_duration` from
:mod:`modelrelease.api.durations`; the most used ones are re-exported here.
"""

from modelrelease.api.durations import format_duration, parse_duration
from modelrelease.api.models import (
    ClusterSLOTemplate,
    ModelRelease,
    ModelReleaseSpec,
    ModelReleaseStatus,
    SLOTemplate,
    Stage,
)

__all__ = [
    "ClusterSLOTemplate",
    "ModelRelease",
    "ModelReleaseSpec",
    "ModelReleaseStatus",
    "SLOTemplate",
    "Stage",
    "format_duration",
    "parse_duration",
]
