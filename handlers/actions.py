"""Buttons on the review card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import Ack, App, Respond

from bot.blocks.card import APPROVE_LABEL, REQUEST_CHANGES_LABEL, SCHEDULE_LABEL
from bot.blocks.replies import NOT_AVAILABLE_YET
from bot.ids import ActionId

if TYPE_CHECKING:
    from bot.app import Services

# Wired by the approvals and meetings work; until then a click says so instead of doing nothing.
_NOT_YET = {
    ActionId.APPROVE: APPROVE_LABEL,
    ActionId.REQUEST_CHANGES: REQUEST_CHANGES_LABEL,
    ActionId.SCHEDULE: SCHEDULE_LABEL,
}


def register(app: App, services: Services) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    for action_id, label in _NOT_YET.items():

        def not_available_yet(respond: Respond, label: str = label) -> None:
            respond(
                text=NOT_AVAILABLE_YET.format(label=label), response_type="ephemeral", replace_original=False
            )

        app.action(action_id.value)(ack=acknowledge, lazy=[not_available_yet])

    def open_in_mlflow(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL, we only acknowledge

    app.action(ActionId.OPEN_MLFLOW.value)(open_in_mlflow)
