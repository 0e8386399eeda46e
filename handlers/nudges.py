"""The buttons on a nudge: Start review posts the version's review card, Snooze quiets it for a week."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.errors import ReviewBotError
from bot.ids import ActionId

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def _version(body: dict[str, Any]) -> tuple[str, str] | None:
    """The model version a nudge's button carries, or None for a value that names none."""
    try:
        value = json.loads((body.get("actions") or [{}])[0].get("value") or "{}")
    except ValueError:
        return None
    if not isinstance(value, dict) or not value.get("model") or not value.get("version"):
        return None
    return str(value["model"]), str(value["version"])


def register(app: App, services: Services) -> None:
    nudges = services.nudges

    def acknowledge(ack: Ack) -> None:
        ack()

    def start_review(body: dict[str, Any], respond: Respond) -> None:
        target = _version(body)
        if target is None:
            log.warning("a Start review click without a model version: ignored")
            return
        channel = (body.get("container") or {}).get("channel_id") or body["channel"]["id"]
        updated = nudges.start_review(
            *target,
            user=body["user"]["id"],
            origin_channel=channel,
            notify=lambda text: respond(text=text, response_type="ephemeral", replace_original=False),
            nudge=body.get("message") or {},
        )
        if updated is not None:
            respond(replace_original=True, **updated.as_kwargs())

    def snooze(body: dict[str, Any], respond: Respond) -> None:
        target = _version(body)
        if target is None:
            log.warning("a Snooze click without a model version: ignored")
            return
        try:
            updated = nudges.snooze(*target, user=body["user"]["id"], nudge=body.get("message") or {})
        except ReviewBotError as exc:
            respond(text=exc.user_message(), response_type="ephemeral", replace_original=False)
            return
        respond(replace_original=True, **updated.as_kwargs())

    app.action(ActionId.NUDGE_START_REVIEW.value)(ack=acknowledge, lazy=[start_review])
    app.action(ActionId.NUDGE_SNOOZE.value)(ack=acknowledge, lazy=[snooze])
