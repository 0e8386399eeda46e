"""The buttons on a nudge: Start review posts the version's review card, Snooze quiets it for a week."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext, Respond

from bot.errors import ReviewBotError
from bot.ids import ActionId
from bot.slack.values import VersionValue
from handlers.context import acknowledge, channel_of, ephemeral, services_of, subject_of

log = logging.getLogger(__name__)


def _version(context: BoltContext) -> VersionValue | None:
    """The model version a nudge's button carries, or None for a value that names none."""
    subject = subject_of(context)
    if not isinstance(subject, VersionValue) or not subject.model or not subject.version:
        return None
    return subject


def start_review(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    target = _version(context)
    if target is None:
        log.warning("a Start review click without a model version: ignored")
        return
    updated = services_of(context).nudges.start_review(
        target.model,
        target.version,
        user=body["user"]["id"],
        origin_channel=channel_of(body),
        notify=ephemeral(respond),
        nudge=body.get("message") or {},
        prompt=target.prompt,
    )
    if updated is not None:
        respond(replace_original=True, **updated.as_kwargs())


def snooze(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    target = _version(context)
    if target is None:
        log.warning("a Snooze click without a model version: ignored")
        return
    try:
        updated = services_of(context).nudges.snooze(
            target.model,
            target.version,
            user=body["user"]["id"],
            nudge=body.get("message") or {},
            prompt=target.prompt,
        )
    except ReviewBotError as exc:
        ephemeral(respond)(exc.user_message())
        return
    respond(replace_original=True, **updated.as_kwargs())


def register(app: App) -> None:
    app.action(ActionId.NUDGE_START_REVIEW.value)(ack=acknowledge, lazy=[start_review])
    app.action(ActionId.NUDGE_SNOOZE.value)(ack=acknowledge, lazy=[snooze])
