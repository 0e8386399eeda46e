"""Where a vote becomes a tag.

A click is accepted before Slack's ack (`accept`: kept in the store's durable queue of its card), then
recorded (`process`): under the run's lock, every click waiting on the card is applied in Slack's order,
the result written to MLflow once (signed), the queue cleared, and Slack shown what MLflow now says (the
card voted on and the run's current card, a line in the thread). A replica that dies after the ack
leaves its clicks in the queue, and any replica's sweeper (`sweep`) records them. Applying a click twice
changes nothing (each voter's last click time is on record), so a crash between the write and the
clearing of the queue loses nothing and doubles nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from bot.errors import MlflowUnavailable, ReviewBotError, log_unexpected
from bot.mlflow.records import ReviewRecords
from bot.mlflow.runs import Runs, baseline_params
from bot.models import ModelVersionRef, ReviewState, ReviewStatus, RunSummary, Via, VoteClick, VoteKind
from bot.reviews.card import build_review_card
from bot.reviews.card_index import CardIndex
from bot.reviews.run_state import build_approval_caveat
from bot.slack.advice import UNEXPECTED
from bot.slack.outbox import Notify, Outbox
from bot.slack.people import People
from bot.store import MIRROR_QUEUE, LockBusy, Store, run_lock
from bot.votes.discussion import ThreadMessage, build_discussion_markdown
from bot.votes.rules import Outcome, VotePolicy, apply_click

log = logging.getLogger(__name__)

NOT_RECORDED = (
    ":warning: Your vote was *not recorded*: MLflow at `{uri}` did not answer for {minutes} minutes. "
    "Nothing was changed; vote again when MLflow is back."
)
KEPT_FOR_LATER = (
    ":hourglass: MLflow at `{uri}` did not answer, so your vote is not on the record yet. It is kept, and "
    "the bot records it as soon as MLflow answers: the card will show it."
)
MIRROR_BEHIND = (
    ":information_source: Your vote is recorded on the run. Copying the decision onto {versions} in the "
    "model registry failed; the bot retries until it lands."
)
UNTRUSTED_RECORD_LINE = (
    ":warning: The review record of this run in MLflow was not signed by review-bot ({why}), so its "
    "earlier votes were set aside. Votes from now on are recorded and signed."
)
DECISION_LINE = ":ballot_box_with_check: {line}"
MORE_LINES = "…and {count} more votes (the card shows where the review stands)"
MAX_THREAD_LINES = 20

QUEUE_PREFIX = "votes:"  # + channel:ts of the card
SWEEP_INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 20.0  # a queue waiting this long was left by a replica that stopped (or is slow)
GIVE_UP_AFTER = timedelta(minutes=25)  # a response_url lives 30 minutes: say "not recorded" in time
PROCESS_LOCK_WAIT = 60.0  # the voter was acked already: waiting costs nothing but latency
MAX_ROUNDS = 5  # clicks that arrive while a batch is written are taken in the same hold, up to this


def _thread_text(lines: list[str]) -> str:
    """One thread message for a batch of votes, short enough for Slack however many arrived at once."""
    if len(lines) <= MAX_THREAD_LINES:
        return "\n".join(lines)
    more = len(lines) - (MAX_THREAD_LINES - 1)
    return "\n".join([*lines[: MAX_THREAD_LINES - 1], MORE_LINES.format(count=more)])


def _shown(state: ReviewState) -> ReviewState:
    """What a card shows of a review (not the click times kept for ordering, nor what it covers)."""
    return state.model_copy(update={"last_click": {}, "covers": []})


def queue_name(channel: str, ts: str) -> str:
    return f"{QUEUE_PREFIX}{channel}:{ts}"


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
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
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
        self.clock = clock
        self._told_waiting: set[str] = set()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        # Told who a recorded vote concerns (bot.home re-publishes their Home tabs); set by app.py.
        self.on_change: Callable[[Iterable[str]], None] | None = None

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

    # --- accepting (before the ack) --------------------------------------------------------------

    def accept(self, click: VoteClick) -> None:
        """Keep the click durably before Slack hears "OK": from here on it is recorded or its voter told."""
        self.store.enqueue(queue_name(click.channel, click.ts), click.model_dump_json(), click.at.timestamp())

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
        at: datetime | None = None,
        delivery: str | None = None,
    ) -> None:
        """Accept and record one vote now, telling its voter through `notify` (the in-process path)."""
        moment = at or self.clock()
        click = VoteClick(
            delivery=delivery or f"direct:{user}:{moment.timestamp():.6f}",
            channel=channel,
            ts=ts,
            user=user,
            kind=kind,
            via=via,
            at=moment,
            withdrawing=withdrawing,
        )
        self.accept(click)
        self.process(channel, ts, answer={click.delivery: notify})

    # --- recording --------------------------------------------------------------------------------

    def process(self, channel: str, ts: str, *, answer: dict[str, Notify] | None = None) -> None:
        """Record every click waiting on this card. Never raises: each voter hears what happened."""
        queue = queue_name(channel, ts)
        try:
            card = self.cards.find(channel, ts)
        except Exception as exc:  # Slack refused or failed: the clicks stay for the sweeper
            log.warning("finding the card %s/%s failed (%s); its votes wait", channel, ts, exc)
            return
        if card is None:  # a reaction on a message that is not a card: nothing to record
            self.store.dequeue(queue, self.store.queued(queue))
            return
        try:
            with run_lock(self.store, card.run_id, PROCESS_LOCK_WAIT) as held:
                for _ in range(MAX_ROUNDS):
                    members = self.store.queued(queue)
                    if not members:
                        return
                    self._record(card.run_id, channel, ts, members, queue, held.check, answer or {})
        except LockBusy:
            log.info("run %s is busy; the votes on %s/%s wait for the sweeper", card.run_id, channel, ts)

    def _record(
        self,
        run_id: str,
        channel: str,
        ts: str,
        members: list[str],
        queue: str,
        still_held: Callable[[], None],
        answer: dict[str, Notify],
    ) -> None:
        clicks = self._parse(queue, members)
        if not clicks:
            return

        def tell(click: VoteClick, text: str) -> None:
            notify = answer.get(click.delivery)
            if notify is not None:
                notify(text)
            else:
                self.outbox.tell(click.channel, click.user, text, response_url=click.response_url)

        try:
            current = self.records.run_tags(run_id)
            summary = self.runs.run_summary(run_id)
            before = summary.review or ReviewState(run_id=run_id, slack_channel=channel, slack_ts=ts)
            state, lines, messages = self._apply(summary, before, clicks)
            still_held()  # nothing is written by a holder whose lock could not be renewed
            behind: list[ModelVersionRef] = []
            if state != before:  # a vote is a look at the model as it is now: it covers today's versions
                state = self.records.covering(state, summary.model_versions)
                behind = self.records.record_review(state, current, summary.model_versions)
        except MlflowUnavailable as exc:
            self._waiting(clicks, members, queue, exc.tracking_uri, tell)
            return
        except ReviewBotError as exc:  # an unreadable record, no signing key, a lost lock: nothing written
            for click in clicks:
                tell(click, exc.user_message())
            self.store.dequeue(queue, members)
            return
        except Exception as exc:
            error_id = log_unexpected(log, f"recording the votes on {channel}/{ts}", exc)
            for click in clicks:
                tell(click, UNEXPECTED.format(error_id=error_id))
            self.store.dequeue(queue, members)
            return
        self.store.dequeue(queue, members)
        if behind:
            self.store.enqueue(MIRROR_QUEUE, run_id, self.clock().timestamp())
        recorded = summary.model_copy(update={"review": state})
        if lines or _shown(state) != _shown(before) or any(self._was_stale(state, c) for c in clicks):
            # (a stale click may be one this bot recorded before it died: its card may not show it yet)
            self._show(recorded, channel, ts, lines)
        for click, text in messages:
            tell(click, text)
        if behind:
            versions = ", ".join(f"`{mv.name}` v{mv.version}" for mv in behind)
            for click in {c.delivery: c for c in clicks}.values():
                tell(click, MIRROR_BEHIND.format(versions=versions))
        if self.on_change is not None and state != before:  # their Home tabs changed (bot.home)
            voters = [*before.approvals, *before.change_requests, *state.approvals, *state.change_requests]
            self.on_change({state.requested_by, *(c.user for c in clicks), *(v.user for v in voters)})
        if state.status is ReviewStatus.APPROVED and before.status is not ReviewStatus.APPROVED:
            self._keep_discussion(recorded, channel, ts)

    @staticmethod
    def _was_stale(state: ReviewState, click: VoteClick) -> bool:
        seen = state.last_click.get(click.user)
        return seen is not None and click.at < seen

    def _parse(self, queue: str, members: list[str]) -> list[VoteClick]:
        clicks, broken = [], []
        for member in members:
            try:
                clicks.append(VoteClick.model_validate_json(member))
            except ValidationError:
                broken.append(member)
        if broken:  # written by another version of the bot; never retried for ever
            log.error("dropping %d unreadable queued vote(s) from %s", len(broken), queue)
            self.store.dequeue(queue, broken)
        return sorted(clicks, key=lambda c: (c.at, c.delivery))

    def _apply(
        self, summary: RunSummary, state: ReviewState, clicks: list[VoteClick]
    ) -> tuple[ReviewState, list[str], list[tuple[VoteClick, str]]]:
        """Every click in Slack's order: the new state, lines for the thread, answers for the voters."""
        lines: list[str] = []
        messages: list[tuple[VoteClick, str]] = []
        if state.untrusted:
            lines.append(UNTRUSTED_RECORD_LINE.format(why=state.untrusted))
            state = state.model_copy(update={"untrusted": ""})
        policy: VotePolicy | None = None
        for click in clicks:
            voter = self.people.get(click.user)
            if not click.withdrawing:
                policy = policy or self.policy()  # after the voter: who they are is read either way
                refusal = policy.refusal(
                    click.user,
                    click.kind,
                    requester=state.requested_by,
                    is_author=bool(summary.user) and summary.user.lower() in voter.handles,
                    author=summary.user,
                )
                if refusal:
                    messages.append((click, refusal))
                    continue
            outcome: Outcome = apply_click(state, click, voter.name, self.required_approvals)
            state = outcome.state
            if outcome.changed and outcome.line:
                lines.append(DECISION_LINE.format(line=outcome.line))
                caveat = build_approval_caveat(summary.status)
                if caveat and click.kind is VoteKind.APPROVE and not click.withdrawing:
                    messages.append((click, caveat))  # counted all the same: the voter knows what it was
            elif outcome.message and not click.withdrawing and not outcome.stale:
                messages.append((click, outcome.message))
        return state, lines, messages

    def _waiting(
        self,
        clicks: list[VoteClick],
        members: list[str],
        queue: str,
        uri: str,
        tell: Callable[[VoteClick, str], None],
    ) -> None:
        """MLflow did not answer: the clicks stay queued for the sweeper; each voter hears it once, and
        clicks too old to answer later are given up with a "not recorded"."""
        now = self.clock()
        expired = [(c, m) for c, m in zip(clicks, members, strict=False) if now - c.at > GIVE_UP_AFTER]
        for click, _ in expired:
            tell(click, NOT_RECORDED.format(uri=uri, minutes=int(GIVE_UP_AFTER.total_seconds() // 60)))
        if expired:
            self.store.dequeue(queue, [m for _, m in expired])
        for click in clicks:
            if click.delivery not in self._told_waiting and now - click.at <= GIVE_UP_AFTER:
                if self.store.claim(f"told-waiting:{click.delivery}", int(GIVE_UP_AFTER.total_seconds())):
                    tell(click, KEPT_FOR_LATER.format(uri=uri))
                self._told_waiting.add(click.delivery)

    # --- showing ----------------------------------------------------------------------------------

    def _show(self, summary: RunSummary, channel: str, ts: str, lines: list[str]) -> None:
        """Slack shows what MLflow now says, on the card voted on and on the run's current card; a Slack
        failure here loses no vote (the tags have it)."""
        card = build_review_card(
            summary,
            requested_by=summary.review.requested_by if summary.review else "",
            key_metrics=self.key_metrics,
            required_approvals=self.required_approvals,
            baseline_params=baseline_params(self.runs, summary.baseline),  # what differs stays first
        )
        what = f"the card for run {summary.run_id}"
        if lines:  # first, so a card that shows the decision always has its line in the thread
            self.outbox.notice(channel, _thread_text(lines), what=f"{what}'s decision", thread_ts=ts)
        self.outbox.update(channel, ts, card, what=what)
        review = summary.review
        if review and review.slack_ts and (review.slack_channel, review.slack_ts) != (channel, ts):
            self.outbox.update(review.slack_channel, review.slack_ts, card, what=f"the current {what}")

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

    # --- finishing what others left ---------------------------------------------------------------

    def sweep(self) -> int:
        """Record the clicks that waited too long (their replica died, or MLflow was down) and retry the
        registry mirrors that are behind. Returns how many queues it worked on."""
        worked = 0
        for queue in self.store.waiting_queues(STALE_AFTER_SECONDS):
            if queue == MIRROR_QUEUE:
                self._retry_mirrors()
            elif queue.startswith(QUEUE_PREFIX):
                channel, _, ts = queue[len(QUEUE_PREFIX) :].partition(":")
                self.process(channel, ts)
            else:
                continue
            worked += 1
        return worked

    def _retry_mirrors(self) -> None:
        for run_id in self.store.queued(MIRROR_QUEUE):
            try:
                with run_lock(self.store, run_id):
                    summary = self.runs.run_summary(run_id)
                    if summary.review is None or not self.records.mirror(
                        summary.review, summary.model_versions
                    ):
                        self.store.dequeue(MIRROR_QUEUE, [run_id])
            except ReviewBotError as exc:
                log.warning("the registry mirror of run %s is still behind: %s", run_id, exc)

    def start_sweeper(self) -> None:
        if self._sweeper is not None:
            return
        self._sweeper = threading.Thread(target=self._sweep_forever, name="vote-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._stop.set()

    def _sweep_forever(self) -> None:
        while not self._stop.wait(SWEEP_INTERVAL_SECONDS):
            try:
                self.sweep()
            except Exception:  # the next tick tries again; the thread must not die
                log.exception("the vote sweeper failed")
