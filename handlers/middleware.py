"""Runs before every listener: provides the services, acts on each request once (retries and double
submissions stop here), and parses the clicked button's value once into a typed subject."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse

from bot.reviews.replies import ACK_DUPLICATE
from bot.services import Services
from bot.slack.dedupe import dedupe_key
from bot.slack.values import parse_value
from handlers.context import SERVICES, SUBJECT, services_of

log = logging.getLogger(__name__)

Next = Callable[[], BoltResponse]


def act_once(body: dict[str, Any], context: BoltContext, next: Next) -> BoltResponse | None:  # noqa: A002
    found = dedupe_key(body)
    if found is None or services_of(context).store.claim(*found):
        return next()
    log.info("duplicate request dropped (%s)", found[0].split(":")[1])
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
