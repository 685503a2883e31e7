"""``kubectl modelrelease``: imperative actions on a release, and a readable status.

Actions are requests, not orders: the plugin writes the annotation
``modelrelease.dev/action`` and the operator consumes it on its next pass (and
removes it), so every change of traffic still goes through the operator's
checks. ``kubectl modelrelease status`` reads the status the operator wrote.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from modelrelease.api.constants import (
    ANNOTATION_ACTION,
    GROUP,
    PLURAL_MODEL_RELEASES,
    VERSION,
    Action,
)

ACTION_HELP = {
    Action.PROMOTE: "skip the remaining stages and promote the challenger now",
    Action.ABORT: "roll the challenger back now (traffic returns to the champion)",
    Action.RETRY: "run the stages again for a revision that was rolled back",
    Action.APPROVE: "pass the approval stage the release is waiting at",
    Action.PAUSE: "hold the release at its current stage and weights",
    Action.RESUME: "continue a paused release",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl modelrelease",
        description="Act on ModelRelease resources (modelrelease.dev/v1alpha1).",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube)")
    parser.add_argument("--context", help="kubeconfig context to use")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for action, text in ACTION_HELP.items():
        command = sub.add_parser(action.value, help=text, description=text)
        command.add_argument("name", help="the ModelRelease")
        command.add_argument("-n", "--namespace", help="its namespace (default: the context's)")
    status = sub.add_parser("status", help="show phase, stage, weights, checks and history")
    status.add_argument("name", help="the ModelRelease")
    status.add_argument("-n", "--namespace", help="its namespace (default: the context's)")
    return parser


def _api(args: argparse.Namespace) -> tuple[Any, str]:
    from kubernetes import client, config

    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, context=args.context
    )
    contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig
    )
    if args.context:
        active = next((c for c in contexts if c.get("name") == args.context), active)
    namespace = args.namespace or active.get("context", {}).get("namespace") or "default"
    return client.CustomObjectsApi(), namespace


def request_action(api: Any, namespace: str, name: str, action: Action) -> None:
    """Write the action annotation; the operator consumes it on its next pass."""
    body = {"metadata": {"annotations": {ANNOTATION_ACTION: action.value}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL_MODEL_RELEASES, name, body)


def format_status(release: dict[str, Any]) -> str:
    """A short, human summary of a ModelRelease's status."""
    status: dict[str, Any] = release.get("status") or {}
    meta = release.get("metadata", {})
    lines = [f"{meta.get('namespace')}/{meta.get('name')}: {status.get('phase', 'Pending')}"]
    if status.get("message"):
        lines.append(f"  {status['message']}")
    for role in ("champion", "challenger"):
        revision = status.get(role)
        if revision:
            lines.append(
                f"  {role:<10} {revision.get('revision')} model {revision.get('modelVersion')}"
                f" ready {revision.get('readyReplicas', 0)}/{revision.get('replicas', 0)}"
            )
    stage = status.get("currentStage")
    if stage:
        lines.append(
            f"  stage      #{stage.get('index')} {stage.get('type')}"
            f" step {stage.get('step')} weight {stage.get('weight')}%"
            f" mirror {stage.get('mirrorPercent') or 0}%"
        )
    for check in status.get("checks") or []:
        lines.append(
            f"  check      {check.get('name')}: {check.get('value')} ({check.get('verdict')},"
            f" {check.get('consecutiveFailures', 0)} consecutive failures)"
        )
    for metric in status.get("comparison") or []:
        lines.append(
            f"  compare    {metric.get('metric')}: ratio {metric.get('estimate')}"
            f" [{metric.get('lower')}, {metric.get('upper')}] e={metric.get('eValue')}"
            f" {metric.get('verdict')}"
        )
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" or condition.get("type") == "Degraded":
            lines.append(
                f"  condition  {condition.get('type')}={condition.get('status')}"
                f" {condition.get('reason')}: {condition.get('message')}"
            )
    for entry in (status.get("history") or [])[-5:]:
        lines.append(
            f"  history    {entry.get('time')} {entry.get('revision')}"
            f" v{entry.get('modelVersion')} {entry.get('outcome')}: {entry.get('reason')}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from kubernetes.client.exceptions import ApiException

    api, namespace = _api(args)
    try:
        if args.command == "status":
            release = api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL_MODEL_RELEASES, args.name
            )
            print(format_status(release))
            return 0
        request_action(api, namespace, args.name, Action(args.command))
    except ApiException as error:
        if error.status == 404:
            print(
                f"error: ModelRelease {namespace}/{args.name} not found;"
                " check the name and the namespace (-n)",
                file=sys.stderr,
            )
        else:
            print(f"error: the API server answered {error.status}: {error.reason}", file=sys.stderr)
        return 1
    print(
        f"modelrelease.dev/{args.name} {args.command} requested;"
        f" the operator acts on it at its next pass (see `kubectl modelrelease status {args.name}`)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
