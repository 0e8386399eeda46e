"""Unit tests for bot.meetings.rules: reading meeting times, the meeting tags, and the .ics file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import icalendar
import pytest

from bot.meetings.rules import (
    BAD_WHEN,
    ICS_PRODID,
    PAST_PICKED,
    PAST_WHEN,
    UNKNOWN_TIMEZONE,
    BadWhen,
    IcsMethod,
    build_ics,
    ensure_future,
    moment_from_picker,
    parse_when,
)
from bot.models import Meeting
from bot.tags import (
    DEFAULT_DURATION_MIN,
    cleared_meeting_tags,
    meeting_from_tags,
    meeting_tags,
)
from bot.tags import MEETING_AGENDA as MEETING_AGENDA_TAG
from bot.tags import MEETING_AT as MEETING_AT_TAG
from bot.tags import MEETING_BY as MEETING_BY_TAG
from bot.tags import MEETING_DURATION as MEETING_DURATION_TAG
from bot.tags import MEETING_INVITEES as MEETING_INVITEES_TAG
from bot.tags import SLACK_CHANNEL as SLACK_CHANNEL_TAG
from bot.tags import SLACK_TS as SLACK_TS_TAG

# A Wednesday: 11:00 in Madrid (CET), 05:00 in New York (EST).
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MADRID = "Europe/Madrid"
NEW_YORK = "America/New_York"
RUN_ID = "0123456789abcdef0123456789abcdef"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2026-12-01 15:00", MADRID, utc(2026, 12, 1, 14, 0)),
        ("2026-12-01 15:00", NEW_YORK, utc(2026, 12, 1, 20, 0)),
        ("2026-12-01T15:00:00Z", MADRID, utc(2026, 12, 1, 15, 0)),
        ("2026-12-01T15:00:00Z", NEW_YORK, utc(2026, 12, 1, 15, 0)),
        ("2026-12-01 15:00:45", MADRID, utc(2026, 12, 1, 14, 0)),  # seconds dropped
        ("tomorrow 3pm", MADRID, utc(2026, 11, 26, 14, 0)),
        ("tomorrow 3pm", NEW_YORK, utc(2026, 11, 26, 20, 0)),
        ("next tuesday 10:30", MADRID, utc(2026, 12, 1, 9, 30)),
        ("next tuesday 10:30", NEW_YORK, utc(2026, 12, 1, 15, 30)),
        ("next Thursday 9am", MADRID, utc(2026, 11, 26, 8, 0)),
        ("next wednesday 9am", MADRID, utc(2026, 12, 2, 8, 0)),  # today's weekday: a week on
        ("in 2 hours", MADRID, utc(2026, 11, 25, 12, 0)),
        ("in 2 hours", NEW_YORK, utc(2026, 11, 25, 12, 0)),
        ("in 90 minutes", NEW_YORK, utc(2026, 11, 25, 11, 30)),
        ("In 1 hour 15 minutes", MADRID, utc(2026, 11, 25, 11, 15)),
        ("in 2 days", NEW_YORK, utc(2026, 11, 27, 10, 0)),
    ],
)
def test_parse_when_reads_the_time_in_the_users_timezone(text: str, tz: str, expected: datetime) -> None:
    assert parse_when(text, tz, NOW) == expected


def test_parse_when_returns_utc_to_the_minute() -> None:
    at = parse_when("in 2 hours", MADRID, NOW + timedelta(seconds=30, microseconds=5))
    assert at == utc(2026, 11, 25, 12, 0)
    assert at.utcoffset() == timedelta(0)
    assert (at.second, at.microsecond) == (0, 0)


def test_next_weekday_counts_from_the_users_date_not_utc() -> None:
    # 23:30 UTC on Wednesday is already Thursday 12:30 in Auckland: "next thursday" is a week on.
    now = utc(2026, 11, 25, 23, 30)
    assert parse_when("next thursday 10:00", "Pacific/Auckland", now) == utc(2026, 12, 2, 21, 0)
    assert parse_when("next thursday 10:00", "UTC", now) == utc(2026, 11, 26, 10, 0)


def test_hours_ahead_are_real_hours_across_a_dst_change() -> None:
    # 01:30 EDT; clocks go back at 02:00, so two hours on is 02:30 EST = 07:30 UTC.
    now = utc(2026, 11, 1, 5, 30)
    assert parse_when("in 2 hours", NEW_YORK, now) == utc(2026, 11, 1, 7, 30)
    assert parse_when("tomorrow 3pm", NEW_YORK, now) == utc(2026, 11, 2, 20, 0)


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("yesterday", "Tue 24 Nov 2026 11:00 CET"),
        ("2026-11-25 10:00", "Wed 25 Nov 2026 10:00 CET"),
        ("now", "Wed 25 Nov 2026 11:00 CET"),  # not after now
    ],
)
def test_a_time_in_the_past_is_refused_in_the_users_timezone(text: str, when: str) -> None:
    with pytest.raises(BadWhen) as caught:
        parse_when(text, MADRID, NOW)
    assert caught.value.user_message() == PAST_WHEN.format(text=text, when=when)


@pytest.mark.parametrize("text", ["banana", "whenever", "", "   ", "15", "next blursday"])
def test_text_that_is_not_a_time_is_refused_with_examples(text: str) -> None:
    with pytest.raises(BadWhen) as caught:
        parse_when(text, NEW_YORK, NOW)
    assert caught.value.user_message() == BAD_WHEN.format(text=text.strip(), tz=NEW_YORK)
    assert "`tomorrow 3pm`" in caught.value.user_message()


def test_the_quoted_text_is_escaped() -> None:
    with pytest.raises(BadWhen) as caught:
        parse_when("<!channel> `soon`", MADRID, NOW)
    message = caught.value.user_message()
    assert message == BAD_WHEN.format(text="&lt;!channel&gt; 'soon'", tz=MADRID)
    assert "<!channel>" not in message


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(BadWhen) as caught:
        parse_when("tomorrow 3pm", "Mars/Olympus_Mons", NOW)
    assert caught.value.user_message() == UNKNOWN_TIMEZONE.format(tz="Mars/Olympus_Mons")


def test_ensure_future_checks_a_picked_time() -> None:
    picked = datetime(2026, 11, 25, 12, 0, 42, tzinfo=timezone(timedelta(hours=1)))
    assert ensure_future(picked, MADRID, NOW) == utc(2026, 11, 25, 11, 0)
    with pytest.raises(BadWhen) as caught:
        ensure_future(utc(2026, 11, 25, 9, 0), NEW_YORK, NOW)
    assert caught.value.user_message() == PAST_PICKED.format(when="Wed 25 Nov 2026 04:00 EST")


# --- Tags -------------------------------------------------------------------------------------------------

MEETING = Meeting(
    run_id=RUN_ID,
    at=utc(2026, 12, 1, 14, 0),
    duration_min=45,
    invitees=["U1", "W2"],
    agenda="metrics, drift; and the rollout",
    scheduled_by="U3",
    channel="C0REVIEW",
    ts="1767225600.000100",
)


def test_meeting_tags_are_the_documented_format() -> None:
    assert meeting_tags(MEETING) == {
        MEETING_AT_TAG: "2026-12-01T14:00:00Z",
        MEETING_INVITEES_TAG: "U1,W2",
        MEETING_DURATION_TAG: "45",
        MEETING_AGENDA_TAG: "metrics, drift; and the rollout",
        MEETING_BY_TAG: "U3",
        "review.meeting_uid": "",
        "review.meeting_sequence": "0",
    }
    assert MEETING_AT_TAG == "review.meeting_at"
    assert MEETING_INVITEES_TAG == "review.meeting_invitees"
    assert MEETING_DURATION_TAG == "review.meeting_duration_min"
    assert MEETING_AGENDA_TAG == "review.meeting_agenda"
    assert MEETING_BY_TAG == "review.meeting_scheduled_by"


def test_meeting_tags_round_trip_with_the_cards_place() -> None:
    tags = {**meeting_tags(MEETING), SLACK_CHANNEL_TAG: "C0REVIEW", SLACK_TS_TAG: "1767225600.000100"}
    assert meeting_from_tags(RUN_ID, tags) == MEETING


def test_a_meeting_in_another_offset_is_kept_in_utc() -> None:
    at = datetime(2026, 12, 1, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    tags = meeting_tags(MEETING.model_copy(update={"at": at}))
    assert tags[MEETING_AT_TAG] == "2026-12-01T14:00:00Z"
    assert meeting_from_tags(RUN_ID, tags).at == utc(2026, 12, 1, 14, 0)


def test_cleared_tags_empty_every_meeting_tag_and_read_back_as_none() -> None:
    cleared = cleared_meeting_tags()
    assert cleared == dict.fromkeys(meeting_tags(MEETING), "")
    assert meeting_from_tags(RUN_ID, {**meeting_tags(MEETING), **cleared}) is None


@pytest.mark.parametrize("at", [None, "", "not a date", "2026-13-45T99:00:00Z"])
def test_no_meeting_without_a_readable_time(at: str | None) -> None:
    tags = {MEETING_INVITEES_TAG: "U1", MEETING_DURATION_TAG: "30"}
    if at is not None:
        tags[MEETING_AT_TAG] = at
    assert meeting_from_tags(RUN_ID, tags) is None


def test_hand_edited_tags_are_read_defensively() -> None:
    meeting = meeting_from_tags(
        RUN_ID,
        {
            MEETING_AT_TAG: "2026-12-01T14:00:00",  # naive: taken as UTC
            MEETING_INVITEES_TAG: "U1, <!channel>,,W2 ",
            MEETING_DURATION_TAG: "an hour",
        },
    )
    assert meeting == Meeting(
        run_id=RUN_ID, at=utc(2026, 12, 1, 14, 0), duration_min=DEFAULT_DURATION_MIN, invitees=["U1", "W2"]
    )
    zero = meeting_from_tags(RUN_ID, {MEETING_AT_TAG: "2026-12-01T14:00:00Z", MEETING_DURATION_TAG: "0"})
    assert zero is not None and zero.duration_min == DEFAULT_DURATION_MIN


# --- Calendar file ----------------------------------------------------------------------------------------


def test_build_ics_parses_back_to_the_same_event() -> None:
    stamp = utc(2026, 11, 25, 10, 0)
    description = "Review of fraud-clf\nhttps://test.slack.com/archives/C0REVIEW/p1767225600000100"
    data = build_ics(MEETING, "Model review: fraud-clf, v2", description, stamp=stamp)

    assert b"DTSTART:20261201T140000Z" in data
    calendar = icalendar.Calendar.from_ical(data)
    assert (str(calendar["PRODID"]), str(calendar["VERSION"]), str(calendar["METHOD"])) == (
        ICS_PRODID,
        "2.0",
        "REQUEST",
    )
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    start = event.decoded("DTSTART")
    assert start == MEETING.at
    assert start.utcoffset() == timedelta(0)
    assert event.decoded("DURATION") == timedelta(minutes=45)
    assert event.decoded("DTSTAMP") == stamp
    assert str(event["UID"]) == f"review-{RUN_ID}-{int(MEETING.at.timestamp())}@review-bot"
    assert str(event["SUMMARY"]) == "Model review: fraud-clf, v2"
    assert str(event["DESCRIPTION"]) == description
    assert int(event["SEQUENCE"]) == 0 and "STATUS" not in event
    assert str(event["ORGANIZER"]).startswith("mailto:")


def test_a_moved_then_cancelled_meeting_keeps_its_uid_and_counts_its_changes() -> None:
    meeting = MEETING.model_copy(update={"uid": "review-x-1@review-bot"})
    files = [
        build_ics(meeting, "t", "d"),
        build_ics(meeting.model_copy(update={"at": utc(2026, 12, 2, 9, 0), "sequence": 1}), "t", "d"),
        build_ics(meeting.model_copy(update={"sequence": 2}), "t", "d", method=IcsMethod.CANCEL),
    ]
    calendars = [icalendar.Calendar.from_ical(f) for f in files]
    events = [c.walk("VEVENT")[0] for c in calendars]
    assert {str(e["UID"]) for e in events} == {"review-x-1@review-bot"}
    assert [int(e["SEQUENCE"]) for e in events] == [0, 1, 2]
    assert [str(c["METHOD"]) for c in calendars] == ["REQUEST", "REQUEST", "CANCEL"]
    assert str(events[2]["STATUS"]) == "CANCELLED"


def test_meeting_uid_and_sequence_round_trip_through_tags() -> None:
    meeting = MEETING.model_copy(update={"uid": "review-x-2@review-bot", "sequence": 3})
    tags = {**meeting_tags(meeting), SLACK_CHANNEL_TAG: "C0REVIEW", SLACK_TS_TAG: "1767225600.000100"}
    assert meeting_from_tags(RUN_ID, tags) == meeting


def test_build_ics_from_another_offset_is_written_in_utc() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    data = build_ics(MEETING.model_copy(update={"at": at}), "t", "d")
    assert b"DTSTART:20261201T140000Z" in data
    assert icalendar.Calendar.from_ical(data).walk("VEVENT")[0].decoded("DTSTART") == utc(2026, 12, 1, 14, 0)


@pytest.mark.parametrize(
    "text",
    [
        "in 90000000 hours",
        "in 9000 hours",
        "9999-12-31 23:59",
        "2031-01-01 10:00",
        "in 99999999999999999999 minutes",
    ],
)
def test_a_time_more_than_a_year_ahead_is_refused_with_the_limit(text: str) -> None:
    with pytest.raises(BadWhen) as caught:
        parse_when(text, MADRID, NOW)
    assert (
        "more than a year from now" in caught.value.user_message()
        and "366 days" in caught.value.user_message()
    )


def test_a_time_within_the_year_is_kept() -> None:
    assert parse_when("in 8000 hours", MADRID, NOW) == NOW.replace(second=0, microsecond=0) + timedelta(
        hours=8000
    )


@pytest.mark.parametrize("value", [10**18, -(10**18), 2**63])
def test_a_picked_time_that_is_no_moment_is_refused(value: int) -> None:
    with pytest.raises(BadWhen):
        moment_from_picker(value)
