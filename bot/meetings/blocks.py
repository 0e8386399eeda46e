"""Messages and the modal for review meetings: schedule, announce, invite, remind, start, cancel, agenda.

Pure builders: they take bot.models values and return dicts, strings or SlackMessages. Times are
`<!date^…>` tokens, so each reader sees their own timezone, with a UTC fallback for old clients.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.ids import ActionId, CallbackId, MeetingBlockId, MeetingInput
from bot.meetings.rules import DURATION_CHOICES
from bot.models import Meeting, RunSummary
from bot.reviews.card import build_status_line
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, link, truncate
from bot.slack.values import RunValue, run_value
from bot.tags import AGENDA_MAX_CHARS, DEFAULT_DURATION_MIN

MODAL_TITLE = "Review meeting"
MODAL_SUBMIT = "Schedule"
MODAL_CLOSE = "Cancel"
MODAL_CONTEXT = ":calendar: A review meeting for run *{run_name}* (`{run_id}`)"
WHEN_LABEL = "When"
WHEN_HINT = "In your own timezone."
DURATION_LABEL = "Duration"
DURATION_OPTION = "{minutes} minutes"
INVITEES_LABEL = "Invitees"
INVITEES_PLACEHOLDER = "Who should be there"
AGENDA_LABEL = "Agenda"
AGENDA_PLACEHOLDER = "What to look at, what to decide"

SCHEDULED = ":calendar: Review meeting scheduled for {when} for {minutes} min"
MOVED = ":calendar: Review meeting moved to {when} for {minutes} min"
SCHEDULED_FALLBACK = "Review meeting for {run_name} scheduled for {when}"
MOVED_FALLBACK = "Review meeting for {run_name} moved to {when}"
SCHEDULED_BY = " (by {user})"
INVITED = "Invited: {users}"
AGENDA_TITLE = "*Agenda*"
CANCEL_LABEL = "Cancel meeting"
CANCEL_CONFIRM_TITLE = "Cancel the meeting?"
CANCEL_CONFIRM_TEXT = "Everyone invited is told in this thread that the meeting is off."
CANCEL_CONFIRM_YES = "Cancel meeting"
CANCEL_CONFIRM_NO = "Keep it"

INVITE = ":calendar: {by} invited you to the review meeting for *{run_name}* on {when} ({minutes} min)."
INVITE_SOMEONE = "Someone"
INVITE_CARD = "The review: {link}"
INVITE_CARD_LABEL = "open the card"
INVITE_ICS = "The calendar invite is attached."
REMINDER = ":alarm_clock: The review meeting for this run starts in {minutes} ({when}). {users}"
START = ":arrow_forward: The review meeting for *{run_name}* is starting now. {users}"
START_FALLBACK = "The review meeting for {run_name} is starting now"
START_RUN_LINK = "Run in MLflow"
START_CARD_LINK = "Review card"
MISSED = (
    ":warning: The {what} for the meeting at {when} was missed: no review-bot was running at the time, "
    "so it was not sent when it was due."
)
CANCELLED = ":x: The review meeting at {when} was cancelled by {by}. {users}"

AGENDA_HEADER = ":clipboard: *Reviews waiting for a decision* ({count})"
AGENDA_FALLBACK = "{count} reviews waiting for a decision"
AGENDA_LINE = "• {run} · waiting {age} · on {who}"
AGENDA_ANY_REVIEWER = "any reviewer"
AGENDA_AGE_UNKNOWN = "since an unknown time"
AGENDA_MORE = "…and {n} more"
NO_PENDING = "No reviews are pending."
AGENDA_MAX_ITEMS = 20
RUN_NAME_CHARS = 100

DATE_TOKEN = "<!date^{ts}^{{date_long_pretty}} at {{time}}|{fallback}>"
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")
_EMOJI_PREFIX = re.compile(r"^:[a-z0-9_+-]+:\s*")


def meeting_time(at: datetime) -> str:
    """A `<!date>` token: each reader's own timezone, a UTC fallback where Slack cannot render it."""
    return DATE_TOKEN.format(ts=int(at.timestamp()), fallback=_utc(at))


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def mention(user: str) -> str:
    """`<@U…>` for a Slack user id; anything else (a hand-edited tag) stays inert text."""
    return f"<@{user}>" if _SLACK_USER.match(user) else escape(user)


def mentions(users: list[str]) -> str:
    return ", ".join(mention(u) for u in users)


def _minutes(n: int) -> str:
    return f"{n} minute" if n == 1 else f"{n} minutes"


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, limits.SECTION_TEXT)))


# --- The schedule modal -----------------------------------------------------------------------------------


def build_schedule_modal(
    run_id: str, run_name: str, invitees: list[str], initial_at: datetime | None, duration_min: int
) -> dict[str, Any]:
    """The modal behind the card's "Schedule meeting" button; `views.open` takes it as `view`."""
    # A meeting moved from a duration no longer offered keeps it as an option rather than losing it.
    choices = sorted({*DURATION_CHOICES, duration_min}) if duration_min > 0 else list(DURATION_CHOICES)
    initial = duration_min if duration_min in choices else DEFAULT_DURATION_MIN
    options = [Option(value=str(m), text=DURATION_OPTION.format(minutes=m)) for m in choices]
    blocks = [
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=truncate(
                        MODAL_CONTEXT.format(
                            run_name=escape(truncate(run_name, RUN_NAME_CHARS)), run_id=escape(run_id)
                        ),
                        limits.SECTION_TEXT,
                    )
                )
            ]
        ),
        InputBlock(
            block_id=MeetingBlockId.WHEN,
            label=WHEN_LABEL,
            hint=WHEN_HINT,
            element=DateTimePickerElement(
                action_id=MeetingInput.WHEN,
                initial_date_time=int(initial_at.timestamp()) if initial_at else None,
            ),
        ),
        InputBlock(
            block_id=MeetingBlockId.DURATION,
            label=DURATION_LABEL,
            element=StaticSelectElement(
                action_id=MeetingInput.DURATION,
                options=options,
                initial_option=next(o for o in options if o.value == str(initial)),
            ),
        ),
        InputBlock(
            block_id=MeetingBlockId.INVITEES,
            label=INVITEES_LABEL,
            element=UserMultiSelectElement(
                action_id=MeetingInput.INVITEES,
                placeholder=INVITEES_PLACEHOLDER,
                initial_users=[u for u in invitees if _SLACK_USER.match(u)] or None,
            ),
        ),
        InputBlock(
            block_id=MeetingBlockId.AGENDA,
            label=AGENDA_LABEL,
            optional=True,
            element=PlainTextInputElement(
                action_id=MeetingInput.AGENDA,
                placeholder=AGENDA_PLACEHOLDER,
                multiline=True,
                max_length=AGENDA_MAX_CHARS,
            ),
        ),
    ]
    view = View(
        type="modal",
        callback_id=CallbackId.SCHEDULE_MEETING,
        private_metadata=run_value(run_id),
        title=MODAL_TITLE,
        submit=MODAL_SUBMIT,
        close=MODAL_CLOSE,
        blocks=blocks,
    )
    return view.to_dict()


def parse_schedule_submission(view: dict[str, Any]) -> tuple[str, int | None, int, list[str], str]:
    """(run_id, chosen unix time or None, duration in minutes, invitees, agenda) from a view_submission."""
    try:
        run_id = RunValue.model_validate_json(view.get("private_metadata") or "{}").run_id
    except ValueError:
        run_id = ""
    if not run_id:
        raise ValueError("schedule-meeting view without a run_id in its private_metadata")
    values = view.get("state", {}).get("values", {})

    def field(block: MeetingBlockId, action: MeetingInput) -> dict[str, Any]:
        return values.get(block, {}).get(action) or {}

    when = field(MeetingBlockId.WHEN, MeetingInput.WHEN).get("selected_date_time")
    option = field(MeetingBlockId.DURATION, MeetingInput.DURATION).get("selected_option") or {}
    try:
        duration = int(option.get("value") or DEFAULT_DURATION_MIN)
    except ValueError:
        duration = DEFAULT_DURATION_MIN
    invitees = field(MeetingBlockId.INVITEES, MeetingInput.INVITEES).get("selected_users") or []
    agenda = field(MeetingBlockId.AGENDA, MeetingInput.AGENDA).get("value") or ""
    return run_id, int(when) if when is not None else None, duration, list(invitees), agenda.strip()


def build_field_errors(when_error: str) -> dict[str, Any]:
    """The view_submission response that shows `when_error` under the time picker (plain text there)."""
    plain = html.unescape(_EMOJI_PREFIX.sub("", when_error).replace("`", ""))
    return {"response_action": "errors", "errors": {MeetingBlockId.WHEN.value: plain}}


# --- Thread messages and DMs ------------------------------------------------------------------------------


def build_meeting_announcement(meeting: Meeting, run_name: str, rescheduled: bool) -> SlackMessage:
    """The thread message for a new or moved meeting, with the button that cancels it."""
    when = meeting_time(meeting.at)
    line = (MOVED if rescheduled else SCHEDULED).format(when=when, minutes=meeting.duration_min)
    if meeting.scheduled_by:
        line += SCHEDULED_BY.format(user=mention(meeting.scheduled_by))
    if meeting.invitees:
        line += "\n" + INVITED.format(users=mentions(meeting.invitees))
    blocks: list[Any] = [_section(line)]
    if meeting.agenda.strip():
        blocks.append(_section(f"{AGENDA_TITLE}\n{escape(meeting.agenda.strip())}"))
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(
                    text=CANCEL_LABEL,
                    action_id=ActionId.CANCEL_MEETING,
                    value=run_value(meeting.run_id),
                    style="danger",
                    confirm=ConfirmObject(
                        title=CANCEL_CONFIRM_TITLE,
                        text=CANCEL_CONFIRM_TEXT,
                        confirm=CANCEL_CONFIRM_YES,
                        deny=CANCEL_CONFIRM_NO,
                        style="danger",
                    ),
                )
            ]
        )
    )
    fallback = (MOVED_FALLBACK if rescheduled else SCHEDULED_FALLBACK).format(
        run_name=escape(truncate(run_name, RUN_NAME_CHARS)), when=_utc(meeting.at)
    )
    return SlackMessage(text=fallback, blocks=[b.to_dict() for b in blocks])


def build_invite_text(meeting: Meeting, run_name: str, card_permalink: str) -> str:
    """The DM that goes with each invitee's .ics file."""
    lines = [
        INVITE.format(
            by=mention(meeting.scheduled_by) if meeting.scheduled_by else INVITE_SOMEONE,
            run_name=escape(truncate(run_name, RUN_NAME_CHARS)),
            when=meeting_time(meeting.at),
            minutes=meeting.duration_min,
        )
    ]
    if card_permalink:
        lines.append(INVITE_CARD.format(link=link(card_permalink, INVITE_CARD_LABEL)))
    if meeting.agenda.strip():
        lines.append(f"{AGENDA_TITLE}\n{escape(meeting.agenda.strip())}")
    lines.append(INVITE_ICS)
    return truncate("\n".join(lines), limits.SECTION_TEXT)


def build_reminder(meeting: Meeting, lead_min: int) -> str:
    return REMINDER.format(
        minutes=_minutes(lead_min), when=meeting_time(meeting.at), users=mentions(meeting.invitees)
    ).rstrip()


def build_meeting_start(
    meeting: Meeting, summary: RunSummary, required_approvals: int, card_permalink: str
) -> SlackMessage:
    """ "Starting now", with where the review stands at this moment and the links to open."""
    review = summary.review
    requested_by = review.requested_by if review and review.requested_by else meeting.scheduled_by
    run_name = escape(truncate(summary.run_name, RUN_NAME_CHARS))
    links = [
        link(url, label)
        for url, label in ((summary.run_url, START_RUN_LINK), (card_permalink, START_CARD_LINK))
        if url
    ]
    blocks: list[Any] = [
        _section(START.format(run_name=run_name, users=mentions(meeting.invitees)).rstrip()),
        ContextBlock(
            elements=[MarkdownTextObject(text=build_status_line(review, requested_by, required_approvals))]
        ),
    ]
    if links:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(links))]))
    return SlackMessage(text=START_FALLBACK.format(run_name=run_name), blocks=[b.to_dict() for b in blocks])


def build_missed(meeting: Meeting, what: str) -> str:
    """Posted late, when the bot comes back after a reminder or a start was due."""
    return MISSED.format(what=escape(what), when=meeting_time(meeting.at))


def build_cancelled(meeting: Meeting, by: str) -> str:
    return CANCELLED.format(
        when=meeting_time(meeting.at), by=mention(by), users=mentions(meeting.invitees)
    ).rstrip()


# --- The agenda of pending reviews ------------------------------------------------------------------------


def format_age(since: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit: "3 days", "5 hours", "12 minutes"."""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}" + ("" if n == 1 else "s")
    return "under a minute"


def request_order(summary: RunSummary) -> tuple[bool, datetime | None]:
    """Sort key for pending reviews: oldest request first, unknown request times last."""
    at = summary.review.requested_at if summary.review else None
    return (at is None, at)


def run_link(summary: RunSummary, limit: int = RUN_NAME_CHARS) -> str:
    """The run's name linked to its MLflow page; bold, inert text when no UI address is known."""
    name = truncate(summary.run_name or summary.run_id, limit)
    return link(summary.run_url, name) if summary.run_url else f"*{escape(name)}*"


def build_agenda(pending: list[tuple[RunSummary, list[str]]], now: datetime) -> SlackMessage:
    """Pending reviews, oldest request first, each with who it waits on; at most AGENDA_MAX_ITEMS."""
    if not pending:
        return SlackMessage(text=NO_PENDING, blocks=[_section(NO_PENDING).to_dict()])

    ordered = sorted(pending, key=lambda item: request_order(item[0]))
    blocks: list[Any] = [_section(AGENDA_HEADER.format(count=len(pending)))]
    for summary, waiting_on in ordered[:AGENDA_MAX_ITEMS]:
        at = summary.review.requested_at if summary.review else None
        blocks.append(
            _section(
                AGENDA_LINE.format(
                    run=run_link(summary),
                    age=format_age(at, now) if at else AGENDA_AGE_UNKNOWN,
                    who=mentions(waiting_on) if waiting_on else AGENDA_ANY_REVIEWER,
                )
            )
        )
    hidden = len(ordered) - AGENDA_MAX_ITEMS
    if hidden > 0:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=AGENDA_MORE.format(n=hidden))]))
    return SlackMessage(
        text=AGENDA_FALLBACK.format(count=len(pending)),
        blocks=[b.to_dict() for b in blocks],
    )
