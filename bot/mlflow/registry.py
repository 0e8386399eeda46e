"""Reading the model registry: a version's source run, a run's versions and aliases, what is deployed,
and the webhook that tells the bot when an alias lands. Returns bot.models values."""

from __future__ import annotations

import logging
from typing import Any

from bot import tags
from bot.deployments import PRODUCTION_STAGE, DeployedVersion, deployment_markers
from bot.errors import NotFound
from bot.mlflow.client import Mlflow, ms_to_datetime
from bot.mlflow.urls import model_version_url, run_url
from bot.models import ModelVersionRef, ReviewState, RunRef

log = logging.getLogger(__name__)

SEARCH_PAGE = 500
RUN_BATCH = 100  # run ids in one `attributes.run_id IN (...)` search
MAX_EXPERIMENTS = 1000
WEBHOOK_DESCRIPTION = "review-bot: nudges about models deployed without an approved review"


def aliases_by_version(model: Any) -> dict[str, list[str]]:
    """{version: [aliases]} of a registered model (search_model_versions leaves aliases out)."""
    by_version: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


class Registry:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def source_run(self, name: str, *, version: str | None = None, alias: str | None = None) -> str:
        """The run a model version (by number or alias) was logged from; "" when none."""
        tracking = self.mlflow.tracking
        if version is not None:
            mv = self.mlflow.call(
                f"model `{name}` version {version}", lambda: tracking.get_model_version(name, version)
            )
        else:
            mv = self.mlflow.call(
                f"model `{name}` with alias @{alias}",
                lambda: tracking.get_model_version_by_alias(name, alias),
            )
        return mv.run_id or ""

    def version_of(self, ref: RunRef) -> str:
        """ "name/version" of the model version a model reference points at (an alias read now)."""
        assert ref.model_name
        if ref.version is not None:
            return f"{ref.model_name}/{ref.version}"
        tracking = self.mlflow.tracking
        mv = self.mlflow.call(
            f"model `{ref.model_name}` with alias @{ref.alias}",
            lambda: tracking.get_model_version_by_alias(ref.model_name, ref.alias),
        )
        return f"{ref.model_name}/{mv.version}"

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
        """One model version as it is now, and the review of the run it came from (two calls)."""
        found = self.model_version_state(name, version, deployment_aliases)
        if not found.run_id:
            return found
        try:
            run = self.mlflow.call(
                f"run `{found.run_id}`", lambda: self.mlflow.tracking.get_run(found.run_id)
            )
        except NotFound:  # the run is gone: the version stays unreviewable, and says so
            return found
        return self._with_run(found, run)

    def model_version_state(self, name: str, version: str, deployment_aliases: list[str]) -> DeployedVersion:
        """A model version's aliases, stage, source run and snooze (one call), without its run's review."""
        mv = self.mlflow.call(
            f"model `{name}` version {version}", lambda: self.mlflow.tracking.get_model_version(name, version)
        )
        return DeployedVersion(
            name=name,
            version=str(mv.version),
            markers=deployment_markers(list(mv.aliases or []), mv.current_stage, deployment_aliases),
            run_id=mv.run_id or "",
            version_url=model_version_url(self.mlflow.ui_url, name, str(mv.version)),
            snoozed_until=tags.parse_moment((mv.tags or {}).get(tags.SNOOZED_UNTIL)),
        )

    def with_reviews(self, versions: list[DeployedVersion]) -> list[DeployedVersion]:
        """The versions with their runs' reviews, read in batches of runs (one search per
        RUN_BATCH runs) rather than a call per run. A run that no longer exists leaves no review."""
        run_ids = sorted({v.run_id for v in versions if v.run_id})
        if not run_ids:
            return versions
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
        return [self._with_run(v, runs[v.run_id]) if v.run_id in runs else v for v in versions]

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
