"""Choosing a provider by name, and keeping one per configuration."""

from __future__ import annotations

from collections.abc import Callable

from modelrelease.metrics.prometheus import PROMETHEUS, PrometheusProvider
from modelrelease.metrics.provider import MetricsProvider, ProviderConfig

ProviderConstructor = Callable[[ProviderConfig], MetricsProvider]

PROVIDERS: dict[str, ProviderConstructor] = {PROMETHEUS: PrometheusProvider}


class UnknownProviderError(ValueError):
    """A provider type nobody implements: refused, never silently replaced."""


def new_provider(provider_type: str, config: ProviderConfig) -> MetricsProvider:
    """Build the provider called ``provider_type``; unknown names are an error."""
    constructor = PROVIDERS.get(provider_type)
    if constructor is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProviderError(
            f"unknown metrics provider {provider_type!r}; supported providers: {known}"
        )
    return constructor(config)


class ProviderCache:
    """One provider (and so one connection pool) per distinct configuration."""

    def __init__(self, factory: Callable[[str, ProviderConfig], MetricsProvider] = new_provider):
        self._factory = factory
        self._providers: dict[tuple[str, ProviderConfig], MetricsProvider] = {}

    def get(self, provider_type: str, config: ProviderConfig) -> MetricsProvider:
        key = (provider_type, config)
        provider = self._providers.get(key)
        if provider is None:
            provider = self._factory(provider_type, config)
            self._providers[key] = provider
        return provider

    async def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.close()
