"""Reading MLflow 3's LoggedModels: one model with its params, its metrics by dataset, its tags and the
registered versions made from it; the models a run logged; the model behind a registered version; and
the model now deployed under the same registered model (a review's baseline). Returns bot.models values.

What MLflow 3.17.2's server gives back, checked against a real server (sqlite):

- `get_logged_model` returns every metric logged against the model, each step of it, each with the
  dataset's name and digest when one was given and the run that logged it (a metric logged against a
  model outside any run opens a run for it). A deleted model is RESOURCE_DOES_NOT_EXIST, like an unknown id.
- The registry does not keep `ModelVersion.model_id`: every version comes back with `model_id=None`,
  and `search_model_versions` refuses a `model_id` filter. What ties a version to its model is its
  source: `models:/m-<id>` (`mlflow.register_model`) or the model's artifact location
  `…/models/m-<id>/artifacts` (`create_model_version(source=<artifact location>, model_id=…)`), so one
  `source_path LIKE '%m-<id>%'` search finds them. (MLflow also appends each registration to the
  model's `mlflow.modelVersions` tag, but `mlflow.register_model` writes it twice, once with a numeric
  version, and it keeps deleted versions, so it is not read here.)
- `search_model_versions` leaves aliases out; the registered model has them (one call per name).
"""

from __future__ import annotations

from typing import Any

from bot import tags
from bot.compare.rules import deployed_alias
from bot.errors import NotFound
from bot.mlflow.client import Mlflow, ms_to_datetime
from bot.mlflow.registry import Registry, logged_model_of
from bot.models import LoggedModelInfo, ModelMetric, ModelVersionRef

# --- limits -----------------------------------------------------------------------------------------

RUN_MODELS = 10  # LoggedModels of one run read for its card, oldest first

NO_STAGE = ("", "None")  # what the registry says for a version in no legacy stage

MODEL_WHAT = "logged model `{model_id}`"
RUN_MODELS_WHAT = "logged models of run `{run_id}`"
VERSION_WHAT = "model `{name}` version {version}"


def logged_model_url(ui_url: str, experiment_id: str, model_id: str) -> str:
    """The model's page in the MLflow UI; "" when no UI address is known. (To move to bot/mlflow/urls.py.)"""
    return f"{ui_url}/#/experiments/{experiment_id}/models/{model_id}" if ui_url else ""


model_id_of = logged_model_of  # the LoggedModel a registered version was made from ("" when none)


def _quoted(value: str) -> str:
    """A value inside a search filter's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


class LoggedModels:
    def __init__(self, mlflow: Mlflow, registry: Registry) -> None:
        self.mlflow = mlflow
        self.registry = registry

    def get(self, model_id: str) -> LoggedModelInfo:
        """One LoggedModel with its experiment's name and its registered versions (NotFound for an
        unknown or deleted id). Calls: the model, its experiment, one version search, and one per
        registered model its versions belong to."""
        tracking = self.mlflow.tracking
        model = self.mlflow.call(
            MODEL_WHAT.format(model_id=model_id), lambda: tracking.get_logged_model(model_id)
        )
        experiment = self.mlflow.call(
            f"experiment `{model.experiment_id}`", lambda: tracking.get_experiment(model.experiment_id)
        )
        return self._info(model, experiment.name or "", self._versions_of(model.model_id))

    def of_run(self, run_id: str, experiment_id: str = "") -> list[LoggedModelInfo]:
        """The LoggedModels a run logged (at most RUN_MODELS, oldest first), with their registered
        versions, without their experiment's name (the run's card shows it). `experiment_id`, the run's,
        saves reading the run. Calls: the run (without `experiment_id`), one model search, one version
        search for all of them (a version made from a run's model carries the run's id), and one per
        registered model those versions belong to."""
        tracking = self.mlflow.tracking
        if not experiment_id:
            run = self.mlflow.call(f"run `{run_id}`", lambda: tracking.get_run(run_id))
            experiment_id = run.info.experiment_id
        models = self.mlflow.call(
            RUN_MODELS_WHAT.format(run_id=run_id),
            lambda: tracking.search_logged_models(
                [experiment_id],
                filter_string=f"source_run_id = '{_quoted(run_id)}'",
                max_results=RUN_MODELS,
                order_by=[{"field_name": "creation_timestamp", "ascending": True}],
            ),
        )
        if not models:
            return []
        found = self.mlflow.call(
            "model registry", lambda: tracking.search_model_versions(f"run_id = '{_quoted(run_id)}'")
        )
        versions = self._refs(found)
        return [self._info(model, "", versions.get(model.model_id, [])) for model in models]

    def model_id_of_version(self, name: str, version: str) -> str:
        """The LoggedModel a registered version was made from; "" when none (NotFound: no such version)."""
        tracking = self.mlflow.tracking
        mv = self.mlflow.call(
            VERSION_WHAT.format(name=name, version=version), lambda: tracking.get_model_version(name, version)
        )
        return model_id_of(mv)

    def deployed_baseline(
        self, info: LoggedModelInfo, deployment_aliases: list[str]
    ) -> tuple[ModelVersionRef, LoggedModelInfo] | None:
        """The version now under a deployment alias (the first of `deployment_aliases` on a version not
        made from this model) of the first registered model this model has versions of, and that
        version's LoggedModel. None when nothing else is deployed, or the deployed version was not made
        from a LoggedModel (or its LoggedModel is deleted)."""
        if not info.model_versions or not deployment_aliases:
            return None
        name = info.model_versions[0].name
        own = {mv.version for mv in info.model_versions if mv.name == name}
        aliases = self.registry.registered_aliases(name)
        found = deployed_alias(aliases, deployment_aliases, own)
        if found is None:
            return None
        version = found[1]
        model_id = self.model_id_of_version(name, version)
        if not model_id:
            return None
        try:
            baseline = self.get(model_id)
        except NotFound:
            return None
        on_version = sorted(alias for alias, v in aliases.items() if v == version)
        return ModelVersionRef(name=name, version=version, aliases=on_version), baseline

    # --- reading ------------------------------------------------------------------------------------

    def _versions_of(self, model_id: str) -> list[ModelVersionRef]:
        tracking = self.mlflow.tracking
        found = self.mlflow.call(
            "model registry",
            lambda: tracking.search_model_versions(f"source_path LIKE '%{_quoted(model_id)}%'"),
        )
        return self._refs(found).get(model_id, [])

    def _refs(self, versions: list[Any]) -> dict[str, list[ModelVersionRef]]:
        """{model id: its versions, with their aliases} of registry search results (one call per
        registered model for the aliases, which the search leaves out)."""
        by_model: dict[str, list[Any]] = {}
        for mv in versions:
            model_id = model_id_of(mv)
            if model_id:
                by_model.setdefault(model_id, []).append(mv)
        names = sorted({mv.name for found in by_model.values() for mv in found})
        aliases = {name: self.registry.registered_aliases(name) for name in names}
        return {
            model_id: sorted(
                (
                    ModelVersionRef(
                        name=mv.name,
                        version=str(mv.version),
                        aliases=sorted(a for a, v in aliases[mv.name].items() if v == str(mv.version)),
                        stage="" if (mv.current_stage or "") in NO_STAGE else mv.current_stage,
                    )
                    for mv in found
                ),
                key=lambda ref: (ref.name, int(ref.version) if ref.version.isdigit() else 0),
            )
            for model_id, found in by_model.items()
        }

    def _info(self, model: Any, experiment_name: str, versions: list[ModelVersionRef]) -> LoggedModelInfo:
        all_tags = dict(model.tags or {})
        metrics = sorted(
            model.metrics or [],
            key=lambda m: (
                m.key,
                m.dataset_name or "",
                m.dataset_digest or "",
                m.step or 0,
                m.timestamp or 0,
            ),
        )
        status = model.status
        return LoggedModelInfo(
            model_id=model.model_id,
            name=model.name or model.model_id,
            experiment_id=str(model.experiment_id),
            experiment_name=experiment_name,
            source_run_id=model.source_run_id or "",
            model_type=model.model_type or "",
            status=str(getattr(status, "value", status) or ""),
            created=ms_to_datetime(model.creation_timestamp),
            creator=all_tags.get(tags.USER, ""),
            params={str(k): str(v) for k, v in (model.params or {}).items()},
            metrics=[
                ModelMetric(
                    key=m.key,
                    value=float(m.value),
                    step=int(m.step or 0),
                    dataset_name=m.dataset_name or "",
                    dataset_digest=m.dataset_digest or "",
                    run_id=m.run_id or "",
                )
                for m in metrics
            ],
            tags={k: v for k, v in all_tags.items() if not k.startswith(tags.HIDDEN_PREFIXES)},
            model_versions=versions,
            url=logged_model_url(self.mlflow.ui_url, str(model.experiment_id), model.model_id),
        )
