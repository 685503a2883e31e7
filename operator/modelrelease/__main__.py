"""``modelrelease-operator`` (also ``python -m modelrelease``): run the operator."""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import kopf
from kubernetes import client

from modelrelease import handlers, readiness, telemetry, uninstall
from modelrelease.kube.client import KubeClient, new_api_client
from modelrelease.kube.lease import KubeLeaseStore
from modelrelease.kube.ratelimit import TokenBucket, throttle
from modelrelease.kube.views import Views, stream_count
from modelrelease.leader import LeaderElector, new_identity
from modelrelease.metrics.factory import ProviderCache, new_provider
from modelrelease.settings import OperatorConfig, kopf_settings, log_format, parse_args

logger = logging.getLogger("modelrelease")


class _QuietWakeups(logging.Filter):
    """Every event of a release runs the ``wake`` handler; its success is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Handler 'wake' succeeded."


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [uninstall.COMMAND]:
        sys.exit(uninstall.main(args[1:]))
    config = parse_args(args)
    kopf.configure(verbose=config.verbose, log_format=log_format(config))
    # httpx logs each request with its full URL, whose query or userinfo may hold a
    # token (webhook URLs, Prometheus addresses): never, not even when verbose.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not config.verbose:
        logging.getLogger("kopf.objects").addFilter(_QuietWakeups())
    registry = kopf.OperatorRegistry()
    # Connections for the passes' requests and for the views' long-lived watches.
    api_client = new_api_client(connections=config.worker_limit + stream_count(config.namespaces))
    throttle(api_client, TokenBucket(config.kube_qps, config.kube_burst))
    leader = None
    if config.leader_elect:
        # A new leader runs a pass of every release at once, not at its next due time.
        leader = _leader_elector(config, api_client, lambda: runtime.scheduler.wake_all())
    if leader is None:
        telemetry.LEADER.set(1)  # no election: this replica always acts
    kube = KubeClient(api_client, write_guard=_write_guard(leader))
    runtime = handlers.Runtime(
        kube=kube,
        views=Views(kube, config.namespaces),
        providers=ProviderCache(partial(new_provider, connections=config.worker_limit)),
        config=config,
        leader=leader,
    )
    handlers.register(registry, runtime)
    scheduler = runtime.scheduler
    telemetry.watch_queue(lambda: scheduler.waiting, lambda: scheduler.running)
    if config.metrics_port is not None:
        telemetry.serve(config.metrics_port)
    if config.readiness_endpoint is not None:
        readiness.serve(config.readiness_endpoint, _unready(runtime))
    scope = "all namespaces" if config.all_namespaces else ", ".join(config.namespaces)
    logger.info(f"watching ModelReleases in {scope}")
    if leader is not None:
        _elect_beside_kopf(registry, leader)
    kopf.run(
        registry=registry,
        settings=kopf_settings(config),
        standalone=True,
        clusterwide=config.all_namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=config.liveness_endpoint,
    )


def _leader_elector(
    config: OperatorConfig, api_client: client.ApiClient, started_leading: Callable[[], None]
) -> LeaderElector:
    timing = config.lease_timing
    # A Lease request that takes longer than half the renew deadline is given up, not
    # retried by the HTTP library: the elector tries again after a retry period, in time
    # before the leader must stand down.
    configuration = copy.deepcopy(api_client.configuration)
    configuration.retries = False
    store = KubeLeaseStore(
        client.ApiClient(configuration),
        config.lease_namespace,
        config.lease_name,
        timeout=timing.renew_deadline / 2,
    )
    return LeaderElector(store, new_identity(), timing, on_started_leading=started_leading)


def _unready(runtime: handlers.Runtime) -> Callable[[], list[str]]:
    """What the replica still lacks to act: the views' streams not yet listed (none
    before they start, which ``handlers.start`` does once kopf runs)."""

    def unready() -> list[str]:
        if not runtime.views.started():
            return ["the views have not started"]
        return runtime.views.unsynced()

    return unready


def _write_guard(leader: LeaderElector | None) -> Callable[[str], None]:
    """Fencing (when elected) and the count of writes, before each write is sent."""

    def guard(what: str) -> None:
        if leader is not None:
            leader.check_write(what)
        telemetry.WRITES.inc()

    return guard


def _elect_beside_kopf(registry: kopf.OperatorRegistry, leader: LeaderElector) -> None:
    """Contend for the Lease while kopf runs; release it after kopf's handlers are done
    (kopf runs cleanup activities once every other task of the operator has exited)."""
    election: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def start_leader_election(**_: Any) -> None:
        election.append(asyncio.create_task(leader.run()))

    @kopf.on.cleanup(registry=registry)
    async def release_the_lease(**_: Any) -> None:
        for task in election:
            task.cancel()
        await leader.release()


if __name__ == "__main__":
    main()
