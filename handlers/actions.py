"""Buttons on the review card: acknowledged at once, the vote recorded in the background."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.blocks.card import SCHEDULE_LABEL
from bot.blocks.replies import NOT_AVAILABLE_YET
from bot.ids import ActionId
from bot.models import Via, VoteKind

if TYPE_CHECKING:
    from bot.app import Services

CANCEL_MEETING_LABEL = "Cancel meeting"
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

    # Meetings are wired by the scheduling work; until then a click says so instead of doing nothing.
    def not_available_yet(label: str) -> Callable[..., None]:
        def answer(respond: Respond) -> None:
            respond(
                text=NOT_AVAILABLE_YET.format(label=label), response_type="ephemeral", replace_original=False
            )

        return answer

    app.action(ActionId.SCHEDULE.value)(ack=acknowledge, lazy=[not_available_yet(SCHEDULE_LABEL)])
    app.action(ActionId.CANCEL_MEETING.value)(ack=acknowledge, lazy=[not_available_yet(CANCEL_MEETING_LABEL)])

    def open_in_mlflow(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL, we only acknowledge

    app.action(ActionId.OPEN_MLFLOW.value)(open_in_mlflow)
