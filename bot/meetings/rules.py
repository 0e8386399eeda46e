"""Review meetings: reading a time a person typed, the meeting's MLflow tags, and its calendar file.

Pure: no Slack, no MLflow, no clock (callers pass `now`). `meeting_tags`/`meeting_from_tags` are the
only place the review.meeting_* tag format lives, as `bot.votes.rules` is for the review's own tags.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser
import icalendar

from bot.errors import ReviewBotError
from bot.models import Meeting
from bot.slack.mrkdwn import escape, truncate

DURATION_CHOICES = (15, 30, 45, 60, 90)

WHEN_EXAMPLES = "`2026-12-01 15:00`, `tomorrow 3pm`, `next tuesday 10:30` or `in 2 hours`"
BAD_WHEN = ":warning: I could not read `{text}` as a time. Try " + WHEN_EXAMPLES + " (times are in {tz})."
PAST_WHEN = ":warning: `{text}` is {when}, which is in the past. Pick a time after now."
PAST_PICKED = ":warning: {when} is in the past. Pick a time after now."
TOO_FAR = ":warning: `{text}` is more than a year from now. Pick a time within the next {days} days."
MAX_AHEAD = timedelta(days=366)  # a review meeting further out is a typo, and far enough breaks calendars
UNKNOWN_TIMEZONE = ":warning: Your Slack timezone `{tz}` is not one I know; times would be read wrongly."
# How a parsed time is shown back to the person, in their own timezone.
LOCAL_TIME_FORMAT = "%a %d %b %Y %H:%M %Z"
QUOTED_TEXT_CHARS = 100
ICS_PRODID = "-//review-bot//EN"
ICS_ORGANIZER = "mailto:review-bot@invalid"  # iTIP wants an organizer; the bot has no mailbox

# Spans of minutes and hours are absolute: dateparser adds them to the naive local time, which is an hour
# off when a DST change falls in between, so they are counted from `now` here instead.
_SPAN = re.compile(
    r"^\s*in\s+(?:(\d+)\s*(?:h|hrs?|hours?))?\s*(?:and\s+)?(?:(\d+)\s*(?:m|mins?|minutes?))?\s*$",
    re.IGNORECASE,
)
# A bare number ("15") is read by dateparser as a day or a year; better to ask than to guess.
_BARE_NUMBER = re.compile(r"^\s*\d+\s*$")


class BadWhen(ReviewBotError):
    """A meeting time that cannot be read or has already passed."""


def parse_when(text: str, tz: str, now: datetime) -> datetime:
    """The moment `text` names, read in the person's timezone `tz`; aware UTC, to the minute."""
    zone = _zone(tz)
    quoted = escape(truncate(text.strip().replace("`", "'"), QUOTED_TEXT_CHARS))
    parsed = _relative_span(text, now)
    if parsed is None and text.strip() and not _BARE_NUMBER.match(text):
        parsed = dateparser.parse(
            text,
            languages=["en"],  # the bot speaks English; auto-detection reads "x" as a date in some language
            settings={
                "TIMEZONE": tz,
                "TO_TIMEZONE": "UTC",
                "RETURN_AS_TIMEZONE_AWARE": True,
                "PREFER_DATES_FROM": "future",
                "RELATIVE_BASE": now.astimezone(zone).replace(tzinfo=None),
            },
        )
    if parsed is None:
        raise BadWhen(BAD_WHEN.format(text=quoted, tz=escape(tz)))
    return ensure_future(parsed, tz, now, text=quoted)


def ensure_future(at: datetime, tz: str, now: datetime, *, text: str = "") -> datetime:
    """`at` in UTC to the minute, or BadWhen when that is not after `now` (e.g. a datetimepicker value).

    `text` is mrkdwn-safe already; without it the message quotes the time itself.
    """
    at = at.astimezone(UTC).replace(second=0, microsecond=0)
    if at <= now:
        when = at.astimezone(_zone(tz)).strftime(LOCAL_TIME_FORMAT)
        raise BadWhen(PAST_WHEN.format(text=text, when=when) if text else PAST_PICKED.format(when=when))
    if at > now + MAX_AHEAD:
        shown = text or at.astimezone(_zone(tz)).strftime(LOCAL_TIME_FORMAT)
        raise BadWhen(TOO_FAR.format(text=shown, days=MAX_AHEAD.days))
    return at


def moment_from_picker(timestamp: int) -> datetime:
    """A datetimepicker's value (seconds since the epoch) as a moment; BadWhen when it is not one."""
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise BadWhen(TOO_FAR.format(text=timestamp, days=MAX_AHEAD.days)) from error


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise BadWhen(UNKNOWN_TIMEZONE.format(tz=escape(tz))) from error


def _relative_span(text: str, now: datetime) -> datetime | None:
    match = _SPAN.match(text)
    if not match or not any(match.groups()):
        return None
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    if hours * 60 + minutes > MAX_AHEAD.total_seconds() // 60:  # "in 90000000 hours" would overflow
        return now.astimezone(UTC) + MAX_AHEAD + timedelta(days=1)
    return now.astimezone(UTC) + timedelta(hours=hours, minutes=minutes)


# --- Calendar file ----------------------------------------------------------------------------------------


def new_ics_uid(run_id: str) -> str:
    """A UID for a new meeting (RFC 5545: globally unique, kept for the meeting's whole life)."""
    return f"review-{run_id}-{uuid.uuid4().hex}@review-bot"


def ics_uid(meeting: Meeting) -> str:
    # A meeting recorded before UIDs were kept gets the one it was first sent with.
    return meeting.uid or f"review-{meeting.run_id}-{int(meeting.at.timestamp())}@review-bot"


class IcsMethod(StrEnum):
    REQUEST = "REQUEST"  # a new meeting, or a move (same UID, higher SEQUENCE)
    CANCEL = "CANCEL"


def build_ics(
    meeting: Meeting,
    title: str,
    description: str,
    *,
    stamp: datetime | None = None,
    method: IcsMethod = IcsMethod.REQUEST,
) -> bytes:
    """An .ics file with the meeting as one event (RFC 5545/5546 iTIP): METHOD:REQUEST for a new or moved
    meeting, METHOD:CANCEL (STATUS:CANCELLED) for a cancelled one, same UID, the meeting's SEQUENCE.
    `stamp` is when it was made (DTSTAMP); no clock here, so without it the meeting's own start stands in."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", ICS_PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method.value)
    event = icalendar.Event()
    event.add("uid", ics_uid(meeting))
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", (stamp or meeting.at).astimezone(UTC))
    event.add("dtstart", meeting.at.astimezone(UTC))
    event.add("duration", timedelta(minutes=meeting.duration_min))
    event.add("summary", title)
    event.add("description", description)
    organizer = icalendar.vCalAddress(ICS_ORGANIZER)
    organizer.params["cn"] = icalendar.vText("review-bot")
    event.add("organizer", organizer)
    if method is IcsMethod.CANCEL:
        event.add("status", "CANCELLED")
    calendar.add_component(event)
    return calendar.to_ical()
