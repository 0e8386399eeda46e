"""What is reviewed when it is not a run: a LoggedModel logged outside any run, a model version with
neither a run nor a LoggedModel, or a prompt version (bot.subjects names them). Resolves references to
them and reads them into the RunSummary every card, vote and meeting works on. Returns bot.models values.
"""

from __future__ import annotations

import logging
from typing import Any

from bot import tags
from bot.errors import NotFound
from bot.mlflow.client import Mlflow, ms_to_datetime
from bot.mlflow.logged_models import LoggedModels
from bot.mlflow.prompts import Prompts
from bot.mlflow.registry import Registry
from bot.mlflow.urls import experiment_url, model_version_url
from bot.models import ModelVersionRef, PromptInfo, RefKind, RunRef, RunSummary, SubjectKind
from bot.subjects import name_and_version, prompt_subject, subject_kind

log = logging.getLogger(__name__)

LATEST = "latest"


class SubjectReader:
    def __init__(
        self, mlflow: Mlflow, registry: Registry, logged_models: LoggedModels, prompts: Prompts
    ) -> None:
        self.mlflow = mlflow
        self.registry = registry
        self.logged_models = logged_models
        self.prompts = prompts

    # --- references ---------------------------------------------------------------------------------

    def resolve(self, ref: RunRef) -> str:
        """The subject id (bot.subjects) behind a model or prompt reference: a model logged from a run
        is reviewed as its run."""
        if ref.kind is RefKind.LOGGED_MODEL:
            assert ref.model_id
            model = self._logged_model(ref.model_id)
            return model.source_run_id or ref.model_id
        if ref.kind in (RefKind.PROMPT_VERSION, RefKind.PROMPT_ALIAS):
            return prompt_subject(*self._prompt_version(ref))
        return self.registry.decision_subject(self.registry.find_version(ref))

    def _prompt_version(self, ref: RunRef) -> tuple[str, str]:
        name = ref.model_name
        assert name
        if ref.kind is RefKind.PROMPT_VERSION:
            assert ref.version
            self.prompts.version(name, ref.version, with_evaluations=False)  # NotFound when not there
            return name, ref.version
        if (ref.alias or "").lower() == LATEST:
            return name, self.prompts.latest_version(name)
        assert ref.alias
        return name, self.prompts.version_by_alias(name, ref.alias, with_evaluations=False).version

    def _logged_model(self, model_id: str) -> Any:
        tracking = self.mlflow.tracking
        return self.mlflow.call(f"logged model `{model_id}`", lambda: tracking.get_logged_model(model_id))

    # --- summaries ----------------------------------------------------------------------------------

    def summary(self, subject_id: str) -> RunSummary:
        kind = subject_kind(subject_id)
        if kind is SubjectKind.LOGGED_MODEL:
            return self._logged_model_summary(subject_id)
        if kind is SubjectKind.PROMPT_VERSION:
            return self._prompt_summary(subject_id)
        if kind is SubjectKind.MODEL_VERSION:
            return self._model_version_summary(subject_id)
        raise ValueError(f"a run is read by bot.mlflow.runs: {subject_id}")

    def _logged_model_summary(self, model_id: str) -> RunSummary:
        record = dict(self._logged_model(model_id).tags or {})
        info = self.logged_models.get(model_id)
        return RunSummary(
            run_id=model_id,
            run_name=info.name,
            experiment_id=info.experiment_id,
            experiment_name=info.experiment_name,
            user=info.creator,
            status=info.status,
            start_time=info.created,
            params=dict(info.params),
            note=record.get(tags.NOTE, ""),
            model_versions=info.model_versions,
            run_url=info.url,
            experiment_url=experiment_url(self.mlflow.ui_url, info.experiment_id)
            if info.experiment_id
            else "",
            kind=SubjectKind.LOGGED_MODEL,
            logged_model=info,
            **self._record(model_id, record),
        )

    def _model_version_summary(self, subject_id: str) -> RunSummary:
        name, version = name_and_version(subject_id)
        tracking = self.mlflow.tracking
        mv = self.mlflow.call(
            f"model `{name}` version {version}", lambda: tracking.get_model_version(name, version)
        )
        record = dict(mv.tags or {})
        return RunSummary(
            run_id=subject_id,
            run_name=f"{name} v{mv.version}",
            experiment_id="",
            experiment_name="",
            user=mv.user_id or "",
            status=mv.status or "",
            start_time=ms_to_datetime(mv.creation_timestamp),
            source_name=mv.source or "",
            note=mv.description or "",
            model_versions=[
                ModelVersionRef(
                    name=name,
                    version=str(mv.version),
                    aliases=sorted(mv.aliases or []),
                    stage=mv.current_stage or "",
                )
            ],
            run_url=model_version_url(self.mlflow.ui_url, name, str(mv.version)),
            kind=SubjectKind.MODEL_VERSION,
            **self._record(subject_id, record),
        )

    def _prompt_summary(self, subject_id: str) -> RunSummary:
        name, version = name_and_version(subject_id)
        info = self.prompts.version(name, version)
        tracking = self.mlflow.tracking
        record = dict(
            self.mlflow.call(
                f"prompt `{name}` version {version}", lambda: tracking.get_prompt_version(name, version)
            ).tags
            or {}
        )
        fields = self._record(subject_id, record)
        return RunSummary(
            run_id=subject_id,
            run_name=f"{name} v{version}",
            experiment_id="",
            experiment_name="",
            user=info.author,
            start_time=info.created,
            note=info.commit_message,
            run_url=info.url,
            kind=SubjectKind.PROMPT_VERSION,
            prompt=info,
            prompt_baseline=self._prompt_baseline(name, version, fields["baseline"]),
            **fields,
        )

    def _prompt_baseline(self, name: str, version: str, baseline: Any) -> PromptInfo | None:
        """The version the card diffs against, as its review.baseline tag keeps it."""
        if baseline is None or not baseline.version or baseline.version == version:
            return None
        try:
            return self.prompts.version(baseline.model_name or name, baseline.version, with_evaluations=False)
        except NotFound:
            return None

    def _record(self, subject_id: str, record: dict[str, str]) -> dict[str, Any]:
        return {
            "review": self.mlflow.verifier.review(subject_id, record),
            "meeting": tags.meeting_from_tags(subject_id, record),
            "baseline": tags.baseline_from_tags(record),
        }
