"""Imperative actions: the plugin writes ``modelrelease.dev/action`` and the operator
consumes it on its next pass, so every traffic change still goes through its checks."""

from __future__ import annotations

from modelrelease.api.constants import Action, action_value
from modelrelease.cli.cluster import Cluster
from modelrelease.cli.errors import CommandError
from modelrelease.cli.render import parse

ACTION_HELP = {
    Action.ABORT: "roll the challenger back now (traffic returns to the champion)",
    Action.RETRY: "run the stages again for a revision that was rolled back",
    Action.APPROVE: "pass the approval stage the release is waiting at",
    Action.PAUSE: "hold the release at its current stage and weights",
    Action.RESUME: "continue a paused release",
}
PROMOTE_HELP = (
    "advance the challenger one canary step or one stage (--full: skip every stage left "
    "and promote it now)"
)
UNDO_HELP = (
    "go back to a kept former champion (default: the newest): scaled up, Ready, then all "
    "traffic; the spec's revision is then not retried until the spec changes or a retry"
)


def request(cluster: Cluster, name: str, action: Action, argument: str | None = None) -> str:
    cluster.release(name)  # a clear "not found" before writing anything
    cluster.request_action(name, action_value(action, argument))
    return (
        f"modelrelease.dev/{name} {action_value(action, argument)} requested; the operator acts "
        f"on it at its next pass (follow it: kubectl modelrelease status {name} -n "
        f"{cluster.namespace} --watch)"
    )


def promote(cluster: Cluster, name: str, full: bool) -> str:
    status = parse(cluster.release(name)).status
    if status.challenger is None:
        raise CommandError(
            f"ModelRelease {cluster.namespace}/{name} has no challenger to promote "
            f"(phase {status.phase}); change spec.model or spec.template to release one"
        )
    return request(cluster, name, Action.PROMOTE if full else Action.SKIP_STEP)


def undo(cluster: Cluster, name: str, to_revision: str | None) -> str:
    """Check the revision is kept (its Deployment exists) before asking the operator."""
    status = parse(cluster.release(name)).status
    champion = status.champion.revision if status.champion else None
    kept = [r for r in cluster.kept_revisions(name) if r != champion]
    former = [e.revision for e in reversed(status.history) if e.outcome.value == "Promoted"]
    candidates = [r for r in dict.fromkeys(former) if r in kept]
    if to_revision is None:
        if not candidates:
            raise CommandError(
                f"ModelRelease {cluster.namespace}/{name} keeps no former champion to go back "
                "to (spec.revisionHistoryLimit keeps them scaled to zero; see "
                f"kubectl modelrelease history {name})"
            )
        revision = candidates[0]
    else:
        revision = _resolve(to_revision, candidates, champion)
    return request(cluster, name, Action.UNDO, revision)


def _resolve(wanted: str, candidates: list[str], champion: str | None) -> str:
    if champion is not None and champion.startswith(wanted):
        raise CommandError(f"revision {champion} is already the champion; nothing to undo")
    matches = [r for r in candidates if r.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    kept = ", ".join(candidates) or "none"
    if not matches:
        raise CommandError(
            f"revision {wanted} is not kept (kept former champions: {kept}); only revisions "
            "still scaled to zero (spec.revisionHistoryLimit) can be undone to"
        )
    raise CommandError(f"revision {wanted} is ambiguous ({', '.join(matches)}); give more of it")
