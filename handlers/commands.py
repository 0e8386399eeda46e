"""`/review`: ack within Slack's 3 seconds saying what happens next, then do it lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.blocks.replies import ACK_AGENDA, ACK_COMPARING, ACK_LEADERBOARD, ACK_SCHEDULING, build_ack_text
from bot.commands import (
    USAGE,
    AgendaCommand,
    CompareCommand,
    HelpCommand,
    LeaderboardCommand,
    ReviewCommand,
    ScheduleCommand,
    parse_command,
)
from bot.errors import BadReference, ReviewBotError

if TYPE_CHECKING:
    from bot.app import Services

from bot.ids import COMMAND


def register(app: App, services: Services) -> None:
    publisher, meetings, comparisons = services.publisher, services.meetings, services.comparisons

    def acknowledge_review(ack: Ack, command: dict[str, Any]) -> None:
        try:
            parsed = parse_command(command.get("text", ""))
        except BadReference as exc:
            ack(text=exc.user_message(), response_type="ephemeral")
            return
        if isinstance(parsed, HelpCommand):
            text = USAGE
        elif isinstance(parsed, ScheduleCommand):
            text = ACK_SCHEDULING
        elif isinstance(parsed, AgendaCommand):
            text = ACK_AGENDA
        elif isinstance(parsed, CompareCommand):
            text = ACK_COMPARING.format(n=len(parsed.refs))
        elif isinstance(parsed, LeaderboardCommand):
            text = ACK_LEADERBOARD
        else:
            text = build_ack_text(parsed.ref, publisher.target_channel(command["channel_id"]))
        ack(text=text, response_type="ephemeral")

    def run_review_command(command: dict[str, Any], respond: Respond) -> None:
        try:
            parsed = parse_command(command.get("text", ""))
        except BadReference:
            return  # already explained in the ack
        user = command["user_id"]

        def tell(text: str) -> None:
            respond(text=text, response_type="ephemeral", replace_original=False)

        if isinstance(parsed, ReviewCommand):
            publisher.publish(
                parsed.ref,
                requested_by=user,
                origin_channel=command["channel_id"],
                notify=tell,
                baseline=parsed.baseline,
            )
            return
        if isinstance(parsed, CompareCommand):
            comparisons.publish_comparison(parsed, command["channel_id"], notify=tell)
            return
        if isinstance(parsed, LeaderboardCommand):
            comparisons.publish_leaderboard(parsed, command["channel_id"], notify=tell)
            return
        try:
            if isinstance(parsed, ScheduleCommand):
                tell(meetings.schedule_from_text(parsed.ref, parsed.when, user))
            elif isinstance(parsed, AgendaCommand) and parsed.when:
                tell(
                    meetings.schedule_agenda(
                        parsed.when, user, publisher.target_channel(command["channel_id"])
                    )
                )
            elif isinstance(parsed, AgendaCommand):
                agenda = meetings.agenda(publisher.target_channel(command["channel_id"]))
                respond(response_type="ephemeral", replace_original=False, **agenda.as_kwargs())
        except ReviewBotError as exc:
            tell(exc.user_message())

    app.command(COMMAND)(ack=acknowledge_review, lazy=[run_review_command])
