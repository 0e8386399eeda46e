"""Posting a review: MLflow in, the card and its thread out.

`ReviewPreparer` reads MLflow and calls the pure builders (it is what `review-bot preview` runs);
`ReviewPublisher` sends what the preparer made to Slack and tells the requester how it went.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import charts
from bot.blocks.card import CardLayout, build_review_card, plan_card
from bot.blocks.comparison import (
    OVERLAY_COMMENT,
    OVERLAY_TITLE,
    build_baseline_comparison,
    build_charts_comment,
)
from bot.blocks.message import SlackMessage
from bot.blocks.replies import (
    POSTED,
    REQUEST_NOT_RECORDED,
    THREAD_PART_FAILED,
    UNEXPECTED,
    build_slack_advice,
    channel_mention,
)
from bot.blocks.thread import (
    CHART_TITLE,
    NO_HISTORY,
    build_chart_comment,
    build_note_continuation,
    build_overflow,
    build_plots_comment,
)
from bot.cards import CardIndex, CardRef
from bot.comparison import baseline_tags, choose_baseline, goal_direction
from bot.errors import BadReference, NotFound, ReviewBotError, SlackRefused, log_unexpected
from bot.mlflow_gateway import MlflowGateway
from bot.models import (
    Baseline,
    BaselineReason,
    Direction,
    MetricGoal,
    MetricSeries,
    ReviewState,
    RunRef,
    RunSummary,
)
from bot.store import LockBusy, Store, run_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadFile:
    filename: str
    title: str
    content: bytes


@dataclass(frozen=True)
class FileUpload:
    """Files posted into the thread together, with one comment."""

    name: str  # what this part is, for logs and error messages
    comment: str
    files: list[UploadFile] = field(default_factory=list)


ThreadItem = SlackMessage | FileUpload

BASELINE_IS_THE_RUN = (
    ":thinking_face: {what} is the run under review itself; a baseline must be another run. "
    "Leave `--baseline` out to let the bot choose one."
)
UNKNOWN_BASELINE = ":mag: The baseline you gave could not be used: {reason}"


@dataclass(frozen=True)
class PreparedCard:
    summary: RunSummary
    layout: CardLayout
    card: SlackMessage


class ReviewPreparer:
    def __init__(
        self,
        gateway: MlflowGateway,
        key_metrics: list[str],
        max_images: int,
        max_image_bytes: int,
        required_approvals: int = 1,
        *,
        primary_metric: MetricGoal | None = None,
        metric_directions: dict[str, Direction] | None = None,
        deployment_aliases: list[str] | None = None,
    ) -> None:
        self.required_approvals = required_approvals
        self.primary_metric = primary_metric
        self.metric_directions = metric_directions or {}
        self.deployment_aliases = deployment_aliases if deployment_aliases is not None else []
        self.gateway = gateway
        self.key_metrics = key_metrics
        self.max_images = max_images
        self.max_image_bytes = max_image_bytes

    def card(self, ref: RunRef, requested_by: str, baseline: RunRef | None = None) -> PreparedCard:
        summary = self.gateway.run_summary(self.gateway.resolve(ref))
        summary = summary.model_copy(update={"baseline": self.baseline(summary, baseline)})
        layout = plan_card(summary, self.key_metrics)
        return PreparedCard(
            summary,
            layout,
            build_review_card(
                summary,
                requested_by=requested_by,
                key_metrics=self.key_metrics,
                required_approvals=self.required_approvals,
            ),
        )

    def baseline(self, summary: RunSummary, requested: RunRef | None = None) -> Baseline:
        """The run this review compares with: the one asked for, else the deployed version it would
        replace, else its parent run, else the best earlier run by PRIMARY_METRIC. Each lookup runs
        only when the ones before it found nothing."""

        def requested_baseline() -> Baseline | None:
            if requested is None:
                return None
            try:
                run_id = self.gateway.resolve(requested)
                found = self.gateway.baseline_of(run_id, BaselineReason.REQUESTED, missing_ok=False)
            except NotFound as exc:
                raise NotFound(UNKNOWN_BASELINE.format(reason=exc.user_message())) from exc
            assert found is not None
            if found.run_id == summary.run_id:
                raise BadReference(BASELINE_IS_THE_RUN.format(what=requested.describe()))
            return found

        def candidates() -> Iterator[Baseline | None]:
            yield requested_baseline()
            if summary.model_versions and self.deployment_aliases:
                yield self.gateway.deployed_baseline(summary, self.deployment_aliases)
            if summary.parent_run_id:
                yield self.gateway.baseline_of(summary.parent_run_id, BaselineReason.PARENT)
            if self.primary_metric:
                goal = self.primary_metric
                direction = goal_direction(goal, self.metric_directions)
                yield self.gateway.best_earlier_baseline(summary, goal.key, direction)

        chosen = choose_baseline(summary.run_id, candidates())
        if chosen.reason is BaselineReason.NONE and self.primary_metric:
            return chosen.model_copy(update={"metric": self.primary_metric.key})
        return chosen

    def thread(self, prepared: PreparedCard) -> Iterator[ThreadItem]:
        """Thread items, most useful first, each made only when the previous one is sent."""
        summary = prepared.summary
        baseline = summary.baseline
        baseline_summary = self._baseline_summary(baseline)
        if baseline is None or baseline_summary is None:
            yield self._chart(summary)
        else:
            # One history request per metric serves both runs: the run's own chart and the overlay.
            histories = self.gateway.bulk_histories([summary.run_id, baseline.run_id], summary.metrics)
            yield self._chart(summary, histories[summary.run_id])
            yield from build_baseline_comparison(
                summary, baseline_summary, baseline, self.metric_directions, self.key_metrics
            )
            overlay = self._overlay(summary, baseline_summary, histories)
            if overlay is not None:
                yield overlay
        plots = self._plots(summary)
        if plots is not None:
            yield plots
        yield from build_note_continuation(prepared.layout, summary)
        yield from build_overflow(prepared.layout, summary)

    def _baseline_summary(self, baseline: Baseline | None) -> RunSummary | None:
        """The baseline run as it is now; None without one, or when it was deleted since the card was made."""
        if baseline is None or not baseline.run_id:
            return None
        try:
            return self.gateway.compared_summaries([baseline.run_id])[0]
        except NotFound:
            return None

    def _chart(self, summary: RunSummary, histories: list[MetricSeries] | None = None) -> ThreadItem:
        if histories is None:
            histories = self.gateway.metric_histories(summary.run_id, summary.metrics)
        chart = charts.render_metric_history(histories, title=CHART_TITLE.format(run=summary.run_name))
        if chart.png is None:
            return SlackMessage(text=NO_HISTORY)
        return FileUpload(
            name="metric chart",
            comment=build_chart_comment(len(chart.panels), chart.omitted),
            files=[
                UploadFile(
                    filename="metric-history.png",
                    title=CHART_TITLE.format(run=summary.run_name),
                    content=chart.png,
                )
            ],
        )

    def _overlay(
        self, summary: RunSummary, baseline: RunSummary, histories: dict[str, list[MetricSeries]]
    ) -> FileUpload | None:
        """Both runs' histories of the metrics they share, the baseline dashed; None if none has a history."""
        shared = set(summary.metrics) & set(baseline.metrics)
        title = OVERLAY_TITLE.format(run=summary.run_name, baseline=baseline.run_name)
        chart = charts.render_overlay(
            [
                charts.ComparedSeries(
                    summary.run_name, [s for s in histories[summary.run_id] if s.key in shared]
                ),
                charts.ComparedSeries(
                    f"baseline: {baseline.run_name}",
                    [s for s in histories.get(baseline.run_id, []) if s.key in shared],
                ),
            ],
            title=title,
            dashed_last=True,
        )
        if chart.png is None:
            return None
        return FileUpload(
            name="baseline chart",
            comment=build_charts_comment(OVERLAY_COMMENT, len(chart.panels), chart.omitted),
            files=[UploadFile(filename="vs-baseline.png", title=title, content=chart.png)],
        )

    def _plots(self, summary: RunSummary) -> FileUpload | None:
        images = self.gateway.list_images(summary.run_id)
        if not images:
            return None
        too_big = [a for a in images if a.size > self.max_image_bytes]
        fitting = [a for a in images if a.size <= self.max_image_bytes]
        shown, not_shown = fitting[: self.max_images], fitting[self.max_images :]
        files = []
        for artifact in shown:
            content = self.gateway.download_artifact(summary.run_id, artifact.path)
            if len(content) > self.max_image_bytes:  # the store did not report a size
                too_big.append(artifact)
                continue
            files.append(
                UploadFile(filename=artifact.path.rsplit("/", 1)[-1], title=artifact.path, content=content)
            )
        if not files:
            return FileUpload(
                name="plots", comment=build_plots_comment([], too_big, not_shown, self.max_image_bytes)
            )
        return FileUpload(
            name="plots",
            comment=build_plots_comment(
                [a for a in shown if a not in too_big], too_big, not_shown, self.max_image_bytes
            ),
            files=files,
        )


Notify = Callable[[str], None]


class ReviewPublisher:
    def __init__(
        self,
        preparer: ReviewPreparer,
        client: WebClient,
        review_channel: str | None,
        store: Store,
        cards: CardIndex,
    ) -> None:
        self.preparer = preparer
        self.client = client
        self.review_channel = review_channel
        self.store = store
        self.cards = cards

    def target_channel(self, origin_channel: str) -> str:
        return self.review_channel or origin_channel

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
            prepared = self.preparer.card(ref, requested_by, baseline)
            ts = self._post_card(prepared, channel)
        except ReviewBotError as exc:
            notify(exc.user_message())
            return None
        except Exception:
            notify(UNEXPECTED.format(error_id=log_unexpected(log, f"posting the review of {ref.raw}")))
            return None
        summary = prepared.summary
        self.cards.remember(channel, ts, CardRef(summary.run_id, summary.experiment_id))
        permalink = self.permalink(channel, ts)
        self._record_request(summary, requested_by, channel, ts, permalink, notify)
        notify(POSTED.format(where=channel_mention(channel), permalink=permalink))
        self._post_thread(prepared, channel, ts, notify)
        return ts

    def _record_request(
        self, summary: RunSummary, requested_by: str, channel: str, ts: str, permalink: str, notify: Notify
    ) -> None:
        """The review request goes to the run's tags; a run already under review keeps its votes."""
        gateway = self.preparer.gateway
        try:
            with run_lock(self.store, summary.run_id):
                state = gateway.review_of(summary.run_id) or ReviewState(
                    run_id=summary.run_id, requested_by=requested_by, requested_at=datetime.now(tz=UTC)
                )
                state = state.model_copy(
                    update={"slack_channel": channel, "slack_ts": ts, "slack_permalink": permalink}
                )
                extra = baseline_tags(summary.baseline) if summary.baseline else None
                gateway.record_review(state, summary.model_versions, extra)
        except (ReviewBotError, LockBusy) as exc:
            log.error("recording the review request of run %s failed: %s", summary.run_id, exc)
            notify(REQUEST_NOT_RECORDED)

    def _post_card(self, prepared: PreparedCard, channel: str) -> str:
        try:
            response = self.client.chat_postMessage(
                channel=channel, unfurl_links=False, **prepared.card.as_kwargs()
            )
        except SlackApiError as exc:
            code = exc.response.get("error", "unknown_error")
            log.error("chat.postMessage to %s refused: %s (run %s)", channel, code, prepared.summary.run_id)
            raise SlackRefused(code, channel, build_slack_advice(code, channel)) from exc
        return response["ts"]

    def permalink(self, channel: str, ts: str) -> str:
        try:
            return self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
        except SlackApiError as exc:
            log.warning("chat.getPermalink failed: %s", exc.response.get("error"))
            return ""

    def _post_thread(self, prepared: PreparedCard, channel: str, ts: str, notify: Notify) -> None:
        """Each part goes on its own: one that fails is logged and reported, the rest still go."""
        items = self.preparer.thread(prepared)
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except ReviewBotError as exc:  # MLflow failed mid-thread: the card stands, say so
                notify(exc.user_message())
                return
            except Exception:
                what = f"preparing the thread for run {prepared.summary.run_id}"
                notify(UNEXPECTED.format(error_id=log_unexpected(log, what)))
                return
            try:
                self._send(item, channel, ts)
            except SlackApiError as exc:
                code = exc.response.get("error", "unknown_error")
                part = item.name if isinstance(item, FileUpload) else "message"
                log.error("thread %s for run %s refused: %s", part, prepared.summary.run_id, code)
                notify(THREAD_PART_FAILED.format(part=part, code=code))

    def _send(self, item: ThreadItem, channel: str, ts: str) -> None:
        send_to_thread(self.client, item, channel, ts)


def send_to_thread(client: WebClient, item: ThreadItem, channel: str, ts: str) -> None:
    """One thread item: a message, or files uploaded together (files v2) with their comment."""
    if isinstance(item, SlackMessage):
        client.chat_postMessage(channel=channel, thread_ts=ts, unfurl_links=False, **item.as_kwargs())
    elif item.files:
        client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            initial_comment=item.comment,
            file_uploads=[
                {"content": f.content, "filename": f.filename, "title": f.title} for f in item.files
            ],
        )
    else:
        client.chat_postMessage(channel=channel, thread_ts=ts, text=item.comment)
