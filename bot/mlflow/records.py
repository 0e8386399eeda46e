"""The review record in MLflow: the run's `review.*` tags (the source of truth), their mirror on the
run's model versions, and the discussion kept when a review is approved. Formats live in bot.tags."""

from __future__ import annotations

from mlflow.entities import RunTag

from bot import tags
from bot.mlflow.client import Mlflow
from bot.models import ModelVersionRef, ReviewState

DISCUSSION_ARTIFACT = "review/discussion.md"


class ReviewRecords:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def run_tags(self, run_id: str) -> dict[str, str]:
        run = self.mlflow.call(f"run `{run_id}`", lambda: self.mlflow.tracking.get_run(run_id))
        return dict(run.data.tags)

    def review_of(self, run_id: str) -> ReviewState | None:
        return tags.review_from_tags(run_id, self.run_tags(run_id))

    def set_run_tags(self, run_id: str, values: dict[str, str]) -> None:
        """Several tags on a run in one log_batch: all written or none."""
        self.mlflow.call(
            f"run `{run_id}`",
            lambda: self.mlflow.tracking.log_batch(run_id, tags=[RunTag(k, v) for k, v in values.items()]),
        )

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
        review = tags.review_tags(state)
        self.set_run_tags(state.run_id, {**(extra_tags or {}), **review})
        for mv in model_versions:
            for key in tags.MODEL_VERSION_MIRROR:
                self.set_model_version_tag(mv.name, mv.version, key, review[key])

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.mlflow.call(
            f"model `{name}` version {version}",
            lambda: self.mlflow.tracking.set_model_version_tag(name, version, key, value),
        )

    def log_discussion(self, run_id: str, markdown: str) -> None:
        self.mlflow.call(
            f"run `{run_id}`", lambda: self.mlflow.tracking.log_text(run_id, markdown, DISCUSSION_ARTIFACT)
        )
