"""Which incoming Slack requests are the same request again (retries, double submissions). Pure."""

from __future__ import annotations

import hashlib
from typing import Any

from bot.commands import is_help

EVENT_TTL = 3600  # Slack retries an event up to 3 times within about 5 minutes
COMMAND_TTL = 10  # a double submission arrives within seconds; a deliberate re-run later is new
ACTION_TTL = 5  # a double click


def dedupe_key(body: dict[str, Any]) -> tuple[str, int] | None:
    """A key and TTL identifying this request, or None when it need not be de-duplicated."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"dedupe:event:{body['event_id']}", EVENT_TTL
    if "command" in body and "user_id" in body:
        text = " ".join(str(body.get("text", "")).split())
        if is_help(text):
            return None  # answering usage twice does no harm; "Already on it" would puzzle
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return (
            f"dedupe:command:{body.get('team_id')}:{body['user_id']}:{body.get('channel_id')}:{body['command']}:{digest}",
            COMMAND_TTL,
        )
    if body.get("type") == "block_actions":
        user = (body.get("user") or {}).get("id")
        container = body.get("container") or {}
        actions = body.get("actions") or [{}]
        action = actions[0].get("action_id")
        where = container.get("message_ts") or container.get("view_id") or ""
        return f"dedupe:action:{user}:{where}:{action}", ACTION_TTL
    if body.get("type") == "view_submission":
        view = body.get("view") or {}
        return f"dedupe:view:{view.get('id')}:{view.get('hash')}", EVENT_TTL
    return None
