"""Every MLflow read and write the bot makes. Returns bot.models values, never MLflow entities.

MLflow's own HTTP client retries 7 times with exponential back-off and waits up to 120 s per
request; a Slack bot must give up long before that, so the gateway sets the client's timeout and
retries (process-wide environment variables that MLflow reads on each request).
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import requests
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request, verify_rest_response

from bot.comparison import baseline_from_tags, deployed_alias
from bot.errors import MlflowUnavailable, NotFound
from bot.meetings import meeting_from_tags
from bot.models import (
    Baseline,
    BaselineReason,
    DatasetInput,
    Direction,
    ImageArtifact,
    MetricSeries,
    ModelVersionRef,
    RefKind,
    ReviewState,
    RunRef,
    RunSummary,
)
from bot.nudges import PRODUCTION_STAGE, SNOOZED_UNTIL_TAG, DeployedVersion, deployment_markers
from bot.review import MODEL_VERSION_TAGS, parse_moment, state_from_tags, tags_for

log = logging.getLogger(__name__)

T = TypeVar("T")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif")
# How deep to look for plots in a run's artifact tree: autolog puts them at the root, people
# tend to use one or two folders; a model folder is not worth walking.
MAX_ARTIFACT_DEPTH = 3
SKIP_ARTIFACT_DIRS = frozenset({"model", "models", "checkpoints"})
HISTORY_FETCH_THREADS = 8
# A bulk request for many runs keeps a server worker busy for about a second: more in flight than a
# small server has workers only queue, and a queued request can pass MLFLOW_TIMEOUT_SECONDS and be
# sent again (measured: 2 retries in 20 requests with 8 in flight against 2 workers).
MULTI_RUN_FETCH_THREADS = 4
HEALTH_TIMEOUT_SECONDS = 2
SEARCH_PAGE = 500
RUN_BATCH = 100  # run ids in one `attributes.run_id IN (...)` search
DISCUSSION_ARTIFACT = "review/discussion.md"
WEBHOOK_DESCRIPTION = "review-bot: nudges about models deployed without an approved review"
BULK_INTERVAL_ENDPOINT = "/api/2.0/mlflow/metrics/get-history-bulk-interval"
BULK_MAX_RUNS = 100  # the server's limit on run_ids per bulk-interval request
BEST_EARLIER_CANDIDATES = 20  # earlier runs read to find the best one that has the metric
METRIC_SAMPLE_RUNS = 200  # recent runs read to list an experiment's metrics
PARENT_RUN_TAG = "mlflow.parentRunId"

_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url}/#/experiments/{experiment_id}/runs/{run_id}" if ui_url else ""


def experiment_url(ui_url: str, experiment_id: str) -> str:
    return f"{ui_url}/#/experiments/{experiment_id}" if ui_url else ""


def model_version_url(ui_url: str, name: str, version: str) -> str:
    return f"{ui_url}/#/models/{quote(name, safe='')}/versions/{version}" if ui_url else ""


def _ms_to_datetime(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


class MlflowGateway:
    def __init__(
        self, tracking_uri: str, ui_url: str = "", timeout_seconds: int = 10, retries: int = 1
    ) -> None:
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout_seconds)
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
        self.tracking_uri = tracking_uri
        self.ui_url = ui_url
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # --- error mapping -------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one MLflow call, turning its failures into NotFound or MlflowUnavailable."""
        try:
            return fn()
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                raise NotFound(f":mag: MLflow has no {what}. Check the id, or paste the run's URL.") from exc
            raise MlflowUnavailable(self.tracking_uri, _short(exc)) from exc
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            raise MlflowUnavailable(self.tracking_uri, _short(exc)) from exc

    # --- reads -----------------------------------------------------------------------------------

    def health(self) -> str:
        """ "ok" or why not, within HEALTH_TIMEOUT_SECONDS whatever state MLflow is in."""
        try:
            if self.tracking_uri.startswith(("http://", "https://")):
                # The server's own health endpoint: one quick request, no client retries.
                response = requests.get(
                    f"{self.tracking_uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_SECONDS
                )
                response.raise_for_status()
            else:
                self._client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - health reports any failure as text
            return f"unreachable: {_short(exc)}"
        return "ok"

    def resolve(self, ref: RunRef) -> str:
        """The run id behind what a person pointed at."""
        if ref.kind is RefKind.RUN:
            assert ref.run_id
            return ref.run_id
        if ref.kind is RefKind.MODEL_VERSION:
            mv = self._call(
                f"model `{ref.model_name}` version {ref.version}",
                lambda: self._client.get_model_version(ref.model_name, ref.version),
            )
        else:
            mv = self._call(
                f"model `{ref.model_name}` with alias @{ref.alias}",
                lambda: self._client.get_model_version_by_alias(ref.model_name, ref.alias),
            )
        if not mv.run_id:
            raise NotFound(
                f":mag: {ref.describe()} was not logged from an MLflow run, so there is nothing to review."
            )
        return mv.run_id

    def run_summary(self, run_id: str) -> RunSummary:
        run = self._call(f"run `{run_id}`", lambda: self._client.get_run(run_id))
        if run.info.lifecycle_stage == "deleted":
            raise NotFound(
                f":wastebasket: Run `{run_id}` was deleted in MLflow. Restore it there to review it."
            )
        experiment = self._call(
            f"experiment {run.info.experiment_id}",
            lambda: self._client.get_experiment(run.info.experiment_id),
        )
        return self._summary(run, experiment.name, self.model_versions_of(run_id))

    def _summary(self, run, experiment_name: str, model_versions: list[ModelVersionRef]) -> RunSummary:  # noqa: ANN001
        info, data = run.info, run.data
        tags = data.tags
        return RunSummary(
            run_id=info.run_id,
            run_name=info.run_name or tags.get("mlflow.runName", "") or info.run_id,
            experiment_id=info.experiment_id,
            experiment_name=experiment_name,
            user=tags.get("mlflow.user", "") or (info.user_id or ""),
            status=info.status or "",
            start_time=_ms_to_datetime(info.start_time),
            end_time=_ms_to_datetime(info.end_time),
            source_name=tags.get("mlflow.source.name", ""),
            git_commit=tags.get("mlflow.source.git.commit", ""),
            metrics=dict(data.metrics),
            params=dict(data.params),
            note=tags.get("mlflow.note.content", ""),
            datasets=_datasets(run),
            model_versions=model_versions,
            run_url=run_url(self.ui_url, info.experiment_id, info.run_id),
            experiment_url=experiment_url(self.ui_url, info.experiment_id),
            review=state_from_tags(info.run_id, tags),
            meeting=meeting_from_tags(info.run_id, tags),
            baseline=baseline_from_tags(tags),
            parent_run_id=tags.get(PARENT_RUN_TAG, ""),
        )

    def model_versions_of(self, run_id: str) -> list[ModelVersionRef]:
        versions = self._call(
            "model registry", lambda: self._client.search_model_versions(f"run_id = '{run_id}'")
        )
        # search_model_versions leaves aliases out; the registered model has them (one call per model).
        aliases: dict[str, dict[str, list[str]]] = {}
        for name in {mv.name for mv in versions}:
            model = self._call(f"model `{name}`", lambda name=name: self._client.get_registered_model(name))
            by_version: dict[str, list[str]] = {}
            for alias, version in (getattr(model, "aliases", None) or {}).items():
                by_version.setdefault(str(version), []).append(alias)
            aliases[name] = by_version
        return sorted(
            (
                ModelVersionRef(
                    name=mv.name,
                    version=str(mv.version),
                    aliases=sorted(aliases.get(mv.name, {}).get(str(mv.version), [])),
                    stage=mv.current_stage or "",
                )
                for mv in versions
            ),
            key=lambda mv: (mv.name, int(mv.version) if mv.version.isdigit() else 0),
        )

    def metric_histories(
        self, run_id: str, keys: Iterable[str], max_points: int = 1000
    ) -> list[MetricSeries]:
        """Histories of the given metrics of one run, at most `max_points` each (see bulk_histories)."""
        return self.bulk_histories([run_id], keys, max_points).get(run_id, [])

    def bulk_histories(
        self, run_ids: list[str], keys: Iterable[str], max_points: int = 1000
    ) -> dict[str, list[MetricSeries]]:
        """Histories of the given metrics for several runs: {run_id: [series by key]}.

        A tracking server samples them itself: one request per metric key serves every run (its
        bulk-interval endpoint takes up to 100 run ids and keeps each run's first and last steps), so
        comparing 10 runs costs what one does, and a 100,000-step metric what a 1,000-step one does.
        The requests for different keys go in parallel. A local store returns full histories (one call
        per run and key) and the chart downsamples them. A run without a key gets no series for it
        (an empty one from a local store).
        """
        sampled = self.tracking_uri.startswith(("http://", "https://"))
        run_ids = list(dict.fromkeys(run_ids))

        def fetch(key: str) -> dict[str, list[tuple[int, int, float]]]:
            if sampled:
                points: dict[str, list[tuple[int, int, float]]] = {}
                for i in range(0, len(run_ids), BULK_MAX_RUNS):
                    chunk = run_ids[i : i + BULK_MAX_RUNS]
                    rows = self._call(
                        f"metric `{key}`", lambda chunk=chunk: self._sampled_history(chunk, key, max_points)
                    )
                    for run_id, point in rows:
                        points.setdefault(run_id, []).append(point)
                return points
            return {
                run_id: [
                    (m.step, m.timestamp, m.value)
                    for m in self._call(
                        f"metric `{key}`", lambda run_id=run_id: self._client.get_metric_history(run_id, key)
                    )
                ]
                for run_id in run_ids
            }

        keys = sorted(set(keys))
        threads = HISTORY_FETCH_THREADS if len(run_ids) == 1 else MULTI_RUN_FETCH_THREADS
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlflow-history") as pool:
            by_key = dict(zip(keys, pool.map(fetch, keys), strict=True))
        result: dict[str, list[MetricSeries]] = {run_id: [] for run_id in run_ids}
        for key in keys:
            for run_id, points in by_key[key].items():
                points.sort()
                result[run_id].append(
                    MetricSeries(key=key, steps=[p[0] for p in points], values=[p[2] for p in points])
                )
        return result

    def compared_summaries(self, run_ids: list[str]) -> list[RunSummary]:
        """Summaries of several runs, read in parallel, without model versions (a comparison does not
        show them): one request per run and one per distinct experiment."""
        with ThreadPoolExecutor(max_workers=HISTORY_FETCH_THREADS, thread_name_prefix="mlflow-runs") as pool:
            runs = list(pool.map(self._active_run, run_ids))
        names = {
            experiment_id: self._call(
                f"experiment {experiment_id}", lambda e=experiment_id: self._client.get_experiment(e)
            ).name
            for experiment_id in dict.fromkeys(run.info.experiment_id for run in runs)
        }
        return [self._summary(run, names[run.info.experiment_id], []) for run in runs]

    def _active_run(self, run_id: str):  # noqa: ANN202 - an mlflow Run
        run = self._call(f"run `{run_id}`", lambda: self._client.get_run(run_id))
        if run.info.lifecycle_stage == "deleted":
            raise NotFound(f":wastebasket: Run `{run_id}` was deleted in MLflow.")
        return run

    # --- baselines -------------------------------------------------------------------------------

    def baseline_of(self, run_id: str, reason: BaselineReason, *, missing_ok: bool = True) -> Baseline | None:
        """A run as a baseline; None when it is unknown or deleted (a deleted parent is no baseline),
        or NotFound saying which when `missing_ok` is False (a baseline the person asked for)."""
        try:
            run = self._active_run(run_id)
        except NotFound:
            if missing_ok:
                return None
            raise
        return self._baseline(run, reason)

    def _baseline(self, run, reason: BaselineReason, **extra: str) -> Baseline:  # noqa: ANN001
        info = run.info
        return Baseline(
            reason=reason,
            run_id=info.run_id,
            run_name=info.run_name or run.data.tags.get("mlflow.runName", "") or info.run_id,
            run_url=run_url(self.ui_url, info.experiment_id, info.run_id),
            **extra,
        )

    def deployed_baseline(self, summary: RunSummary, deployment_aliases: list[str]) -> Baseline | None:
        """The version now under a deployment alias of a model this run produced: what it would replace."""
        own: dict[str, set[str]] = {}
        for mv in summary.model_versions:
            own.setdefault(mv.name, set()).add(mv.version)
        for name in sorted(own):
            model = self._call(f"model `{name}`", lambda name=name: self._client.get_registered_model(name))
            aliases = {a: str(v) for a, v in (getattr(model, "aliases", None) or {}).items()}
            found = deployed_alias(aliases, deployment_aliases, own[name])
            if found is None:
                continue
            alias, version = found
            mv = self._call(
                f"model `{name}` version {version}",
                lambda name=name, version=version: self._client.get_model_version(name, version),
            )
            if not mv.run_id or mv.run_id == summary.run_id:
                continue
            try:
                run = self._active_run(mv.run_id)
            except NotFound:
                continue
            return self._baseline(run, BaselineReason.DEPLOYED, model_name=name, version=version, alias=alias)
        return None

    def best_earlier_baseline(self, summary: RunSummary, key: str, direction: Direction) -> Baseline | None:
        """The best finished run of the same experiment started before this one, by `key`."""
        if direction is Direction.NEUTRAL:
            return None
        conditions = ["attributes.status = 'FINISHED'"]
        if summary.start_time:
            conditions.append(f"attributes.start_time < {int(summary.start_time.timestamp() * 1000)}")
        runs = self._call(
            "runs",
            lambda: self._client.search_runs(
                [summary.experiment_id],
                filter_string=" and ".join(conditions),
                order_by=[order_by_metric(key, direction)],
                max_results=BEST_EARLIER_CANDIDATES,
            ),
        )
        for run in runs:
            value = run.data.metrics.get(key)
            if run.info.run_id != summary.run_id and value is not None and math.isfinite(value):
                return self._baseline(run, BaselineReason.BEST_EARLIER, metric=key)
        return None

    # --- experiments and leaderboards ------------------------------------------------------------

    def find_experiment(self, name_or_id: str) -> tuple[str, str] | None:
        """(id, name) of an active experiment named, or numbered, `name_or_id`; None when there is none."""
        experiment = None
        if name_or_id.isdigit():
            try:
                experiment = self._call("experiment", lambda: self._client.get_experiment(name_or_id))
            except NotFound:
                experiment = None
        if experiment is None:
            experiment = self._call("experiment", lambda: self._client.get_experiment_by_name(name_or_id))
        if experiment is None or experiment.lifecycle_stage == "deleted":
            return None
        return experiment.experiment_id, experiment.name

    def top_runs(
        self, experiment_id: str, experiment_name: str, key: str, direction: Direction, limit: int
    ) -> list[RunSummary]:
        """The experiment's active runs that logged `key`, best first (one search request).

        MLflow sorts runs without the metric (or with NaN) last, so the first `limit` are the best.
        """
        runs = self._call(
            "runs",
            lambda: self._client.search_runs(
                [experiment_id], order_by=[order_by_metric(key, direction)], max_results=limit
            ),
        )
        return [
            self._summary(run, experiment_name, [])
            for run in runs
            if math.isfinite(run.data.metrics.get(key, math.nan))
        ]

    def metric_keys(self, experiment_id: str) -> tuple[list[str], int]:
        """Metrics logged by the experiment's most recent runs, and how many runs were read."""
        runs = self._call(
            "runs",
            lambda: self._client.search_runs(
                [experiment_id], max_results=METRIC_SAMPLE_RUNS, order_by=["attributes.start_time DESC"]
            ),
        )
        return sorted({k for run in runs for k in run.data.metrics}), len(runs)

    # --- writes ----------------------------------------------------------------------------------

    def record_review(
        self,
        state: ReviewState,
        model_versions: list[ModelVersionRef],
        extra_tags: dict[str, str] | None = None,
    ) -> None:
        """Write the review's tags (and `extra_tags`, e.g. the baseline) on the run in one log_batch
        (all or nothing), then mirror the registry-facing ones onto the run's model versions.

        The run's tags are the source of truth; the mirror is rewritten whole on every change, so a
        mirror interrupted by an MLflow failure is corrected by the next write.
        """
        tags = tags_for(state)
        written = {**(extra_tags or {}), **tags}
        self._call(
            f"run `{state.run_id}`",
            lambda: self._client.log_batch(state.run_id, tags=[RunTag(k, v) for k, v in written.items()]),
        )
        for mv in model_versions:
            for key in MODEL_VERSION_TAGS:
                self._call(
                    f"model `{mv.name}` version {mv.version}",
                    lambda mv=mv, key=key: self._client.set_model_version_tag(
                        mv.name, mv.version, key, tags[key]
                    ),
                )

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Several tags on a run in one log_batch: all written or none."""
        self._call(
            f"run `{run_id}`",
            lambda: self._client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()]),
        )

    def search_reviews(self, filter_string: str) -> list[tuple[RunSummary, dict[str, str]]]:
        """Active runs across all experiments matching an MLflow filter on their tags (paginated).

        Summaries without model versions: the agenda and the meeting rebuild do not show them.
        """
        experiments = self._call("experiments", lambda: self._client.search_experiments(max_results=1000))
        names = {e.experiment_id: e.name for e in experiments}
        found: list[tuple[RunSummary, dict[str, str]]] = []
        token = None
        while names:
            page = self._call(
                "runs",
                lambda token=token: self._client.search_runs(
                    list(names), filter_string=filter_string, max_results=SEARCH_PAGE, page_token=token
                ),
            )
            found += [
                (self._summary(run, names.get(run.info.experiment_id, ""), []), run.data.tags) for run in page
            ]
            token = page.token
            if not token:
                break
        return found

    # --- the registry, for nudges ------------------------------------------------------------------

    def deployment_candidates(self, deployment_aliases: list[str]) -> list[ModelVersionRef]:
        """Every version under a deployment alias or in the legacy Production stage.

        Read from the registered models alone (each carries its aliases and its latest version per
        stage), so the cost is pages of models, never the number of versions or runs.
        """
        found: list[ModelVersionRef] = []
        token = None
        while True:
            page = self._call(
                "model registry",
                lambda token=token: self._client.search_registered_models(
                    max_results=SEARCH_PAGE, page_token=token
                ),
            )
            for model in page:
                by_version: dict[str, list[str]] = {}
                for alias, version in (getattr(model, "aliases", None) or {}).items():
                    by_version.setdefault(str(version), []).append(alias)
                production = {
                    str(mv.version)
                    for mv in model.latest_versions or []
                    if mv.current_stage == PRODUCTION_STAGE
                }
                for version in sorted(set(by_version) | production, key=_version_order):
                    stage = PRODUCTION_STAGE if version in production else ""
                    aliases = sorted(by_version.get(version, []))
                    if deployment_markers(aliases, stage, deployment_aliases):
                        found.append(
                            ModelVersionRef(name=model.name, version=version, aliases=aliases, stage=stage)
                        )
            token = page.token
            if not token:
                return found

    def deployed_version(self, name: str, version: str, deployment_aliases: list[str]) -> DeployedVersion:
        """One model version as it is now, and the review of the run it came from (two calls)."""
        found = self.model_version_state(name, version, deployment_aliases)
        if not found.run_id:
            return found
        try:
            run = self._call(f"run `{found.run_id}`", lambda: self._client.get_run(found.run_id))
        except NotFound:  # the run is gone: the version stays unreviewable, and says so
            return found
        return self._with_run(found, run)

    def model_version_state(self, name: str, version: str, deployment_aliases: list[str]) -> DeployedVersion:
        """A model version's aliases, stage, source run and snooze (one call), without its run's review."""
        mv = self._call(
            f"model `{name}` version {version}", lambda: self._client.get_model_version(name, version)
        )
        return DeployedVersion(
            name=name,
            version=str(mv.version),
            markers=deployment_markers(list(mv.aliases or []), mv.current_stage, deployment_aliases),
            run_id=mv.run_id or "",
            version_url=model_version_url(self.ui_url, name, str(mv.version)),
            snoozed_until=parse_moment((mv.tags or {}).get(SNOOZED_UNTIL_TAG)),
        )

    def with_reviews(self, versions: list[DeployedVersion]) -> list[DeployedVersion]:
        """The versions with their runs' reviews, read in batches of runs (one search per
        RUN_BATCH runs) rather than a call per run. A run that no longer exists leaves no review."""
        run_ids = sorted({v.run_id for v in versions if v.run_id})
        if not run_ids:
            return versions
        experiments = self._call("experiments", lambda: self._client.search_experiments(max_results=1000))
        runs = {}
        for i in range(0, len(run_ids), RUN_BATCH):
            batch = ", ".join(f"'{run_id}'" for run_id in run_ids[i : i + RUN_BATCH])
            page = self._call(
                "runs",
                lambda batch=batch: self._client.search_runs(
                    [e.experiment_id for e in experiments],
                    filter_string=f"attributes.run_id IN ({batch})",
                    max_results=RUN_BATCH,
                ),
            )
            runs.update({run.info.run_id: run for run in page})
        return [self._with_run(v, runs[v.run_id]) if v.run_id in runs else v for v in versions]

    def _with_run(self, version: DeployedVersion, run) -> DeployedVersion:  # noqa: ANN001 - an mlflow Run
        return version.model_copy(
            update={
                "review": state_from_tags(version.run_id, run.data.tags),
                "run_name": run.info.run_name or version.run_id,
                "run_url": run_url(self.ui_url, run.info.experiment_id, version.run_id),
                "run_started": _ms_to_datetime(run.info.start_time),
            }
        )

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._call(
            f"model `{name}` version {version}",
            lambda: self._client.set_model_version_tag(name, version, key, value),
        )

    def register_webhook(self, name: str, url: str, events: tuple[str, ...], secret: str) -> tuple[str, bool]:
        """Create the bot's webhook, or update the one with this name; returns (its id, created?)."""
        token, existing = None, None
        while existing is None:
            page = self._call("webhooks", lambda token=token: self._client.list_webhooks(page_token=token))
            existing = next((w for w in page if w.name == name), None)
            token = page.token
            if not token:
                break
        if existing is not None:
            self._call(
                f"webhook `{name}`",
                lambda: self._client.update_webhook(
                    existing.webhook_id, url=url, events=list(events), secret=secret, status="ACTIVE"
                ),
            )
            return existing.webhook_id, False
        created = self._call(
            f"webhook `{name}`",
            lambda: self._client.create_webhook(
                name, url, list(events), description=WEBHOOK_DESCRIPTION, secret=secret
            ),
        )
        return created.webhook_id, True

    def log_discussion(self, run_id: str, markdown: str) -> None:
        self._call(f"run `{run_id}`", lambda: self._client.log_text(run_id, markdown, DISCUSSION_ARTIFACT))

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self._call(f"run `{run_id}`", lambda: self._client.get_run(run_id)).data.tags)

    def review_of(self, run_id: str) -> ReviewState | None:
        run = self._call(f"run `{run_id}`", lambda: self._client.get_run(run_id))
        return state_from_tags(run_id, run.data.tags)

    def _sampled_history(
        self, run_ids: list[str], key: str, max_points: int
    ) -> list[tuple[str, tuple[int, int, float]]]:
        """(run_id, (step, timestamp, value)) for one key of several runs, in one request."""
        response = http_request(
            get_default_host_creds(self.tracking_uri),
            BULK_INTERVAL_ENDPOINT,
            "GET",
            params={"run_ids": run_ids, "metric_key": key, "max_results": max_points},
        )
        verify_rest_response(response, BULK_INTERVAL_ENDPOINT)
        return [
            (m["run_id"], (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m["value"])))
            for m in response.json().get("metrics", [])
        ]

    def list_images(self, run_id: str) -> list[ImageArtifact]:
        """Image artifacts of a run, shallow folders first, in a stable order."""
        found: list[ImageArtifact] = []

        def walk(path: str | None, depth: int) -> None:
            entries = self._call("artifacts", lambda: self._client.list_artifacts(run_id, path))
            for entry in sorted(entries, key=lambda e: e.path):
                if entry.is_dir:
                    if (
                        depth < MAX_ARTIFACT_DEPTH
                        and posixpath.basename(entry.path) not in SKIP_ARTIFACT_DIRS
                    ):
                        walk(entry.path, depth + 1)
                elif entry.path.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(
                        ImageArtifact(path=entry.path, size=entry.file_size if entry.file_size else -1)
                    )

        walk(None, 1)
        return sorted(found, key=lambda a: (a.path.count("/"), a.path))

    def download_artifact(self, run_id: str, path: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="review-bot-") as tmp:
            local = self._call(
                f"artifact `{path}`",
                lambda: self._client.download_artifacts(run_id, path, dst_path=tmp),
            )
            return Path(local).read_bytes()


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


def order_by_metric(key: str, direction: Direction) -> str:
    """An MLflow order_by clause putting the best value of `key` first."""
    return f"metrics.{_quoted(key)} {'ASC' if direction is Direction.MIN else 'DESC'}"


def _quoted(key: str) -> str:
    # MLflow's search grammar takes any metric name between backticks (a backtick itself cannot be).
    return f"`{key}`"


def _datasets(run) -> list[DatasetInput]:  # noqa: ANN001 - an mlflow Run
    inputs = getattr(run, "inputs", None)
    result = []
    for dataset_input in getattr(inputs, "dataset_inputs", None) or []:
        dataset = dataset_input.dataset
        context = next((t.value for t in dataset_input.tags or [] if t.key == "mlflow.data.context"), "")
        result.append(
            DatasetInput(
                name=dataset.name or "",
                digest=dataset.digest or "",
                source_type=dataset.source_type or "",
                context=context,
            )
        )
    return result


def _short(exc: BaseException) -> str:
    """One line about a failure, without URLs' query strings or long bodies."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 200 else text[:199] + "…"
