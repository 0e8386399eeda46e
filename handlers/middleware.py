"""Runs before every listener: provides the services, acts on each delivery once (Slack's retries and
replayed requests stop here: bot.slack.dedupe), and parses the clicked button's value once into a typed
subject."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse

from bot.reviews.replies import ACK_DUPLICATE
from bot.services import Services
from bot.slack.dedupe import dedupe_keys
from bot.slack.values import parse_value
from handlers.context import SERVICES, SUBJECT, services_of

log = logging.getLogger(__name__)

Next = Callable[[], BoltResponse]


def act_once(
    body: dict[str, Any],
    request: BoltRequest,
    context: BoltContext,
    next: Next,  # noqa: A002
) -> BoltResponse | None:
    signature = (request.headers.get("x-slack-signature") or [None])[0]
    store = services_of(context).store
    keys = dedupe_keys(body, signature)
    # Every key is claimed (no short cut): a replay must find each one taken, whichever it checks first.
    claimed = [store.claim(key, ttl) for key, ttl in keys]
    if all(claimed):
        return next()
    log.info("a delivery seen before was dropped (%s)", ", ".join(k.split(":")[1] for k, _ in keys))
    if "command" in body:
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": ACK_DUPLICATE})
    return BoltResponse(status=200, body="")


def parse_button(body: dict[str, Any], context: BoltContext, next: Next) -> BoltResponse | None:  # noqa: A002
    if body.get("type") == "block_actions":
        action = (body.get("actions") or [{}])[0]
        context[SUBJECT] = parse_value(str(action.get("action_id", "")), action.get("value"))
    return next()


def register(app: App, services: Services) -> None:
    def provide_services(context: BoltContext, next: Next) -> BoltResponse | None:  # noqa: A002
        context[SERVICES] = services
        return next()

    app.middleware(provide_services)
    app.middleware(act_once)
    app.middleware(parse_button)
