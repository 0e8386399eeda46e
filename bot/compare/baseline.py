"""Where the baseline is chosen: the run a review compares with, and why that one.

In order, each looked up only when the ones before found nothing: the run asked for with
`--baseline`, the version now under a deployment alias of a model this run produced (what it would
replace), for a child of a sweep its best sibling (the second best when it is the best itself) and then
its parent (only when the parent logs a metric the run logs too: a GridSearchCV parent shares none with
its children), the best earlier run of its experiment by PRIMARY_METRIC. The order itself
is the pure rule `bot.compare.rules.choose_baseline`; this module does the MLflow lookups.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.compare.rules import choose_baseline, deployed_alias, goal_direction
from bot.errors import BadReference, NotFound
from bot.metrics.values import is_finite
from bot.mlflow.experiments import Experiments
from bot.mlflow.registry import Registry
from bot.mlflow.runs import Run, Runs, run_name
from bot.mlflow.urls import run_url
from bot.models import Baseline, BaselineReason, Direction, MetricGoal, RunRef, RunSummary
from bot.request_ids import ContextThreadPoolExecutor
from bot.sweeps.rules import sibling_for
from bot.sweeps.service import SweepReader

BEST_EARLIER_CANDIDATES = 20  # earlier runs read to find the best one that has the metric

BASELINE_IS_THE_RUN = (
    ":thinking_face: {what} is the run under review itself; a baseline must be another run. "
    "Leave `--baseline` out to let the bot choose one."
)
UNKNOWN_BASELINE = ":mag: The baseline you gave could not be used: {reason}"


class BaselineFinder:
    def __init__(
        self,
        runs: Runs,
        registry: Registry,
        experiments: Experiments,
        *,
        primary_metric: MetricGoal | None,
        metric_directions: dict[str, Direction],
        deployment_aliases: list[str],
    ) -> None:
        self.runs = runs
        self.registry = registry
        self.experiments = experiments
        self.primary_metric = primary_metric
        self.metric_directions = metric_directions
        self.deployment_aliases = deployment_aliases
        self.sweeps = SweepReader(
            experiments, runs.ui_url, primary_metric=primary_metric, metric_directions=metric_directions
        )

    def choose(self, summary: RunSummary, requested: RunRef | None = None) -> Baseline:
        """The run this review compares with (a Baseline with reason NONE when there is none)."""

        def candidates() -> Iterator[Baseline | None]:
            yield self._requested(summary, requested)
            if summary.model_versions and self.deployment_aliases:
                yield self._deployed(summary)
            if summary.parent_run_id:
                yield from self._in_sweep(summary)
            if self.primary_metric:
                goal = self.primary_metric
                yield self._best_earlier(summary, goal.key, goal_direction(goal, self.metric_directions))

        chosen = choose_baseline(summary.run_id, candidates())
        if chosen.reason is BaselineReason.NONE and self.primary_metric:
            direction = goal_direction(self.primary_metric, self.metric_directions)
            return chosen.model_copy(
                update={"metric": self.primary_metric.key, "unranked": not direction.judged}
            )
        return chosen

    def _in_sweep(self, summary: RunSummary) -> Iterator[Baseline | None]:
        """A child run's best sibling (the parent's other children, read in parallel with the parent),
        then its parent when the two share a metric."""
        with ContextThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-parent") as pool:
            parent_read = pool.submit(self._active_or_none, summary.parent_run_id)
            siblings = self.sweeps.children(summary.experiment_id, summary.parent_run_id)
            parent = parent_read.result()
        chosen = sibling_for(summary.run_id, siblings)
        if chosen is not None:
            sibling, run_is_best = chosen
            yield Baseline(
                reason=BaselineReason.NEXT_BEST_SIBLING if run_is_best else BaselineReason.BEST_SIBLING,
                run_id=sibling.run_id,
                run_name=sibling.run_name,
                run_url=sibling.run_url,
                metric=siblings.metric,
                parent_name=run_name(parent) if parent is not None else summary.parent_run_id,
                parent_url=run_url(self.runs.ui_url, summary.experiment_id, summary.parent_run_id),
            )
        if parent is not None and set(parent.data.metrics) & set(summary.metrics):
            yield self._baseline(parent, BaselineReason.PARENT)

    def _active_or_none(self, run_id: str) -> Run | None:
        try:
            return self.runs.active_run(run_id)
        except NotFound:
            return None

    def _requested(self, summary: RunSummary, requested: RunRef | None) -> Baseline | None:
        """The baseline a person asked for: NotFound or BadReference saying why it cannot be used."""
        if requested is None:
            return None
        try:
            run = self.runs.active_run(self.runs.resolve_run(requested, "a baseline"))
        except NotFound as exc:
            raise NotFound(UNKNOWN_BASELINE.format(reason=exc.user_message())) from exc
        if run.info.run_id == summary.run_id:
            raise BadReference(BASELINE_IS_THE_RUN.format(what=requested.describe()))
        return self._baseline(run, BaselineReason.REQUESTED)

    def _baseline(self, run: Run, reason: BaselineReason, **extra: str) -> Baseline:
        info = run.info
        return Baseline(
            reason=reason,
            run_id=info.run_id,
            run_name=run_name(run),
            run_url=run_url(self.runs.ui_url, info.experiment_id, info.run_id),
            **extra,
        )

    def _deployed(self, summary: RunSummary) -> Baseline | None:
        """The version now under a deployment alias of a model this run produced: what it would replace."""
        own: dict[str, set[str]] = {}
        for mv in summary.model_versions:
            own.setdefault(mv.name, set()).add(mv.version)
        for name in sorted(own):
            found = deployed_alias(self.registry.registered_aliases(name), self.deployment_aliases, own[name])
            if found is None:
                continue
            alias, version = found
            source = self.registry.source_run(name, version=version)
            if not source or source == summary.run_id:
                continue
            try:
                run = self.runs.active_run(source)
            except NotFound:
                continue
            return self._baseline(run, BaselineReason.DEPLOYED, model_name=name, version=version, alias=alias)
        return None

    def _best_earlier(self, summary: RunSummary, key: str, direction: Direction) -> Baseline | None:
        """The best finished run of the same experiment started before this one, by `key`; none by a
        metric that is not judged (bookkeeping, or a direction the bot does not know)."""
        if not direction.judged:
            return None
        runs = self.experiments.best_finished_runs(
            summary.experiment_id, key, direction, summary.start_time, BEST_EARLIER_CANDIDATES
        )
        for run in runs:
            value = run.data.metrics.get(key)
            if run.info.run_id != summary.run_id and value is not None and is_finite(value):
                return self._baseline(run, BaselineReason.BEST_EARLIER, metric=key)
        return None
