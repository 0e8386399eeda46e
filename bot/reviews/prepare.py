"""Preparing a review: MLflow in, the card and its thread out, as values (no Slack).

`ReviewPreparer` is what `review-bot preview` runs; `bot.reviews.publish` sends what it makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bot import charts
from bot.compare.baseline import BaselineFinder
from bot.compare.blocks import OVERLAY_COMMENT, OVERLAY_TITLE, build_baseline_comparison, build_chart_upload
from bot.errors import NotFound
from bot.mlflow.artifacts import Artifacts
from bot.mlflow.histories import Histories
from bot.mlflow.runs import Runs
from bot.models import Baseline, Direction, MetricSeries, RunRef, RunSummary
from bot.reviews.card import CardLayout, build_review_card, plan_card
from bot.reviews.thread import (
    CHART_TITLE,
    NO_HISTORY,
    build_chart_comment,
    build_note_continuation,
    build_overflow,
    build_plots_comment,
)
from bot.slack.message import SlackMessage
from bot.slack.outbox import FileUpload, ThreadItem, UploadFile


@dataclass(frozen=True)
class PreparedCard:
    summary: RunSummary
    layout: CardLayout
    card: SlackMessage


class ReviewPreparer:
    def __init__(
        self,
        runs: Runs,
        histories: Histories,
        artifacts: Artifacts,
        baselines: BaselineFinder,
        *,
        key_metrics: list[str],
        max_images: int,
        max_image_bytes: int,
        required_approvals: int = 1,
        metric_directions: dict[str, Direction] | None = None,
    ) -> None:
        self.runs = runs
        self.histories = histories
        self.artifacts = artifacts
        self.baselines = baselines
        self.key_metrics = key_metrics
        self.max_images = max_images
        self.max_image_bytes = max_image_bytes
        self.required_approvals = required_approvals
        self.metric_directions = metric_directions or {}

    def card(self, ref: RunRef, requested_by: str, baseline: RunRef | None = None) -> PreparedCard:
        summary = self.runs.run_summary(self.runs.resolve(ref))
        summary = summary.model_copy(update={"baseline": self.baselines.choose(summary, baseline)})
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

    def thread(self, prepared: PreparedCard) -> Iterator[ThreadItem]:
        """Thread items, most useful first, each made only when the previous one is sent."""
        summary = prepared.summary
        baseline = summary.baseline
        baseline_summary = self._baseline_summary(baseline)
        if baseline is None or baseline_summary is None:
            yield self._chart(summary)
        else:
            # One history request per metric serves both runs: the run's own chart and the overlay.
            histories = self.histories.bulk_histories([summary.run_id, baseline.run_id], summary.metrics)
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
            return self.runs.compared_summaries([baseline.run_id])[0]
        except NotFound:
            return None

    def _chart(self, summary: RunSummary, histories: list[MetricSeries] | None = None) -> ThreadItem:
        if histories is None:
            histories = self.histories.metric_histories(summary.run_id, summary.metrics)
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
        return build_chart_upload("baseline chart", OVERLAY_COMMENT, chart, "vs-baseline.png", title)

    def _plots(self, summary: RunSummary) -> FileUpload | None:
        images = self.artifacts.list_images(summary.run_id)
        if not images:
            return None
        too_big = [a for a in images if a.size > self.max_image_bytes]
        fitting = [a for a in images if a.size <= self.max_image_bytes]
        shown, not_shown = fitting[: self.max_images], fitting[self.max_images :]
        files = []
        for artifact in shown:
            content = self.artifacts.download_artifact(summary.run_id, artifact.path)
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
