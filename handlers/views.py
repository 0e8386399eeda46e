"""The schedule-meeting modal: a bad time is a field error in the modal, the rest happens lazily."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.errors import ReviewBotError
from bot.ids import CallbackId
from bot.meetings.blocks import build_field_errors, parse_schedule_submission
from bot.meetings.rules import BadWhen, ensure_future, moment_from_picker
from handlers.context import services_of

PICK_A_TIME = ":warning: Pick a date and a time."


def check_schedule(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    _, when, _, _, _ = parse_schedule_submission(view)
    user = body["user"]["id"]
    try:
        if when is None:
            raise BadWhen(PICK_A_TIME)
        tz = services_of(context).meetings.user_timezone(user)
        ensure_future(moment_from_picker(when), tz, datetime.now(tz=UTC))
    except BadWhen as exc:
        ack(**build_field_errors(exc.user_message()))
        return
    ack()


def schedule(body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    run_id, when, duration, invitees, agenda = parse_schedule_submission(view)
    user = body["user"]["id"]
    if when is None:
        return  # refused in the ack
    try:
        services_of(context).meetings.schedule(
            run_id,
            moment_from_picker(when),
            duration_min=duration,
            invitees=invitees,
            agenda=agenda,
            by=user,
        )
    except ReviewBotError as exc:  # the modal is closed by now: tell the person by DM
        client.chat_postMessage(channel=user, text=exc.user_message())


def register(app: App) -> None:
    app.view(CallbackId.SCHEDULE_MEETING.value)(ack=check_schedule, lazy=[schedule])
