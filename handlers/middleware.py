"""Acts on each Slack request once: retries and double submissions stop here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltResponse

from bot.blocks.replies import ACK_DUPLICATE
from bot.dedupe import dedupe_key

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    def act_once(body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002
        found = dedupe_key(body)
        if found is None or services.store.claim(*found):
            return next()
        log.info("duplicate request dropped (%s)", found[0].split(":")[1])
        if "command" in body:
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": ACK_DUPLICATE})
        return BoltResponse(status=200, body="")

    app.middleware(act_once)
