"""Reading the model registry: a version's source run, a run's versions and aliases, what is deployed,
and the webhook that tells the bot when an alias lands. Returns bot.models values."""

from __future__ import annotations

import logging
import re
from typing import Any

from bot import tags
from bot.deployments import PRODUCTION_STAGE, DeployedVersion, deployment_markers
from bot.errors import NotFound
from bot.mlflow.client import Mlflow, ms_to_datetime
from bot.mlflow.urls import model_version_url, run_url
from bot.models import ModelVersionRef, RefKind, ReviewState, RunRef, SubjectKind
from bot.subjects import model_version_subject, subject_kind

log = logging.getLogger(__name__)

SEARCH_PAGE = 500
RUN_BATCH = 100  # run ids in one `attributes.run_id IN (...)` search
MAX_EXPERIMENTS = 1000
LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})(?:/.*)?$")
LOGGED_MODEL_ARTIFACTS = re.compile(r"/models/(m-[0-9a-f]{32})/artifacts/?$")
WEBHOOK_DESCRIPTION = "review-bot: nudges about models deployed without an approved review"


def aliases_by_version(model: Any) -> dict[str, list[str]]:
    """{version: [aliases]} of a registered model (search_model_versions leaves aliases out)."""
    by_version: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def logged_model_of(mv: Any) -> str:
    """The LoggedModel a model version was registered from: its `model_id`, or (MLflow 3.17's stores
    leave `model_id` empty) its source, `models:/m-<id>` or a path in the model's artifact location
    (`…/models/m-<id>/artifacts`); "" when none."""
    model_id = getattr(mv, "model_id", None) or ""
    if not model_id:
        source = mv.source or ""
        match = LOGGED_MODEL_SOURCE.match(source) or LOGGED_MODEL_ARTIFACTS.search(source)
        model_id = match.group(1) if match else ""
    return model_id


def _quoted(name: str) -> str:
    """A name inside a search filter's single quotes."""
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


class Registry:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def source_run(self, name: str, *, version: str | None = None, alias: str | None = None) -> str:
        """The run a model version (by number or alias) was logged from; "" when none."""
        tracking = self.mlflow.tracking
        if version:
            mv = self.mlflow.call(
                f"model `{name}` version {version}", lambda: tracking.get_model_version(name, version)
            )
        else:
            mv = self.mlflow.call(
                f"model `{name}` with alias @{alias}",
                lambda: tracking.get_model_version_by_alias(name, alias),
            )
        return mv.run_id or ""

    def find_version(self, ref: RunRef) -> Any:
        """The model version (an MLflow ModelVersion) a model reference points at: by number, alias,
        `latest` (the highest number) or legacy stage (the latest version in it). NotFound when none."""
        name, tracking = ref.model_name, self.mlflow.tracking
        assert name
        if ref.kind is RefKind.MODEL_ALIAS:
            return self.mlflow.call(
                f"model `{name}` with alias @{ref.alias}",
                lambda: tracking.get_model_version_by_alias(name, ref.alias),
            )
        if ref.kind in (RefKind.MODEL_LATEST, RefKind.MODEL_STAGE):
            what = f"version of model `{name}`" + (f" in stage {ref.stage}" if ref.stage else "")
            found = self.mlflow.call(f"model `{name}`", lambda: self._latest(name, ref.stage))
            if found is None:
                raise NotFound(f":mag: MLflow has no {what}.")
            return found
        return self.mlflow.call(
            f"model `{name}` version {ref.version}", lambda: tracking.get_model_version(name, ref.version)
        )

    def _latest(self, name: str, stage: str | None) -> Any:
        """The highest version of a model (in `stage`, when given), or None; NotFound for no such model."""
        tracking = self.mlflow.tracking
        tracking.get_registered_model(name)  # an unknown model is NotFound, not "no version"
        best, token = None, None
        while True:
            page = tracking.search_model_versions(
                f"name = '{_quoted(name)}'", max_results=SEARCH_PAGE, page_token=token
            )
            for mv in page:
                if stage and (mv.current_stage or "") != stage:
                    continue
                if best is None or _version_order(str(mv.version)) > _version_order(str(best.version)):
                    best = mv
            token = page.token
            if not token:
                return best

    def decision_subject(self, mv: Any) -> str:
        """Where the review of a model version lives (bot.subjects): its source run; else, for a version
        of a LoggedModel, that model's run, or the LoggedModel itself when it has none; else the version.
        The gate, the nudges and the digest all ask this, so they judge a version the same way."""
        if mv.run_id:
            return str(mv.run_id)
        model_id = logged_model_of(mv)
        if model_id:
            tracking = self.mlflow.tracking
            try:
                model = self.mlflow.call(
                    f"logged model `{model_id}`", lambda: tracking.get_logged_model(model_id)
                )
            except NotFound:  # deleted: the version's own record is what remains
                return model_version_subject(mv.name, str(mv.version))
            return model.source_run_id or model_id
        return model_version_subject(mv.name, str(mv.version))

    def version_of(self, ref: RunRef) -> str:
        """ "name/version" of the model version a model reference points at (an alias read now)."""
        assert ref.model_name
        if ref.kind is RefKind.MODEL_VERSION and ref.version is not None:
            return f"{ref.model_name}/{ref.version}"
        return f"{ref.model_name}/{self.find_version(ref).version}"

    def registered_aliases(self, name: str) -> dict[str, str]:
        """{alias: version} of one registered model."""
        model = self.mlflow.call(f"model `{name}`", lambda: self.mlflow.tracking.get_registered_model(name))
        return {a: str(v) for a, v in (getattr(model, "aliases", None) or {}).items()}

    def model_versions_of(self, run_id: str) -> list[ModelVersionRef]:
        tracking = self.mlflow.tracking
        versions = self.mlflow.call(
            "model registry", lambda: tracking.search_model_versions(f"run_id = '{run_id}'")
        )
        # search_model_versions leaves aliases out; the registered model has them (one call per model).
        aliases = {
            name: aliases_by_version(
                self.mlflow.call(f"model `{name}`", lambda name=name: tracking.get_registered_model(name))
            )
            for name in {mv.name for mv in versions}
        }
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

    # --- what is deployed, for nudges ---------------------------------------------------------------

    def deployment_candidates(self, deployment_aliases: list[str]) -> list[ModelVersionRef]:
        """Every version under a deployment alias or in the legacy Production stage.

        Read from the registered models alone (each carries its aliases and its latest version per
        stage), so the cost is pages of models, never the number of versions or runs.
        """
        found: list[ModelVersionRef] = []
        token = None
        while True:
            page = self.mlflow.call(
                "model registry",
                lambda token=token: self.mlflow.tracking.search_registered_models(
                    max_results=SEARCH_PAGE, page_token=token
                ),
            )
            for model in page:
                by_version = aliases_by_version(model)
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
        """One model version as it is now, and the review that covers it (two or three calls)."""
        return self.with_reviews([self.model_version_state(name, version, deployment_aliases)])[0]

    def model_version_state(self, name: str, version: str, deployment_aliases: list[str]) -> DeployedVersion:
        """A model version's aliases, stage, source run, snooze and where its review lives (one call, two
        for a LoggedModel's version), with the review when it lives on the version itself."""
        mv = self.mlflow.call(
            f"model `{name}` version {version}", lambda: self.mlflow.tracking.get_model_version(name, version)
        )
        subject = self.decision_subject(mv)
        found = DeployedVersion(
            name=name,
            version=str(mv.version),
            markers=deployment_markers(list(mv.aliases or []), mv.current_stage, deployment_aliases),
            # the run it came from, directly or through its LoggedModel
            run_id=subject if subject_kind(subject) is SubjectKind.RUN else "",
            version_url=model_version_url(self.mlflow.ui_url, name, str(mv.version)),
            snoozed_until=tags.parse_moment((mv.tags or {}).get(tags.SNOOZED_UNTIL)),
            subject=subject,
        )
        if subject_kind(subject) is SubjectKind.MODEL_VERSION:
            return self._with_record(found, subject, dict(mv.tags or {}))
        return found

    def with_reviews(self, versions: list[DeployedVersion]) -> list[DeployedVersion]:
        """The versions with the reviews that cover them. Runs are read in batches (one search per
        RUN_BATCH runs) rather than a call per run; a run the search does not return (deleted, or gone)
        marks its version `deleted`. A LoggedModel's record is read with one call per model."""
        subjects = {v.subject or v.run_id for v in versions}
        run_ids = sorted(s for s in subjects if s and subject_kind(s) is SubjectKind.RUN)
        runs = self._runs(run_ids) if run_ids else {}
        models = {
            s: self._logged_model_tags(s)
            for s in sorted(subjects)
            if s and subject_kind(s) is SubjectKind.LOGGED_MODEL
        }
        result = []
        for v in versions:
            subject = v.subject or v.run_id
            if not subject or subject_kind(subject) is SubjectKind.MODEL_VERSION:
                result.append(v)
            elif subject_kind(subject) is SubjectKind.LOGGED_MODEL:
                found = models.get(subject)
                result.append(self._with_record(v, subject, found) if found is not None else v)
            elif subject in runs:
                result.append(self._with_run(v, runs[subject]))
            else:  # deleted since it was reviewed, or never there: its review (if any) does not count
                result.append(v.model_copy(update={"deleted": True}))
        return result

    def _runs(self, run_ids: list[str]) -> dict[str, Any]:
        """Active runs by id, in batches (deleted runs are not returned)."""
        tracking = self.mlflow.tracking
        experiments = self.mlflow.call(
            "experiments", lambda: tracking.search_experiments(max_results=MAX_EXPERIMENTS)
        )
        runs = {}
        for i in range(0, len(run_ids), RUN_BATCH):
            batch = ", ".join(f"'{run_id}'" for run_id in run_ids[i : i + RUN_BATCH])
            page = self.mlflow.call(
                "runs",
                lambda batch=batch: tracking.search_runs(
                    [e.experiment_id for e in experiments],
                    filter_string=f"attributes.run_id IN ({batch})",
                    max_results=RUN_BATCH,
                ),
            )
            runs.update({run.info.run_id: run for run in page})
        return runs

    def _logged_model_tags(self, model_id: str) -> dict[str, str] | None:
        tracking = self.mlflow.tracking
        try:
            model = self.mlflow.call(
                f"logged model `{model_id}`", lambda: tracking.get_logged_model(model_id)
            )
        except NotFound:
            return None
        return dict(model.tags or {})

    def _with_record(self, version: DeployedVersion, subject: str, record: dict[str, str]) -> DeployedVersion:
        """The version with the review a subject's tags hold (a broken record reads as untrusted)."""
        try:
            review = self.mlflow.verifier.review(subject, record)
        except tags.UnreadableRecord as exc:
            log.warning("%s", exc)
            review = ReviewState(run_id=subject, untrusted=str(exc))
        return version.model_copy(update={"review": review})

    def _with_run(self, version: DeployedVersion, run: Any) -> DeployedVersion:
        try:
            review = self.mlflow.verifier.review(version.run_id, run.data.tags)
        except tags.UnreadableRecord as exc:  # one hand-broken run must not stop the scan of the others
            log.warning("%s", exc)
            review = ReviewState(run_id=version.run_id, untrusted=str(exc))
        return version.model_copy(
            update={
                "review": review,
                "run_name": run.info.run_name or version.run_id,
                "run_url": run_url(self.mlflow.ui_url, run.info.experiment_id, version.run_id),
                "run_started": ms_to_datetime(run.info.start_time),
            }
        )

    # --- the webhook ------------------------------------------------------------------------------

    def register_webhook(self, name: str, url: str, events: tuple[str, ...], secret: str) -> tuple[str, bool]:
        """Create the bot's webhook, or update the one with this name; returns (its id, created?)."""
        tracking = self.mlflow.tracking
        token, existing = None, None
        while existing is None:
            page = self.mlflow.call("webhooks", lambda token=token: tracking.list_webhooks(page_token=token))
            existing = next((w for w in page if w.name == name), None)
            token = page.token
            if not token:
                break
        if existing is not None:
            self.mlflow.call(
                f"webhook `{name}`",
                lambda: tracking.update_webhook(
                    existing.webhook_id, url=url, events=list(events), secret=secret, status="ACTIVE"
                ),
                writes=True,
            )
            return existing.webhook_id, False
        created = self.mlflow.call(
            f"webhook `{name}`",
            lambda: tracking.create_webhook(
                name, url, list(events), description=WEBHOOK_DESCRIPTION, secret=secret
            ),
            writes=True,
        )
        return created.webhook_id, True
