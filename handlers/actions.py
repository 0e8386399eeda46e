"""Buttons on the review card and its thread: acknowledged at once, the work done lazily."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext, Respond
from slack_sdk import WebClient

from bot.errors import ReviewBotError
from bot.ids import ActionId
from bot.meetings.blocks import build_schedule_modal
from bot.models import RefKind, RunRef, Via, VoteKind
from bot.reviews.card import card_title
from bot.slack.values import RunValue
from bot.tags import DEFAULT_DURATION_MIN
from handlers.context import acknowledge, channel_of, ephemeral, services_of, subject_of


def _run_subject(context: BoltContext) -> RunValue:
    subject = subject_of(context)
    return subject if isinstance(subject, RunValue) else RunValue()


def _vote(kind: VoteKind, body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    services_of(context).votes.vote(
        channel=channel_of(body),
        ts=body["container"]["message_ts"],
        user=body["user"]["id"],
        kind=kind,
        via=Via.BUTTON,
        notify=ephemeral(respond),
    )


def approve(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    _vote(VoteKind.APPROVE, body, context, respond)


def request_changes(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    _vote(VoteKind.REQUEST_CHANGES, body, context, respond)


def open_schedule_modal(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Lazy, right after the ack: views.open must use the click's trigger within 3 seconds."""
    subject = _run_subject(context)
    client.views_open(
        trigger_id=body["trigger_id"],
        view=build_schedule_modal(
            subject.run_id,
            card_title(body.get("message") or {}),
            sorted(services_of(context).votes.policy().reviewers or []),
            None,
            DEFAULT_DURATION_MIN,
        ),
    )


def cancel_meeting(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    try:
        services_of(context).meetings.cancel(_run_subject(context).run_id, by=body["user"]["id"])
    except ReviewBotError as exc:
        ephemeral(respond)(exc.user_message())


def review_from_leaderboard(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    """A leaderboard row's Review button: the same publish path as `/review <run>`."""
    run_id = _run_subject(context).run_id
    if not run_id:
        return
    services_of(context).publisher.publish(
        RunRef(kind=RefKind.RUN, raw=run_id, run_id=run_id),
        requested_by=body["user"]["id"],
        origin_channel=channel_of(body),
        notify=ephemeral(respond),
    )


def register(app: App) -> None:
    app.action(ActionId.APPROVE.value)(ack=acknowledge, lazy=[approve])
    app.action(ActionId.REQUEST_CHANGES.value)(ack=acknowledge, lazy=[request_changes])
    app.action(ActionId.SCHEDULE.value)(ack=acknowledge, lazy=[open_schedule_modal])
    app.action(ActionId.CANCEL_MEETING.value)(ack=acknowledge, lazy=[cancel_meeting])
    app.action(ActionId.LEADERBOARD_REVIEW.value)(ack=acknowledge, lazy=[review_from_leaderboard])
    app.action(ActionId.OPEN_MLFLOW.value)(acknowledge)  # a link button: Slack opens the URL
