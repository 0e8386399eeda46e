"""Searching an experiment's runs: by name or id, ranked by a metric, and the metrics it logs."""

from __future__ import annotations

import math
import re
from datetime import datetime

from bot import tags
from bot.errors import NotFound
from bot.metrics.values import is_finite
from bot.mlflow.client import Mlflow
from bot.mlflow.runs import Run, summary_from_run
from bot.models import Direction, RunSummary

DIVERGED_SLACK = 10  # runs read past a leaderboard's length, in case some diverged (inf)
METRIC_SAMPLE_RUNS = 200  # recent runs read to list an experiment's metrics
CHILD_PAGE = 500  # child runs per search request
MAX_CHILDREN = 2000  # a sweep's children read at most: the count says "2000+" beyond
_RUN_ID = re.compile(r"^[0-9A-Za-z_-]+$")  # what may go between quotes in a search filter


def order_by_metric(key: str, direction: Direction) -> str:
    """An MLflow order_by clause putting the best value of `key` first."""
    # MLflow's search grammar takes any metric name between backticks (a backtick itself cannot be).
    return f"metrics.`{key}` {'ASC' if direction is Direction.MIN else 'DESC'}"


class Experiments:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def find_experiment(self, name_or_id: str) -> tuple[str, str] | None:
        """(id, name) of an active experiment named, or numbered, `name_or_id`; None when there is none."""
        tracking = self.mlflow.tracking
        experiment = None
        if name_or_id.isdigit():
            try:
                experiment = self.mlflow.call("experiment", lambda: tracking.get_experiment(name_or_id))
            except NotFound:
                experiment = None
        if experiment is None:
            experiment = self.mlflow.call("experiment", lambda: tracking.get_experiment_by_name(name_or_id))
        if experiment is None or experiment.lifecycle_stage == "deleted":
            return None
        return experiment.experiment_id, experiment.name

    def top_runs(
        self, experiment_id: str, experiment_name: str, key: str, direction: Direction, limit: int
    ) -> list[RunSummary]:
        """The experiment's active runs that logged `key`, best first (one search request).

        MLflow sorts runs without the metric (or with NaN) last, so the first `limit` are the best, except
        runs that diverged: MLflow stores ±inf as ±1.8e308, which sorts first one way. Those are left out
        (a value, not a rank), and DIVERGED_SLACK more runs are read so that they do not take the places.
        """
        runs = self.mlflow.call(
            "runs",
            lambda: self.mlflow.tracking.search_runs(
                [experiment_id],
                order_by=[order_by_metric(key, direction)],
                max_results=limit + DIVERGED_SLACK,
            ),
        )
        ranked = [
            summary_from_run(run, experiment_name, [], self.mlflow.ui_url, self.mlflow.verifier)
            for run in runs
            if is_finite(run.data.metrics.get(key, math.nan))  # not MLflow's ±1.8e308 (inf)
        ]
        return ranked[:limit]

    def best_finished_runs(
        self, experiment_id: str, key: str, direction: Direction, started_before: datetime | None, limit: int
    ) -> list[Run]:
        """Finished runs of the experiment started before a moment, best by `key` first."""
        conditions = ["attributes.status = 'FINISHED'"]
        if started_before:
            conditions.append(f"attributes.start_time < {int(started_before.timestamp() * 1000)}")
        return self.mlflow.call(
            "runs",
            lambda: self.mlflow.tracking.search_runs(
                [experiment_id],
                filter_string=" and ".join(conditions),
                order_by=[order_by_metric(key, direction)],
                max_results=limit,
            ),
        )

    def metric_keys(self, experiment_id: str) -> tuple[list[str], int]:
        """Metrics logged by the experiment's most recent runs, and how many runs were read."""
        runs = self.mlflow.call(
            "runs",
            lambda: self.mlflow.tracking.search_runs(
                [experiment_id], max_results=METRIC_SAMPLE_RUNS, order_by=["attributes.start_time DESC"]
            ),
        )
        return sorted({k for run in runs for k in run.data.metrics}), len(runs)

    def child_runs(self, experiment_id: str, parent_run_id: str) -> tuple[list[Run], bool]:
        """The active runs of the experiment tagged as children of `parent_run_id` (a sweep's), paginated
        up to MAX_CHILDREN; True when there are more than that."""
        if not _RUN_ID.match(parent_run_id):  # a tag anyone can set: never pasted into a filter as is
            return [], False
        found: list[Run] = []
        token = None
        while True:
            wanted = min(CHILD_PAGE, MAX_CHILDREN - len(found))
            page = self.mlflow.call(
                "child runs",
                lambda token=token, wanted=wanted: self.mlflow.tracking.search_runs(
                    [experiment_id],
                    filter_string=f"tags.`{tags.PARENT_RUN}` = '{parent_run_id}'",
                    max_results=wanted,
                    page_token=token,
                ),
            )
            found += list(page)
            token = page.token
            if not token or len(found) >= MAX_CHILDREN:
                return found[:MAX_CHILDREN], bool(token)
