"""Buttons on the review card: acknowledged at once, the vote recorded in the background."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.blocks.card import HEADER_PREFIX
from bot.blocks.meetings import build_schedule_modal
from bot.errors import ReviewBotError
from bot.ids import ActionId
from bot.meetings import DEFAULT_DURATION_MIN
from bot.models import RefKind, RunRef, Via, VoteKind

if TYPE_CHECKING:
    from bot.app import Services

VOTE_ACTIONS = {ActionId.APPROVE: VoteKind.APPROVE, ActionId.REQUEST_CHANGES: VoteKind.REQUEST_CHANGES}


def register(app: App, services: Services) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def vote_listener(kind: VoteKind) -> Callable[..., None]:
        # A factory, not a default argument: bolt injects every parameter a listener declares.
        def vote(body: dict[str, Any], respond: Respond) -> None:
            container = body.get("container") or {}
            services.votes.vote(
                channel=container.get("channel_id") or body["channel"]["id"],
                ts=container["message_ts"],
                user=body["user"]["id"],
                kind=kind,
                via=Via.BUTTON,
                notify=lambda text: respond(text=text, response_type="ephemeral", replace_original=False),
            )

        return vote

    for action_id, kind in VOTE_ACTIONS.items():
        app.action(action_id.value)(ack=acknowledge, lazy=[vote_listener(kind)])

    def open_schedule_modal(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        # views.open must use the trigger within 3 seconds: open it here, from what the click carries.
        run = json.loads((body.get("actions") or [{}])[0].get("value") or "{}")
        header = ((body.get("message") or {}).get("blocks") or [{}])[0].get("text", {}).get("text", "")
        client.views_open(
            trigger_id=body["trigger_id"],
            view=build_schedule_modal(
                run.get("run_id", ""),
                header.removeprefix(HEADER_PREFIX),
                sorted(services.votes.policy().reviewers or []),
                None,
                DEFAULT_DURATION_MIN,
            ),
        )
        ack()

    def cancel_meeting(body: dict[str, Any], respond: Respond) -> None:
        run_id = json.loads((body.get("actions") or [{}])[0].get("value") or "{}").get("run_id", "")
        try:
            services.meetings.cancel(run_id, by=body["user"]["id"])
        except ReviewBotError as exc:
            respond(text=exc.user_message(), response_type="ephemeral", replace_original=False)

    app.action(ActionId.SCHEDULE.value)(open_schedule_modal)
    app.action(ActionId.CANCEL_MEETING.value)(ack=acknowledge, lazy=[cancel_meeting])

    def review_from_leaderboard(body: dict[str, Any], respond: Respond) -> None:
        """A leaderboard row's Review button: the same publish path as `/review <run>`."""
        run_id = json.loads((body.get("actions") or [{}])[0].get("value") or "{}").get("run_id", "")
        if not run_id:
            return
        container = body.get("container") or {}
        services.publisher.publish(
            RunRef(kind=RefKind.RUN, raw=run_id, run_id=run_id),
            requested_by=body["user"]["id"],
            origin_channel=container.get("channel_id") or body["channel"]["id"],
            notify=lambda text: respond(text=text, response_type="ephemeral", replace_original=False),
        )

    app.action(ActionId.LEADERBOARD_REVIEW.value)(ack=acknowledge, lazy=[review_from_leaderboard])

    def open_in_mlflow(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL, we only acknowledge

    app.action(ActionId.OPEN_MLFLOW.value)(open_in_mlflow)
