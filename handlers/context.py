"""What the request middleware puts into bolt's context for the listeners: the services, the typed
value of the clicked button, and the parsed `/review` command (parsed once, in the ack)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt import BoltContext, Respond

from bot.services import Services
from bot.slack.outbox import Notify
from bot.slack.values import ButtonValue

SERVICES = "review_bot_services"
SUBJECT = "review_bot_subject"
PARSED_COMMAND = "review_bot_command"


def services_of(context: BoltContext) -> Services:
    return context[SERVICES]


def subject_of(context: BoltContext) -> ButtonValue | None:
    return context.get(SUBJECT)


def ephemeral(respond: Respond) -> Notify:
    """Tell the person who clicked or typed, without touching the message they acted on."""

    def notify(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    return notify


def channel_of(body: dict[str, Any]) -> str:
    """The channel a block action came from."""
    return (body.get("container") or {}).get("channel_id") or body["channel"]["id"]


def slack_time(ts: object) -> datetime:
    """A Slack timestamp ("1712345678.123456": action_ts, event_ts) as a moment; now if it is missing."""
    try:
        return datetime.fromtimestamp(float(str(ts)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(tz=UTC)


def acknowledge(ack: Any) -> None:
    """The ack of a listener whose work is all lazy."""
    ack()
