"""Reading a sweep from MLflow: the children of a run, ranked by the sweep's rules."""

from __future__ import annotations

from bot.mlflow.experiments import Experiments
from bot.mlflow.runs import Run, run_name
from bot.mlflow.urls import run_url
from bot.models import Direction, MetricGoal, RunSummary
from bot.sweeps.rules import SweepChild, SweepRanking, rank_children


def child_of(run: Run, ui_url: str) -> SweepChild:
    info = run.info
    return SweepChild(
        run_id=info.run_id,
        run_name=run_name(run),
        run_url=run_url(ui_url, info.experiment_id, info.run_id),
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
    )


class SweepReader:
    def __init__(
        self,
        experiments: Experiments,
        ui_url: str,
        *,
        primary_metric: MetricGoal | None,
        metric_directions: dict[str, Direction],
    ) -> None:
        self.experiments = experiments
        self.ui_url = ui_url
        self.primary_metric = primary_metric
        self.metric_directions = metric_directions

    def children(self, experiment_id: str, parent_run_id: str) -> SweepRanking:
        """The children of `parent_run_id` (one paginated search), best first."""
        runs, more = self.experiments.child_runs(experiment_id, parent_run_id)
        return rank_children(
            [child_of(run, self.ui_url) for run in runs],
            more=more,
            primary=self.primary_metric,
            overrides=self.metric_directions,
        )

    def sweep_of(self, summary: RunSummary) -> SweepRanking | None:
        """The run's children when it is a sweep's parent; None when it has none."""
        ranking = self.children(summary.experiment_id, summary.run_id)
        return ranking if ranking.children else None
