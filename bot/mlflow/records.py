"""The review record in MLflow: the run's `review.*` tags (the source of truth, signed by the bot), their
mirror on the run's model versions, and the discussion kept when a review is approved. Formats live in
bot.tags, the signature in bot.signature."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from mlflow.entities import RunTag

from bot import tags
from bot.errors import ReviewBotError
from bot.metrics_export import votes_recorded
from bot.mlflow.client import Mlflow
from bot.models import ModelVersionRef, ReviewState, SubjectKind
from bot.signature import Signer
from bot.subjects import describe, name_and_version, subject_kind

log = logging.getLogger(__name__)

DISCUSSION_ARTIFACT = "review/discussion.md"
TAGS_PER_BATCH = 100  # MLflow's log_batch takes at most 100 tags
MAX_TAG_VALUE = 8000  # MLflow cuts a run tag's value here without saying so: never write one that long


class RecordTooLarge(ReviewBotError):
    def __init__(self, run_id: str, key: str) -> None:
        super().__init__(f"run {run_id}: tag {key} would pass MLflow's {MAX_TAG_VALUE}-character limit")

    def user_message(self) -> str:
        return f":warning: {self}. Nothing was changed."


@dataclass(frozen=True)
class Standing:
    """A subject's review as the bot vouches for it, and whether the subject was deleted (a deleted run
    keeps its tags: its approval must not count)."""

    review: ReviewState | None
    deleted: bool = False


class ReviewRecords:
    def __init__(self, mlflow: Mlflow, signer: Signer | None = None) -> None:
        self.mlflow = mlflow
        self.signer = signer

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The tags that hold the review of `run_id`: a run's, or another subject's (bot.subjects)."""
        tracking = self.mlflow.tracking
        kind = subject_kind(run_id)
        if kind is SubjectKind.RUN:
            run = self.mlflow.call(f"run `{run_id}`", lambda: tracking.get_run(run_id))
            return dict(run.data.tags)
        if kind is SubjectKind.LOGGED_MODEL:
            model = self.mlflow.call(describe(run_id), lambda: tracking.get_logged_model(run_id))
            return dict(model.tags or {})
        name, version = name_and_version(run_id)
        if kind is SubjectKind.PROMPT_VERSION:
            prompt = self.mlflow.call(describe(run_id), lambda: tracking.get_prompt_version(name, version))
            return dict(prompt.tags or {})
        mv = self.mlflow.call(describe(run_id), lambda: tracking.get_model_version(name, version))
        return dict(mv.tags or {})

    def standing(self, subject: str) -> Standing:
        """What the gate judges: the review and whether the subject is deleted (one read)."""
        if subject_kind(subject) is SubjectKind.RUN:
            run = self.mlflow.call(f"run `{subject}`", lambda: self.mlflow.tracking.get_run(subject))
            review = self.mlflow.verifier.review(subject, dict(run.data.tags))
            return Standing(review, deleted=run.info.lifecycle_stage == "deleted")
        return Standing(self.review_of(subject))

    def review_of(self, run_id: str, run_tags: Mapping[str, str] | None = None) -> ReviewState | None:
        """The review as the bot vouches for it (bot.signature.Verifier.review)."""
        return self.mlflow.verifier.review(run_id, self.run_tags(run_id) if run_tags is None else run_tags)

    def set_run_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        """Several tags on a run in one log_batch per 100 (all of a batch written or none); on a LoggedModel
        in one call; on a model or prompt version one at a time, in order (the signature is written last,
        so a write cut short reads as untrusted, never as a forged record)."""
        for key, value in values.items():
            if len(value) > MAX_TAG_VALUE:
                raise RecordTooLarge(run_id, key)
        kind = subject_kind(run_id)
        if kind is not SubjectKind.RUN:
            self._set_subject_tags(run_id, kind, values)
            return
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
            votes_recorded(sum(1 for key in changes if key.startswith(tags.VOTE_PREFIX)))
        if not any(key in changes for key in tags.MODEL_VERSION_MIRROR):
            return []  # the registry shows nothing that changed (a mirror behind is retried on its own)
        return self.mirror(state, model_versions)

    def _set_subject_tags(self, subject: str, kind: SubjectKind, values: Mapping[str, str]) -> None:
        tracking = self.mlflow.tracking
        what = f"the review's tags on {describe(subject)}"
        if kind is SubjectKind.LOGGED_MODEL:
            self.mlflow.call(what, lambda: tracking.set_logged_model_tags(subject, dict(values)), writes=True)
            return
        name, version = name_and_version(subject)
        for key, value in values.items():
            if kind is SubjectKind.PROMPT_VERSION:
                self.mlflow.call(
                    what,
                    lambda key=key, value=value: tracking.set_prompt_version_tag(name, version, key, value),
                    writes=True,
                )
            else:
                self.set_model_version_tag(name, version, key, value)

    @staticmethod
    def covering(state: ReviewState, model_versions: list[ModelVersionRef]) -> ReviewState:
        """The state, covering these model versions (what reviewers see on the card when they vote)."""
        return state.model_copy(update={"covers": sorted(f"{mv.name}/{mv.version}" for mv in model_versions)})

    def mirror(self, state: ReviewState, model_versions: list[ModelVersionRef]) -> list[ModelVersionRef]:
        """The registry-facing tags on each model version; returns the versions MLflow refused. A model
        version reviewed as itself holds the record already."""
        if subject_kind(state.run_id) is SubjectKind.MODEL_VERSION:
            return []
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
        """The thread, as a Markdown artifact of the run (only runs have artifacts to keep it in)."""
        if subject_kind(run_id) is not SubjectKind.RUN:
            log.info("the discussion of %s is not kept: only runs have an artifact store for it", run_id)
            return
        self.mlflow.call(
            f"the artifacts of run `{run_id}`",
            lambda: self.mlflow.tracking.log_text(run_id, markdown, DISCUSSION_ARTIFACT),
            writes=True,
        )


NO_SIGNING_KEY = (
    ":warning: review-bot has no signing key (REVIEW_SIGNING_KEY), so it cannot record decisions. "
    "Nothing was changed; ask whoever runs the bot to set one (`review-bot keys generate`)."
)
