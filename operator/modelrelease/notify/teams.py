"""Microsoft Teams: an Adaptive Card for a Workflows webhook (pure).

The Workflows app's "When a Teams webhook request is received" trigger (the
replacement of the retired Office 365 connectors) takes a ``message`` whose
``attachments`` hold one card of content type
``application/vnd.microsoft.card.adaptive``. The card is Adaptive Card 1.4
(Teams renders up to 1.5): ``TextBlock`` s and a ``FactSet``.
"""

from __future__ import annotations

from typing import Any

from modelrelease.notify.message import Notice, facts, title

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
COLOUR = {"info": "Accent", "action": "Warning", "error": "Attention", "success": "Good"}


def card(notice: Notice) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title(notice),
            "weight": "Bolder",
            "size": "Medium",
            "color": COLOUR[notice.severity],
            "wrap": True,
        }
    ]
    if notice.notification.message:
        body.append({"type": "TextBlock", "text": notice.notification.message, "wrap": True})
    body.append(
        {
            "type": "FactSet",
            "facts": [{"title": label, "value": value} for label, value in facts(notice)],
        }
    )
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }


def payload(notice: Notice) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card(notice)}
        ],
    }
