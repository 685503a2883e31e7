"""``modelrelease-operator`` (also ``python -m modelrelease``): run the operator."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import kopf

from modelrelease import handlers, telemetry
from modelrelease.kube.client import KubeClient, new_api_client
from modelrelease.metrics.factory import ProviderCache
from modelrelease.settings import kopf_settings, log_format, parse_args

logger = logging.getLogger("modelrelease")


class _QuietSuccessfulTimers(logging.Filter):
    """A timer passes every few seconds; its success is not news (failures still are)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer ") and message.endswith(" succeeded."))


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    kopf.configure(verbose=config.verbose, log_format=log_format(config))
    if not config.verbose:
        logging.getLogger("kopf.objects").addFilter(_QuietSuccessfulTimers())
    # httpx logs each request with its full URL, whose query or userinfo may hold a
    # token (webhook URLs, Prometheus addresses): never, not even when verbose.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    runtime = handlers.Runtime(
        kube=KubeClient(new_api_client()), providers=ProviderCache(), config=config
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
