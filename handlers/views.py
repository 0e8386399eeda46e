"""The schedule-meeting modal: a bad time is a field error in the modal, the rest happens lazily."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks.meetings import build_field_errors, parse_schedule_submission
from bot.errors import ReviewBotError
from bot.ids import CallbackId
from bot.meetings import BadWhen, ensure_future

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    meetings = services.meetings

    def check_schedule(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        _, when, _, _, _ = parse_schedule_submission(view)
        user = body["user"]["id"]
        try:
            if when is None:
                raise BadWhen(":warning: Pick a date and a time.")
            ensure_future(
                datetime.fromtimestamp(when, tz=UTC), meetings.user_timezone(user), datetime.now(tz=UTC)
            )
        except BadWhen as exc:
            ack(**build_field_errors(exc.user_message()))
            return
        ack()

    def schedule(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        run_id, when, duration, invitees, agenda = parse_schedule_submission(view)
        user = body["user"]["id"]
        if when is None:
            return  # refused in the ack
        try:
            meetings.schedule(
                run_id,
                datetime.fromtimestamp(when, tz=UTC),
                duration_min=duration,
                invitees=invitees,
                agenda=agenda,
                by=user,
            )
        except ReviewBotError as exc:  # the modal is closed by now: tell the person by DM
            client.chat_postMessage(channel=user, text=exc.user_message())

    app.view(CallbackId.SCHEDULE_MEETING.value)(ack=check_schedule, lazy=[schedule])
