"""Events API: `@review-bot <run>` does what `/review <run>` does; reactions on a card are votes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.commands import USAGE, ReviewCommand, parse_command
from bot.errors import BadReference
from bot.models import Via, VoteKind

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
        if not isinstance(parsed, ReviewCommand):
            tell(
                USAGE
            )  # meetings, the agenda and comparisons are for /review, where Slack knows who asks and where
            return
        publisher.publish(
            parsed.ref, requested_by=user, origin_channel=channel, notify=tell, baseline=parsed.baseline
        )

    app.event("app_mention")(ack=acknowledge, lazy=[review_on_mention])

    emoji = {
        services.settings.approve_emoji: VoteKind.APPROVE,
        services.settings.changes_emoji: VoteKind.REQUEST_CHANGES,
    }

    def reaction_vote(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        item = event.get("item") or {}
        kind = emoji.get(event.get("reaction", ""))
        if kind is None or item.get("type") != "message":
            return
        if event.get("item_user") and event["item_user"] != context.bot_user_id:
            return  # a reaction on somebody else's message: never a card
        channel, user = item["channel"], event["user"]
        services.votes.vote(
            channel=channel,
            ts=item["ts"],
            user=user,
            kind=kind,
            via=Via.REACTION,
            notify=lambda text: client.chat_postEphemeral(channel=channel, user=user, text=text),
            withdrawing=event.get("type") == "reaction_removed",
        )

    app.event("reaction_added")(ack=acknowledge, lazy=[reaction_vote])
    app.event("reaction_removed")(ack=acknowledge, lazy=[reaction_vote])
