"""The review record in MLflow: the run's `review.*` tags (the source of truth, signed by the bot), their
mirror on the run's model versions, and the discussion kept when a review is approved. Formats live in
bot.tags, the signature in bot.signature."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mlflow.entities import RunTag

from bot import tags
from bot.errors import ReviewBotError
from bot.mlflow.client import Mlflow
from bot.models import ModelVersionRef, ReviewState
from bot.signature import Signer

log = logging.getLogger(__name__)

DISCUSSION_ARTIFACT = "review/discussion.md"
TAGS_PER_BATCH = 100  # MLflow's log_batch takes at most 100 tags
MAX_TAG_VALUE = 8000  # MLflow cuts a run tag's value here without saying so: never write one that long


class RecordTooLarge(ReviewBotError):
    def __init__(self, run_id: str, key: str) -> None:
        super().__init__(f"run {run_id}: tag {key} would pass MLflow's {MAX_TAG_VALUE}-character limit")

    def user_message(self) -> str:
        return f":warning: {self}. Nothing was changed."


class ReviewRecords:
    def __init__(self, mlflow: Mlflow, signer: Signer | None = None) -> None:
        self.mlflow = mlflow
        self.signer = signer

    def run_tags(self, run_id: str) -> dict[str, str]:
        run = self.mlflow.call(f"run `{run_id}`", lambda: self.mlflow.tracking.get_run(run_id))
        return dict(run.data.tags)

    def review_of(self, run_id: str, run_tags: Mapping[str, str] | None = None) -> ReviewState | None:
        """The review as the bot vouches for it (bot.signature.Verifier.review)."""
        return self.mlflow.verifier.review(run_id, self.run_tags(run_id) if run_tags is None else run_tags)

    def set_run_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        """Several tags on a run in one log_batch per 100 (all of a batch written or none)."""
        for key, value in values.items():
            if len(value) > MAX_TAG_VALUE:
                raise RecordTooLarge(run_id, key)
        items = list(values.items())
        for start in range(0, len(items), TAGS_PER_BATCH):
            batch = [RunTag(k, v) for k, v in items[start : start + TAGS_PER_BATCH]]
            self.mlflow.call(
                f"the review's tags on run `{run_id}`",
                lambda batch=batch: self.mlflow.tracking.log_batch(run_id, tags=batch),
                writes=True,
            )

    def record_review(
        self,
        state: ReviewState,
        current: Mapping[str, str],
        model_versions: list[ModelVersionRef],
        extra_tags: Mapping[str, str] | None = None,
    ) -> list[ModelVersionRef]:
        """Make the run's review tags say `state`, signed, given the run's tags as read (`current`); the
        versions the decision covers are the state's own (`covering`), those mirrored `model_versions`:
        only what differs is written, the signature last, so a write cut short leaves a record whose
        signature fails (read as untrusted), never a forged-looking one. Then mirror the registry-facing
        tags onto the model versions; returns those whose mirror MLflow refused (the run's tags, the
        source of truth, hold the decision all the same: retry with `mirror`)."""
        if self.signer is None:
            raise ReviewBotError(NO_SIGNING_KEY)
        changes = {**(extra_tags or {}), **tags.review_changes(current, state)}
        signature = self.signer.sign(state.run_id, {**current, **changes})
        if signature != current.get(tags.SIGNATURE):  # Ed25519 is deterministic: same record, same value
            changes[tags.SIGNATURE] = signature  # last: see above
        if changes:
            self.set_run_tags(state.run_id, changes)
        if not any(key in changes for key in tags.MODEL_VERSION_MIRROR):
            return []  # the registry shows nothing that changed (a mirror behind is retried on its own)
        return self.mirror(state, model_versions)

    @staticmethod
    def covering(state: ReviewState, model_versions: list[ModelVersionRef]) -> ReviewState:
        """The state, covering these model versions (what reviewers see on the card when they vote)."""
        return state.model_copy(update={"covers": sorted(f"{mv.name}/{mv.version}" for mv in model_versions)})

    def mirror(self, state: ReviewState, model_versions: list[ModelVersionRef]) -> list[ModelVersionRef]:
        """The registry-facing tags on each model version; returns the versions MLflow refused."""
        review = tags.review_tags(state)
        failed = []
        for mv in model_versions:
            try:
                for key in tags.MODEL_VERSION_MIRROR:
                    self.set_model_version_tag(mv.name, mv.version, key, review[key])
            except ReviewBotError as exc:
                log.warning(
                    "mirroring run %s's review onto %s v%s failed: %s", state.run_id, mv.name, mv.version, exc
                )
                failed.append(mv)
        return failed

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.mlflow.call(
            f"the tags of model `{name}` version {version}",
            lambda: self.mlflow.tracking.set_model_version_tag(name, version, key, value),
            writes=True,
        )

    def log_discussion(self, run_id: str, markdown: str) -> None:
        self.mlflow.call(
            f"the artifacts of run `{run_id}`",
            lambda: self.mlflow.tracking.log_text(run_id, markdown, DISCUSSION_ARTIFACT),
            writes=True,
        )


NO_SIGNING_KEY = (
    ":warning: review-bot has no signing key (REVIEW_SIGNING_KEY), so it cannot record decisions. "
    "Nothing was changed; ask whoever runs the bot to set one (`review-bot keys generate`)."
)
