"""Choosing a provider by name, and keeping one per configuration."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from modelrelease.metrics.prometheus import DEFAULT_CONNECTIONS, PROMETHEUS, PrometheusProvider
from modelrelease.metrics.provider import MetricsProvider, ProviderConfig


class ProviderConstructor(Protocol):
    def __call__(self, config: ProviderConfig, *, connections: int) -> MetricsProvider: ...


PROVIDERS: dict[str, ProviderConstructor] = {PROMETHEUS: PrometheusProvider}


class UnknownProviderError(ValueError):
    """A provider type nobody implements: refused, never silently replaced."""


def new_provider(
    provider_type: str, config: ProviderConfig, connections: int = DEFAULT_CONNECTIONS
) -> MetricsProvider:
    """Build the provider called ``provider_type`` with a pool of ``connections``;
    unknown names are an error."""
    constructor = PROVIDERS.get(provider_type)
    if constructor is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProviderError(
            f"unknown metrics provider {provider_type!r}; supported providers: {known}"
        )
    return constructor(config, connections=connections)


MAX_PROVIDERS = 64
"""Slots a ProviderCache keeps; the least recently used is closed to make room."""

# provider type, address, timeout, insecureSkipVerify, the Secrets credentials come from
SlotKey = tuple[str, str, float, bool, tuple[str, ...]]


@dataclass
class _Slot:
    fingerprint: str  # of the credentials the provider was built with, never them
    provider: MetricsProvider
    users: int = 0  # queries running on it now
    retired: bool = False  # replaced or evicted: close when the last user is done
    closed: bool = False


class ProviderCache:
    """One provider (and so one connection pool) per backend and credential source.

    A slot is keyed by the provider type, the address, the client settings and
    the Secrets the credentials were read from, never by the credentials. When a
    Secret's content changes (a rotated token or CA), the slot's provider is
    replaced, and the old one is closed as soon as no running query uses it.
    Releases without credentials share one provider per address whatever their
    namespace; each Secret gets its own, so two tenants never replace each other's.
    """

    def __init__(
        self,
        factory: Callable[[str, ProviderConfig], MetricsProvider] = new_provider,
        max_size: int = MAX_PROVIDERS,
    ):
        self._factory = factory
        self._max_size = max_size
        self._slots: OrderedDict[SlotKey, _Slot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    @asynccontextmanager
    async def use(
        self, provider_type: str, config: ProviderConfig
    ) -> AsyncIterator[MetricsProvider]:
        """The provider for ``config``, kept open while the block runs."""
        slot, dropped = self._slot(provider_type, config)
        slot.users += 1
        try:
            for old in dropped:
                await self._release(old)
            yield slot.provider
        finally:
            slot.users -= 1
            await self._release(slot)

    async def close(self) -> None:
        slots, self._slots = list(self._slots.values()), OrderedDict()
        for slot in slots:
            slot.retired = True
            await self._release(slot)

    def _slot(self, provider_type: str, config: ProviderConfig) -> tuple[_Slot, list[_Slot]]:
        """The slot to use and the slots it pushed out (no await: no other pass interleaves)."""
        key: SlotKey = (
            provider_type,
            config.address,
            config.timeout_seconds,
            config.insecure_skip_verify,
            config.secrets,
        )
        fingerprint = config.credentials_fingerprint()
        dropped = []
        slot = self._slots.get(key)
        if slot is None or slot.fingerprint != fingerprint:
            # Built first: a factory that raises (a bad CA bundle) leaves the old slot in place.
            fresh = _Slot(fingerprint, self._factory(provider_type, config))
            if slot is not None:
                dropped.append(slot)
            slot = self._slots[key] = fresh
        self._slots.move_to_end(key)
        while len(self._slots) > self._max_size:
            dropped.append(self._slots.popitem(last=False)[1])
        for old in dropped:
            old.retired = True
        return slot, dropped

    @staticmethod
    async def _release(slot: _Slot) -> None:
        if slot.retired and slot.users == 0 and not slot.closed:
            slot.closed = True
            await slot.provider.close()
