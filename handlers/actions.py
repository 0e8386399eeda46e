"""Buttons on the review card and its thread: acknowledged at once, the work done lazily."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.errors import ReviewBotError
from bot.ids import ActionId
from bot.meetings.blocks import build_schedule_modal
from bot.models import RefKind, RunRef, Via, VoteClick, VoteKind
from bot.reviews.card import card_title
from bot.slack.dedupe import delivery_id
from bot.slack.values import RunValue
from bot.tags import DEFAULT_DURATION_MIN
from handlers.context import acknowledge, channel_of, ephemeral, services_of, slack_time, subject_of


def _run_subject(context: BoltContext) -> RunValue:
    subject = subject_of(context)
    return subject if isinstance(subject, RunValue) else RunValue()


def _accept_vote(kind: VoteKind, body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    """Before the ack: the click is kept durably (bot.votes.service), so an acked vote is never lost."""
    action = (body.get("actions") or [{}])[0]
    services_of(context).votes.accept(
        VoteClick(
            delivery=delivery_id(body) or f"action:{body['user']['id']}:{action.get('action_ts')}",
            channel=channel_of(body),
            ts=body["container"]["message_ts"],
            user=body["user"]["id"],
            kind=kind,
            via=Via.BUTTON,
            at=slack_time(action.get("action_ts")),
            response_url=body.get("response_url", ""),
        )
    )
    ack()


def accept_approval(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    _accept_vote(VoteKind.APPROVE, body, context, ack)


def accept_change_request(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    _accept_vote(VoteKind.REQUEST_CHANGES, body, context, ack)


def record_votes(body: dict[str, Any], context: BoltContext) -> None:
    """After the ack: every click waiting on this card, this one included, goes to MLflow."""
    services_of(context).votes.process(channel_of(body), body["container"]["message_ts"])


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
    app.action(ActionId.APPROVE.value)(ack=accept_approval, lazy=[record_votes])
    app.action(ActionId.REQUEST_CHANGES.value)(ack=accept_change_request, lazy=[record_votes])
    app.action(ActionId.SCHEDULE.value)(ack=acknowledge, lazy=[open_schedule_modal])
    app.action(ActionId.CANCEL_MEETING.value)(ack=acknowledge, lazy=[cancel_meeting])
    app.action(ActionId.LEADERBOARD_REVIEW.value)(ack=acknowledge, lazy=[review_from_leaderboard])
    app.action(ActionId.OPEN_MLFLOW.value)(acknowledge)  # a link button: Slack opens the URL
