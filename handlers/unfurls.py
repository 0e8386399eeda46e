"""Events API: link_shared -> unfurl the MLflow UI links (bot.unfurls); the unfurl's buttons."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext, Respond

from bot.ids import UnfurlActionId
from bot.slack.values import RefValue
from handlers.context import acknowledge, channel_of, ephemeral, services_of, subject_of

log = logging.getLogger(__name__)


def unfurl_links(event: dict[str, Any], context: BoltContext) -> None:
    services_of(context).unfurls.unfurl(event)


def review_from_unfurl(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    """An unfurl's Review button: the card posted as `/review <what the link points at>` posts it."""
    subject = subject_of(context)
    if not isinstance(subject, RefValue) or not subject.ref:
        log.warning("a Review click on an unfurl without a reference: ignored")
        return
    services_of(context).unfurls.review(
        subject.ref, user=body["user"]["id"], channel=channel_of(body), notify=ephemeral(respond)
    )


def register(app: App) -> None:
    app.event("link_shared")(ack=acknowledge, lazy=[unfurl_links])
    app.action(UnfurlActionId.REVIEW.value)(ack=acknowledge, lazy=[review_from_unfurl])
    app.action(UnfurlActionId.OPEN_CARD.value)(acknowledge)  # a link button: Slack opens the card
