"""``kubectl modelrelease``: watch, list, act on and lint ModelReleases.

Installed with the package as ``kubectl-modelrelease``, which kubectl finds on
``PATH``. kubectl's conventions hold: ``-n/--namespace``, ``--context`` and
``--kubeconfig`` go anywhere on the line, and an error is one line on stderr with
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from modelrelease.api.constants import Action
from modelrelease.cli import actions, completion, lint, listing, status
from modelrelease.cli.cluster import Cluster, Target
from modelrelease.cli.errors import EXIT_ERROR, explain

EPILOG = """\
examples:
  kubectl modelrelease status chat -n llm --watch    # follow a release; exit 0 when promoted
  kubectl modelrelease list -A
  kubectl modelrelease promote chat                  # one canary step or one stage forward
  kubectl modelrelease undo chat --to-revision 3f2a9c01de
  kubectl modelrelease lint release.yaml templates/*.yaml
"""


def _connection_options(parser: argparse.ArgumentParser, default: object) -> None:
    """The kubectl flags; sub-commands take them too, so they go anywhere on the line."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the context's)"
    )
    group.add_argument("--context", default=default, help="kubeconfig context to use")
    group.add_argument(
        "--kubeconfig",
        default=default,
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl modelrelease",
        description="Follow and act on ModelReleases (modelrelease.dev/v1alpha1).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_options(top, None)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, release: bool = True) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=text, description=text)
        if release:
            cmd.add_argument("name", help="the ModelRelease")
        # SUPPRESS: a flag given before the sub-command is not reset by its default here.
        _connection_options(cmd, argparse.SUPPRESS)
        return cmd

    show = command(
        "status",
        "phase, stage and time left, weights, SLOs, comparison, GPUs and the last Events",
    )
    show.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="follow the release until it ends: exit 0 Succeeded, 1 RolledBack, 3 Failed",
    )
    show.add_argument("-o", "--output", choices=("json", "yaml"), help="print the object instead")
    listed = command("list", "releases with phase, stage, weight, versions and age", release=False)
    listed.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    command("history", "past revisions: model, version, outcome, reason, time, whether kept")
    promote = command("promote", actions.PROMOTE_HELP)
    promote.add_argument("--full", action="store_true", help="skip every stage left")
    undo = command("undo", actions.UNDO_HELP)
    undo.add_argument("--to-revision", metavar="REVISION", help="a kept revision (or its prefix)")
    for action, text in actions.ACTION_HELP.items():
        command(action.value, text)
    checked = command("lint", lint.HELP, release=False)
    checked.add_argument("files", nargs="+", metavar="FILE", help="YAML files ('-': stdin)")
    shell = command("completion", "print a shell completion script", release=False)
    shell.add_argument("shell", choices=completion.SHELLS)
    return top


def _cluster(args: argparse.Namespace) -> Cluster:
    cluster = Cluster(Target(args.kubeconfig, args.context, args.namespace))
    args.namespace = cluster.namespace  # the context's, when -n was not given: for messages
    return cluster


def _print(text: str) -> int:
    print(text)
    return 0


def _run(args: argparse.Namespace) -> int:
    offline: dict[str, Callable[[], int]] = {
        "lint": lambda: lint.main(args.files),
        "completion": lambda: _print(completion.script(args.shell).rstrip("\n")),
    }
    if args.command in offline:
        return offline[args.command]()
    cluster = _cluster(args)
    if args.command == "status":
        return status.run(cluster, args.name, args.watch, args.output)
    if args.command == "list":
        return _print(listing.releases(cluster, args.all_namespaces))
    if args.command == "history":
        return _print(listing.history(cluster, args.name))
    if args.command == "promote":
        return _print(actions.promote(cluster, args.name, args.full))
    if args.command == "undo":
        return _print(actions.undo(cluster, args.name, args.to_revision))
    return _print(actions.request(cluster, args.name, Action(args.command)))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        message = explain(error, args.namespace, getattr(args, "name", None))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
