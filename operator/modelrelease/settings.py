"""Command-line configuration of the operator process, and the kopf settings it implies."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import kopf
from kubernetes.config import kube_config

from modelrelease.api.constants import GROUP, OnErrorAction
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import BUILT_IN_ANALYSIS_DEFAULTS, AnalysisDefaults
from modelrelease.leader import DEFAULT_LEASE_NAME, Timing, default_namespace

FINALIZER = f"{GROUP}/finalizer"
FIELD_PREFIX = GROUP
COMPONENT = "modelrelease-operator"
LOG_FORMATS = ("plain", "full", "json")
DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"
READINESS_EXAMPLE = "http://0.0.0.0:8081/readyz"


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    log_format: str = "plain"
    verbose: bool = False
    reconcile_interval: float = 2.0
    resync_interval: float = 300.0
    kube_qps: float = 50.0
    kube_burst: int = 100
    liveness_endpoint: str | None = DEFAULT_LIVENESS
    readiness_endpoint: str | None = None
    metrics_port: int | None = None
    worker_limit: int = 20
    leader_elect: bool = False
    lease_name: str = DEFAULT_LEASE_NAME
    lease_namespace: str = "default"
    lease_timing: Timing = field(default_factory=Timing)
    analysis_defaults: AnalysisDefaults = BUILT_IN_ANALYSIS_DEFAULTS


def parse_args(argv: Sequence[str] | None = None) -> OperatorConfig:
    parser = argparse.ArgumentParser(
        prog="modelrelease-operator",
        description="Release GPU model-inference services through shadow, canary and "
        "champion-challenger stages. Uses the in-cluster service account, or the "
        "kubeconfig in $KUBECONFIG (or --kubeconfig).",
        epilog="On uninstall: `modelrelease-operator remove-finalizers --help` (the chart's "
        "pre-delete hook).",
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
        default=50.0,
        help="API requests per second the operator makes at most, on average (default 50)",
    )
    parser.add_argument(
        "--kube-burst",
        type=int,
        default=100,
        help="API requests the operator may make at once above --kube-qps (default 100)",
    )
    parser.add_argument(
        "--liveness",
        default=DEFAULT_LIVENESS,
        metavar="URL",
        help=f"liveness endpoint to serve (default {DEFAULT_LIVENESS}; '' to disable)",
    )
    parser.add_argument(
        "--readiness",
        default="",
        metavar="URL",
        help="readiness endpoint to serve, e.g. "
        f"{READINESS_EXAMPLE}: 200 once every watch has listed, so a new replica is "
        "Ready only when it could take over (default: none; the chart sets it)",
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
    _add_leader_election(parser)
    _add_analysis_defaults(parser)
    args = parser.parse_args(argv)
    if args.kubeconfig:
        use_kubeconfig(args.kubeconfig)
    for flag, value in (
        ("--reconcile-interval", args.reconcile_interval),
        ("--resync-interval", args.resync_interval),
        ("--kube-qps", args.kube_qps),
        ("--kube-burst", args.kube_burst),
        ("--worker-limit", args.worker_limit),
    ):
        if value <= 0:
            parser.error(f"{flag} must be positive")
    timing = Timing(args.lease_duration, args.renew_deadline, args.retry_period)
    if args.leader_elect and (problem := timing.problem()):
        parser.error(problem)
    try:
        analysis_defaults = AnalysisDefaults(
            interval=args.default_analysis_interval,
            max_inconclusive=args.default_max_inconclusive,
            on_error_action=OnErrorAction(args.default_on_error_action),
            on_error_after=args.default_on_error_after,
        )
    except ValueError as error:
        parser.error(f"analysis defaults: {error}")
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
        readiness_endpoint=args.readiness or None,
        metrics_port=args.metrics_port,
        worker_limit=args.worker_limit,
        leader_elect=args.leader_elect,
        lease_name=args.leader_election_lease,
        lease_namespace=args.leader_election_namespace or default_namespace(),
        lease_timing=timing,
        analysis_defaults=analysis_defaults,
    )


def _add_leader_election(parser: argparse.ArgumentParser) -> None:
    election = parser.add_argument_group(
        "leader election",
        "Replicas share a coordination.k8s.io Lease; only its holder runs passes and writes.",
    )
    election.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        # On in a pod, where a second replica or a leftover one may run beside this one;
        # off on a workstation or in tests, where one process runs on its own and a
        # restart must not wait for its dead predecessor's Lease to expire.
        default=bool(os.environ.get("KUBERNETES_SERVICE_HOST")),
        help="hold the Lease before acting (default: on inside a pod, off elsewhere)",
    )
    election.add_argument(
        "--leader-election-namespace",
        metavar="NAME",
        help="namespace of the Lease (default: the pod's namespace, $POD_NAMESPACE, or default)",
    )
    election.add_argument(
        "--leader-election-lease",
        default=DEFAULT_LEASE_NAME,
        metavar="NAME",
        help=f"name of the Lease (default {DEFAULT_LEASE_NAME})",
    )
    defaults = Timing()
    for flag, default, meaning in (
        (
            "--lease-duration",
            defaults.lease_duration,
            "a standby waits this long after the last renewal it saw before it takes the Lease",
        ),
        (
            "--renew-deadline",
            defaults.renew_deadline,
            "the leader stops acting when it could not renew for this long",
        ),
        (
            "--retry-period",
            defaults.retry_period,
            "between renewals, and between looks of a standby",
        ),
    ):
        election.add_argument(
            flag,
            type=parse_duration,
            default=default,
            metavar="DURATION",
            help=f"{meaning} (default {default:g}s)",
        )


def _add_analysis_defaults(parser: argparse.ArgumentParser) -> None:
    defaults = BUILT_IN_ANALYSIS_DEFAULTS
    group = parser.add_argument_group(
        "analysis defaults",
        "What a release's spec.analysis means where it leaves a field out, cluster-wide. "
        "A value in the release always wins; the CRD defaults none of these fields, so "
        "a changed flag applies to every release that omits the field, at its next pass.",
    )
    group.add_argument(
        "--default-analysis-interval",
        default=defaults.interval,
        metavar="DURATION",
        help=f"spec.analysis.interval: how often checks run (default {defaults.interval})",
    )
    group.add_argument(
        "--default-max-inconclusive",
        type=int,
        default=defaults.max_inconclusive,
        metavar="N",
        help="spec.analysis.maxInconclusive: inconclusive checks in a row tolerated per SLO "
        f"(default {defaults.max_inconclusive})",
    )
    group.add_argument(
        "--default-on-error-action",
        choices=[action.value for action in OnErrorAction],
        default=defaults.on_error_action.value,
        help="spec.analysis.onError.action: what failing metric reads lead to "
        f"(default {defaults.on_error_action.value})",
    )
    group.add_argument(
        "--default-on-error-after",
        default=defaults.on_error_after,
        metavar="DURATION",
        help="spec.analysis.onError.after: how long reads may fail before the action "
        f"(default {defaults.on_error_after})",
    )


def use_kubeconfig(path: str) -> None:
    """Make ``path`` the kubeconfig of kopf's login and of the Kubernetes client.

    The client reads $KUBECONFIG once, when it is imported (long before the flags are
    parsed), into the default that both use; setting the variable alone is too late.
    """
    os.environ["KUBECONFIG"] = path
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf keeps no copy of a release's last handled spec.

    kopf stores one (an annotation) after every spec change for its create and update
    handlers, to diff against. The operator has none: passes read the spec itself, and
    deletion is told by ``deletionTimestamp``. The copy was a write per spec change, and
    it raced the pass's status write, whose resourceVersion precondition then failed
    and made the pass write again.
    """

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def kopf_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    """Every kopf setting the operator relies on, written out rather than defaulted."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=FIELD_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = True
    settings.posting.loggers = False  # only the operator's own Events, not every log line
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "modelrelease-"
    # kopf's per-release workers only wake loops and start or stop them; the passes are
    # bounded by the scheduler (``--worker-limit``). A limit here held each slot for
    # kopf's idle timeout (5 s) after a release's last event: 20 slots let 4 releases
    # a second through, and a restart with 100 releases waited 30 s for its loops.
    settings.queueing.worker_limit = None
    settings.execution.max_workers = config.worker_limit
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # kopf's peering only lets the highest-priority peer run, by notes that peers
    # rewrite: no lease, no expiry decided by one clock, no fencing of a paused peer.
    # The Lease (``leader``) decides who acts; every replica still watches, so a
    # standby's view is warm when it takes over.
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
