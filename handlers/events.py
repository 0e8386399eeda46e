"""Events API: `@review-bot <run>` does what `/review <run>` does; reactions on a card are votes."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.commands import USAGE, ReviewCommand, parse_command
from bot.errors import BadReference
from bot.models import Via, VoteClick, VoteKind
from bot.slack.dedupe import delivery_id
from handlers.context import acknowledge, services_of, slack_time

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


def accept_reaction(body: dict[str, Any], event: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    """Before the ack: a reaction that votes is kept durably (bot.votes.service), as a click is."""
    services = services_of(context)
    item = event.get("item") or {}
    kind = {
        services.settings.approve_emoji: VoteKind.APPROVE,
        services.settings.changes_emoji: VoteKind.REQUEST_CHANGES,
    }.get(event.get("reaction", ""))
    on_our_message = not event.get("item_user") or event["item_user"] == context.bot_user_id
    if kind is not None and item.get("type") == "message" and on_our_message:
        services.votes.accept(
            VoteClick(
                delivery=delivery_id(body) or f"reaction:{event.get('user')}:{event.get('event_ts')}",
                channel=item["channel"],
                ts=item["ts"],
                user=event["user"],
                kind=kind,
                via=Via.REACTION,
                at=slack_time(event.get("event_ts")),
                withdrawing=event.get("type") == "reaction_removed",
            )
        )
    ack()


def record_reaction_votes(event: dict[str, Any], context: BoltContext) -> None:
    item = event.get("item") or {}
    if item.get("type") == "message":
        services_of(context).votes.process(item["channel"], item["ts"])


def register(app: App) -> None:
    app.event("app_mention")(ack=acknowledge, lazy=[review_on_mention])
    app.event("reaction_added")(ack=accept_reaction, lazy=[record_reaction_votes])
    app.event("reaction_removed")(ack=accept_reaction, lazy=[record_reaction_votes])
