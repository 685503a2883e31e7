"""Slack: a message for an incoming webhook, in Block Kit (pure).

Blocks used, within Slack's documented limits: ``header`` (plain_text, at most
150 characters), ``section`` with ``mrkdwn`` text (at most 3000) and with
``fields`` (at most 10, each at most 2000), and ``context`` (at most 10
elements). The top-level ``text`` is the fallback that notifications and
screen readers show.
"""

from __future__ import annotations

from typing import Any

from modelrelease.notify.message import Notice, facts, title

HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
EMOJI = {
    "info": ":arrow_forward:",
    "action": ":raised_hand:",
    "error": ":x:",
    "success": ":white_check_mark:",
}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(notice: Notice) -> dict[str, Any]:
    heading = title(notice)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(f"{EMOJI[notice.severity]} {heading}", HEADER_MAX),
                "emoji": True,
            },
        }
    ]
    message = notice.notification.message
    if message:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(escape(message), SECTION_TEXT_MAX)},
            }
        )
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{label}*\n{escape(value)}", FIELD_TEXT_MAX)}
                for label, value in facts(notice)[:MAX_FIELDS]
            ],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": escape(f"ModelRelease notification {notice.notification.id}"),
                }
            ],
        }
    )
    return {"text": escape(heading), "blocks": blocks}
