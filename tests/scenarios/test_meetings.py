"""Review meetings through the served bot: the modal, `/review schedule`, the agenda, cancelling."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.ids import ActionId, CallbackId, MeetingBlockId, MeetingInput
from tests import support
from tests.scenarios.helpers import post_card, response_texts

MADRID = ZoneInfo("Europe/Madrid")  # ANA's Slack timezone in the test server


def submission(
    run_id: str, when: int | None, invitees: list[str], duration: int = 45, agenda: str = ""
) -> dict:
    return {
        "callback_id": CallbackId.SCHEDULE_MEETING.value,
        "private_metadata": json.dumps({"run_id": run_id}),
        "state": {
            "values": {
                MeetingBlockId.WHEN: {
                    MeetingInput.WHEN: {"type": "datetimepicker", "selected_date_time": when}
                },
                MeetingBlockId.DURATION: {
                    MeetingInput.DURATION: {
                        "type": "static_select",
                        "selected_option": {"value": str(duration)},
                    }
                },
                MeetingBlockId.INVITEES: {
                    MeetingInput.INVITEES: {"type": "multi_users_select", "selected_users": invitees}
                },
                MeetingBlockId.AGENDA: {MeetingInput.AGENDA: {"type": "plain_text_input", "value": agenda}},
            }
        },
    }


def submit(bot, view: dict, user: str = support.ANA):
    return bot.post_signed(support.view_submission_body(view, user), "application/x-www-form-urlencoded")


def thread_texts(slack, card) -> list[str]:
    return [m.get("text", "") for m in slack.thread(card["channel"], card["ts"])]


def ics_sent_to(slack, user: str, run_id: str) -> list[icalendar.Calendar]:
    dm = "D" + user[1:]
    return [
        icalendar.Calendar.from_ical(f.content)
        for f in list(slack.files.values())
        if f.completed and f.channel == dm and f.filename.endswith(".ics") and run_id.encode() in f.content
    ]


def test_schedule_button_opens_the_modal(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="meeting-run")
    reply = bot.block_action(
        ActionId.SCHEDULE.value, json.dumps({"run_id": run_id}), slack.new_response_url(), message=card,
        channel=card["channel"], user=support.BO,
    )  # fmt: skip
    assert reply.status_code == 200
    opened = eventually(lambda: [c for c in slack.calls_to("views.open") if run_id in json.dumps(c.args)][-1])
    assert opened.ok, opened.response
    assert opened.args["view"]["callback_id"] == CallbackId.SCHEDULE_MEETING.value
    assert "meeting-run" in json.dumps(opened.args["view"])


def test_a_time_in_the_past_is_a_field_error_and_schedules_nothing(bot, slack, runs, eventually) -> None:
    run_id, _ = post_card(bot, slack, runs, eventually, name="meeting-run")
    past = int((datetime.now(tz=UTC) - timedelta(hours=1)).timestamp())
    reply = submit(bot, submission(run_id, past, [support.BO]))
    body = reply.json()
    assert body["response_action"] == "errors" and "past" in body["errors"][MeetingBlockId.WHEN.value]
    assert "review.meeting_at" not in runs.tags(run_id)


def test_the_modal_schedules_announces_and_sends_calendar_files(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="meeting-run")
    at = (datetime.now(tz=UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    reply = submit(
        bot, submission(run_id, int(at.timestamp()), [support.BO, support.DAN], agenda="Check <recall>")
    )
    assert reply.status_code == 200 and reply.text in ("", "{}")
    eventually(lambda: runs.tags(run_id).get("review.meeting_at") == at.isoformat().replace("+00:00", "Z"))
    tags = runs.tags(run_id)
    assert tags["review.meeting_invitees"] == f"{support.BO},{support.DAN}"
    assert tags["review.meeting_duration_min"] == "45"
    announcement = eventually(lambda: [t for t in thread_texts(slack, card) if "scheduled" in t][0])
    message = [m for m in slack.thread(card["channel"], card["ts"]) if m.get("text") == announcement][0]
    assert f"<!date^{int(at.timestamp())}^" in json.dumps(message["blocks"])
    assert "Check &lt;recall&gt;" in json.dumps(message["blocks"])  # the agenda, escaped
    updated = eventually(
        lambda: [c for c in slack.calls_to("chat.update") if c.args.get("ts") == card["ts"]][-1]
    )
    assert f"Review meeting <!date^{int(at.timestamp())}^" in json.dumps(
        updated.args["blocks"]
    )  # on the card
    for user in (support.BO, support.DAN):
        [calendar] = eventually(lambda user=user: ics_sent_to(slack, user, run_id))
        [event] = calendar.walk("VEVENT")
        assert event.decoded("dtstart") == at and event.decoded("duration") == timedelta(minutes=45)
        assert run_id in str(event["uid"]) and "meeting-run" in str(event["summary"])


def test_review_schedule_reads_the_time_in_the_requesters_timezone(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="meeting-run")
    url = slack.new_response_url()
    bot.command(f"schedule {run_id} tomorrow 3pm", url, user=support.ANA)
    reply = eventually(lambda: response_texts(slack, url)[0])
    assert "Review meeting set for" in reply
    tomorrow = (datetime.now(tz=MADRID) + timedelta(days=1)).date()
    expected = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 15, 0, tzinfo=MADRID).astimezone(UTC)
    assert runs.tags(run_id)["review.meeting_at"] == expected.isoformat().replace("+00:00", "Z")
    assert support.ANA in runs.tags(run_id)["review.meeting_invitees"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [("whenever suits", "could not read `whenever suits`"), ("2020-01-01 10:00", "in the past")],
)
def test_unreadable_or_past_times_are_explained(bot, slack, runs, eventually, when, expected) -> None:
    run_id, _ = post_card(bot, slack, runs, eventually, name="meeting-run")
    url = slack.new_response_url()
    bot.command(f"schedule {run_id} {when}", url, user=support.ANA)
    assert expected in eventually(lambda: response_texts(slack, url)[0])
    assert "review.meeting_at" not in runs.tags(run_id)


def test_unknown_run_no_card_and_approved_run_are_explained(bot, slack, runs, eventually) -> None:
    cases = []
    missing = support.new_run_id()
    cases.append((missing, "MLflow has no run"))
    cases.append((runs.make_run("no-card"), "has no review card yet"))
    approved, card = post_card(bot, slack, runs, eventually, name="already-approved")
    bot.block_action(
        ActionId.APPROVE.value, "{}", slack.new_response_url(), message=card, channel=card["channel"]
    )
    eventually(lambda: runs.tags(approved).get("review.status") == "approved")
    cases.append((approved, "already approved"))
    for run_id, expected in cases:
        url = slack.new_response_url()
        bot.command(f"schedule {run_id} in 2 hours", url, user=support.ANA)
        assert expected in eventually(lambda url=url: response_texts(slack, url)[0])


def test_rescheduling_moves_the_meeting_and_cancel_removes_it(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="meeting-run")
    for when in ("in 3 hours", "in 5 hours"):
        url = slack.new_response_url()
        bot.command(f"schedule {run_id} {when}", url, user=support.ANA)
        eventually(lambda url=url: response_texts(slack, url))
    assert eventually(lambda: [t for t in thread_texts(slack, card) if "moved to" in t])
    announcement = [m for m in slack.thread(card["channel"], card["ts"]) if "moved to" in m.get("text", "")][
        -1
    ]
    bot.block_action(
        ActionId.CANCEL_MEETING.value, json.dumps({"run_id": run_id}), slack.new_response_url(),
        message=announcement, channel=card["channel"], user=support.ANA,  # the review's requester
    )  # fmt: skip
    eventually(lambda: runs.tags(run_id).get("review.meeting_at") == "")
    assert eventually(lambda: [t for t in thread_texts(slack, card) if "cancelled" in t])


def test_agenda_lists_pending_reviews_and_schedules_them_together(bots, slack, runs, eventually) -> None:
    slack.add_channel("C0AGENDA", "team-b-reviews")
    bot = bots.get(REVIEW_CHANNEL="C0AGENDA")  # a team of its own: its agenda holds only its reviews
    first, _ = post_card(bot, slack, runs, eventually, name="agenda-first")
    second, _ = post_card(bot, slack, runs, eventually, name="agenda-second")
    url = slack.new_response_url()
    bot.command("agenda", url, user=support.BO)
    listing = json.dumps(eventually(lambda: [r for r in slack.responses if r.get("_url") == url][0]))
    assert listing.index("agenda-first") < listing.index("agenda-second")  # oldest first
    assert "meeting-run" not in listing  # other channels' reviews are not this team's agenda

    url = slack.new_response_url()
    bot.command("agenda tomorrow 10am", url, user=support.BO)
    assert "one meeting" in eventually(lambda: response_texts(slack, url)[0])
    assert runs.tags(first)["review.meeting_at"] == runs.tags(second)["review.meeting_at"] != ""


@pytest.mark.parametrize("when", ["in 90000000 hours", "9999-12-31 23:59"])
def test_a_time_out_of_range_is_answered_not_dropped(bot, slack, runs, eventually, when) -> None:
    run_id, _ = post_card(bot, slack, runs, eventually, name="far-meeting")
    url = slack.new_response_url()
    bot.command(f"schedule {run_id} {when}", url)
    text = eventually(lambda: [t for t in response_texts(slack, url) if "more than a year" in t])[0]
    assert "366 days" in text
    assert runs.tags(run_id).get("review.meeting_at", "") == ""


def test_moves_and_a_cancel_update_one_calendar_event_and_strangers_cannot_cancel(
    bot, slack, runs, eventually
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="calendar-run", requester=support.ANA)
    for hours in (3, 5):
        at = int((datetime.now(tz=UTC) + timedelta(hours=hours)).timestamp())
        assert submit(bot, submission(run_id, at, [support.BO])).status_code == 200
        eventually(lambda at=at: runs.tags(run_id).get("review.meeting_at", "").startswith(
            datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M")
        ))  # fmt: skip
    value = json.dumps({"run_id": run_id})
    stranger = slack.new_response_url()
    bot.block_action(
        ActionId.CANCEL_MEETING.value,
        value,
        stranger,
        message=card,
        channel=card["channel"],
        user=support.CAROL,
    )
    assert "Only the review's requester" in eventually(lambda: response_texts(slack, stranger)[0])
    assert runs.tags(run_id)["review.meeting_at"] != ""

    bot.block_action(
        ActionId.CANCEL_MEETING.value,
        value,
        slack.new_response_url(),
        message=card,
        channel=card["channel"],
        user=support.BO,
    )
    eventually(lambda: runs.tags(run_id).get("review.meeting_at") == "")
    calendars = eventually(
        lambda: (lambda found: found if len(found) == 3 else None)(ics_sent_to(slack, support.BO, run_id))
    )
    events = [c.walk("VEVENT")[0] for c in calendars]
    assert len({str(e["UID"]) for e in events}) == 1
    assert sorted(int(e["SEQUENCE"]) for e in events) == [0, 1, 2]
    last = max(calendars, key=lambda c: int(c.walk("VEVENT")[0]["SEQUENCE"]))
    assert str(last["METHOD"]) == "CANCEL" and str(last.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    assert {str(c["METHOD"]) for c in calendars if c is not last} == {"REQUEST"}
