"""What one person's Home tab shows, from the reviews on record. Pure: no Slack, no MLflow, no clock
(callers pass `now`).

The bot reads every review once into a `Board` (small entries, cached as JSON); each person's
`HomeView` is then a few filters over it: the reviews waiting on their vote (oldest first, a page at a
time), the reviews they requested, their upcoming meetings, recent decisions they took part in, and
the deployments without an approved review (the nudges' scan, the same for everyone).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from bot.deployments import DeployedVersion
from bot.models import ReviewStatus, RunSummary

RECENT = timedelta(days=14)  # decisions this recent are shown (and decided requests)
WAITING_PER_PAGE = 15  # two blocks each: 30 of the Home's 100
NOTICES_KEPT = 3  # the latest answers to a person's Home votes


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class HomeEntry(_Frozen):
    """One review as the Home tab shows it: only what it shows, so a board of hundreds stays small."""

    run_id: str
    name: str
    experiment: str = ""
    run_url: str = ""
    card_url: str = ""  # the card's permalink: every entry links to its card
    channel: str = ""  # the card's channel and ts: what a vote on the Home names, as a click on the card
    ts: str = ""
    status: ReviewStatus = ReviewStatus.PENDING
    requested_by: str = ""
    requested_at: datetime | None = None
    decided_at: datetime | None = None
    approvals: list[str] = Field(default_factory=list)  # Slack user ids, in the order they voted
    change_requests: list[str] = Field(default_factory=list)
    meeting_at: datetime | None = None
    meeting_minutes: int = 0
    invitees: list[str] = Field(default_factory=list)  # and whoever scheduled the meeting

    @property
    def voters(self) -> set[str]:
        return {*self.approvals, *self.change_requests}


class Board(_Frozen):
    """Every review the Home tabs draw from: pending ones, and those decided within RECENT."""

    pending: list[HomeEntry] = Field(default_factory=list)
    decided: list[HomeEntry] = Field(default_factory=list)


class Deployments(_Frozen):
    """What the nudges' last registry scan found deployed without an approved review."""

    versions: list[DeployedVersion] = Field(default_factory=list)
    error: str = ""  # the scan could not read the registry (said on the Home instead of the list)
    unchecked: list[str] = Field(default_factory=list)  # models MLflow would not answer for


class Notice(_Frozen):
    """What the bot answered one of the person's Home votes (a Home has no ephemeral messages)."""

    text: str
    at: datetime


class HomeView(_Frozen):
    """Everything one person's Home tab shows, sorted; the builder only cuts and renders."""

    user: str
    now: datetime
    waiting: list[HomeEntry] = Field(default_factory=list)  # this page of them
    waiting_total: int = 0
    page: int = 0  # 0-based, within [0, pages)
    pages: int = 1
    requested: list[HomeEntry] = Field(default_factory=list)
    meetings: list[HomeEntry] = Field(default_factory=list)
    decisions: list[HomeEntry] = Field(default_factory=list)
    deployments: Deployments = Field(default_factory=Deployments)
    notices: list[Notice] = Field(default_factory=list)
    required_approvals: int = 1
    problem: str = ""  # why the reviews could not be read (then the lists above are empty)

    @property
    def first_time(self) -> bool:
        """Nothing of the person's own on record: the Home explains how to start."""
        return not (self.problem or self.waiting_total or self.requested or self.meetings or self.decisions)


def entry_of(summary: RunSummary) -> HomeEntry | None:
    """A run's review as a Home entry; None when it has none (or one the bot cannot vouch for)."""
    review = summary.review
    if review is None or review.untrusted:
        return None
    meeting = summary.meeting
    return HomeEntry(
        run_id=summary.run_id,
        name=summary.run_name or summary.run_id,
        experiment=summary.experiment_name,
        run_url=summary.run_url,
        card_url=review.slack_permalink,
        channel=review.slack_channel,
        ts=review.slack_ts,
        status=review.status,
        requested_by=review.requested_by,
        requested_at=review.requested_at,
        decided_at=review.decided_at,
        approvals=[v.user for v in review.approvals],
        change_requests=[v.user for v in review.change_requests],
        meeting_at=meeting.at if meeting else None,
        meeting_minutes=meeting.duration_min if meeting else 0,
        invitees=list(dict.fromkeys([*meeting.invitees, meeting.scheduled_by])) if meeting else [],
    )


def build_board(pending: list[RunSummary], decided: list[RunSummary], now: datetime) -> Board:
    """The board from the runs whose review is pending and those decided; old decisions left out."""
    return Board(
        pending=[e for e in map(entry_of, pending) if e and e.status is ReviewStatus.PENDING],
        decided=[
            e
            for e in map(entry_of, decided)
            if e and e.status is not ReviewStatus.PENDING and e.decided_at and now - e.decided_at <= RECENT
        ],
    )


def _oldest_first(entry: HomeEntry) -> tuple[bool, datetime | None, str]:
    return (entry.requested_at is None, entry.requested_at, entry.run_id)


def _newest_first(moment: datetime | None, entry: HomeEntry) -> tuple[bool, float, str]:
    return (moment is None, -moment.timestamp() if moment else 0.0, entry.run_id)


def waits_on(entry: HomeEntry, user: str, reviewers: frozenset[str] | None) -> bool:
    """A pending review waits on a reviewer who has not voted and did not request it (as the digest's
    `waiting_on` says); when anyone may vote (no REVIEWERS, no REVIEWER_GROUP), on everyone else."""
    if entry.status is not ReviewStatus.PENDING or user == entry.requested_by or user in entry.voters:
        return False
    return reviewers is None or user in reviewers


def takes_part(entry: HomeEntry, user: str, reviewers: frozenset[str] | None) -> bool:
    """The person requested the review, voted on it, or is one of those it waits on."""
    return (
        user == entry.requested_by
        or user in entry.voters
        or (user in reviewers if reviewers is not None else True)
    )


def page_bounds(total: int, page: int, per_page: int = WAITING_PER_PAGE) -> tuple[int, int]:
    """(the page shown, how many pages): a page past the end (the list shrank) shows the last one."""
    pages = max(1, -(-total // per_page))
    return min(max(page, 0), pages - 1), pages


def upcoming(entry: HomeEntry, now: datetime) -> bool:
    if entry.meeting_at is None:
        return False
    return entry.meeting_at + timedelta(minutes=entry.meeting_minutes) > now


def view_for(
    user: str,
    board: Board,
    now: datetime,
    *,
    reviewers: frozenset[str] | None,
    deployments: Deployments | None = None,
    notices: list[Notice] | None = None,
    page: int = 0,
    required_approvals: int = 1,
    problem: str = "",
) -> HomeView:
    waiting = sorted((e for e in board.pending if waits_on(e, user, reviewers)), key=_oldest_first)
    shown_page, pages = page_bounds(len(waiting), page)
    start = shown_page * WAITING_PER_PAGE
    everything = [*board.pending, *board.decided]
    return HomeView(
        user=user,
        now=now,
        waiting=waiting[start : start + WAITING_PER_PAGE],
        waiting_total=len(waiting),
        page=shown_page,
        pages=pages,
        requested=sorted(
            (e for e in everything if e.requested_by == user), key=lambda e: _newest_first(e.requested_at, e)
        ),
        meetings=sorted(
            (e for e in everything if user in e.invitees and upcoming(e, now)),
            key=lambda e: (e.meeting_at, e.run_id),
        ),
        decisions=sorted(
            (e for e in board.decided if takes_part(e, user, reviewers)),
            key=lambda e: _newest_first(e.decided_at, e),
        ),
        deployments=deployments or Deployments(),
        notices=sorted(notices or [], key=lambda n: n.at, reverse=True)[:NOTICES_KEPT],
        required_approvals=required_approvals,
        problem=problem,
    )


def _deployed_order(version: DeployedVersion) -> tuple[bool, datetime | None, str, str]:
    # As the digest orders them: never reviewed first (it waited since it was deployed), then oldest.
    return (version.since is not None, version.since, version.name, version.version.zfill(12))


def deployments_of(
    versions: list[DeployedVersion], *, error: str = "", unchecked: list[str] | None = None
) -> Deployments:
    """The scan's deployed-without-approval versions, in the digest's order."""
    return Deployments(versions=sorted(versions, key=_deployed_order), error=error, unchecked=unchecked or [])
