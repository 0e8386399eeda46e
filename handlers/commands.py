"""`/review`: parsed once in the ack, which says within Slack's 3 seconds what happens next; the
work runs lazily. One table maps each kind of command to its ack text and its work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.commands import (
    USAGE,
    AgendaCommand,
    Command,
    CompareCommand,
    HelpCommand,
    LeaderboardCommand,
    ReviewCommand,
    ScheduleCommand,
    parse_command,
)
from bot.errors import BadReference, ReviewBotError, log_unexpected
from bot.ids import COMMAND
from bot.reviews.replies import ACK_AGENDA, ACK_COMPARING, ACK_LEADERBOARD, ACK_SCHEDULING, build_ack_text
from bot.services import Services
from bot.slack.advice import UNEXPECTED
from bot.slack.outbox import Notify
from handlers.context import PARSED_COMMAND, ephemeral, services_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asked:
    """One `/review` as the lazy work sees it."""

    services: Services
    user: str
    channel: str  # where it was typed
    notify: Notify
    respond: Respond


@dataclass(frozen=True)
class Route:
    ack_text: Callable[[Any, Services, str], str]  # (command, services, channel) -> the ack
    work: Callable[[Any, Asked], None] | None  # None: the ack said it all


def _review(parsed: ReviewCommand, asked: Asked) -> None:
    asked.services.publisher.publish(
        parsed.ref,
        requested_by=asked.user,
        origin_channel=asked.channel,
        notify=asked.notify,
        baseline=parsed.baseline,
    )


def _compare(parsed: CompareCommand, asked: Asked) -> None:
    asked.services.comparisons.publish_comparison(parsed, asked.channel, notify=asked.notify)


def _leaderboard(parsed: LeaderboardCommand, asked: Asked) -> None:
    asked.services.comparisons.publish_leaderboard(parsed, asked.channel, notify=asked.notify)


def _schedule(parsed: ScheduleCommand, asked: Asked) -> None:
    asked.notify(asked.services.meetings.schedule_from_text(parsed.ref, parsed.when, asked.user))


def _agenda(parsed: AgendaCommand, asked: Asked) -> None:
    services = asked.services
    channel = services.publisher.target_channel(asked.channel)
    if parsed.when:
        asked.notify(services.meetings.schedule_agenda(parsed.when, asked.user, channel))
    else:
        agenda = services.meetings.agenda(channel)
        asked.respond(response_type="ephemeral", replace_original=False, **agenda.as_kwargs())


ROUTES: dict[type, Route] = {
    HelpCommand: Route(lambda parsed, services, channel: USAGE, None),
    ReviewCommand: Route(
        lambda parsed, services, channel: build_ack_text(
            parsed.ref, services.publisher.target_channel(channel)
        ),
        _review,
    ),
    CompareCommand: Route(
        lambda parsed, services, channel: ACK_COMPARING.format(n=len(parsed.refs)), _compare
    ),
    LeaderboardCommand: Route(lambda parsed, services, channel: ACK_LEADERBOARD, _leaderboard),
    ScheduleCommand: Route(lambda parsed, services, channel: ACK_SCHEDULING, _schedule),
    AgendaCommand: Route(lambda parsed, services, channel: ACK_AGENDA, _agenda),
}


def acknowledge_review(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    try:
        parsed: Command = parse_command(command.get("text", ""))
    except BadReference as exc:
        ack(text=exc.user_message(), response_type="ephemeral")
        return
    context[PARSED_COMMAND] = parsed
    text = ROUTES[type(parsed)].ack_text(parsed, services_of(context), command["channel_id"])
    ack(text=text, response_type="ephemeral")


def run_review_command(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    parsed = context.get(PARSED_COMMAND)
    work = ROUTES[type(parsed)].work if parsed is not None else None
    if work is None:
        return  # refused or answered in the ack
    notify = ephemeral(respond)
    asked = Asked(services_of(context), command["user_id"], command["channel_id"], notify, respond)
    try:
        work(parsed, asked)
    except ReviewBotError as exc:
        notify(exc.user_message())
    except Exception:  # never silence after "Scheduling…": the person gets the id the log has
        notify(UNEXPECTED.format(error_id=log_unexpected(log, f"/review {command.get('text', '')[:100]!r}")))


def register(app: App) -> None:
    app.command(COMMAND)(ack=acknowledge_review, lazy=[run_review_command])
