"""Events API: `@review-bot <run>` does what `/review <run>` does; reactions on a card are votes."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.commands import USAGE, ReviewCommand, parse_command
from bot.errors import BadReference
from bot.models import Via, VoteKind
from handlers.context import acknowledge, services_of

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")


def review_on_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
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
        # Meetings, the agenda and comparisons are for /review, where Slack knows who asks and where.
        tell(USAGE)
        return
    services_of(context).publisher.publish(
        parsed.ref, requested_by=user, origin_channel=channel, notify=tell, baseline=parsed.baseline
    )


def reaction_vote(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    services = services_of(context)
    item = event.get("item") or {}
    emoji = {
        services.settings.approve_emoji: VoteKind.APPROVE,
        services.settings.changes_emoji: VoteKind.REQUEST_CHANGES,
    }
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


def register(app: App) -> None:
    app.event("app_mention")(ack=acknowledge, lazy=[review_on_mention])
    app.event("reaction_added")(ack=acknowledge, lazy=[reaction_vote])
    app.event("reaction_removed")(ack=acknowledge, lazy=[reaction_vote])
