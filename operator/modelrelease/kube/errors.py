"""Errors the Kubernetes layer raises, free of client-library types."""

from __future__ import annotations


class KubeError(Exception):
    """The API server refused or failed a request."""


class WriteConflictError(KubeError):
    """The object changed since it was read (HTTP 409); read it again and retry."""


class ForbiddenError(KubeError):
    """The operator's service account may not do this (HTTP 403)."""


class NotLeaderError(KubeError):
    """This replica does not hold the leader Lease: the write was not sent (fencing)."""
