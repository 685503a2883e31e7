"""``modelrelease-operator remove-finalizers``: the chart's pre-delete hook.

Every ModelRelease carries the operator's finalizer; once the operator is gone, deleting
a release (or its namespace) hangs on it. On ``helm uninstall`` the chart runs this
command as a Job: it stops the operator (scales its Deployment to zero and waits for
its pods to be gone, since a running operator puts the finalizer straight back), then
removes the operator's finalizer, and only that one, from every release in the
namespaces the operator watched. Nothing else is touched: the releases, their
Deployments, Services and routes keep serving as they are.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelrelease.api.constants import GROUP, PLURAL_MODEL_RELEASES, VERSION
from modelrelease.kube.client import Collection, Json, KubeClient, new_api_client
from modelrelease.kube.errors import KubeError, WriteConflictError
from modelrelease.settings import FINALIZER, use_kubeconfig

logger = logging.getLogger("modelrelease.uninstall")

COMMAND = "remove-finalizers"
ATTEMPTS = 5
POLL_SECONDS = 1.0
GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class UninstallConfig:
    namespaces: tuple[str, ...] = ()  # names or globs; empty: every namespace
    stop_deployment: str | None = None
    stop_namespace: str = "default"
    timeout: float = 120.0


@dataclass
class Outcome:
    removed: list[str]
    deleting: list[str]  # releases already being deleted: their route was not given back


def parse_args(argv: Sequence[str]) -> UninstallConfig:
    parser = argparse.ArgumentParser(
        prog=f"modelrelease-operator {COMMAND}",
        description="Stop the operator and remove its finalizer from every ModelRelease, "
        "so releases can be deleted after it is uninstalled (the chart's pre-delete hook). "
        "Releases and their workloads are left as they are.",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NAME",
        help="the releases of this namespace (repeatable, globs allowed); default: all",
    )
    parser.add_argument(
        "--stop-deployment",
        metavar="NAME",
        help="scale the operator's Deployment to zero and wait for its pods to be gone "
        "first (a running operator adds its finalizer back)",
    )
    parser.add_argument(
        "--stop-namespace",
        default="default",
        metavar="NAME",
        help="namespace of --stop-deployment (default: default)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the operator's pods to be gone (default 120)",
    )
    args = parser.parse_args(argv)
    if args.kubeconfig:
        use_kubeconfig(args.kubeconfig)
    return UninstallConfig(
        namespaces=tuple(args.namespace),
        stop_deployment=args.stop_deployment,
        stop_namespace=args.stop_namespace,
        timeout=args.timeout,
    )


def without_operator_finalizer(finalizers: Sequence[str]) -> list[str] | None:
    """The finalizers without the operator's, or None when it holds none."""
    if FINALIZER not in finalizers:
        return None
    return [finalizer for finalizer in finalizers if finalizer != FINALIZER]


def release_collections(namespaces: Sequence[str]) -> list[Collection]:
    """Where to list releases: each named namespace (a Role there suffices), or all
    namespaces when none is given or a glob is (filtered by :func:`in_scope`)."""
    collection = Collection("ModelReleases", GROUP, VERSION, PLURAL_MODEL_RELEASES)
    if not namespaces or any(c in name for name in namespaces for c in GLOB_CHARACTERS):
        return [collection]
    return [
        Collection("ModelReleases", GROUP, VERSION, PLURAL_MODEL_RELEASES, namespace=name)
        for name in dict.fromkeys(namespaces)
    ]


def in_scope(namespace: str, namespaces: Sequence[str]) -> bool:
    return not namespaces or any(fnmatch.fnmatchcase(namespace, name) for name in namespaces)


def stop_operator(
    kube: KubeClient,
    namespace: str,
    name: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Scale the operator's Deployment to zero and wait until none of its pods is left."""
    deployment = kube.get_deployment(namespace, name)
    if deployment is None:
        logger.info(f"Deployment {namespace}/{name} is gone already")
        return
    labels: dict[str, str] = deployment["spec"]["selector"].get("matchLabels") or {}
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    kube.scale_deployment(namespace, name, 0)
    pods = Collection("Pods", "", "v1", "pods", label_selector=selector, namespace=namespace)
    deadline = clock() + timeout
    while left := kube.list_all(pods):
        if clock() >= deadline:
            names = ", ".join(pod["metadata"]["name"] for pod in left)
            raise TimeoutError(
                f"the operator's pods are still there after {timeout:g}s ({names}); a "
                "running operator adds its finalizer back. Find out why they do not stop "
                f"(kubectl -n {namespace} describe pod), or run this again with a longer "
                "--timeout"
            )
        sleep(POLL_SECONDS)
    logger.info(f"the operator ({namespace}/{name}) is stopped: no pod left")


def remove_finalizers(kube: KubeClient, namespaces: Sequence[str]) -> Outcome:
    outcome = Outcome(removed=[], deleting=[])
    for collection in release_collections(namespaces):
        for release in kube.list_all(collection):
            meta = release["metadata"]
            if in_scope(meta["namespace"], namespaces) and _remove_one(kube, release):
                key = f"{meta['namespace']}/{meta['name']}"
                outcome.removed.append(key)
                if meta.get("deletionTimestamp"):
                    outcome.deleting.append(key)
    return outcome


def _remove_one(kube: KubeClient, release: Json | None) -> bool:
    """Remove the operator's finalizer; re-read and retry when the object changed."""
    for _ in range(ATTEMPTS):
        if release is None:
            return False  # deleted meanwhile
        meta = release["metadata"]
        rest = without_operator_finalizer(meta.get("finalizers") or [])
        if rest is None:
            return False
        try:
            kube.set_release_finalizers(
                meta["namespace"], meta["name"], rest, meta["resourceVersion"]
            )
            return True
        except WriteConflictError:
            release = kube.get_release(meta["namespace"], meta["name"])
    raise KubeError(f"ModelRelease {meta['namespace']}/{meta['name']} kept changing")


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = parse_args(argv)
    kube = KubeClient(new_api_client())
    try:
        if config.stop_deployment:
            stop_operator(kube, config.stop_namespace, config.stop_deployment, config.timeout)
        outcome = remove_finalizers(kube, config.namespaces)
    except (KubeError, TimeoutError) as error:
        logger.error(f"finalizers not removed: {error}")
        return 1
    for key in outcome.removed:
        logger.info(f"removed {FINALIZER} from ModelRelease {key}")
    for key in outcome.deleting:
        logger.warning(
            f"ModelRelease {key} was being deleted: it is gone now, and its route was not "
            "given back to the stable backend; check the route's backends"
        )
    logger.info(
        f"{len(outcome.removed)} ModelRelease(s) freed; their workloads and routes are as "
        "they were, and deleting them no longer waits for the operator"
    )
    return 0
