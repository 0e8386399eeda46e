"""Unit tests for bot.meetings.blocks: the schedule modal, meeting messages and the agenda, by value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.ids import ActionId, CallbackId, MeetingBlockId, MeetingInput
from bot.meetings.blocks import (
    AGENDA_ANY_REVIEWER,
    AGENDA_MAX_ITEMS,
    AGENDA_MORE,
    CANCEL_LABEL,
    MODAL_TITLE,
    NO_PENDING,
    build_agenda,
    build_cancelled,
    build_field_errors,
    build_invite_text,
    build_meeting_announcement,
    build_meeting_start,
    build_missed,
    build_reminder,
    build_schedule_modal,
    format_age,
    meeting_time,
    parse_schedule_submission,
)
from bot.meetings.rules import DURATION_CHOICES, PAST_PICKED
from bot.models import Meeting, ReviewState, ReviewStatus, RunSummary
from bot.reviews.card import build_status_line
from tests.slack_api_server import validate_blocks, validate_view

RUN_ID = "0123456789abcdef0123456789abcdef"
AT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
TS = int(AT.timestamp())
DATE = f"<!date^{TS}^{{date_long_pretty}} at {{time}}|2026-12-01 14:00 UTC>"
HOSTILE = "<!channel> <@U999> <https://evil.example|click> & co"
HOSTILE_ESCAPED = "&lt;!channel&gt; &lt;@U999&gt; &lt;https://evil.example|click&gt; &amp; co"
PERMALINK = "https://test.slack.com/archives/C0REVIEW/p1767225600000100"
RUN_URL = f"http://mlflow:5000/#/experiments/7/runs/{RUN_ID}"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

MEETING = Meeting(
    run_id=RUN_ID,
    at=AT,
    duration_min=45,
    invitees=["U1", "U2"],
    agenda="Check drift",
    scheduled_by="U3",
    channel="C0REVIEW",
    ts="1767225600.000100",
)


def _summary(name: str = "fraud-clf", requested_at: datetime | None = None, **changes: Any) -> RunSummary:
    review = ReviewState(run_id=f"run-{name}", requested_by="U9", requested_at=requested_at)
    base: dict[str, Any] = {
        "run_id": f"run-{name}",
        "run_name": name,
        "experiment_id": "7",
        "experiment_name": "fraud",
        "review": review,
    }
    return RunSummary(**{**base, **changes})


def _texts(blocks: list[dict[str, Any]]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            if "text" in element and isinstance(element["text"], str):
                found.append(element["text"])
    return found


# --- The modal --------------------------------------------------------------------------------------------


def test_schedule_modal_is_valid_for_slack() -> None:
    view = build_schedule_modal(RUN_ID, "fraud-clf", ["U1", "U2"], AT, 30)
    assert validate_view(view) == []
    assert validate_view({**build_schedule_modal(RUN_ID, "x" * 500, [], None, 30)}) == []


def test_schedule_modal_fields() -> None:
    view = build_schedule_modal(RUN_ID, HOSTILE, ["U1", "U2"], AT, 60)
    assert view["type"] == "modal"
    assert view["callback_id"] == CallbackId.SCHEDULE_MEETING
    assert json.loads(view["private_metadata"]) == {"run_id": RUN_ID}
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        MODAL_TITLE,
        "Schedule",
        "Cancel",
    )
    assert view["blocks"][0] == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": f":calendar: A review meeting for run *{HOSTILE_ESCAPED}* (`{RUN_ID}`)",
            }
        ],
    }
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == [
        MeetingBlockId.WHEN,
        MeetingBlockId.DURATION,
        MeetingBlockId.INVITEES,
        MeetingBlockId.AGENDA,
    ]
    assert inputs[MeetingBlockId.WHEN]["element"] == {
        "type": "datetimepicker",
        "action_id": MeetingInput.WHEN,
        "initial_date_time": TS,
    }
    duration = inputs[MeetingBlockId.DURATION]["element"]
    assert duration["type"] == "static_select"
    assert duration["action_id"] == MeetingInput.DURATION
    assert [(o["value"], o["text"]["text"]) for o in duration["options"]] == [
        (str(m), f"{m} minutes") for m in DURATION_CHOICES
    ]
    assert duration["initial_option"]["value"] == "60"
    invitees = inputs[MeetingBlockId.INVITEES]["element"]
    assert (invitees["type"], invitees["action_id"], invitees["initial_users"]) == (
        "multi_users_select",
        MeetingInput.INVITEES,
        ["U1", "U2"],
    )
    agenda = inputs[MeetingBlockId.AGENDA]
    assert agenda["optional"] is True
    assert (agenda["element"]["type"], agenda["element"]["multiline"]) == ("plain_text_input", True)


def test_schedule_modal_without_a_time_or_reviewers_leaves_them_empty() -> None:
    view = build_schedule_modal(RUN_ID, "fraud-clf", [], None, 30)
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert "initial_date_time" not in inputs[MeetingBlockId.WHEN]
    assert "initial_users" not in inputs[MeetingBlockId.INVITEES]
    assert inputs[MeetingBlockId.DURATION]["initial_option"]["value"] == "30"


def test_an_unlisted_duration_is_kept_as_an_option() -> None:
    view = build_schedule_modal(RUN_ID, "fraud-clf", [], None, 20)
    duration = next(b["element"] for b in view["blocks"] if b.get("block_id") == MeetingBlockId.DURATION)
    assert [o["value"] for o in duration["options"]] == ["15", "20", "30", "45", "60", "90"]
    assert duration["initial_option"]["value"] == "20"


def _submitted_view(values: dict[str, Any]) -> dict[str, Any]:
    """A view as Slack sends it in view_submission (trimmed of blocks, which handlers do not read)."""
    return {
        "id": "V0123ABCD",
        "team_id": "T0TEAM",
        "type": "modal",
        "callback_id": CallbackId.SCHEDULE_MEETING.value,
        "private_metadata": json.dumps({"run_id": RUN_ID}),
        "title": {"type": "plain_text", "text": MODAL_TITLE, "emoji": True},
        "blocks": [],
        "state": {"values": values},
        "hash": "1764061200.abcdef",
        "root_view_id": "V0123ABCD",
        "app_id": "A0APP",
        "bot_id": "B0BOT",
    }


def test_parse_schedule_submission_reads_slacks_state() -> None:
    view = _submitted_view(
        {
            MeetingBlockId.WHEN.value: {
                MeetingInput.WHEN.value: {"type": "datetimepicker", "selected_date_time": TS}
            },
            MeetingBlockId.DURATION.value: {
                MeetingInput.DURATION.value: {
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "45 minutes", "emoji": True},
                        "value": "45",
                    },
                }
            },
            MeetingBlockId.INVITEES.value: {
                MeetingInput.INVITEES.value: {"type": "multi_users_select", "selected_users": ["U1", "U4"]}
            },
            MeetingBlockId.AGENDA.value: {
                MeetingInput.AGENDA.value: {"type": "plain_text_input", "value": "  Check drift\n"}
            },
        }
    )
    assert parse_schedule_submission(view) == (RUN_ID, TS, 45, ["U1", "U4"], "Check drift")


def test_parse_schedule_submission_with_nothing_chosen() -> None:
    view = _submitted_view(
        {
            MeetingBlockId.WHEN.value: {
                MeetingInput.WHEN.value: {"type": "datetimepicker", "selected_date_time": None}
            },
            MeetingBlockId.DURATION.value: {
                MeetingInput.DURATION.value: {"type": "static_select", "selected_option": None}
            },
            MeetingBlockId.INVITEES.value: {
                MeetingInput.INVITEES.value: {"type": "multi_users_select", "selected_users": []}
            },
            MeetingBlockId.AGENDA.value: {
                MeetingInput.AGENDA.value: {"type": "plain_text_input", "value": None}
            },
        }
    )
    assert parse_schedule_submission(view) == (RUN_ID, None, 30, [], "")


def test_parse_schedule_submission_needs_the_run() -> None:
    with pytest.raises(ValueError):
        parse_schedule_submission({**_submitted_view({}), "private_metadata": ""})


def test_field_errors_are_plain_text_under_the_time() -> None:
    message = PAST_PICKED.format(when="Tue 24 Nov 2026 11:00 CET")
    assert build_field_errors(message) == {
        "response_action": "errors",
        "errors": {MeetingBlockId.WHEN: "Tue 24 Nov 2026 11:00 CET is in the past. Pick a time after now."},
    }
    assert build_field_errors("`a &lt; b`")["errors"][MeetingBlockId.WHEN] == "a < b"


# --- Thread messages and DMs ------------------------------------------------------------------------------


def test_announcement_has_the_time_invitees_agenda_and_cancel_button() -> None:
    message = build_meeting_announcement(MEETING, "fraud-clf", rescheduled=False)
    assert validate_blocks(message.blocks) == []
    assert message.text == "Review meeting for fraud-clf scheduled for 2026-12-01 14:00 UTC"
    assert message.blocks[0]["text"]["text"] == (
        f":calendar: Review meeting scheduled for {DATE} for 45 min (by <@U3>)\nInvited: <@U1>, <@U2>"
    )
    assert message.blocks[1]["text"]["text"] == "*Agenda*\nCheck drift"
    button = message.blocks[2]["elements"][0]
    assert button["action_id"] == ActionId.CANCEL_MEETING
    assert button["text"]["text"] == CANCEL_LABEL
    assert button["style"] == "danger"
    assert json.loads(button["value"]) == {"run_id": RUN_ID}
    assert button["confirm"]["confirm"]["text"] == CANCEL_LABEL
    assert button["confirm"]["title"]["text"] == "Cancel the meeting?"


def test_moved_announcement_and_hostile_text_are_escaped() -> None:
    meeting = MEETING.model_copy(update={"agenda": HOSTILE, "invitees": ["U1", "<!channel>"]})
    message = build_meeting_announcement(meeting, HOSTILE, rescheduled=True)
    assert message.text == f"Review meeting for {HOSTILE_ESCAPED} moved to 2026-12-01 14:00 UTC"
    assert message.blocks[0]["text"]["text"].startswith(f":calendar: Review meeting moved to {DATE}")
    assert "Invited: <@U1>, &lt;!channel&gt;" in message.blocks[0]["text"]["text"]
    assert message.blocks[1]["text"]["text"] == f"*Agenda*\n{HOSTILE_ESCAPED}"
    assert all("<!channel>" not in t for t in [message.text, *_texts(message.blocks)])


def test_announcement_without_agenda_has_no_agenda_block() -> None:
    message = build_meeting_announcement(MEETING.model_copy(update={"agenda": ""}), "r", rescheduled=False)
    assert [b["type"] for b in message.blocks] == ["section", "actions"]


def test_invite_text() -> None:
    text = build_invite_text(MEETING, "fraud <clf>", PERMALINK)
    assert text == (
        f":calendar: <@U3> invited you to the review meeting for *fraud &lt;clf&gt;* on {DATE} (45 min).\n"
        f"The review: <{PERMALINK}|open the card>\n"
        "*Agenda*\nCheck drift\n"
        "The calendar invite is attached."
    )
    bare = build_invite_text(MEETING.model_copy(update={"agenda": "", "scheduled_by": ""}), "r", "")
    assert bare == f":calendar: Someone invited you to the review meeting for *r* on {DATE} (45 min).\n" + (
        "The calendar invite is attached."
    )


def test_reminder() -> None:
    assert build_reminder(MEETING, 10) == (
        f":alarm_clock: The review meeting for this run starts in 10 minutes ({DATE}). <@U1>, <@U2>"
    )
    assert build_reminder(MEETING.model_copy(update={"invitees": []}), 1) == (
        f":alarm_clock: The review meeting for this run starts in 1 minute ({DATE})."
    )


def test_meeting_start_shows_the_review_as_it_stands() -> None:
    summary = _summary(
        "fraud-clf",
        review=ReviewState(run_id=RUN_ID, status=ReviewStatus.PENDING, requested_by="U9"),
        run_url=RUN_URL,
    )
    message = build_meeting_start(MEETING, summary, 2, PERMALINK)
    assert validate_blocks(message.blocks) == []
    assert message.text == "The review meeting for fraud-clf is starting now"
    assert _texts(message.blocks) == [
        ":arrow_forward: The review meeting for *fraud-clf* is starting now. <@U1>, <@U2>",
        build_status_line(summary.review, "U9", 2),
        f"<{RUN_URL}|Run in MLflow> · <{PERMALINK}|Review card>",
    ]
    assert "0/2 approvals" in message.blocks[1]["elements"][0]["text"]


def test_meeting_start_without_review_or_links() -> None:
    summary = _summary(HOSTILE, review=None)
    message = build_meeting_start(MEETING, summary, 1, "")
    assert _texts(message.blocks) == [
        f":arrow_forward: The review meeting for *{HOSTILE_ESCAPED}* is starting now. <@U1>, <@U2>",
        build_status_line(None, "U3", 1),
    ]


def test_missed_and_cancelled() -> None:
    assert build_missed(MEETING, "reminder") == (
        f":warning: The reminder for the meeting at {DATE} was missed: no review-bot was running at the "
        "time, so it was not sent when it was due."
    )
    assert build_cancelled(MEETING, "U7") == (
        f":x: The review meeting at {DATE} was cancelled by <@U7>. <@U1>, <@U2>"
    )


def test_meeting_time_token() -> None:
    assert meeting_time(AT) == DATE


# --- The agenda -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ago", "expected"),
    [
        (timedelta(days=3, hours=5), "3 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=5, minutes=59), "5 hours"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=20), "under a minute"),
    ],
)
def test_format_age(ago: timedelta, expected: str) -> None:
    assert format_age(NOW - ago, NOW) == expected


def test_agenda_lists_oldest_first_with_who_it_waits_on() -> None:
    pending = [
        (_summary("newer", NOW - timedelta(hours=5)), []),
        (_summary("unknown", None), ["U5"]),
        (_summary("oldest", NOW - timedelta(days=3), run_url=RUN_URL), ["U1", "U2"]),
    ]
    message = build_agenda(pending, NOW)
    assert validate_blocks(message.blocks) == []
    assert message.text == "3 reviews waiting for a decision"
    assert _texts(message.blocks) == [
        ":clipboard: *Reviews waiting for a decision* (3)",
        f"• <{RUN_URL}|oldest> · waiting 3 days · on <@U1>, <@U2>",
        f"• *newer* · waiting 5 hours · on {AGENDA_ANY_REVIEWER}",
        "• *unknown* · waiting since an unknown time · on <@U5>",
    ]


def test_agenda_is_capped() -> None:
    pending = [(_summary(f"run{i:02d}", NOW - timedelta(days=i)), []) for i in range(1, 26)]
    message = build_agenda(pending, NOW)
    assert validate_blocks(message.blocks) == []
    texts = _texts(message.blocks)
    assert len(texts) == 1 + AGENDA_MAX_ITEMS + 1
    assert texts[1].startswith("• *run25* · waiting 25 days")
    assert texts[AGENDA_MAX_ITEMS].startswith("• *run06* · waiting 6 days")
    assert texts[-1] == AGENDA_MORE.format(n=5) == "…and 5 more"


def test_agenda_when_nothing_is_pending() -> None:
    message = build_agenda([], NOW)
    assert message.text == NO_PENDING == "No reviews are pending."
    assert _texts(message.blocks) == [NO_PENDING]


def test_agenda_escapes_run_names() -> None:
    message = build_agenda([(_summary(HOSTILE, NOW - timedelta(days=1)), [])], NOW)
    assert _texts(message.blocks)[1] == f"• *{HOSTILE_ESCAPED}* · waiting 1 day · on {AGENDA_ANY_REVIEWER}"
