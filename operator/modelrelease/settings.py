"""Command-line configuration of the operator process, and the kopf settings it implies."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import kopf

from modelrelease.api.constants import GROUP

FINALIZER = f"{GROUP}/finalizer"
FIELD_PREFIX = GROUP
COMPONENT = "modelrelease-operator"
LOG_FORMATS = ("plain", "full", "json")
DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    log_format: str = "plain"
    verbose: bool = False
    reconcile_interval: float = 2.0
    resync_interval: float = 300.0
    kube_qps: float = 20.0
    kube_burst: int = 40
    liveness_endpoint: str | None = DEFAULT_LIVENESS
    metrics_port: int | None = None
    worker_limit: int = 20


def parse_args(argv: Sequence[str] | None = None) -> OperatorConfig:
    parser = argparse.ArgumentParser(
        prog="modelrelease-operator",
        description="Release GPU model-inference services through shadow, canary and "
        "champion-challenger stages. Uses the in-cluster service account, or the "
        "kubeconfig in $KUBECONFIG (or --kubeconfig).",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NAME",
        help="watch this namespace (repeatable; glob patterns such as 'team-*' allowed)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="plain")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between passes of a release in flight while plan() names no due "
        "time (default 2); changes and due times start passes at once",
    )
    parser.add_argument(
        "--resync-interval",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="a release at rest is reconciled at least this often, with jitter (default 300)",
    )
    parser.add_argument(
        "--kube-qps",
        type=float,
        default=20.0,
        help="API requests per second the operator makes at most, on average (default 20)",
    )
    parser.add_argument(
        "--kube-burst",
        type=int,
        default=40,
        help="API requests the operator may make at once above --kube-qps (default 40)",
    )
    parser.add_argument(
        "--liveness",
        default=DEFAULT_LIVENESS,
        metavar="URL",
        help=f"liveness endpoint to serve (default {DEFAULT_LIVENESS}; '' to disable)",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve operator metrics on this port"
    )
    parser.add_argument(
        "--worker-limit",
        type=int,
        default=20,
        help="reconcile passes running at the same time, at most (default 20)",
    )
    args = parser.parse_args(argv)
    if args.kubeconfig:
        # Both kopf's login and the Kubernetes client read it from the environment.
        os.environ["KUBECONFIG"] = args.kubeconfig
    for flag, value in (
        ("--reconcile-interval", args.reconcile_interval),
        ("--resync-interval", args.resync_interval),
        ("--kube-qps", args.kube_qps),
        ("--kube-burst", args.kube_burst),
        ("--worker-limit", args.worker_limit),
    ):
        if value <= 0:
            parser.error(f"{flag} must be positive")
    return OperatorConfig(
        namespaces=tuple(args.namespace),
        all_namespaces=not args.namespace,
        log_format=args.log_format,
        verbose=args.verbose,
        reconcile_interval=args.reconcile_interval,
        resync_interval=args.resync_interval,
        kube_qps=args.kube_qps,
        kube_burst=args.kube_burst,
        liveness_endpoint=args.liveness or None,
        metrics_port=args.metrics_port,
        worker_limit=args.worker_limit,
    )


def kopf_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    """Every kopf setting the operator relies on, written out rather than defaulted."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=FIELD_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=FIELD_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = True
    settings.posting.loggers = False  # only the operator's own Events, not every log line
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "modelrelease-"
    settings.queueing.worker_limit = config.worker_limit
    settings.execution.max_workers = config.worker_limit
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # One active operator; no peering objects needed (see the chart's replicaCount).
    settings.peering.standalone = True
    settings.peering.mandatory = False
    settings.peering.clusterwide = config.all_namespaces
    return settings


def log_format(config: OperatorConfig) -> kopf.LogFormat:
    return {
        "plain": kopf.LogFormat.PLAIN,
        "full": kopf.LogFormat.FULL,
        "json": kopf.LogFormat.JSON,
    }[config.log_format]
