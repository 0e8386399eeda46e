"""Publishing a review: the card goes to the review channel as soon as the run is read, is completed
(model versions, baseline, sweep: read in parallel, meanwhile) and updated, the request goes to the run's
tags, then the thread; the requester is told how each step went."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bot import tags
from bot.errors import MlflowRefused, ReviewBotError
from bot.mlflow.records import ReviewRecords
from bot.models import ReviewState, RunRef
from bot.request_ids import ContextThreadPoolExecutor
from bot.reviews.card_index import CardIndex, CardRef
from bot.reviews.prepare import PreparedCard, ReviewPreparer
from bot.reviews.replies import POSTED, REQUEST_NOT_RECORDED, REQUEST_REFUSED, THREAD_PART_FAILED
from bot.slack.advice import channel_mention, tells_the_unexpected
from bot.slack.message import SlackMessage
from bot.slack.outbox import Notify, Outbox
from bot.store import MIRROR_QUEUE, Store, run_lock

log = logging.getLogger(__name__)


class ReviewPublisher:
    def __init__(
        self,
        preparer: ReviewPreparer,
        records: ReviewRecords,
        outbox: Outbox,
        store: Store,
        cards: CardIndex,
        review_channel: str | None,
    ) -> None:
        self.preparer = preparer
        self.records = records
        self.outbox = outbox
        self.store = store
        self.cards = cards
        self.review_channel = review_channel
        # Told who a posted card concerns (bot.home re-publishes their Home tabs); set by app.py.
        self.on_change: Callable[[Iterable[str]], None] | None = None

    def target_channel(self, origin_channel: str) -> str:
        return self.review_channel or origin_channel

    def permalink(self, channel: str, ts: str) -> str:
        return self.outbox.permalink(channel, ts)

    @tells_the_unexpected("posting the review of {ref.raw}")
    def publish(
        self,
        ref: RunRef,
        requested_by: str,
        origin_channel: str,
        notify: Notify,
        baseline: RunRef | None = None,
    ) -> str | None:
        """Post the card and its thread; tell `notify` (the requester, ephemerally) what happened.

        Returns the card's ts, or None when nothing was posted.
        """
        channel = self.target_channel(origin_channel)
        try:
            first = self.preparer.first_card(ref, requested_by, baseline)
            ts = self.outbox.post(channel, first.card, what=f"run {first.summary.run_id}")
        except ReviewBotError as exc:
            notify(exc.user_message())
            return None
        self.cards.remember(channel, ts, CardRef(first.summary.run_id, first.summary.experiment_id))
        with ContextThreadPoolExecutor(max_workers=1, thread_name_prefix="slack-permalink") as pool:
            link = pool.submit(self.permalink, channel, ts)
            prepared = self.preparer.complete(first)  # never raises for a failed read: notes say it
            permalink = link.result()
        self._record_request(prepared, first.card, requested_by, channel, ts, permalink, notify)
        notify(POSTED.format(where=channel_mention(channel), permalink=permalink))
        self._post_thread(prepared, channel, ts, notify)
        return ts

    def _record_request(
        self,
        prepared: PreparedCard,
        posted: SlackMessage,
        requested_by: str,
        channel: str,
        ts: str,
        permalink: str,
        notify: Notify,
    ) -> None:
        """The review request goes to the run's tags; a run already under review keeps its votes (those
        the bot signed: a record it cannot vouch for starts afresh). Votes that reached the card before
        this write are kept too: it reads the tags under the run's lock and changes only its own.

        The complete card replaces the one `posted` under the same lock, showing the request as written:
        a vote's update (made under the lock too) cannot come between, so the card people see last is
        the complete one with every vote."""
        summary = prepared.summary
        try:
            with run_lock(self.store, summary.run_id) as held:
                current = self.records.run_tags(summary.run_id)
                state = self.records.review_of(summary.run_id, current)
                if state is None or state.untrusted:
                    state = self.records.covering(
                        ReviewState(
                            run_id=summary.run_id,
                            requested_by=requested_by,
                            requested_at=datetime.now(tz=UTC),
                        ),
                        summary.model_versions,
                    )
                # else: a request again keeps what the decision covers; only votes widen it
                first_request = {"requested_by": requested_by, "requested_at": datetime.now(tz=UTC)}
                state = state.model_copy(
                    update={
                        "slack_channel": channel,
                        "slack_ts": ts,
                        "slack_permalink": permalink,
                        # a vote that reached the card before this write left the request blank
                        **({} if state.requested_by else first_request),
                    }
                )
                extra = {
                    **(tags.baseline_tags(summary.baseline) if summary.baseline else {}),
                    **(tags.sweep_tags(summary.sweep) if summary.sweep else {}),
                }
                if summary.baseline is None and current.get(tags.BASELINE):
                    # its lookup failed: an earlier request's baseline must not come back on the next vote
                    extra[tags.BASELINE] = ""
                held.check()
                behind = self.records.record_review(state, current, summary.model_versions, extra)
                self._show(self.preparer.rendered(prepared, state), posted, channel, ts)
        except MlflowRefused as exc:  # 401/403: "try again later" would be wrong; say what it is
            log.error("recording the review request of run %s failed: %s", summary.run_id, exc)
            notify(REQUEST_REFUSED.format(why=exc.user_message()))
            self._show_as_recorded(prepared, posted, channel, ts)
            return
        except ReviewBotError as exc:  # LockBusy is one too; nothing of the request was written
            log.error("recording the review request of run %s failed: %s", summary.run_id, exc)
            notify(REQUEST_NOT_RECORDED)
            self._show_as_recorded(prepared, posted, channel, ts)
            return
        if behind:  # the run's tags hold the request; the registry copy follows
            self.store.enqueue(MIRROR_QUEUE, summary.run_id, datetime.now(tz=UTC).timestamp())
        if self.on_change is not None:  # the requester and the votes it keeps (the reviewers: bot.home)
            self.on_change({state.requested_by, *(v.user for v in state.approvals + state.change_requests)})

    def _show_as_recorded(self, prepared: PreparedCard, posted: SlackMessage, channel: str, ts: str) -> None:
        """The complete card when the request could not be written: it shows the review as the run's tags
        hold it now, not as they were when the run was first read, so a vote recorded meanwhile (by
        another worker holding the lock) is not hidden by this update. If even reading fails, the card as
        prepared."""
        run_id = prepared.summary.run_id
        try:
            card = self.preparer.rendered(
                prepared, self.records.review_of(run_id, self.records.run_tags(run_id))
            )
        except ReviewBotError as exc:
            log.warning("re-reading the review of run %s failed: %s; showing it as first read", run_id, exc)
            card = prepared.card
        self._show(card, posted, channel, ts)

    def _show(self, card: SlackMessage, posted: SlackMessage, channel: str, ts: str) -> None:
        """The complete card in place of the one posted first (nothing to do when they are the same)."""
        if card != posted:
            self.outbox.update(channel, ts, card, what=f"the card {channel}/{ts}")

    def _post_thread(self, prepared: PreparedCard, channel: str, ts: str, notify: Notify) -> None:
        """Each part goes on its own: one that fails is logged and reported, the rest still go."""
        self.outbox.fill_thread(
            self.preparer.thread(prepared),
            channel,
            ts,
            notify,
            what=f"run {prepared.summary.run_id}",
            part_failed=THREAD_PART_FAILED,
        )
