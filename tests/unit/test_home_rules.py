"""bot.home.rules: what one person's Home tab lists, from the reviews on record (tables, by value)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.deployments import DeployedVersion
from bot.home.rules import (
    NOTICES_KEPT,
    RECENT,
    WAITING_PER_PAGE,
    Board,
    HomeEntry,
    Notice,
    build_board,
    deployments_of,
    entry_of,
    page_bounds,
    takes_part,
    view_for,
    waits_on,
)
from bot.models import Meeting, ReviewState, ReviewStatus, RunSummary, Via, Vote

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
ANA, BO, CAROL, DAN = "U0ANA", "U0BO", "U0CAROL", "U0DAN"


def entry(run_id: str, *, hours_ago: float = 1, **fields: object) -> HomeEntry:
    values: dict[str, object] = {
        "name": run_id,
        "requested_by": ANA,
        "requested_at": NOW - timedelta(hours=hours_ago),
        "channel": "C0REVIEW",
        "ts": f"1.{run_id}",
    }
    return HomeEntry(run_id=run_id, **{**values, **fields})


def vote(user: str) -> Vote:
    return Vote(user=user, name=user, at=NOW, via=Via.BUTTON)


def summary(run_id: str, review: ReviewState | None, meeting: Meeting | None = None) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        run_name=f"name-{run_id}",
        experiment_id="1",
        experiment_name="fraud",
        run_url=f"https://mlflow.example.com/#/experiments/1/runs/{run_id}",
        review=review,
        meeting=meeting,
    )


def test_entry_of_keeps_what_the_home_shows() -> None:
    review = ReviewState(
        run_id="r1",
        status=ReviewStatus.CHANGES_REQUESTED,
        approvals=[vote(BO)],
        change_requests=[vote(CAROL)],
        requested_by=ANA,
        requested_at=NOW - timedelta(days=1),
        decided_at=NOW,
        slack_channel="C0REVIEW",
        slack_ts="1.5",
        slack_permalink="https://test.slack.com/archives/C0REVIEW/p15",
    )
    meeting = Meeting(
        run_id="r1", at=NOW + timedelta(hours=2), duration_min=45, invitees=[BO, DAN], scheduled_by=ANA
    )
    assert entry_of(summary("r1", review, meeting)) == HomeEntry(
        run_id="r1",
        name="name-r1",
        experiment="fraud",
        run_url="https://mlflow.example.com/#/experiments/1/runs/r1",
        card_url="https://test.slack.com/archives/C0REVIEW/p15",
        channel="C0REVIEW",
        ts="1.5",
        status=ReviewStatus.CHANGES_REQUESTED,
        requested_by=ANA,
        requested_at=NOW - timedelta(days=1),
        decided_at=NOW,
        approvals=[BO],
        change_requests=[CAROL],
        meeting_at=NOW + timedelta(hours=2),
        meeting_minutes=45,
        invitees=[BO, DAN, ANA],
    )
    assert entry_of(summary("r2", None)) is None
    assert entry_of(summary("r3", ReviewState(run_id="r3", untrusted="no signature"))) is None


def test_build_board_keeps_pending_and_recent_decisions_only() -> None:
    pending = summary("p", ReviewState(run_id="p", requested_by=ANA))
    recent = summary("d1", ReviewState(run_id="d1", status=ReviewStatus.APPROVED, decided_at=NOW - RECENT))
    old = summary("d2", ReviewState(run_id="d2", status=ReviewStatus.APPROVED, decided_at=NOW - RECENT * 2))
    undated = summary("d3", ReviewState(run_id="d3", status=ReviewStatus.APPROVED))
    board = build_board([pending], [recent, old, undated, pending], NOW)
    assert [e.run_id for e in board.pending] == ["p"]
    assert [e.run_id for e in board.decided] == ["d1"]


@pytest.mark.parametrize(
    ("user", "reviewers", "fields", "expected"),
    [
        (BO, None, {}, True),  # anyone may vote: it waits on everyone but the requester
        (ANA, None, {}, False),  # the requester
        (BO, None, {"approvals": [BO]}, False),  # voted already
        (BO, None, {"change_requests": [BO]}, False),
        (BO, frozenset({BO}), {}, True),
        (CAROL, frozenset({BO}), {}, False),  # not a reviewer
        (BO, frozenset({BO}), {"status": ReviewStatus.APPROVED}, False),  # decided
        (BO, frozenset(), {}, False),  # an empty reviewer group: nobody
    ],
)
def test_waits_on(user: str, reviewers: frozenset[str] | None, fields: dict, expected: bool) -> None:
    assert waits_on(entry("r", **fields), user, reviewers) is expected


@pytest.mark.parametrize(
    ("user", "reviewers", "fields", "expected"),
    [
        (ANA, frozenset({BO}), {}, True),  # requested it
        (CAROL, frozenset({BO}), {"approvals": [CAROL]}, True),  # voted on it
        (BO, frozenset({BO}), {}, True),  # one of those it waited on
        (DAN, frozenset({BO}), {}, False),
        (DAN, None, {}, True),  # anyone may vote: everyone's decision
    ],
)
def test_takes_part(user: str, reviewers: frozenset[str] | None, fields: dict, expected: bool) -> None:
    assert takes_part(entry("r", **fields), user, reviewers) is expected


@pytest.mark.parametrize(
    ("total", "page", "expected"),
    [
        (0, 0, (0, 1)),
        (15, 0, (0, 1)),
        (16, 1, (1, 2)),
        (300, 3, (3, 20)),
        (300, 99, (19, 20)),
        (30, -2, (0, 2)),
    ],
)
def test_page_bounds(total: int, page: int, expected: tuple[int, int]) -> None:
    assert page_bounds(total, page) == expected


def test_the_waiting_reviews_come_oldest_first_a_page_at_a_time() -> None:
    pending = [entry(f"r{i:03d}", hours_ago=i) for i in range(40)] + [entry("unknown", requested_at=None)]
    board = Board(pending=list(reversed(pending)))
    first = view_for(BO, board, NOW, reviewers=None)
    assert [e.run_id for e in first.waiting] == [f"r{i:03d}" for i in range(39, 39 - WAITING_PER_PAGE, -1)]
    assert (first.waiting_total, first.page, first.pages) == (41, 0, 3)
    last = view_for(BO, board, NOW, reviewers=None, page=7)  # past the end: the last page
    assert last.page == 2 and [e.run_id for e in last.waiting][-2:] == ["r000", "unknown"]


def test_view_for_one_person() -> None:
    mine_pending = entry("mine-p", requested_by=BO, hours_ago=5)
    mine_decided = entry(
        "mine-d",
        requested_by=BO,
        hours_ago=30,
        status=ReviewStatus.APPROVED,
        decided_at=NOW - timedelta(hours=2),
    )
    voted = entry("voted", status=ReviewStatus.APPROVED, decided_at=NOW - timedelta(hours=1), approvals=[BO])
    others = entry("others", status=ReviewStatus.APPROVED, decided_at=NOW, approvals=[CAROL])
    meeting_soon = entry("soon", meeting_at=NOW + timedelta(hours=1), meeting_minutes=30, invitees=[BO])
    meeting_now = entry("now", meeting_at=NOW - timedelta(minutes=10), meeting_minutes=30, invitees=[BO, DAN])
    meeting_over = entry("over", meeting_at=NOW - timedelta(hours=2), meeting_minutes=30, invitees=[BO])
    meeting_not_mine = entry(
        "theirs", meeting_at=NOW + timedelta(hours=3), meeting_minutes=30, invitees=[DAN]
    )
    board = Board(
        pending=[mine_pending, meeting_soon, meeting_now, meeting_over, meeting_not_mine],
        decided=[mine_decided, voted, others],
    )
    notices = [Notice(text=f"n{i}", at=NOW - timedelta(minutes=i)) for i in range(5)]
    view = view_for(BO, board, NOW, reviewers=frozenset({CAROL, DAN}), notices=notices, required_approvals=2)
    assert view.waiting == [] and view.waiting_total == 0  # BO is not a reviewer
    assert [e.run_id for e in view.requested] == ["mine-p", "mine-d"]  # newest request first
    assert [e.run_id for e in view.meetings] == ["now", "soon"]  # under way, then the next one
    assert [e.run_id for e in view.decisions] == ["voted", "mine-d"]  # not the one BO took no part in
    assert [n.text for n in view.notices] == ["n0", "n1", "n2"][:NOTICES_KEPT]
    assert view.required_approvals == 2 and not view.first_time


def test_first_time_is_nothing_of_ones_own_and_no_problem() -> None:
    board = Board(pending=[entry("theirs", requested_by=ANA)])
    assert view_for(DAN, board, NOW, reviewers=frozenset({BO})).first_time
    assert not view_for(DAN, board, NOW, reviewers=None).first_time  # it waits on DAN: anyone may vote
    assert not view_for(DAN, Board(), NOW, reviewers=None, problem="MLflow is down").first_time


def test_deployments_in_the_digests_order() -> None:
    def deployed(name: str, version: str, requested_days_ago: int | None) -> DeployedVersion:
        review = (
            ReviewState(run_id="r", requested_at=NOW - timedelta(days=requested_days_ago))
            if requested_days_ago is not None
            else None
        )
        return DeployedVersion(name=name, version=version, markers=["champion"], review=review)

    found = deployments_of(
        [deployed("b", "10", 1), deployed("a", "2", 5), deployed("c", "9", None), deployed("b", "9", None)],
        error="",
        unchecked=["x"],
    )
    assert [(v.name, v.version) for v in found.versions] == [("b", "9"), ("c", "9"), ("a", "2"), ("b", "10")]
    assert found.unchecked == ["x"]
