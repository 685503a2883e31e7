"""``modelrelease-operator`` (also ``python -m modelrelease``): run the operator."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import kopf

from modelrelease import handlers, telemetry
from modelrelease.kube.client import KubeClient, new_api_client
from modelrelease.kube.ratelimit import TokenBucket, throttle
from modelrelease.kube.views import STREAMS, Views
from modelrelease.metrics.factory import ProviderCache, new_provider
from modelrelease.settings import kopf_settings, log_format, parse_args

logger = logging.getLogger("modelrelease")


class _QuietWakeups(logging.Filter):
    """Every event of a release runs the ``wake`` handler; its success is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Handler 'wake' succeeded."


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    kopf.configure(verbose=config.verbose, log_format=log_format(config))
    # httpx logs each request with its full URL, whose query or userinfo may hold a
    # token (webhook URLs, Prometheus addresses): never, not even when verbose.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not config.verbose:
        logging.getLogger("kopf.objects").addFilter(_QuietWakeups())
    registry = kopf.OperatorRegistry()
    # Connections for the passes' requests and for the views' long-lived watches.
    api_client = new_api_client(connections=config.worker_limit + STREAMS)
    throttle(api_client, TokenBucket(config.kube_qps, config.kube_burst))
    kube = KubeClient(api_client)
    runtime = handlers.Runtime(
        kube=kube,
        views=Views(kube),
        providers=ProviderCache(partial(new_provider, connections=config.worker_limit)),
        config=config,
    )
    handlers.register(registry, runtime)
    if config.metrics_port is not None:
        telemetry.serve(config.metrics_port)
    scope = "all namespaces" if config.all_namespaces else ", ".join(config.namespaces)
    logger.info(f"watching ModelReleases in {scope}")
    kopf.run(
        registry=registry,
        settings=kopf_settings(config),
        standalone=True,
        clusterwide=config.all_namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=config.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
