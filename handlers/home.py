"""Events API: app_home_opened -> the person's Home tab (bot.home)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from handlers.context import acknowledge, services_of


def publish_home(event: dict[str, Any], context: BoltContext) -> None:
    if event.get("tab", "home") == "home":
        services_of(context).home.opened(event["user"])


def register(app: App) -> None:
    app.event("app_home_opened")(ack=acknowledge, lazy=[publish_home])
