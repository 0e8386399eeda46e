"""Events API: `@review-bot <run>` in a channel does what `/review <run>` does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.commands import USAGE, HelpCommand, parse_command
from bot.errors import BadReference

if TYPE_CHECKING:
    from bot.app import Services

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")


def register(app: App, services: Services) -> None:
    publisher = services.publisher

    def acknowledge(ack: Ack) -> None:
        ack()

    def review_on_mention(event: dict[str, Any], client: WebClient) -> None:
        channel, user = event["channel"], event["user"]

        def tell(text: str) -> None:
            client.chat_postEphemeral(channel=channel, user=user, text=text)

        text = _LEADING_MENTION.sub("", event.get("text", ""), count=1)
        try:
            parsed = parse_command(text)
        except BadReference as exc:
            tell(exc.user_message())
            return
        if isinstance(parsed, HelpCommand):
            tell(USAGE)
            return
        publisher.publish(parsed.ref, requested_by=user, origin_channel=channel, notify=tell)

    app.event("app_mention")(ack=acknowledge, lazy=[review_on_mention])
