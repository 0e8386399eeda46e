"""Where a vote becomes a tag: recognise the card, check the voter, apply the rules under a lock,
record the result in MLflow, then show it in Slack (card updated in place, a line in the thread)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.errors import MlflowUnavailable, ReviewBotError
from bot.mlflow.records import ReviewRecords
from bot.mlflow.runs import Runs
from bot.models import ReviewState, ReviewStatus, RunSummary, Via, Vote, VoteKind
from bot.reviews.card import build_review_card
from bot.reviews.card_index import CardIndex
from bot.slack.advice import tells_the_unexpected
from bot.slack.outbox import Notify, Outbox
from bot.slack.people import People
from bot.store import Store, run_lock
from bot.votes.discussion import ThreadMessage, build_discussion_markdown
from bot.votes.rules import VotePolicy, cast, withdraw

log = logging.getLogger(__name__)

NOT_RECORDED = (
    ":warning: Your vote was *not recorded*: MLflow at `{uri}` did not answer. Nothing was changed; "
    "try again in a minute."
)
DECISION_LINE = ":ballot_box_with_check: {line}"


class VoteService:
    def __init__(
        self,
        runs: Runs,
        records: ReviewRecords,
        store: Store,
        outbox: Outbox,
        cards: CardIndex,
        people: People,
        *,
        reviewers: list[str],
        reviewer_group: str | None,
        required_approvals: int,
        key_metrics: list[str],
    ) -> None:
        self.runs = runs
        self.records = records
        self.cards = cards
        self.people = people
        self.store = store
        self.outbox = outbox
        self.reviewers = reviewers
        self.reviewer_group = reviewer_group
        self.required_approvals = required_approvals
        self.key_metrics = key_metrics

    # --- who votes -------------------------------------------------------------------------------

    def policy(self) -> VotePolicy:
        members = set(self.reviewers)
        if self.reviewer_group:
            members |= set(self.people.group_members(self.reviewer_group))
        if not self.reviewers and not self.reviewer_group:
            return VotePolicy(reviewers=None, required_approvals=self.required_approvals)
        label = ", ".join(
            [*(f"<@{u}>" for u in self.reviewers)]
            + ([f"<!subteam^{self.reviewer_group}>"] if self.reviewer_group else [])
        )
        return VotePolicy(frozenset(members), self.required_approvals, reviewers_label=label)

    # --- voting ----------------------------------------------------------------------------------

    @tells_the_unexpected("recording a vote on {channel}/{ts}")
    def vote(
        self,
        channel: str,
        ts: str,
        user: str,
        kind: VoteKind,
        via: Via,
        notify: Notify,
        *,
        withdrawing: bool = False,
    ) -> None:
        """Record one vote (or its withdrawal); the voter hears about anything that did not count."""
        card = self.cards.find(channel, ts)
        if card is None:
            return  # not one of our cards: reactions on other messages mean nothing to us
        voter = self.people.get(user)
        now = datetime.now(tz=UTC)
        try:
            with run_lock(self.store, card.run_id):
                summary = self.runs.run_summary(card.run_id)
                state = summary.review or ReviewState(run_id=card.run_id, slack_channel=channel, slack_ts=ts)
                if withdrawing:
                    outcome = withdraw(state, user, voter.name, kind, now, self.required_approvals)
                else:
                    refusal = self.policy().refusal(
                        user,
                        kind,
                        requester=state.requested_by,
                        is_author=bool(summary.user) and summary.user.lower() in voter.handles,
                        author=summary.user,
                    )
                    if refusal:
                        notify(refusal)
                        return
                    vote = Vote(user=user, name=voter.name, at=now, via=via)
                    outcome = cast(state, vote, kind, self.required_approvals)
                if not outcome.changed:
                    if outcome.message and not withdrawing:
                        notify(outcome.message)
                    return
                self.records.record_review(outcome.state, summary.model_versions)
                recorded = summary.model_copy(update={"review": outcome.state})
                # Still under the lock, so two racing votes update the card in the order they were recorded.
                self._show(recorded, channel, ts, outcome.line)
        except MlflowUnavailable as exc:
            notify(NOT_RECORDED.format(uri=exc.tracking_uri))
            return
        except ReviewBotError as exc:
            notify(exc.user_message())
            return
        if outcome.state.status is ReviewStatus.APPROVED and state.status is not ReviewStatus.APPROVED:
            self._keep_discussion(recorded, channel, ts)

    def _show(self, summary: RunSummary, channel: str, ts: str, line: str | None) -> None:
        """Slack shows what MLflow now says; a Slack failure here loses no vote (the tags have it)."""
        card = build_review_card(
            summary,
            requested_by=summary.review.requested_by if summary.review else "",
            key_metrics=self.key_metrics,
            required_approvals=self.required_approvals,
        )
        what = f"the card for run {summary.run_id}"
        if line:  # first, so a card that shows the decision always has its line in the thread
            self.outbox.notice(
                channel, DECISION_LINE.format(line=line), what=f"{what}'s decision", thread_ts=ts
            )
        self.outbox.update(channel, ts, card, what=what)

    def _keep_discussion(self, summary: RunSummary, channel: str, ts: str) -> None:
        assert summary.review is not None
        replies = self.outbox.thread_replies(channel, ts)
        if replies is None:
            return
        messages = [self._thread_message(m) for m in replies if m.get("ts") != ts]
        try:
            self.records.log_discussion(
                summary.run_id, build_discussion_markdown(summary, summary.review, messages)
            )
        except ReviewBotError as exc:
            log.error("keeping the discussion of run %s failed: %s", summary.run_id, exc)

    def _thread_message(self, message: dict[str, Any]) -> ThreadMessage:
        author = (
            self.people.get(message["user"]).name if message.get("user") else message.get("username", "bot")
        )
        return ThreadMessage(
            author=author,
            at=datetime.fromtimestamp(float(message["ts"]), tz=UTC),
            text=message.get("text", ""),
        )
