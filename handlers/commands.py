"""`/review`: ack within Slack's 3 seconds saying where the card will go, then post it lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.blocks.replies import build_ack_text
from bot.commands import USAGE, HelpCommand, ReviewCommand, parse_command
from bot.errors import BadReference
from bot.ids import COMMAND

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    publisher = services.publisher

    def acknowledge_review(ack: Ack, command: dict[str, Any]) -> None:
        try:
            parsed = parse_command(command.get("text", ""))
        except BadReference as exc:
            ack(text=exc.user_message(), response_type="ephemeral")
            return
        if isinstance(parsed, HelpCommand):
            ack(text=USAGE, response_type="ephemeral")
            return
        ack(
            text=build_ack_text(parsed.ref, publisher.target_channel(command["channel_id"])),
            response_type="ephemeral",
        )

    def post_review(command: dict[str, Any], respond: Respond) -> None:
        try:
            parsed = parse_command(command.get("text", ""))
        except BadReference:
            return  # already explained in the ack
        if isinstance(parsed, ReviewCommand):
            publisher.publish(
                parsed.ref,
                requested_by=command["user_id"],
                origin_channel=command["channel_id"],
                notify=lambda text: respond(text=text, response_type="ephemeral", replace_original=False),
            )

    app.command(COMMAND)(ack=acknowledge_review, lazy=[post_review])
