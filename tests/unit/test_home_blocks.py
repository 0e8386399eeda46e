"""bot.home.blocks: the Home tab as Slack receives it (compared by value), within 100 blocks whatever
waits, escaped, every entry linked to its card."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.commands import USAGE
from bot.deployments import DeployedVersion
from bot.home.blocks import (
    DECISIONS_TITLE,
    DEPLOYED_ERROR,
    FOOTER,
    HEADER,
    HOME_MAX_BLOCKS,
    LIST_MAX,
    MORE,
    NO_CARD,
    NOTHING_WAITING,
    PROBLEM,
    UPDATED,
    WAITING_TITLE,
    WELCOME,
    build_home,
)
from bot.home.rules import (
    RECENT,
    WAITING_PER_PAGE,
    Board,
    Deployments,
    HomeEntry,
    HomeView,
    Notice,
    view_for,
)
from bot.ids import HOME_CALLBACK_ID, HomeActionId
from bot.meetings.blocks import meeting_time
from bot.models import ReviewState, ReviewStatus
from bot.slack.values import CardValue, PageValue, parse_value
from tests.slack_api_server import validate_view

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
ANA, BO = "U0ANA", "U0BO"
CARD_URL = "https://test.slack.com/archives/C0REVIEW/p1767225600000100"


def entry(run_id: str, hours_ago: float = 3, **fields: Any) -> HomeEntry:
    values: dict[str, Any] = {
        "name": f"name-{run_id}",
        "experiment": "fraud",
        "card_url": CARD_URL,
        "channel": "C0REVIEW",
        "ts": f"1767225600.{run_id}",
        "requested_by": ANA,
        "requested_at": NOW - timedelta(hours=hours_ago),
    }
    return HomeEntry(run_id=run_id, **{**values, **fields})


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def actions(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_a_first_time_user_is_told_how_to_start() -> None:
    view = build_home(view_for("U0NEW", Board(), NOW, reviewers=frozenset({BO})))
    assert view == {
        "type": "home",
        "callback_id": HOME_CALLBACK_ID,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": HEADER, "emoji": True}},
            context(UPDATED.format(when=meeting_time(NOW))),
            section(WELCOME),
            section(USAGE),
            {"type": "divider"},
            context(FOOTER),
        ],
    }
    assert "`/review <run>`" in WELCOME and "/review <run>" in USAGE
    assert validate_view(view) == []


def test_a_waiting_review_links_its_card_and_votes_on_it() -> None:
    waiting = entry("r1", hours_ago=50, approvals=["U0CAROL"], change_requests=["U0DAN"])
    view = build_home(view_for(BO, Board(pending=[waiting]), NOW, reviewers=None, required_approvals=2))
    assert view["blocks"][2:5] == [
        section(WAITING_TITLE.format(n=1)),
        section(
            f"<{CARD_URL}|name-r1> · fraud\n"
            f"Requested by <@{ANA}> 2 days ago · 1/2 approvals, 1 change request(s)"
        ),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                    "action_id": HomeActionId.APPROVE.value,
                    "value": '{"run_id":"r1","channel":"C0REVIEW","ts":"1767225600.r1"}',
                    "style": "primary",
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Request changes", "emoji": True},
                    "action_id": HomeActionId.REQUEST_CHANGES.value,
                    "value": '{"run_id":"r1","channel":"C0REVIEW","ts":"1767225600.r1"}',
                    "style": "danger",
                },
            ],
        },
    ]
    [approve, _] = actions(view)
    assert parse_value(approve["action_id"], approve["value"]) == CardValue(
        run_id="r1", channel="C0REVIEW", ts="1767225600.r1"
    )


def test_a_review_without_a_known_card_has_no_buttons() -> None:
    waiting = entry("r1", card_url="", channel="", ts="", run_url="https://mlflow.example.com/#/runs/r1")
    view = build_home(view_for(BO, Board(pending=[waiting]), NOW, reviewers=None))
    assert actions(view) == []
    assert view["blocks"][3]["text"]["text"].endswith(NO_CARD)
    assert "<https://mlflow.example.com/#/runs/r1|name-r1>" in view["blocks"][3]["text"]["text"]


def test_300_waiting_reviews_page_within_100_blocks() -> None:
    board = Board(pending=[entry(f"{i:03d}", hours_ago=1000 - i) for i in range(300)])
    pages = [build_home(view_for(BO, board, NOW, reviewers=None, page=p)) for p in (0, 1, 19)]
    for view in pages:
        assert len(view["blocks"]) <= HOME_MAX_BLOCKS and validate_view(view) == []
    first, middle, last = pages
    votes = [e for e in actions(first) if e["action_id"] == HomeActionId.APPROVE]
    assert [json.loads(e["value"])["run_id"] for e in votes] == [f"{i:03d}" for i in range(WAITING_PER_PAGE)]
    assert context("Showing 1–15 of 300, oldest first · …and 285 more") in first["blocks"]

    def pager(view: dict[str, Any]) -> list[tuple[str, str, PageValue | None]]:
        return [
            (e["action_id"], e["text"]["text"], parse_value(e["action_id"], e["value"]))
            for e in actions(view)
            if e["action_id"] in (HomeActionId.PREVIOUS_PAGE, HomeActionId.NEXT_PAGE)
        ]

    assert pager(first) == [(HomeActionId.NEXT_PAGE, "Newer 15 ›", PageValue(page=1))]
    assert pager(middle) == [
        (HomeActionId.PREVIOUS_PAGE, "‹ Older", PageValue(page=0)),
        (HomeActionId.NEXT_PAGE, "Newer 15 ›", PageValue(page=2)),
    ]
    assert pager(last) == [(HomeActionId.PREVIOUS_PAGE, "‹ Older", PageValue(page=18))]
    assert context("Showing 286–300 of 300, oldest first · …and 0 more") in last["blocks"]


def test_everything_at_once_stays_within_slacks_limits() -> None:
    long_url = "https://mlflow.example.com/#/experiments/123456789/runs/" + "a" * 200
    many = [
        entry(
            f"{i:03d}",
            hours_ago=i,
            name="n" * 500,
            experiment="e" * 500,
            run_url=long_url,
            card_url=long_url,
            requested_by=BO if i % 2 else ANA,
            approvals=[f"U{i:08d}" for i in range(20)],
            meeting_at=NOW + timedelta(hours=i + 1),
            meeting_minutes=30,
            invitees=[BO],
        )
        for i in range(300)
    ]
    decided = [
        e.model_copy(update={"run_id": "d" + e.run_id, "status": ReviewStatus.APPROVED, "decided_at": NOW})
        for e in many
    ]
    deployed = [
        DeployedVersion(
            name="m" * 300, version=str(i), markers=["champion", "Production"], version_url=long_url
        )
        for i in range(300)
    ]
    view = view_for(
        BO,
        Board(pending=many, decided=decided),
        NOW,
        reviewers=None,
        deployments=Deployments(versions=deployed, error="x" * 1000, unchecked=["u" * 300] * 50),
        notices=[Notice(text="t" * 5000, at=NOW)] * 3,
    )
    home = build_home(view)
    assert len(home["blocks"]) <= HOME_MAX_BLOCKS
    assert validate_view(home) == []
    shown = texts(home)
    assert MORE.format(n=300 - LIST_MAX) in shown  # requested, meetings, deployments, decisions: capped
    assert shown.count(MORE.format(n=300 - LIST_MAX)) == 3 and MORE.format(n=600 - LIST_MAX) in shown


def test_text_from_mlflow_is_escaped() -> None:
    hostile = entry(
        "r1",
        name="<!channel> *bold* <https://evil.example|click>",
        experiment="<@U0BOSS> & co",
        card_url="",
        run_url="",
    )
    deployed = DeployedVersion(name="<!here>", version="1", markers=["<!everyone>"])
    view = build_home(
        view_for(
            BO, Board(pending=[hostile]), NOW, reviewers=None, deployments=Deployments(versions=[deployed])
        )
    )
    shown = texts(view)
    for raw in ("<!channel>", "<https://evil", "<@U0BOSS>", "<!here>", "<!everyone>"):
        assert raw not in shown
    assert (
        "&lt;!channel&gt;" in shown and "&lt;@U0BOSS&gt; &amp; co" in shown and "@&lt;!everyone&gt;" in shown
    )


def test_requests_meetings_and_decisions() -> None:
    meeting_at = NOW + timedelta(days=1)
    pending = entry(
        "p", name="pending-run", requested_by=BO, meeting_at=meeting_at, meeting_minutes=45, invitees=[BO]
    )
    approved = entry(
        "a",
        hours_ago=30,
        name="approved-run",
        requested_by=BO,
        status=ReviewStatus.APPROVED,
        decided_at=NOW - timedelta(hours=1),
        approvals=["U0C1", "U0C2", "U0C3", "U0C4"],
    )
    changes = entry(
        "c", name="changes-run", status=ReviewStatus.CHANGES_REQUESTED, decided_at=NOW, change_requests=[BO]
    )
    view = build_home(
        view_for(BO, Board(pending=[pending], decided=[approved, changes]), NOW, reviewers=None)
    )
    blocks = view["blocks"]
    decided_at = meeting_time(NOW - timedelta(hours=1))
    assert (
        section(
            ":outbox_tray: *Reviews you requested* (2)\n"
            f"• <{CARD_URL}|pending-run>: pending for 3 hours (0/1 approvals)\n"
            f"• <{CARD_URL}|approved-run>: approved by <@U0C1>, <@U0C2>, <@U0C3> and 1 more {decided_at}"
        )
        in blocks
    )
    assert (
        section(
            ":calendar: *Your review meetings* (1)\n"
            f"• {meeting_time(meeting_at)} (45 min): <{CARD_URL}|pending-run>"
        )
        in blocks
    )
    assert "<!date^" in meeting_time(meeting_at)
    assert (
        section(
            DECISIONS_TITLE.format(days=RECENT.days, n=2)
            + f"\n• <{CARD_URL}|changes-run>: changes requested by <@{BO}> {meeting_time(NOW)}"
            + f"\n• <{CARD_URL}|approved-run>: approved by <@U0C1>, <@U0C2>, <@U0C3> and 1 more {decided_at}"
        )
        in blocks
    )
    assert section(NOTHING_WAITING) in blocks  # not a first-timer: the empty list is said plainly


def test_deployments_link_their_card_and_say_what_could_not_be_checked() -> None:
    review = ReviewState(
        run_id="r",
        status=ReviewStatus.PENDING,
        requested_at=NOW - timedelta(days=2),
        slack_permalink=CARD_URL,
    )
    deployed = [
        DeployedVersion(
            name="fraud-clf", version="3", markers=["champion"], review=review, version_url="https://m/3"
        ),
        DeployedVersion(name="summarizer", version="2", markers=["Production"], prompt=True),
    ]
    found = Deployments(versions=deployed, error="registry down", unchecked=["churn"])
    blocks = build_home(view_for(BO, Board(), NOW, reviewers=None, deployments=found))["blocks"]
    assert (
        section(
            ":rotating_light: *Deployed without an approved review* (2)\n"
            f"• <https://m/3|fraud-clf> v3 @champion: pending for 2 days (<{CARD_URL}|card>)\n"
            "• Prompt *summarizer* v2 Production: never reviewed"
        )
        in blocks
    )
    assert (
        context(
            DEPLOYED_ERROR.format(error="registry down")
            + "\n:warning: Could not be checked (MLflow did not answer): *churn*"
        )
        in blocks
    )


def test_a_problem_reading_the_reviews_is_said_and_is_no_welcome() -> None:
    view = HomeView(user=BO, now=NOW, problem="MLflow at `http://m` did not answer.")
    blocks = build_home(view)["blocks"]
    assert blocks[2] == section(PROBLEM.format(problem="MLflow at `http://m` did not answer."))
    assert section(WELCOME) not in blocks


def test_notices_come_first_newest_first() -> None:
    notices = [
        Notice(text="older", at=NOW - timedelta(minutes=5)),
        Notice(text="you already approved", at=NOW),
    ]
    blocks = build_home(view_for(BO, Board(), NOW, reviewers=None, notices=notices))["blocks"]
    assert blocks[2] == section(
        ":speech_balloon: *About your vote on this tab*\n"
        f"{meeting_time(NOW)}: you already approved\n{meeting_time(NOW - timedelta(minutes=5))}: older"
    )
