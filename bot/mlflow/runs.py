"""Reading runs: what a reference points at, one run's summary, several runs', and runs found by tag.

Returns bot.models values, never MLflow entities; `summary_from_run` is the one place an MLflow run
becomes a RunSummary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot import tags
from bot.errors import BadReference, NotFound, ReviewBotError
from bot.mlflow.client import Mlflow, ms_to_datetime
from bot.mlflow.registry import Registry
from bot.mlflow.urls import experiment_url, run_url
from bot.models import (
    Baseline,
    DatasetInput,
    LoggedModelInfo,
    ModelVersionRef,
    RefKind,
    RunRef,
    RunSummary,
    SubjectKind,
)
from bot.request_ids import ContextThreadPoolExecutor
from bot.signature import Verifier
from bot.slack.mrkdwn import escape
from bot.subjects import describe, subject_kind

if TYPE_CHECKING:
    from bot.mlflow.subjects import SubjectReader

log = logging.getLogger(__name__)

READ_THREADS = 8
SEARCH_PAGE = 500
MAX_EXPERIMENTS = 1000
# Kept in this process for a short time, so a card needs one MLflow request before it is posted:
# an experiment's name (and whether it was deleted) almost never changes, and a run's params only grow
# while it runs (MLflow refuses to change a logged param).
EXPERIMENT_TTL_SECONDS = 300.0
PARAMS_TTL_SECONDS = 600.0
CACHED_ENTRIES = 1024

NOT_FROM_A_RUN = ":mag: {what} was not logged from an MLflow run, so there is nothing to review."
DELETED_RUN = ":wastebasket: Run `{run_id}` was deleted in MLflow. Restore it there to review it."
DELETED_COMPARED_RUN = ":wastebasket: Run `{run_id}` was deleted in MLflow."
# Deleting an experiment marks its runs deleted too: say which was deleted, and what brings it back.
DELETED_EXPERIMENT = (
    ":wastebasket: Experiment {name} was deleted in MLflow (restore it to review its runs): "
    "run `{run_id}` is in it."
)

Run = Any  # an mlflow.entities.Run
T = TypeVar("T")


class Recent(Generic[T]):
    """Values read lately, each kept `ttl` seconds, the oldest dropped past `size`. Thread-safe."""

    def __init__(self, ttl: float, size: int = CACHED_ENTRIES, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self.clock() - entry[0] > self.ttl:
                return None
            return entry[1]

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self.clock(), value)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class ExperimentInfo:
    name: str
    deleted: bool


def run_name(run: Run) -> str:
    return run.info.run_name or run.data.tags.get(tags.RUN_NAME, "") or run.info.run_id


def summary_from_run(
    run: Run,
    experiment_name: str,
    model_versions: list[ModelVersionRef],
    ui_url: str,
    verifier: Verifier,
) -> RunSummary:
    """Raises tags.UnreadableRecord when a review tag cannot be read."""
    info, data = run.info, run.data
    run_tags = data.tags
    return RunSummary(
        run_id=info.run_id,
        run_name=run_name(run),
        experiment_id=info.experiment_id,
        experiment_name=experiment_name,
        user=run_tags.get(tags.USER, "") or (info.user_id or ""),
        status=info.status or "",
        start_time=ms_to_datetime(info.start_time),
        end_time=ms_to_datetime(info.end_time),
        source_name=run_tags.get(tags.SOURCE_NAME, ""),
        git_commit=run_tags.get(tags.GIT_COMMIT, ""),
        metrics=dict(data.metrics),
        metric_steps=_metric_steps(run),
        params=dict(data.params),
        note=run_tags.get(tags.NOTE, ""),
        datasets=_datasets(run),
        model_versions=model_versions,
        run_url=run_url(ui_url, info.experiment_id, info.run_id),
        experiment_url=experiment_url(ui_url, info.experiment_id),
        review=verifier.review(info.run_id, run_tags),
        meeting=tags.meeting_from_tags(info.run_id, run_tags),
        baseline=tags.baseline_from_tags(run_tags),
        parent_run_id=run_tags.get(tags.PARENT_RUN, ""),
        sweep=tags.sweep_from_tags(run_tags),
    )


def _metric_steps(run: Run) -> dict[str, int]:
    """Each metric's last step: MLflow returns the latest value with its step (the largest step)."""
    steps: dict[str, int] = {}
    for metric in getattr(run.data, "_metric_objs", None) or []:
        steps[metric.key] = max(int(metric.step or 0), steps.get(metric.key, int(metric.step or 0)))
    return steps


def _datasets(run: Run) -> list[DatasetInput]:
    inputs = getattr(run, "inputs", None)
    result = []
    for dataset_input in getattr(inputs, "dataset_inputs", None) or []:
        dataset = dataset_input.dataset
        context = next((t.value for t in dataset_input.tags or [] if t.key == tags.DATASET_CONTEXT), "")
        result.append(
            DatasetInput(
                name=dataset.name or "",
                digest=dataset.digest or "",
                source_type=dataset.source_type or "",
                context=context,
            )
        )
    return result


def baseline_params(runs: Runs, baseline: Baseline | None) -> dict[str, str] | None:
    """The params of a card's baseline run, to show what differs from them; None without a baseline run,
    or when they cannot be read (logged): the card then lists the params unmarked."""
    if baseline is None or not baseline.run_id:
        return None
    try:
        return runs.params_of(baseline.run_id)
    except ReviewBotError as exc:
        log.warning("the params of baseline run %s could not be read: %s", baseline.run_id, exc)
        return None


NOT_A_RUN = (
    ":thinking_face: {what} is not a run (it has no source run), and only runs can be {done}. "
    "Name a run, or a model logged from one."
)


class Runs:
    def __init__(self, mlflow: Mlflow, registry: Registry, subjects: SubjectReader | None = None) -> None:
        self.mlflow = mlflow
        self.registry = registry
        # LoggedModels without a run, model versions without either, prompt versions (bot.subjects)
        self.subjects = subjects
        self._experiments: Recent[ExperimentInfo] = Recent(EXPERIMENT_TTL_SECONDS)
        self._params: Recent[dict[str, str]] = Recent(PARAMS_TTL_SECONDS)

    @property
    def ui_url(self) -> str:
        return self.mlflow.ui_url

    def resolve(self, ref: RunRef) -> str:
        """The id of what is reviewed when a person points at `ref` (bot.subjects): the run, or the run a
        model was logged from; without a run, the LoggedModel, the model version or the prompt version."""
        if ref.kind is RefKind.RUN:
            assert ref.run_id
            return ref.run_id
        if self.subjects is None:  # built without MLflow 3's readers: models from runs only
            assert ref.model_name
            run_id = self.registry.source_run(ref.model_name, version=ref.version, alias=ref.alias)
            if not run_id:
                raise NotFound(NOT_FROM_A_RUN.format(what=ref.describe()))
            return run_id
        return self.subjects.resolve(ref)

    def resolve_run(self, ref: RunRef, done: str = "compared") -> str:
        """The run behind `ref`, for what only runs have (histories, comparisons, leaderboards)."""
        subject = self.resolve(ref)
        if subject_kind(subject) is not SubjectKind.RUN:
            raise BadReference(NOT_A_RUN.format(what=ref.describe(), done=done))
        return subject

    def _experiment(self, run: Run) -> Any:
        experiment = self.mlflow.call(
            f"experiment {run.info.experiment_id}",
            lambda: self.mlflow.tracking.get_experiment(run.info.experiment_id),
        )
        self._experiments.put(
            run.info.experiment_id, ExperimentInfo(experiment.name, experiment.lifecycle_stage == "deleted")
        )
        return experiment

    def _experiment_info(self, run: Run) -> ExperimentInfo:
        """The run's experiment as read in the last EXPERIMENT_TTL_SECONDS, else read now."""
        cached = self._experiments.get(run.info.experiment_id)
        if cached is not None:
            return cached
        experiment = self._experiment(run)
        return ExperimentInfo(experiment.name, experiment.lifecycle_stage == "deleted")

    def _deleted(self, run: Run, message: str) -> NotFound:
        """What a deleted run is reported as: its experiment's deletion when that is what happened."""
        experiment = self._experiment(run)
        if experiment.lifecycle_stage == "deleted":
            return NotFound(
                DELETED_EXPERIMENT.format(name=f"`{escape(experiment.name)}`", run_id=run.info.run_id)
            )
        return NotFound(message.format(run_id=run.info.run_id))

    def run_summary(self, run_id: str, *, with_model_versions: bool = True) -> RunSummary:
        """One run, with its registered model versions and LoggedModels unless `with_model_versions` is
        False (a card posted before the registry is read: one `get_run`, its experiment's name mostly from
        memory). Any other subject id (bot.subjects) is read by bot.mlflow.subjects."""
        if subject_kind(run_id) is not SubjectKind.RUN:
            if self.subjects is None:
                raise NotFound(NOT_FROM_A_RUN.format(what=describe(run_id)))
            return self.subjects.summary(run_id)
        run = self.mlflow.call(f"run `{run_id}`", lambda: self.mlflow.tracking.get_run(run_id))
        if run.info.lifecycle_stage == "deleted":
            raise self._deleted(run, DELETED_RUN)
        self._params.put(run_id, dict(run.data.params))
        experiment = self._experiment_info(run)
        if experiment.deleted:  # a run MLflow did not mark when its experiment went
            raise NotFound(DELETED_EXPERIMENT.format(name=f"`{escape(experiment.name)}`", run_id=run_id))
        summary = summary_from_run(
            run,
            experiment.name,
            self.registry.model_versions_of(run_id) if with_model_versions else [],
            self.mlflow.ui_url,
            self.mlflow.verifier,
        )
        if with_model_versions:
            summary = summary.model_copy(
                update={"run_models": self.run_models(run_id, run.info.experiment_id)}
            )
        return summary

    def run_models(self, run_id: str, experiment_id: str = "") -> list[LoggedModelInfo]:
        """The LoggedModels a run logged (MLflow 3); none when they cannot be read (logged: the card
        goes without them)."""
        if self.subjects is None:
            return []
        try:
            return self.subjects.logged_models.of_run(run_id, experiment_id)
        except ReviewBotError as exc:
            log.warning("the logged models of run %s could not be read: %s", run_id, exc)
            return []

    def active_run(self, run_id: str) -> Run:
        run = self.mlflow.call(f"run `{run_id}`", lambda: self.mlflow.tracking.get_run(run_id))
        if run.info.lifecycle_stage == "deleted":
            raise self._deleted(run, DELETED_COMPARED_RUN)
        self._params.put(run_id, dict(run.data.params))
        return run

    def params_of(self, run_id: str) -> dict[str, str]:
        """A run's params, as read in the last PARAMS_TTL_SECONDS, else read now (NotFound if deleted)."""
        cached = self._params.get(run_id)
        return dict(cached) if cached is not None else dict(self.active_run(run_id).data.params)

    def compared_summaries(self, run_ids: list[str]) -> list[RunSummary]:
        """Summaries of several runs, read in parallel, without model versions (a comparison does not
        show them): one request per run and one per distinct experiment not read lately."""
        with ContextThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="mlflow-runs") as pool:
            runs = list(pool.map(self.active_run, run_ids))
        first_of = {run.info.experiment_id: run for run in reversed(runs)}
        names = {experiment_id: self._experiment_info(run).name for experiment_id, run in first_of.items()}
        return [
            summary_from_run(run, names[run.info.experiment_id], [], self.mlflow.ui_url, self.mlflow.verifier)
            for run in runs
        ]

    def experiment_names(self) -> dict[str, str]:
        experiments = self.mlflow.call(
            "experiments", lambda: self.mlflow.tracking.search_experiments(max_results=MAX_EXPERIMENTS)
        )
        return {e.experiment_id: e.name for e in experiments}

    def search_reviews(self, filter_string: str) -> list[tuple[RunSummary, dict[str, str]]]:
        """Active runs across all experiments matching an MLflow filter on their tags (paginated).

        Summaries without model versions: the agenda and the meeting rebuild do not show them.
        """
        names = self.experiment_names()
        found: list[tuple[RunSummary, dict[str, str]]] = []
        token = None
        while names:
            page = self.mlflow.call(
                "runs",
                lambda token=token: self.mlflow.tracking.search_runs(
                    list(names), filter_string=filter_string, max_results=SEARCH_PAGE, page_token=token
                ),
            )
            found += [
                (
                    summary_from_run(
                        run,
                        names.get(run.info.experiment_id, ""),
                        [],
                        self.mlflow.ui_url,
                        self.mlflow.verifier,
                    ),
                    run.data.tags,
                )
                for run in page
            ]
            token = page.token
            if not token:
                break
        return found
