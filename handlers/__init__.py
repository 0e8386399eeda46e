"""Thin Slack listeners: ack, parse, call bot/, post what a builder returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from handlers import actions, commands, events, middleware, nudges, views

if TYPE_CHECKING:
    from bot.app import Services


def register_all(app: App, services: Services) -> None:
    middleware.register(app, services)
    commands.register(app, services)
    actions.register(app, services)
    nudges.register(app, services)
    events.register(app, services)
    views.register(app, services)
