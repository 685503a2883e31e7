"""Where a receiver's notifications go, from its Secret, and the request for one (pure).

A receiver names a Secret in the release's namespace; the operator reads it only
when it carries the opt-in label (``core.credentials``), as for every other
Secret. The URL and the signing key never appear in a message: a receiver is
named by its name and its Secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from modelrelease.api.constants import (
    CREDENTIALS_OPT_IN,
    LABEL_CREDENTIALS,
    SECRET_KEY_SIGNING_KEY,
    SECRET_KEY_URL,
    ReceiverType,
)
from modelrelease.api.models import NotificationReceiver
from modelrelease.core.credentials import not_opted_in, opted_in
from modelrelease.notify import slack, teams, webhook
from modelrelease.notify.message import Notice

USER_AGENT = "modelrelease-operator"


class SecretData(Protocol):
    """A Secret as read (``kube.client.StoredSecret``)."""

    @property
    def labels(self) -> dict[str, str]: ...

    def decoded(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Target:
    receiver: str
    type: ReceiverType
    source: str  # "Secret llm/slack-oncall", for messages
    url: str = field(repr=False)
    signing_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Request:
    url: str = field(repr=False)
    headers: Mapping[str, str]
    content: bytes


def receiver_type(receiver: NotificationReceiver) -> ReceiverType:
    if receiver.slack is not None:
        return ReceiverType.SLACK
    if receiver.teams is not None:
        return ReceiverType.TEAMS
    return ReceiverType.WEBHOOK


def target(
    receiver: NotificationReceiver, namespace: str, secret: SecretData | None
) -> Target | str:
    """The receiver's target, or what is wrong with its Secret and what to do."""
    kind = receiver_type(receiver)
    name = receiver.secret_name
    keys = _keys(kind)
    where = f"spec.notifications receiver {receiver.name} ({kind.value})"
    if secret is None:
        return (
            f"{where} names Secret {namespace}/{name}, which does not exist; create it with "
            f"the key(s) {keys} and the label {LABEL_CREDENTIALS}={CREDENTIALS_OPT_IN}"
        )
    if not opted_in(secret.labels):
        return not_opted_in(namespace, name, where).message
    data = secret.decoded()
    missing = [
        key
        for key in (SECRET_KEY_URL, SECRET_KEY_SIGNING_KEY)
        if key in keys and not data.get(key, "").strip()
    ]
    if missing:
        return (
            f"{where}: Secret {namespace}/{name} has no (or an empty) key {', '.join(missing)}; "
            f"it needs {keys}"
        )
    url = data[SECRET_KEY_URL].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"{where}: key {SECRET_KEY_URL} of Secret {namespace}/{name} is not an absolute "
            "http or https URL; put the webhook's URL there (for example "
            "https://hooks.example.com/...)"
        )
    key = data.get(SECRET_KEY_SIGNING_KEY, "").encode() if kind is ReceiverType.WEBHOOK else b""
    return Target(receiver.name, kind, f"Secret {namespace}/{name}", url, key)


def _keys(kind: ReceiverType) -> str:
    if kind is ReceiverType.WEBHOOK:
        return f"{SECRET_KEY_URL} and {SECRET_KEY_SIGNING_KEY}"
    return SECRET_KEY_URL


def request(target: Target, notice: Notice, timestamp: int) -> Request:
    """The HTTP POST for one notification at ``timestamp`` (Unix seconds)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhook.HEADER_DELIVERY: notice.notification.id,
    }
    if target.type is ReceiverType.WEBHOOK:
        content = webhook.encode(webhook.body(notice))
        headers.update(webhook.headers(target.signing_key, timestamp, content, notice))
    elif target.type is ReceiverType.SLACK:
        content = json.dumps(slack.payload(notice)).encode()
    else:
        content = json.dumps(teams.payload(notice)).encode()
    return Request(target.url, headers, content)
