"""An in-memory MLflow for the in-process tier: one `FakeMlflow` is every part of `bot.mlflow`.

It has the public methods of `Runs`, `ReviewRecords`, `Histories`, `Registry`, `Artifacts` and
`Experiments`, with their signatures (tests/inprocess/test_fakes.py keeps them in step) and their return
types, so the same instance is passed wherever a service takes one of those parts.

What the real parts do with MLflow's answers is reused rather than re-implemented where it can be:
runs become RunSummary values through `bot.mlflow.runs.summary_from_run` (from real `mlflow.entities`
objects), and review state is read and written only through `bot.tags`. What the fake owns is what a
tracking server would store: runs, their metrics, params, tags, histories and artifacts, and the model
registry.

Failures, as the services meet them:
* `down = True`: every call that would reach MLflow raises MlflowUnavailable (like a dead server);
* `writes_down = True`: reads work, every write raises MlflowUnavailable;
* `fail_calls = {"set_model_version_tag", ...}`: only the calls named fail, e.g. half of a two-step write;
* `crash_calls = {"run_summary", ...}`: the calls named raise FakeCrash, a failure nobody planned for.

`writes` lists every write that went through, in order; `calls` names every public method called
(nested ones too), so a test can say "nothing was written" or "MLflow was not even asked".
"""

from __future__ import annotations

import math
import posixpath
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlflow.entities import Metric, Param, RunData, RunInfo, RunInputs, RunTag
from mlflow.entities import Run as MlflowRun

from bot import envelope, signature
from bot import tags as bot_tags
from bot.deployments import PRODUCTION_STAGE, DeployedVersion, deployment_markers
from bot.envelope import Envelope
from bot.errors import MlflowUnavailable, NotFound, ReviewBotError
from bot.mlflow.artifacts import IMAGE_EXTENSIONS, SKIP_ARTIFACT_DIRS
from bot.mlflow.client import NOT_FOUND, ms_to_datetime
from bot.mlflow.experiments import MAX_CHILDREN, METRIC_SAMPLE_RUNS
from bot.mlflow.histories import FULL_POINTS_BUDGET, PROBE_POINTS
from bot.mlflow.records import DISCUSSION_ARTIFACT, ReviewRecords, Standing
from bot.mlflow.runs import (
    DELETED_COMPARED_RUN,
    DELETED_EXPERIMENT,
    DELETED_RUN,
    NOT_FROM_A_RUN,
    Run,
    summary_from_run,
)
from bot.mlflow.urls import model_version_url, run_url
from bot.models import (
    ArtifactImages,
    Direction,
    ImageArtifact,
    LoggedModelInfo,
    ModelVersionRef,
    RefKind,
    ReviewState,
    RunRef,
    RunSummary,
)
from bot.slack.mrkdwn import escape
from bot.subjects import model_version_subject
from tests import support

FAKE_TRACKING_URI = "http://mlflow.inprocess.test"
DOWN_DETAIL = "ConnectionError: the in-process fake MLflow is down"
DEFAULT_EXPERIMENT = "review-bot-tests"
FIRST_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUN_DURATION = timedelta(minutes=12)

# The MLflow filters the services send to search_reviews: `tags.`key` = 'value'` clauses joined by `and`.
_TAG_CLAUSE = re.compile(r"^tags\.`(?P<key>[^`]+)`\s*(?P<op>!=|=)\s*'(?P<value>[^']*)'$")


class FakeCrash(RuntimeError):
    """Not a ReviewBotError: what a bug, or an MLflow client error the bot does not map, looks like."""


@dataclass(frozen=True)
class Write:
    """One write that reached the fake: what, on which run / model version / webhook, and the values."""

    what: str  # "set_run_tags", "set_model_version_tag", "log_discussion" or "register_webhook"
    target: str  # a run id, "<model>/<version>", or a webhook name
    values: dict[str, str]


@dataclass
class FakeRun:
    run_id: str
    name: str
    experiment_id: str
    user: str
    status: str
    start_ms: int
    end_ms: int | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    histories: dict[str, list[float]]  # metric key -> values, one per step from 0
    artifacts: dict[str, bytes]  # path under the run's artifact root -> content
    deleted: bool = False


@dataclass
class FakeModelVersion:
    name: str
    version: str
    run_id: str
    stage: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeModel:
    name: str
    versions: dict[str, FakeModelVersion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version


class FakeMlflow:
    """Runs, ReviewRecords, Histories, Registry, Artifacts and Experiments, in memory. Thread-safe."""

    def __init__(self, tracking_uri: str = FAKE_TRACKING_URI, ui_url: str = FAKE_TRACKING_URI) -> None:
        self.tracking_uri = tracking_uri
        self._ui_url = ui_url
        # What the real ReviewRecords methods it borrows read from `self.mlflow` and `self.signer`:
        # the test bot's key pair (tests/support.py), as app.create_mlflow builds them from settings.
        self.mlflow = self
        self.signer = signature.Signer(signature.private_key(support.SIGNING_KEY))
        self.verifier = signature.verifier_for([], self.signer)
        self.down = False
        self.writes_down = False
        self.fail_calls: set[str] = set()
        self.crash_calls: set[str] = set()
        self.writes: list[Write] = []
        self.calls: list[str] = []
        self.webhooks: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # name -> (id, url, events)
        self._lock = threading.RLock()
        self._experiments: dict[str, str] = {}  # id -> name
        self._deleted_experiments: set[str] = set()
        self._runs: dict[str, FakeRun] = {}
        self._models: dict[str, FakeModel] = {}

    # --- building the store (tests only; never a failure, never logged) ----------------------------

    def add_experiment(self, name: str = DEFAULT_EXPERIMENT) -> str:
        with self._lock:
            for experiment_id, existing in self._experiments.items():
                if existing == name:
                    return experiment_id
            experiment_id = str(len(self._experiments) + 1)
            self._experiments[experiment_id] = name
            return experiment_id

    def delete_experiment(self, experiment_id: str) -> None:
        with self._lock:
            self._deleted_experiments.add(experiment_id)

    def add_run(
        self,
        name: str = "candidate",
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        user: str = "ana.lopez",
        metrics: dict[str, float] | None = None,
        params: dict[str, str] | None = None,
        histories: dict[str, list[float]] | None = None,
        images: dict[str, bytes] | None = None,
        note: str = "",
        tags: dict[str, str] | None = None,
        parent: str = "",
        status: str = "FINISHED",
        started: datetime | None = None,
    ) -> str:
        """A run as training code logs it (the same default tags as tests/mlflow_runs.py); its id."""
        with self._lock:
            experiment_id = self.add_experiment(experiment)
            start = started or FIRST_START + timedelta(hours=len(self._runs))
            run_tags = {
                bot_tags.RUN_NAME: name,
                bot_tags.USER: user,
                bot_tags.SOURCE_NAME: "train.py",
                bot_tags.GIT_COMMIT: "a1b2c3d4e5f6" * 3,
            }
            if note:
                run_tags[bot_tags.NOTE] = note
            if parent:
                run_tags[bot_tags.PARENT_RUN] = parent
            run_tags.update(tags or {})
            histories = {k: [float(v) for v in values] for k, values in (histories or {}).items() if values}
            run_id = uuid.uuid4().hex
            self._runs[run_id] = FakeRun(
                run_id=run_id,
                name=name,
                experiment_id=experiment_id,
                user=user,
                status=status,
                start_ms=_ms(start),
                end_ms=_ms(start + RUN_DURATION) if status == "FINISHED" else None,
                # A metric's value is its last logged one, as in MLflow.
                metrics={**{k: v[-1] for k, v in histories.items()}, **(metrics or {})},
                params={k: str(v) for k, v in (params or {}).items()},
                tags=run_tags,
                histories=histories,
                artifacts=dict(images or {}),
            )
            return run_id

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            self._runs[run_id].deleted = True

    def register(self, model: str, run_id: str, *, alias: str | None = None, stage: str = "") -> str:
        """A new version of a registered model, logged from `run_id`; its version number."""
        with self._lock:
            registered = self._models.setdefault(model, FakeModel(model))
            version = str(len(registered.versions) + 1)
            registered.versions[version] = FakeModelVersion(model, version, run_id, stage)
            if alias:
                registered.aliases[alias] = version
            return version

    # --- reading the store back (tests only) -------------------------------------------------------

    def tags_of(self, run_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._runs[run_id].tags)

    def review(self, run_id: str) -> ReviewState | None:
        """The run's review as its tags say, as the bot vouches for it (bot.signature)."""
        return self.verifier.review(run_id, self.tags_of(run_id))

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        with self._lock:
            return dict(self._models[model].versions[version].tags)

    def artifact(self, run_id: str, path: str) -> bytes | None:
        with self._lock:
            return self._runs[run_id].artifacts.get(path)

    def writes_of(self, what: str) -> list[Write]:
        return [w for w in list(self.writes) if w.what == what]

    def unavailable(self) -> MlflowUnavailable:
        """What every call raises while the fake is down (its text is what a person is told)."""
        return MlflowUnavailable(self.tracking_uri, DOWN_DETAIL)

    def health(self) -> str:
        return f"unreachable: {DOWN_DETAIL}" if self.down else "ok"

    # --- Runs --------------------------------------------------------------------------------------

    @property
    def ui_url(self) -> str:
        return self._ui_url

    subjects = None  # no MLflow 3 subjects in the fake: runs only

    def resolve_run(self, ref: RunRef, done: str = "compared") -> str:
        return self.resolve(ref)

    def run_models(self, run_id: str, experiment_id: str = "") -> list[LoggedModelInfo]:
        """As the real one: a run's LoggedModels, none when they cannot be read (the fake has none)."""
        try:
            self._read("run_models")
        except ReviewBotError:
            return []
        return []

    def resolve(self, ref: RunRef) -> str:
        self._called("resolve")
        if ref.kind is RefKind.RUN:  # like Runs.resolve: a run id needs no MLflow call
            assert ref.run_id
            return ref.run_id
        assert ref.model_name
        if ref.kind is RefKind.MODEL_VERSION:
            assert ref.version
            run_id = self.source_run(ref.model_name, version=ref.version)
        else:
            assert ref.alias
            run_id = self.source_run(ref.model_name, alias=ref.alias)
        if not run_id:
            raise NotFound(NOT_FROM_A_RUN.format(what=ref.describe()))
        return run_id

    def run_summary(self, run_id: str, *, with_model_versions: bool = True) -> RunSummary:
        self._read("run_summary")
        with self._lock:
            run = self._run(run_id)
            self._refuse_deleted(run, DELETED_RUN)
            entity, experiment = _entity(run), self._experiments[run.experiment_id]
        versions = self.model_versions_of(run_id) if with_model_versions else []
        return summary_from_run(entity, experiment, versions, self._ui_url, self.verifier)

    def params_of(self, run_id: str) -> dict[str, str]:
        return dict(self.active_run(run_id).data.params)

    def active_run(self, run_id: str) -> Run:
        self._read("active_run")
        with self._lock:
            run = self._run(run_id)
            self._refuse_deleted(run, DELETED_COMPARED_RUN)
            return _entity(run)

    def _refuse_deleted(self, run: FakeRun, message: str) -> None:
        """As Runs says it: a run in a deleted experiment (MLflow marks those deleted too), a deleted run."""
        if run.experiment_id in self._deleted_experiments:
            name = escape(self._experiments[run.experiment_id])
            raise NotFound(DELETED_EXPERIMENT.format(name=f"`{name}`", run_id=run.run_id))
        if run.deleted:
            raise NotFound(message.format(run_id=run.run_id))

    def compared_summaries(self, run_ids: list[str]) -> list[RunSummary]:
        self._read("compared_summaries")
        runs = [self.active_run(run_id) for run_id in run_ids]
        with self._lock:
            names = dict(self._experiments)
        return [
            summary_from_run(run, names[run.info.experiment_id], [], self._ui_url, self.verifier)
            for run in runs
        ]

    def experiment_names(self) -> dict[str, str]:
        self._read("experiment_names")
        with self._lock:
            return {i: n for i, n in self._experiments.items() if i not in self._deleted_experiments}

    def search_reviews(self, filter_string: str) -> list[tuple[RunSummary, dict[str, str]]]:
        self._read("search_reviews")
        matches = _tag_filter(filter_string)
        names = self.experiment_names()
        with self._lock:
            found = [
                (_entity(run), dict(run.tags))
                for run in self._runs.values()
                if not run.deleted and run.experiment_id in names and matches(run.tags)
            ]
        return [
            (summary_from_run(e, names[e.info.experiment_id], [], self._ui_url, self.verifier), t)
            for e, t in found
        ]

    # --- ReviewRecords -----------------------------------------------------------------------------

    def run_tags(self, run_id: str) -> dict[str, str]:
        self._read("run_tags")
        with self._lock:
            return dict(self._run(run_id).tags)

    def standing(self, subject: str) -> Standing:
        self._read("standing")
        with self._lock:
            run = self._run(subject)
            tags_now, deleted = dict(run.tags), run.deleted
        return Standing(self.verifier.review(subject, tags_now), deleted=deleted)

    def review_of(self, run_id: str, run_tags: Mapping[str, str] | None = None) -> ReviewState | None:
        self._called("review_of")
        return ReviewRecords.review_of(self, run_id, run_tags)  # type: ignore[arg-type]  # the real composition

    def set_run_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        self._write("set_run_tags")
        with self._lock:  # one log_batch: all written or none
            self._run(run_id).tags.update(values)
            self.writes.append(Write("set_run_tags", run_id, dict(values)))

    def record_review(
        self,
        state: ReviewState,
        current: Mapping[str, str],
        model_versions: list[ModelVersionRef],
        extra_tags: Mapping[str, str] | None = None,
    ) -> list[ModelVersionRef]:
        self._called("record_review")
        # The real composition (signed run tags, then the mirror) over this fake's two writes.
        return ReviewRecords.record_review(self, state, current, model_versions, extra_tags)  # type: ignore[arg-type]

    covering = staticmethod(ReviewRecords.covering)

    def mirror(self, state: ReviewState, model_versions: list[ModelVersionRef]) -> list[ModelVersionRef]:
        self._called("mirror")
        return ReviewRecords.mirror(self, state, model_versions)  # type: ignore[arg-type]

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._write("set_model_version_tag")
        with self._lock:
            self._version(name, version).tags[key] = value
            self.writes.append(Write("set_model_version_tag", f"{name}/{version}", {key: value}))

    def log_discussion(self, run_id: str, markdown: str) -> None:
        self._write("log_discussion")
        with self._lock:
            self._run(run_id).artifacts[DISCUSSION_ARTIFACT] = markdown.encode()
            self.writes.append(Write("log_discussion", run_id, {DISCUSSION_ARTIFACT: markdown}))

    # --- Histories ---------------------------------------------------------------------------------

    def envelopes(
        self,
        run_ids: Sequence[str],
        keys: Iterable[str],
        *,
        width: int,
        finished: Collection[str] = (),
        full: Callable[[list[str]], Iterable[str]] | None = None,
        probe_points: int = PROBE_POINTS,
        budget: int = FULL_POINTS_BUDGET,
        last_steps: Mapping[str, Mapping[str, int]] | None = None,
    ) -> dict[str, list[Envelope]]:
        """Every point, as the real one reads it for what it charts: a run without a key gets none."""
        self._read("envelopes")
        run_ids = list(dict.fromkeys(run_ids))
        result: dict[str, list[Envelope]] = {run_id: [] for run_id in run_ids}
        with self._lock:
            for key in sorted(set(keys)):
                for run_id in run_ids:
                    run = self._runs.get(run_id)
                    values = _history(run, key) if run else []
                    if values:
                        points = [(step, step, value) for step, value in enumerate(values)]
                        result[run_id].append(envelope.build(key, points, width))
        return result

    # --- Registry ----------------------------------------------------------------------------------

    def source_run(self, name: str, *, version: str | None = None, alias: str | None = None) -> str:
        self._read("source_run")
        with self._lock:
            if version is not None:
                return self._version(name, version).run_id
            model = self._models.get(name)
            if model is None or alias not in model.aliases:
                raise NotFound(NOT_FOUND.format(what=f"model `{name}` with alias @{alias}"))
            return model.versions[model.aliases[alias]].run_id

    def find_version(self, ref: RunRef) -> Any:
        self._read("find_version")
        assert ref.model_name
        with self._lock:
            model = self._models.get(ref.model_name)
            if ref.kind is RefKind.MODEL_ALIAS:
                if model is None or ref.alias not in model.aliases:
                    raise NotFound(NOT_FOUND.format(what=f"model `{ref.model_name}` with alias @{ref.alias}"))
                return model.versions[model.aliases[ref.alias]]
            if ref.kind is RefKind.MODEL_LATEST and model is not None and model.versions:
                return model.versions[max(model.versions, key=int)]
            return self._version(ref.model_name, ref.version or "")

    def decision_subject(self, mv: Any) -> str:
        self._read("decision_subject")
        return mv.run_id or model_version_subject(mv.name, mv.version)

    def version_of(self, ref: RunRef) -> str:
        assert ref.model_name
        if ref.version is not None:
            return f"{ref.model_name}/{ref.version}"
        self._read("version_of")
        with self._lock:
            model = self._models.get(ref.model_name)
            if model is None or ref.alias not in model.aliases:
                raise NotFound(NOT_FOUND.format(what=f"model `{ref.model_name}` with alias @{ref.alias}"))
            return f"{ref.model_name}/{model.aliases[ref.alias]}"

    def registered_aliases(self, name: str) -> dict[str, str]:
        self._read("registered_aliases")
        with self._lock:
            return dict(self._model(name).aliases)

    def model_versions_of(self, run_id: str) -> list[ModelVersionRef]:
        self._read("model_versions_of")
        with self._lock:
            found = [
                ModelVersionRef(
                    name=model.name,
                    version=mv.version,
                    aliases=sorted(a for a, v in model.aliases.items() if v == mv.version),
                    stage=mv.stage,
                )
                for model in self._models.values()
                for mv in model.versions.values()
                if mv.run_id == run_id
            ]
        return sorted(found, key=lambda mv: (mv.name, int(mv.version)))

    def deployment_candidates(self, deployment_aliases: list[str]) -> list[ModelVersionRef]:
        self._read("deployment_candidates")
        found: list[ModelVersionRef] = []
        with self._lock:
            for model in sorted(self._models.values(), key=lambda m: m.name):
                by_version: dict[str, list[str]] = {}
                for alias, version in model.aliases.items():
                    by_version.setdefault(version, []).append(alias)
                # A registered model lists only its latest version per stage, as MLflow's does.
                in_production = [int(v) for v, mv in model.versions.items() if mv.stage == PRODUCTION_STAGE]
                production = {str(max(in_production))} if in_production else set()
                for version in sorted(set(by_version) | production, key=int):
                    stage = PRODUCTION_STAGE if version in production else ""
                    aliases = sorted(by_version.get(version, []))
                    if deployment_markers(aliases, stage, deployment_aliases):
                        found.append(
                            ModelVersionRef(name=model.name, version=version, aliases=aliases, stage=stage)
                        )
        return found

    def deployed_version(self, name: str, version: str, deployment_aliases: list[str]) -> DeployedVersion:
        self._called("deployed_version")
        found = self.model_version_state(name, version, deployment_aliases)
        with self._lock:
            run = self._runs.get(found.run_id)
            return self._with_run(found, run) if run is not None else found

    def model_version_state(self, name: str, version: str, deployment_aliases: list[str]) -> DeployedVersion:
        self._read("model_version_state")
        with self._lock:
            mv = self._version(name, version)
            aliases = [a for a, v in self._models[name].aliases.items() if v == version]
            return DeployedVersion(
                name=name,
                version=mv.version,
                markers=deployment_markers(aliases, mv.stage, deployment_aliases),
                run_id=mv.run_id,
                version_url=model_version_url(self._ui_url, name, mv.version),
                snoozed_until=bot_tags.parse_moment(mv.tags.get(bot_tags.SNOOZED_UNTIL)),
            )

    def with_reviews(self, versions: list[DeployedVersion]) -> list[DeployedVersion]:
        if not any(v.run_id for v in versions):
            return versions
        self._read("with_reviews")
        live = self.experiment_names()
        with self._lock:
            runs = {
                run_id: run
                for run_id, run in self._runs.items()
                if not run.deleted and run.experiment_id in live
            }
            return [self._with_run(v, runs[v.run_id]) if v.run_id in runs else v for v in versions]

    def register_webhook(self, name: str, url: str, events: tuple[str, ...], secret: str) -> tuple[str, bool]:
        self._write("register_webhook")
        with self._lock:
            existing = self.webhooks.get(name)
            webhook_id = existing[0] if existing else uuid.uuid4().hex[:12]
            self.webhooks[name] = (webhook_id, url, tuple(events))
            self.writes.append(Write("register_webhook", name, {"url": url, "events": ",".join(events)}))
            return webhook_id, existing is None

    # --- Artifacts ---------------------------------------------------------------------------------

    def list_images(self, run_id: str) -> ArtifactImages:
        self._read("list_images")
        with self._lock:
            artifacts = dict(self._run(run_id, what="artifacts").artifacts)
        found = [
            ImageArtifact(path=path, size=len(content))
            for path, content in artifacts.items()
            if path.lower().endswith(IMAGE_EXTENSIONS) and _walked(path)
        ]
        return ArtifactImages(images=sorted(found, key=lambda a: (a.path.count("/"), a.path)))

    def download_artifact(self, run_id: str, path: str) -> bytes:
        self._read("download_artifact")
        with self._lock:
            content = self._run(run_id, what=f"artifact `{path}`").artifacts.get(path)
        if content is None:
            raise NotFound(NOT_FOUND.format(what=f"artifact `{path}`"))
        return content

    # --- Experiments -------------------------------------------------------------------------------

    def find_experiment(self, name_or_id: str) -> tuple[str, str] | None:
        self._read("find_experiment")
        with self._lock:
            experiment_id = name_or_id if name_or_id in self._experiments and name_or_id.isdigit() else None
            if experiment_id is None:
                experiment_id = next((i for i, n in self._experiments.items() if n == name_or_id), None)
            if experiment_id is None or experiment_id in self._deleted_experiments:
                return None
            return experiment_id, self._experiments[experiment_id]

    def top_runs(
        self, experiment_id: str, experiment_name: str, key: str, direction: Direction, limit: int
    ) -> list[RunSummary]:
        self._read("top_runs")
        with self._lock:
            ranked = _ranked(self._active_runs(experiment_id), key, direction)[:limit]
            entities = [_entity(run) for run in ranked if math.isfinite(run.metrics.get(key, math.nan))]
        return [summary_from_run(run, experiment_name, [], self._ui_url, self.verifier) for run in entities]

    def best_finished_runs(
        self, experiment_id: str, key: str, direction: Direction, started_before: datetime | None, limit: int
    ) -> list[Run]:
        self._read("best_finished_runs")
        before = _ms(started_before) if started_before else None
        with self._lock:
            finished = [
                run
                for run in self._active_runs(experiment_id)
                if run.status == "FINISHED" and (before is None or run.start_ms < before)
            ]
            return [_entity(run) for run in _ranked(finished, key, direction)[:limit]]

    def child_runs(self, experiment_id: str, parent_run_id: str) -> tuple[list[Run], bool]:
        self._read("child_runs")
        with self._lock:
            children = [
                run
                for run in self._active_runs(experiment_id)
                if run.tags.get(bot_tags.PARENT_RUN) == parent_run_id
            ]
            return [_entity(run) for run in children[:MAX_CHILDREN]], len(children) > MAX_CHILDREN

    def metric_keys(self, experiment_id: str) -> tuple[list[str], int]:
        self._read("metric_keys")
        with self._lock:
            recent = sorted(self._active_runs(experiment_id), key=lambda r: -r.start_ms)[:METRIC_SAMPLE_RUNS]
            return sorted({k for run in recent for k in run.metrics}), len(recent)

    # --- internals ---------------------------------------------------------------------------------

    def _called(self, method: str) -> None:
        with self._lock:
            self.calls.append(method)
        if method in self.crash_calls:
            raise FakeCrash(f"FakeMlflow.{method} crashed, as asked")

    def _read(self, method: str) -> None:
        """A call that reaches MLflow to read: logged, and refused while MLflow is down."""
        self._called(method)
        if self.down or method in self.fail_calls:
            raise self.unavailable()

    def _write(self, method: str) -> None:
        self._called(method)
        if self.down or self.writes_down or method in self.fail_calls:
            raise self.unavailable()

    def _run(self, run_id: str, what: str | None = None) -> FakeRun:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound(NOT_FOUND.format(what=what or f"run `{run_id}`"))
        return run

    def _model(self, name: str) -> FakeModel:
        model = self._models.get(name)
        if model is None:
            raise NotFound(NOT_FOUND.format(what=f"model `{name}`"))
        return model

    def _version(self, name: str, version: str) -> FakeModelVersion:
        mv = self._models[name].versions.get(version) if name in self._models else None
        if mv is None:
            raise NotFound(NOT_FOUND.format(what=f"model `{name}` version {version}"))
        return mv

    def _active_runs(self, experiment_id: str) -> list[FakeRun]:
        return [r for r in self._runs.values() if r.experiment_id == experiment_id and not r.deleted]

    def _with_run(self, version: DeployedVersion, run: FakeRun) -> DeployedVersion:
        return version.model_copy(
            update={
                "review": self.verifier.review(run.run_id, run.tags),
                "run_name": run.name or run.run_id,
                "run_url": run_url(self._ui_url, run.experiment_id, run.run_id),
                "run_started": ms_to_datetime(run.start_ms),
            }
        )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _entity(run: FakeRun) -> MlflowRun:
    """The run as MlflowClient.get_run returns it, for the real `summary_from_run` and BaselineFinder."""
    metrics = [
        Metric(key, value, run.start_ms, max(len(run.histories.get(key, [])) - 1, 0))
        for key, value in run.metrics.items()
    ]
    return MlflowRun(
        RunInfo(
            run_id=run.run_id,
            experiment_id=run.experiment_id,
            user_id=run.user,
            status=run.status,
            start_time=run.start_ms,
            end_time=run.end_ms,
            lifecycle_stage="deleted" if run.deleted else "active",
            artifact_uri=f"mlflow-artifacts:/{run.experiment_id}/{run.run_id}/artifacts",
            run_name=run.name,
        ),
        RunData(
            metrics=metrics,
            params=[Param(k, v) for k, v in run.params.items()],
            tags=[RunTag(k, v) for k, v in run.tags.items()],
        ),
        RunInputs(dataset_inputs=[]),
    )


def _history(run: FakeRun, key: str) -> list[float]:
    """A metric's values by step; a metric logged once has a one-point history, as in MLflow."""
    if key in run.histories:
        return run.histories[key]
    return [run.metrics[key]] if key in run.metrics else []


def _ranked(runs: list[FakeRun], key: str, direction: Direction) -> list[FakeRun]:
    """Best by `key` first, runs without it (or with NaN) last, as MLflow's order_by puts them."""

    def order(run: FakeRun) -> tuple[bool, float, int, str]:
        value = run.metrics.get(key, math.nan)
        missing = math.isnan(value)
        score = 0.0 if missing else (value if direction is Direction.MIN else -value)
        return missing, score, -run.start_ms, run.run_id

    return sorted(runs, key=order)


def _walked(path: str) -> bool:
    """Whether Artifacts.list_images would reach this file: not inside a model folder (a tree this small
    never runs out of listings)."""
    folders = posixpath.dirname(path).split("/") if "/" in path else []
    return not any(f in SKIP_ARTIFACT_DIRS for f in folders)


def _tag_filter(filter_string: str) -> Callable[[dict[str, str]], bool]:
    """The tag filters the services send, as MLflow reads them (a run without the tag never matches).

    Anything else is refused loudly, so a service sending a new kind of filter shows up here first.
    """
    clauses = []
    for clause in re.split(r"\s+and\s+", filter_string.strip(), flags=re.IGNORECASE):
        match = _TAG_CLAUSE.match(clause.strip())
        if match is None:
            raise ValueError(f"FakeMlflow does not understand the filter {filter_string!r}")
        clauses.append((match["key"], match["op"], match["value"]))

    def matches(run_tags: dict[str, str]) -> bool:
        return all(
            key in run_tags and ((run_tags[key] == value) == (op == "=")) for key, op, value in clauses
        )

    return matches
