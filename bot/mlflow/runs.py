"""Reading runs: what a reference points at, one run's summary, several runs', and runs found by tag.

Returns bot.models values, never MLflow entities; `summary_from_run` is the one place an MLflow run
becomes a RunSummary.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot import tags
from bot.errors import NotFound
from bot.mlflow.client import Mlflow, ms_to_datetime
from bot.mlflow.registry import Registry
from bot.mlflow.urls import experiment_url, run_url
from bot.models import DatasetInput, ModelVersionRef, RefKind, RunRef, RunSummary
from bot.signature import Verifier

READ_THREADS = 8
SEARCH_PAGE = 500
MAX_EXPERIMENTS = 1000

NOT_FROM_A_RUN = ":mag: {what} was not logged from an MLflow run, so there is nothing to review."
DELETED_RUN = ":wastebasket: Run `{run_id}` was deleted in MLflow. Restore it there to review it."
DELETED_COMPARED_RUN = ":wastebasket: Run `{run_id}` was deleted in MLflow."

Run = Any  # an mlflow.entities.Run


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
    )


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


class Runs:
    def __init__(self, mlflow: Mlflow, registry: Registry) -> None:
        self.mlflow = mlflow
        self.registry = registry

    @property
    def ui_url(self) -> str:
        return self.mlflow.ui_url

    def resolve(self, ref: RunRef) -> str:
        """The run id behind what a person pointed at."""
        if ref.kind is RefKind.RUN:
            assert ref.run_id
            return ref.run_id
        assert ref.model_name
        if ref.kind is RefKind.MODEL_VERSION:
            assert ref.version
            run_id = self.registry.source_run(ref.model_name, version=ref.version)
        else:
            assert ref.alias
            run_id = self.registry.source_run(ref.model_name, alias=ref.alias)
        if not run_id:
            raise NotFound(NOT_FROM_A_RUN.format(what=ref.describe()))
        return run_id

    def run_summary(self, run_id: str) -> RunSummary:
        run = self.mlflow.call(f"run `{run_id}`", lambda: self.mlflow.tracking.get_run(run_id))
        if run.info.lifecycle_stage == "deleted":
            raise NotFound(DELETED_RUN.format(run_id=run_id))
        experiment = self.mlflow.call(
            f"experiment {run.info.experiment_id}",
            lambda: self.mlflow.tracking.get_experiment(run.info.experiment_id),
        )
        return summary_from_run(
            run,
            experiment.name,
            self.registry.model_versions_of(run_id),
            self.mlflow.ui_url,
            self.mlflow.verifier,
        )

    def active_run(self, run_id: str) -> Run:
        run = self.mlflow.call(f"run `{run_id}`", lambda: self.mlflow.tracking.get_run(run_id))
        if run.info.lifecycle_stage == "deleted":
            raise NotFound(DELETED_COMPARED_RUN.format(run_id=run_id))
        return run

    def compared_summaries(self, run_ids: list[str]) -> list[RunSummary]:
        """Summaries of several runs, read in parallel, without model versions (a comparison does not
        show them): one request per run and one per distinct experiment."""
        with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="mlflow-runs") as pool:
            runs = list(pool.map(self.active_run, run_ids))
        names = {
            experiment_id: self.mlflow.call(
                f"experiment {experiment_id}", lambda e=experiment_id: self.mlflow.tracking.get_experiment(e)
            ).name
            for experiment_id in dict.fromkeys(run.info.experiment_id for run in runs)
        }
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
