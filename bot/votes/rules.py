"""The review's rules: who may vote, what a vote does, and when a review is decided.

Pure: no Slack, no MLflow, no clock (callers pass `at`). `bot.votes.service` applies these under a lock
and records the result; bot.tags is the only place the tag format lives.

Clicks apply in Slack's order, not in the order they reach the bot: each voter's last applied click
time is on record, and a click older than it is stale (a later click already said what they want).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import ReviewState, ReviewStatus, Vote, VoteClick, VoteKind
from bot.slack.mrkdwn import escape

NOT_A_REVIEWER = ":no_entry_sign: Your vote was not counted: only the model's reviewers vote ({who})."
OWN_MODEL_REQUESTER = (
    ":no_entry_sign: Your vote was not counted: you requested this review, so others decide on it."
)
OWN_MODEL_AUTHOR = (
    ":no_entry_sign: Your vote was not counted: you trained this run (`{author}`), so others decide on it."
)
SAME_VOTE = ":information_source: You already {did} this model; nothing changed."
NO_VOTE_TO_WITHDRAW = ":information_source: You had no {kind} on this review to withdraw."

DECISION_LINES = {
    VoteKind.APPROVE: "{name} approved",
    VoteKind.REQUEST_CHANGES: "{name} requested changes",
}
WITHDRAWN_LINES = {
    VoteKind.APPROVE: "{name} withdrew their approval",
    VoteKind.REQUEST_CHANGES: "{name} withdrew their change request",
}
STATUS_LINES = {
    ReviewStatus.APPROVED: "The review is now *approved*.",
    ReviewStatus.CHANGES_REQUESTED: "The review now has *changes requested*.",
    ReviewStatus.PENDING: "The review is *pending* again.",
}


@dataclass(frozen=True)
class VotePolicy:
    """Who may vote. `reviewers` None means anyone (but the requester and the author)."""

    reviewers: frozenset[str] | None
    required_approvals: int = 1
    reviewers_label: str = ""

    def refusal(
        self, voter: str, kind: VoteKind, *, requester: str, is_author: bool, author: str
    ) -> str | None:
        """Why this vote does not count, or None when it does."""
        own = voter == requester or is_author
        if self.reviewers is None:
            if voter == requester:
                return OWN_MODEL_REQUESTER
            if is_author:
                return OWN_MODEL_AUTHOR.format(author=author)
            return None
        if voter not in self.reviewers:
            return NOT_A_REVIEWER.format(who=self.reviewers_label or "see REVIEWERS")
        if own and kind is VoteKind.APPROVE:
            return OWN_MODEL_REQUESTER if voter == requester else OWN_MODEL_AUTHOR.format(author=author)
        return None


@dataclass(frozen=True)
class Outcome:
    state: ReviewState
    changed: bool
    message: str | None = None  # for the voter, ephemeral, when nothing changed
    line: str | None = None  # for the thread, when something did
    stale: bool = False  # a later click of the same voter was applied already


def apply_click(state: ReviewState, click: VoteClick, name: str, required: int) -> Outcome:
    """One click on the record: stale ones change nothing; any other moves the voter's last click
    time forward (even when the vote stays the same) and then casts or withdraws."""
    seen = state.last_click.get(click.user)
    if seen is not None and click.at <= seen:
        return Outcome(state, changed=False, stale=True)
    state = state.model_copy(update={"last_click": {**state.last_click, click.user: click.at}})
    if click.withdrawing:
        return withdraw(state, click.user, name, click.kind, click.at, required)
    return cast(state, Vote(user=click.user, name=name, at=click.at, via=click.via), click.kind, required)


def decide(approvals: list[Vote], change_requests: list[Vote], required: int) -> ReviewStatus:
    if change_requests:
        return ReviewStatus.CHANGES_REQUESTED
    if len({v.user for v in approvals}) >= required:
        return ReviewStatus.APPROVED
    return ReviewStatus.PENDING


def cast(state: ReviewState, vote: Vote, kind: VoteKind, required: int) -> Outcome:
    """Record a vote that counts. The same vote twice changes nothing; another kind replaces it."""
    mine, other = _lists(state, kind)
    if any(v.user == vote.user for v in mine):
        did = "approved" if kind is VoteKind.APPROVE else "requested changes on"
        return Outcome(state, changed=False, message=SAME_VOTE.format(did=did))
    mine = [*mine, vote]
    other = [v for v in other if v.user != vote.user]
    line = DECISION_LINES[kind].format(name=escape(vote.name))
    return _apply(state, kind, mine, other, required, vote.at, line)


def withdraw(
    state: ReviewState, user: str, name: str, kind: VoteKind, at: datetime, required: int
) -> Outcome:
    mine, other = _lists(state, kind)
    if not any(v.user == user for v in mine):
        label = "approval" if kind is VoteKind.APPROVE else "change request"
        return Outcome(state, changed=False, message=NO_VOTE_TO_WITHDRAW.format(kind=label))
    mine = [v for v in mine if v.user != user]
    return _apply(state, kind, mine, other, required, at, WITHDRAWN_LINES[kind].format(name=escape(name)))


def _lists(state: ReviewState, kind: VoteKind) -> tuple[list[Vote], list[Vote]]:
    if kind is VoteKind.APPROVE:
        return list(state.approvals), list(state.change_requests)
    return list(state.change_requests), list(state.approvals)


def _apply(
    state: ReviewState,
    kind: VoteKind,
    mine: list[Vote],
    other: list[Vote],
    required: int,
    at: datetime,
    line: str,
) -> Outcome:
    approvals, change_requests = (mine, other) if kind is VoteKind.APPROVE else (other, mine)
    status = decide(approvals, change_requests, required)
    decided_at = state.decided_at
    if status is not state.status:
        decided_at = at if status is not ReviewStatus.PENDING else None
        line = f"{line}. {STATUS_LINES[status]}"
    new = state.model_copy(
        update={
            "approvals": approvals,
            "change_requests": change_requests,
            "status": status,
            "decided_at": decided_at,
        }
    )
    return Outcome(new, changed=True, line=line)
