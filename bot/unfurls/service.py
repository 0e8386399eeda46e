"""Unfurling MLflow UI links: a link_shared event in, one chat.unfurl out.

Each link is read with what a card's first post reads (`Runs.run_summary(subject,
with_model_versions=False)`), plus the baseline run's metrics when the run has a baseline; an experiment
with its run count and best run. The links of a message are read in parallel, and their unfurls go in
one chat.unfurl. A link MLflow does not know unfurls into a short "not in MLflow"; a link that cannot be
read (MLflow down, the bot's account refused) is not unfurled, and logged: nothing is ever posted in the
channel. The same link unfurled again within CACHE_TTL_SECONDS (an edited message, another channel)
reuses the unfurl kept in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.commands import parse_ref
from bot.compare.rules import goal_direction
from bot.config import Settings
from bot.errors import BadReference, NotFound, ReviewBotError, log_unexpected
from bot.mlflow import MlflowAccess
from bot.mlflow.experiments import METRIC_SAMPLE_RUNS
from bot.mlflow.urls import experiment_url
from bot.models import MODEL_VERSION_REFS, RefKind, ReviewState, ReviewStatus, RunRef, RunSummary, SubjectKind
from bot.nudges.rules import waiting_on
from bot.reviews.card_index import CardIndex
from bot.reviews.publish import ReviewPublisher
from bot.slack.outbox import Notify, Outbox
from bot.store import Store
from bot.unfurls.blocks import (
    EXPERIMENT_WHAT,
    build_experiment_unfurl,
    build_model_unfurl,
    build_not_found_unfurl,
    build_prompt_unfurl,
    build_run_unfurl,
)
from bot.unfurls.rules import (
    CACHE_TTL_SECONDS,
    ExperimentShown,
    ReviewShown,
    UnfurlTarget,
    VersionShown,
    cache_key,
    shown_metrics,
    target_of,
    targets,
    unfurl_address,
)
from bot.votes.rules import VotePolicy

log = logging.getLogger(__name__)

Unfurl = dict[str, Any]
MODEL_REFS = frozenset(
    {RefKind.MODEL_VERSION, RefKind.MODEL_ALIAS, RefKind.MODEL_LATEST, RefKind.MODEL_STAGE}
)


class UnfurlService:
    def __init__(
        self,
        mlflow: MlflowAccess,
        settings: Settings,
        store: Store,
        outbox: Outbox,
        cards: CardIndex,
        publisher: ReviewPublisher,
        policy: Callable[[], VotePolicy] = lambda: VotePolicy(reviewers=None),
    ) -> None:
        self.mlflow = mlflow
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.cards = cards
        self.publisher = publisher
        self.policy = policy  # who may vote (bot.votes): to name who a pending review waits on

    # --- link_shared ------------------------------------------------------------------------------

    def unfurl(self, event: Mapping[str, Any]) -> None:
        """A link_shared event: unfurl the links to this MLflow UI in it, all in one chat.unfurl."""
        if not self.settings.unfurls_enabled:
            return
        found = targets(event.get("links") or [], self.settings.ui_url)
        address = unfurl_address(event)
        if not found or address is None:
            return
        with ThreadPoolExecutor(max_workers=len(found), thread_name_prefix="unfurl") as pool:
            made = list(pool.map(self._unfurl_link, found))
        unfurls = {target.url: unfurl for target, unfurl in zip(found, made, strict=True) if unfurl}
        if not unfurls:
            return
        self.outbox.unfurl(unfurls, what=f"{len(unfurls)} link(s)", **address)

    def preview(self, url: str) -> Unfurl | None:
        """The unfurl a pasted `url` would get (`review-bot demo` writes it), or None when it gets none."""
        target = target_of(url, self.settings.ui_url)
        return self._unfurl_link(target) if target is not None else None

    def _unfurl_link(self, target: UnfurlTarget) -> Unfurl | None:
        """One link's unfurl, from the store when it was made within CACHE_TTL_SECONDS; None when it
        cannot be made (logged): the link then shows as Slack shows any link."""
        key = cache_key(target.url)
        cached = self.store.get_json(key)
        if cached is not None:
            return cached
        try:
            unfurl = self._read(target)
        except NotFound:
            what = (
                target.ref.describe()
                if target.ref
                else EXPERIMENT_WHAT.format(experiment_id=target.experiment_id)
            )
            unfurl = build_not_found_unfurl(what)
        except BadReference as exc:  # not something a card can be about: leave the link alone
            log.info("a link not unfurled: %s", exc)
            return None
        except ReviewBotError as exc:  # MLflow down or refusing the bot: no unfurl, never a message
            log.warning("a link could not be unfurled: %s", exc)
            return None
        except Exception:  # one link's bug must not cost the message's other unfurls
            log_unexpected(log, "unfurling a link")
            return None
        self.store.put_json(key, unfurl, CACHE_TTL_SECONDS)
        return unfurl

    # --- reading what a link points at -------------------------------------------------------------

    def _read(self, target: UnfurlTarget) -> Unfurl:
        if target.ref is None:
            return self._experiment(target)
        ref = target.ref
        if ref.kind in MODEL_VERSION_REFS:
            return self._model_version(target.url, ref)
        subject = self.mlflow.runs.resolve(ref)
        summary = self.mlflow.runs.run_summary(subject, with_model_versions=False)
        if summary.kind is SubjectKind.RUN:
            model_id = ref.model_id if ref.kind is RefKind.LOGGED_MODEL else ""
            return self._run(target.url, summary, model_id or "")
        if summary.kind is SubjectKind.PROMPT_VERSION:
            return build_prompt_unfurl(target.url, summary, self._review(summary))
        return build_model_unfurl(
            target.url,
            summary,
            self._review(summary),
            [],
            key_metrics=self.settings.review_key_metrics,
            primary=self._primary,
        )

    @property
    def _primary(self) -> str | None:
        goal = self.settings.primary_metric
        return goal.key if goal else None

    def _metrics(self, summary: RunSummary) -> list[str]:
        return shown_metrics(summary.metrics, self.settings.review_key_metrics, self._primary)

    def _run(self, url: str, summary: RunSummary, logged_model_id: str = "") -> Unfurl:
        """A run, its metrics against its baseline's (one more read, only when it has a baseline run)."""
        return build_run_unfurl(
            url,
            summary,
            self._review(summary),
            self._metrics(summary),
            baseline_metrics=self._baseline_metrics(summary),
            directions=self.settings.metric_directions,
            logged_model_id=logged_model_id,
        )

    def _baseline_metrics(self, summary: RunSummary) -> dict[str, float] | None:
        """The metrics of the run's baseline (its review.baseline tag, kept once a card was posted); None
        without one, or when it cannot be read (the unfurl then shows no change)."""
        baseline = summary.baseline
        if baseline is None or not baseline.run_id or baseline.run_id == summary.run_id:
            return None
        try:
            return dict(self.mlflow.runs.active_run(baseline.run_id).data.metrics)
        except ReviewBotError as exc:
            log.info("the baseline %s of run %s was not read: %s", baseline.run_id, summary.run_id, exc)
            return None

    def _model_version(self, url: str, ref: RunRef) -> Unfurl:
        """A registered model version: the registry's word on it, and what its review is of (its run,
        its LoggedModel, or the version itself): the calls `Runs.resolve` makes, keeping the version."""
        registry = self.mlflow.registry
        mv = registry.find_version(ref)
        summary = self.mlflow.runs.run_summary(registry.decision_subject(mv), with_model_versions=False)
        version = VersionShown(
            name=str(mv.name),
            version=str(mv.version),
            aliases=tuple(sorted(getattr(mv, "aliases", None) or [])),
            stage=_stage(mv),
            status=str(getattr(mv, "status", "") or ""),
        )
        return build_model_unfurl(
            url,
            summary,
            self._review(summary),
            self._metrics(summary),
            version=version,
            key_metrics=self.settings.review_key_metrics,
            primary=self._primary,
        )

    def _experiment(self, target: UnfurlTarget) -> Unfurl:
        """An experiment: its run count (the recent runs read, up to METRIC_SAMPLE_RUNS) and, when
        PRIMARY_METRIC says which way it improves, its best run."""
        experiments = self.mlflow.experiments
        found = experiments.find_experiment(target.experiment_id)
        if found is None:
            raise NotFound(EXPERIMENT_WHAT.format(experiment_id=target.experiment_id))
        experiment_id, name = found
        _, count = experiments.metric_keys(experiment_id)
        goal = self.settings.primary_metric
        direction = goal_direction(goal, self.settings.metric_directions) if goal else None
        best = None
        if goal is not None and direction is not None and direction.judged and count:
            top = experiments.top_runs(experiment_id, name, goal.key, direction, 1)
            best = top[0] if top else None
        shown = ExperimentShown(
            experiment_id=experiment_id,
            name=name,
            url=experiment_url(self.settings.ui_url, experiment_id),
            runs=count,
            capped=count >= METRIC_SAMPLE_RUNS,
            metric=goal.key if goal else "",
            direction=direction,
            best=best,
        )
        return build_experiment_unfurl(target.url, shown)

    def _review(self, summary: RunSummary) -> ReviewShown:
        return ReviewShown(
            subject=summary.run_id,
            review=summary.review,
            required_approvals=self.settings.required_approvals,
            waiting_on=self._waiting_on(summary.review),
        )

    def _waiting_on(self, review: ReviewState | None) -> tuple[str, ...]:
        """The reviewers who have not voted on a pending review; none when anyone may vote, or when the
        reviewer group cannot be read (the unfurl then names nobody rather than the wrong people)."""
        if review is None or review.untrusted or review.status is not ReviewStatus.PENDING:
            return ()
        try:
            return tuple(waiting_on(review, self.policy().reviewers))
        except ReviewBotError as exc:
            log.info("who a review waits on was not read: %s", exc)
            return ()

    # --- the Review button -------------------------------------------------------------------------

    def review(self, reference: str, *, user: str, channel: str, notify: Notify) -> str | None:
        """An unfurl's Review button: the card of what it points at, posted exactly as `/review` posts
        it; the card's ts, or None when nothing was posted (the person is told why)."""
        try:
            ref = parse_ref(reference)
        except BadReference as exc:
            notify(exc.user_message())
            return None
        return self.publisher.publish(ref, requested_by=user, origin_channel=channel, notify=notify)


def _stage(mv: Any) -> str:
    """A version's legacy stage; "" for none (MLflow says "None")."""
    stage = str(getattr(mv, "current_stage", "") or "")
    return "" if stage == "None" else stage
