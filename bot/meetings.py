"""Review meetings: reading a time a person typed, the meeting's MLflow tags, and its calendar file.

Pure: no Slack, no MLflow, no clock (callers pass `now`). `meeting_tags`/`meeting_from_tags` are the
only place the review.meeting_* tag format lives, as `bot.review` is for the review's own tags.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser
import icalendar

from bot.blocks.mrkdwn import escape, truncate
from bot.errors import ReviewBotError
from bot.models import Meeting
from bot.review import SLACK_CHANNEL_TAG, SLACK_TS_TAG, iso_utc, parse_moment

MEETING_AT_TAG = "review.meeting_at"
MEETING_INVITEES_TAG = "review.meeting_invitees"
MEETING_DURATION_TAG = "review.meeting_duration_min"
MEETING_AGENDA_TAG = "review.meeting_agenda"
MEETING_BY_TAG = "review.meeting_scheduled_by"
MEETING_TAGS = (
    MEETING_AT_TAG,
    MEETING_INVITEES_TAG,
    MEETING_DURATION_TAG,
    MEETING_AGENDA_TAG,
    MEETING_BY_TAG,
)

DURATION_CHOICES = (15, 30, 45, 60, 90)
DEFAULT_DURATION_MIN = 30
# The modal's agenda input allows this much; the tag is cut to it too (MLflow tag values are bounded).
AGENDA_MAX_CHARS = 2000

WHEN_EXAMPLES = "`2026-12-01 15:00`, `tomorrow 3pm`, `next tuesday 10:30` or `in 2 hours`"
BAD_WHEN = ":warning: I could not read `{text}` as a time. Try " + WHEN_EXAMPLES + " (times are in {tz})."
PAST_WHEN = ":warning: `{text}` is {when}, which is in the past. Pick a time after now."
PAST_PICKED = ":warning: {when} is in the past. Pick a time after now."
UNKNOWN_TIMEZONE = ":warning: Your Slack timezone `{tz}` is not one I know; times would be read wrongly."
# How a parsed time is shown back to the person, in their own timezone.
LOCAL_TIME_FORMAT = "%a %d %b %Y %H:%M %Z"
QUOTED_TEXT_CHARS = 100
ICS_PRODID = "-//review-bot//EN"

# Spans of minutes and hours are absolute: dateparser adds them to the naive local time, which is an hour
# off when a DST change falls in between, so they are counted from `now` here instead.
_SPAN = re.compile(
    r"^\s*in\s+(?:(\d+)\s*(?:h|hrs?|hours?))?\s*(?:and\s+)?(?:(\d+)\s*(?:m|mins?|minutes?))?\s*$",
    re.IGNORECASE,
)
# A bare number ("15") is read by dateparser as a day or a year; better to ask than to guess.
_BARE_NUMBER = re.compile(r"^\s*\d+\s*$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")


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
    return at


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
    return now.astimezone(UTC) + timedelta(hours=hours, minutes=minutes)


# --- Tags -------------------------------------------------------------------------------------------------


def meeting_tags(meeting: Meeting) -> dict[str, str]:
    """The run's review.meeting_* tags for this meeting (the card's channel/ts live in the review's tags)."""
    return {
        MEETING_AT_TAG: iso_utc(meeting.at),
        MEETING_INVITEES_TAG: ",".join(meeting.invitees),
        MEETING_DURATION_TAG: str(meeting.duration_min),
        MEETING_AGENDA_TAG: meeting.agenda[:AGENDA_MAX_CHARS],
        MEETING_BY_TAG: meeting.scheduled_by,
    }


def cleared_meeting_tags() -> dict[str, str]:
    """What a cancelled meeting leaves: every meeting tag empty (MLflow keeps tags; empty means none)."""
    return dict.fromkeys(MEETING_TAGS, "")


def meeting_from_tags(run_id: str, tags: dict[str, str]) -> Meeting | None:
    """The scheduled meeting, or None when there is none (or its time was hand-edited into nonsense)."""
    at = parse_moment(tags.get(MEETING_AT_TAG, ""))
    if at is None:
        return None
    try:
        duration = int(tags.get(MEETING_DURATION_TAG) or DEFAULT_DURATION_MIN)
    except ValueError:
        duration = DEFAULT_DURATION_MIN
    # Tags can be edited by anyone with MLflow access: keep only what looks like a Slack user id, so a
    # hand-edited value can never turn into `<!channel>` when mentioned.
    invitees = [u.strip() for u in tags.get(MEETING_INVITEES_TAG, "").split(",")]
    return Meeting(
        run_id=run_id,
        at=at,
        duration_min=duration if duration > 0 else DEFAULT_DURATION_MIN,
        invitees=[u for u in invitees if _SLACK_USER.match(u)],
        agenda=tags.get(MEETING_AGENDA_TAG, ""),
        scheduled_by=tags.get(MEETING_BY_TAG, ""),
        channel=tags.get(SLACK_CHANNEL_TAG, ""),
        ts=tags.get(SLACK_TS_TAG, ""),
    )


# --- Calendar file ----------------------------------------------------------------------------------------


def ics_uid(meeting: Meeting) -> str:
    return f"review-{meeting.run_id}-{int(meeting.at.timestamp())}@review-bot"


def build_ics(meeting: Meeting, title: str, description: str, *, stamp: datetime | None = None) -> bytes:
    """An .ics file with the meeting as one event. `stamp` is when it was made (DTSTAMP); no clock here,
    so without it the meeting's own start stands in."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", ICS_PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", ics_uid(meeting))
    event.add("dtstamp", (stamp or meeting.at).astimezone(UTC))
    event.add("dtstart", meeting.at.astimezone(UTC))
    event.add("duration", timedelta(minutes=meeting.duration_min))
    event.add("summary", title)
    event.add("description", description)
    calendar.add_component(event)
    return calendar.to_ical()
