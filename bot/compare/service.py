"""`/review compare` and `/review leaderboard`: MLflow in (through bot.mlflow), builders, Slack out.

Both answer in the channel where the command was typed (they are answers to the person, not review
cards); anything that goes wrong is told to that person only, and nothing is posted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn

from bot import charts
from bot.commands import COMPARE_TWICE, CompareCommand, LeaderboardCommand
from bot.compare.blocks import (
    BARS_COMMENT,
    BARS_TITLE,
    COMPARISON_PART_FAILED,
    HISTORIES_COMMENT,
    HISTORIES_TITLE,
    TABLE_FILES_COMMENT,
    BuiltComparison,
    build_chart_upload,
    build_comparison,
)
from bot.compare.leaderboard import (
    NO_DIRECTION,
    NO_METRIC_GIVEN,
    NO_RUNS,
    UNKNOWN_EXPERIMENT,
    UNKNOWN_METRIC,
    build_leaderboard,
    metric_names,
)
from bot.compare.rules import direction_of, goal_direction, label_runs
from bot.errors import BadReference, NotFound, ReviewBotError
from bot.mlflow.experiments import Experiments
from bot.mlflow.histories import Histories, finished_runs
from bot.mlflow.runs import Runs
from bot.mlflow.urls import experiment_url
from bot.models import Direction, MetricGoal, RunSummary
from bot.request_ids import ContextThreadPoolExecutor
from bot.slack.advice import tells_the_unexpected
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, truncate
from bot.slack.outbox import FileUpload, Notify, Outbox, ThreadItem, UploadFile

COMPARE_PANELS = 24  # 20 metrics of a typical comparison fit on one chart
# Points per run and metric in the overlaid histories: a panel of the 3-column chart is about 350 px
# wide, so more points draw nothing more, while the server's sampling and JSON grow with them
# (measured: a 10-run request takes 1.3 s at 500 points, 1.7 s at 1,000).
COMPARE_POINTS = 500
# Points read whole per comparison (every point, so no spike is missed); past it, a series is drawn
# from MLflow's sample of COMPARE_POINTS and the chart's comment says which (runs reviewed before are
# whole from the cache). Measured on the test server under load: reading 2 million points (10 runs x
# 20 metrics x 10,000 steps) took 51 s against 9 s for the sample.
COMPARE_FULL_BUDGET = 50_000
HISTORIES_SAMPLED = (
    " Drawn from MLflow's sample of {n} points per run (a one-step spike can be missing): {keys}."
)
SHOWN_NAME_CHARS = 100


@dataclass(frozen=True)
class PreparedComparison:
    runs: list[RunSummary]
    built: BuiltComparison

    @property
    def message(self) -> SlackMessage:
        return self.built.message


class ComparisonService:
    def __init__(
        self,
        runs: Runs,
        histories: Histories,
        experiments: Experiments,
        *,
        primary_metric: MetricGoal | None,
        metric_directions: dict[str, Direction],
        key_metrics: list[str],
    ) -> None:
        self.runs = runs
        self.histories = histories
        self.experiments = experiments
        self.primary_metric = primary_metric
        self.metric_directions = metric_directions
        self.key_metrics = key_metrics

    # --- compare ---------------------------------------------------------------------------------

    def compare(self, command: CompareCommand) -> PreparedComparison:
        run_ids = [self.runs.resolve_run(ref) for ref in command.refs]
        for index, run_id in enumerate(run_ids):
            if run_id in run_ids[:index]:  # e.g. a run id and the model version logged from it
                raise BadReference(COMPARE_TWICE.format(ref=_shown(command.refs[index].raw)))
        runs = self.runs.compared_summaries(run_ids)
        return PreparedComparison(runs, build_comparison(runs, self.metric_directions, self.key_metrics))

    def comparison_thread(self, prepared: PreparedComparison) -> Iterator[ThreadItem]:
        """The bar chart of final values, the overlaid histories, and the table when it was too wide.

        The histories are fetched while the bar chart is drawn and posted: MLflow's sampling is the
        slow part of a comparison (see README, Benchmarks).
        """
        runs, table = prepared.runs, prepared.built.table
        labels = [f"{label}: {run.run_name}" for label, run in zip(label_runs(len(runs)), runs, strict=True)]
        with ContextThreadPoolExecutor(max_workers=1, thread_name_prefix="compare-histories") as pool:
            histories = (
                pool.submit(
                    self.histories.envelopes,
                    [r.run_id for r in runs],
                    table.metrics,
                    width=charts.HISTORY_WIDTH_PX,
                    finished=finished_runs(runs),
                    full=lambda logged: charts.charted_keys(logged, self.key_metrics, COMPARE_PANELS),
                    probe_points=COMPARE_POINTS,
                    budget=COMPARE_FULL_BUDGET,
                )
                if table.metrics
                else None
            )
            bars = charts.render_final_bars(
                label_runs(len(runs)),
                [(k, [r.metrics.get(k) for r in runs]) for k in table.metrics],
                BARS_TITLE,
                COMPARE_PANELS,
            )
            yield from _present(
                build_chart_upload("final metrics chart", BARS_COMMENT, bars, "final-metrics.png", BARS_TITLE)
            )
            if histories is not None:
                by_run = histories.result()
                overlay = charts.render_overlay(
                    [
                        charts.ComparedSeries(label, by_run[r.run_id])
                        for label, r in zip(labels, runs, strict=True)
                    ],
                    HISTORIES_TITLE,
                    COMPARE_PANELS,
                    first=self.key_metrics,
                )
                yield from _present(
                    build_chart_upload(
                        "metric histories chart",
                        HISTORIES_COMMENT,
                        overlay,
                        "metric-histories.png",
                        HISTORIES_TITLE,
                    )
                )
        if prepared.built.table_in_thread:
            files = [UploadFile("comparison.csv", "Comparison table (CSV)", table.csv())]
            png = charts.render_table(table.header, table.rows, "Comparison")
            if png is not None:
                files.insert(0, UploadFile("comparison-table.png", "Comparison table", png))
            yield FileUpload(name="comparison table", comment=TABLE_FILES_COMMENT, files=files)

    # --- leaderboard -----------------------------------------------------------------------------

    def leaderboard(self, command: LeaderboardCommand) -> SlackMessage:
        """The experiment's top runs by the metric; unknown experiment, metric or no runs: explained."""
        experiment, metric = self._experiment_and_metric(command.words, command.direction is not None)
        experiment_id, name = experiment
        metric = metric or (self.primary_metric.key if self.primary_metric else None)
        if metric is None:
            keys, count = self.experiments.metric_keys(experiment_id)
            if not count:
                raise NotFound(NO_RUNS.format(name=_shown(name)))
            raise BadReference(NO_METRIC_GIVEN.format(name=_shown(name), metrics=metric_names(keys)))
        direction = command.direction or self._direction(metric)
        if direction is Direction.UNKNOWN:
            # Ranking by a guess could put the worst run first: ask, unless no run logged it at all.
            if not self.experiments.top_runs(experiment_id, name, metric, Direction.MAX, 1):
                self._no_runs_with(experiment_id, name, metric)
            raise BadReference(NO_DIRECTION.format(name=_shown(_quoted(name)), metric=_shown(metric)))
        runs = self.experiments.top_runs(experiment_id, name, metric, direction, command.limit)
        if not runs:
            self._no_runs_with(experiment_id, name, metric)
        return build_leaderboard(
            name, experiment_url(self.runs.ui_url, experiment_id), metric, direction, runs
        )

    def _no_runs_with(self, experiment_id: str, name: str, metric: str) -> NoReturn:
        """Raise what the person is told when no run of the experiment logged `metric`."""
        keys, count = self.experiments.metric_keys(experiment_id)
        if not count:
            raise NotFound(NO_RUNS.format(name=_shown(name)))
        raise NotFound(
            UNKNOWN_METRIC.format(name=_shown(name), metric=_shown(metric), metrics=metric_names(keys))
        )

    def _experiment_and_metric(
        self, words: Sequence[str], metric_given: bool = False
    ) -> tuple[tuple[str, str], str | None]:
        """The whole text as an experiment name first; else all but the last word, which is the metric
        (only that when the metric came with its direction: `valid-l2:min`)."""
        tries: list[tuple[str, str | None]] = [] if metric_given else [(" ".join(words), None)]
        if len(words) > 1:
            tries.append((" ".join(words[:-1]), words[-1]))
        for name, metric in tries:
            found = self.experiments.find_experiment(name)
            if found is not None:
                return found, metric
        raise NotFound(UNKNOWN_EXPERIMENT.format(name=_shown(" ".join(words))))

    def _direction(self, metric: str) -> Direction:
        if self.primary_metric and self.primary_metric.key == metric:
            return goal_direction(self.primary_metric, self.metric_directions)
        return direction_of(metric, self.metric_directions)


class ComparisonPublisher:
    """Posts a comparison or a leaderboard where it was asked for, and tells the person what failed."""

    def __init__(self, service: ComparisonService, outbox: Outbox) -> None:
        self.service = service
        self.outbox = outbox

    @tells_the_unexpected("comparing runs")
    def publish_comparison(self, command: CompareCommand, channel: str, notify: Notify) -> str | None:
        try:
            prepared = self.service.compare(command)
            ts = self.outbox.post(channel, prepared.message, what="comparison")
        except ReviewBotError as exc:
            notify(exc.user_message())
            return None
        items = self.service.comparison_thread(prepared)
        self.outbox.fill_thread(
            items, channel, ts, notify, what="a comparison", part_failed=COMPARISON_PART_FAILED
        )
        return ts

    @tells_the_unexpected("building a leaderboard")
    def publish_leaderboard(self, command: LeaderboardCommand, channel: str, notify: Notify) -> str | None:
        try:
            return self.outbox.post(channel, self.service.leaderboard(command), what="leaderboard")
        except ReviewBotError as exc:
            notify(exc.user_message())
        return None


def _present(item: ThreadItem | None) -> Iterator[ThreadItem]:
    if item is not None:
        yield item


def _quoted(name: str) -> str:
    """An experiment name as typed back into the command: in quotes when it has spaces."""
    return f'"{name}"' if any(c.isspace() for c in name) else name


def _shown(text: str) -> str:
    """A name echoed inside `code`: no backticks, escaped, bounded."""
    return truncate(escape(text.replace("`", "'")), SHOWN_NAME_CHARS)
