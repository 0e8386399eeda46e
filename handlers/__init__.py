"""Thin Slack listeners: module-level functions that ack, read what the middleware parsed, call a
service of bot/, and post what a builder returns. Only the composition root (app.py) imports this."""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services
from handlers import actions, commands, events, home, middleware, nudges, unfurls, views


def register_all(app: App, services: Services) -> None:
    middleware.register(app, services)
    commands.register(app)
    actions.register(app)
    nudges.register(app)
    events.register(app)
    views.register(app)
    unfurls.register(app)
    home.register(app)
