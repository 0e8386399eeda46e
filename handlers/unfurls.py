"""Events API: link_shared -> unfurl the MLflow UI links (bot.unfurls)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from handlers.context import acknowledge, services_of


def unfurl_links(event: dict[str, Any], context: BoltContext) -> None:
    services_of(context).unfurls.unfurl(event)


def register(app: App) -> None:
    app.event("link_shared")(ack=acknowledge, lazy=[unfurl_links])
