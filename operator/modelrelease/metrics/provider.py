"""The metrics provider contract: one small Protocol and its sentinel errors.

Analysis code only ever sees these names, so a provider for another backend is
one more file next to ``prometheus.py`` plus one line in ``factory.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from modelrelease.core.redaction import redact_url


class MetricsError(Exception):
    """Any failure to turn a query into one number."""


class NoValuesFoundError(MetricsError):
    """The query ran but returned no sample (or NaN): no data yet."""


class MultipleValuesReturnedError(MetricsError):
    """The query returned several series where a single number was expected."""


class ProviderError(MetricsError):
    """The provider could not be reached or answered with an error."""


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach a metrics backend; secrets are resolved by the caller.

    ``authorization`` is the full value of the HTTP ``Authorization`` header
    (see :func:`authorization_from_secret`); ``ca_bundle`` is PEM text.
    ``secrets`` names (``namespace/name``) the Secrets they were read from, so
    a cache can tell a rotated credential from another tenant's. The repr shows
    whether credentials are set, never their value.
    """

    address: str
    timeout_seconds: float = 10.0
    authorization: str | None = None
    ca_bundle: str | None = None
    insecure_skip_verify: bool = False
    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"ProviderConfig(address={redact_url(self.address)!r}, "
            f"timeout_seconds={self.timeout_seconds!r}, "
            f"authorization={'<set>' if self.authorization else None}, "
            f"ca_bundle={'<set>' if self.ca_bundle else None}, "
            f"insecure_skip_verify={self.insecure_skip_verify!r}, secrets={self.secrets!r})"
        )

    __str__ = __repr__

    def credentials_fingerprint(self) -> str:
        """A digest of the authorization and CA bundle: tells a rotation without keeping them."""
        digest = hashlib.sha256()
        for part in (self.authorization, self.ca_bundle):
            digest.update(b"\x00" if part is None else b"\x01" + part.encode())
            digest.update(b"\xff")
        return digest.hexdigest()


class MetricsProvider(Protocol):
    """Runs instant queries that must reduce to a single number."""

    @property
    def type(self) -> str: ...

    async def run_query(self, query: str) -> float:
        """Return the query's only value, or raise a :class:`MetricsError`."""
        ...

    async def run_vector_query(self, query: str) -> list[tuple[dict[str, str], float]]:
        """Return every series of an instant vector as ``(labels, value)``; may be empty."""
        ...

    async def run_matrix_query(
        self, query: str
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Return every series of a range vector (a subquery) as ``(labels, [(unix time,
        value), ...])``; may be empty."""
        ...

    async def is_online(self) -> bool:
        """Return whether the backend answers a trivial query correctly."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
