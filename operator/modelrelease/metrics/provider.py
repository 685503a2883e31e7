"""The metrics provider contract: one small Protocol and its sentinel errors.

Analysis code only ever sees these names, so a provider for another backend is
one more file next to ``prometheus.py`` plus one line in ``factory.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
    """

    address: str
    timeout_seconds: float = 10.0
    authorization: str | None = None
    ca_bundle: str | None = None
    insecure_skip_verify: bool = False


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

    async def is_online(self) -> bool:
        """Return whether the backend answers a trivial query correctly."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
