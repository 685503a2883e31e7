"""What a notification says, whatever the service (pure): a title, a line, facts."""

from __future__ import annotations

from dataclasses import dataclass

from modelrelease.api.constants import NotificationType
from modelrelease.api.models import PendingNotification

SEVERITY = {
    NotificationType.CHALLENGER_STARTED: "info",
    NotificationType.STAGE_STARTED: "info",
    NotificationType.WAITING_FOR_APPROVAL: "action",
    NotificationType.ROLLED_BACK: "error",
    NotificationType.PROMOTED: "success",
    NotificationType.FAILED: "error",
}
"""How each kind reads at a glance; services map it to their colours and emoji."""


@dataclass(frozen=True)
class Notice:
    """A pending notification and the release it is about."""

    namespace: str
    release: str
    notification: PendingNotification

    @property
    def type(self) -> NotificationType:
        return self.notification.type

    @property
    def severity(self) -> str:
        return SEVERITY[self.type]


def model_text(notification: PendingNotification) -> str:
    """``chat-8b 2.1.0 (revision 3f2a9c01de)``."""
    model = " ".join(p for p in (notification.model_name, notification.model_version) if p)
    revision = f"revision {notification.revision}"
    return f"{model} ({revision})" if model else revision


def title(notice: Notice) -> str:
    """One line: what happened to which model in which release."""
    n = notice.notification
    model = " ".join(p for p in (n.model_name, n.model_version) if p) or n.revision
    where = f"{notice.namespace}/{notice.release}"
    match n.type:
        case NotificationType.CHALLENGER_STARTED:
            return f"{where}: {model} started as challenger"
        case NotificationType.STAGE_STARTED:
            return f"{where}: {model} entered stage {n.stage}"
        case NotificationType.WAITING_FOR_APPROVAL:
            return f"{where}: {model} waits for approval ({n.stage})"
        case NotificationType.ROLLED_BACK:
            return f"{where}: {model} rolled back ({n.reason})"
        case NotificationType.PROMOTED:
            return f"{where}: {model} promoted"
        case NotificationType.FAILED:
            return f"{where}: {model} failed ({n.reason}), a person decides"


def slo_text(notification: PendingNotification) -> str | None:
    """``ttft-p95 = 0.91 (max 0.75)``, or None when no SLO failed."""
    if notification.slo is None:
        return None
    value = "no data" if notification.slo_value is None else f"{notification.slo_value:.4g}"
    bounds = [
        f"{label} {bound:g}"
        for label, bound in (("min", notification.slo_min), ("max", notification.slo_max))
        if bound is not None
    ]
    limits = f" ({', '.join(bounds)})" if bounds else ""
    return f"{notification.slo} = {value}{limits}"


def facts(notice: Notice) -> list[tuple[str, str]]:
    """Label and value pairs, in the order they are shown."""
    n = notice.notification
    rows = [
        ("Release", f"{notice.namespace}/{notice.release}"),
        ("Model", model_text(n)),
    ]
    if n.champion_version:
        label = "Replaced" if n.type is NotificationType.PROMOTED else "Champion"
        rows.append((label, n.champion_version))
    if n.stage:
        rows.append(("Stage", n.stage))
    if n.reason:
        rows.append(("Reason", n.reason))
    slo = slo_text(n)
    if slo is not None:
        rows.append(("Failing SLO", slo))
    rows.append(("Time", n.time.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return rows
