"""Nudges: no model goes live unreviewed without the team hearing about it.

Two ways in. MLflow's registry webhooks report an alias landing on a version as it happens
(`on_webhook`), and a scheduled scan of the registry (`scan`, run by the scheduler's leader on
NUDGE_CRON, or by `review-bot nudge --once`) posts one digest. Both ask MLflow, never the event,
which run a version came from and whether that run's review is approved. A nudge is posted once per
(model, version, alias) within NUDGE_REPEAT; a snooze is kept in Redis and as a model-version tag.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot import tags
from bot.deployments import deployment_markers
from bot.errors import MlflowUnavailable, NotFound, ReviewBotError, log_unexpected
from bot.mlflow.prompts import Prompts
from bot.mlflow.records import ReviewRecords
from bot.mlflow.registry import Registry
from bot.mlflow.runs import Runs
from bot.models import ModelVersionRef, RefKind, ReviewState, RunRef, RunSummary
from bot.nudges.blocks import (
    build_digest,
    build_nudge,
    build_nudge_outcome,
    build_reviewer_dm,
    snoozed_line,
    started_line,
)
from bot.nudges.rules import (
    PROMPT_ALIAS_EVENT,
    SNOOZE_FOR,
    WEBHOOK_EVENTS,
    DeployedVersion,
    Scan,
    is_overdue,
    is_snoozed,
    needs_nudge,
    nudge_key,
    snooze_key,
    waiting_on,
    webhook_refusal,
)
from bot.request_ids import ContextThreadPoolExecutor
from bot.reviews.publish import ReviewPublisher
from bot.scheduler import LeaderScheduler
from bot.slack.message import SlackMessage
from bot.slack.outbox import Notify, Outbox
from bot.store import Store
from bot.subjects import model_version_subject, prompt_subject
from bot.tags import iso_utc, parse_moment

log = logging.getLogger(__name__)

DIGEST, DIGEST_SUBJECT = "digest", "registry"
CHECK_THREADS = 8
WEBHOOK_THREADS = 4
# Deliveries older than 5 minutes are refused anyway; their ids are remembered a little longer.
DELIVERY_MEMORY_SECONDS = 600

NOT_SNOOZED = (
    ":warning: Not snoozed: MLflow at `{uri}` did not answer, so nothing was changed. Try again in a minute."
)
NO_CHANNEL = "REVIEW_CHANNEL is not set: nudges and digests have nowhere to go"


class NudgeService:
    def __init__(
        self,
        registry: Registry,
        runs: Runs,
        records: ReviewRecords,
        store: Store,
        outbox: Outbox,
        publisher: ReviewPublisher,
        *,
        channel: str | None,
        deployment_aliases: list[str],
        pending_max_days: int,
        repeat_seconds: int,
        reviewers: Callable[[], frozenset[str] | None],
        scheduler: LeaderScheduler | None = None,
        cron: str = "",
        timezone: str = "UTC",
        webhook_secret: str | None = None,
    ) -> None:
        self.registry = registry
        self.runs = runs
        self.records = records
        self.store = store
        self.outbox = outbox
        self.publisher = publisher
        self.channel = channel
        self.deployment_aliases = deployment_aliases
        self.pending_max_days = pending_max_days
        self.repeat_seconds = repeat_seconds
        self.reviewers = reviewers
        self.scheduler = scheduler
        self.cron = cron
        self.timezone = timezone
        self.webhook_secret = webhook_secret
        # Threads start on first use, so a service built before gunicorn forks works in the worker.
        self._work = ContextThreadPoolExecutor(
            max_workers=WEBHOOK_THREADS, thread_name_prefix="mlflow-webhook"
        )
        if scheduler is not None:
            scheduler.register((DIGEST,), self.run_digest, self._digest_missed)
            scheduler.on_leader(self.schedule_digest)

    # --- as it happens: MLflow's webhooks ----------------------------------------------------------

    def receive(
        self, delivery_id: str, timestamp: str, signature: str, body: bytes, now: datetime | None = None
    ) -> Delivery:
        """Check one POST to /mlflow/webhook; a good one is acted on in the background (MLflow waits
        for the answer, and its own retries must not pile up behind a slow registry)."""
        if self.webhook_secret is None:
            return Delivery(401, "MLFLOW_WEBHOOK_SECRET is not set: webhooks are refused")
        now = now or datetime.now(tz=UTC)
        refusal = webhook_refusal(self.webhook_secret, delivery_id, timestamp, body, signature, now)
        if refusal:
            return Delivery(401, refusal)
        try:
            payload = json.loads(body)
        except ValueError:
            return Delivery(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return Delivery(400, "the body is not a JSON object")
        if not self.store.claim(f"mlflow-delivery:{delivery_id}", DELIVERY_MEMORY_SECONDS):
            return Delivery(401, "delivery id already seen (a replay)")
        self._work.submit(self._on_webhook_logged, payload)
        return Delivery(200, "accepted")

    def _on_webhook_logged(self, payload: dict[str, Any]) -> None:
        try:
            self.on_webhook(payload)
        except Exception:  # a background task: nobody else would see it
            log_unexpected(log, "acting on an MLflow webhook")

    def on_webhook(self, payload: dict[str, Any], now: datetime | None = None) -> int:
        """A verified delivery from MLflow; returns how many nudges it posted (0 or 1)."""
        event = f"{payload.get('entity')}.{payload.get('action')}"
        data = payload.get("data") or {}
        name, version = data.get("name"), data.get("version")
        if event not in WEBHOOK_EVENTS or not name or version in (None, ""):
            log.info("webhook %s ignored: not a model or prompt version event the bot acts on", event)
            return 0
        if event in ("model_version_alias.created", PROMPT_ALIAS_EVENT) and not self._is_deployment_alias(
            data.get("alias", "")
        ):
            log.info(
                "alias @%s on %s v%s is not a deployment alias: ignored", data.get("alias"), name, version
            )
            return 0
        # The bot's own tag writes come back as webhooks: never a reason to nudge.
        if event == "model_version_tag.set" and str(data.get("key", "")).startswith(tags.PREFIX):
            return 0
        moment = now or datetime.now(tz=UTC)
        if event == PROMPT_ALIAS_EVENT:
            return self.check_prompt(str(name), str(version), moment)
        return self.check_version(str(name), str(version), moment)

    def _is_deployment_alias(self, alias: str) -> bool:
        return alias.lower() in {a.lower() for a in self.deployment_aliases}

    def check_version(self, name: str, version: str, now: datetime) -> int:
        """Nudge about one version if it is deployed, unapproved, not snoozed and not nudged lately."""
        return self._check(
            "model",
            name,
            version,
            now,
            lambda: self.registry.deployed_version(name, version, self.deployment_aliases),
        )

    def check_prompt(self, name: str, version: str, now: datetime) -> int:
        """The same for a prompt version (an alias landed on it)."""
        return self._check("prompt", name, version, now, lambda: self._prompt_states([(name, version)])[0])

    def _check(
        self, what: str, name: str, version: str, now: datetime, read: Callable[[], DeployedVersion]
    ) -> int:
        try:
            deployed = read()
        except NotFound:
            log.info("%s %s version %s no longer exists: skipped", what, name, version)
            return 0
        except MlflowUnavailable as exc:
            log.warning("could not check %s v%s (%s); the next digest will", name, version, exc.tracking_uri)
            return 0
        prompt = deployed.prompt
        if (
            not deployed.markers
            or not needs_nudge(deployed, now)
            or self._snoozed_in_store(name, version, now, prompt=prompt)
        ):
            return 0
        fresh = [
            m
            for m in deployed.markers
            if self.store.claim(nudge_key(name, version, m, prompt=prompt), self.repeat_seconds)
        ]
        if not fresh:
            return 0  # nudged about each of its aliases within NUDGE_REPEAT already
        if not self._post(build_nudge(deployed, fresh, now)):
            for marker in fresh:  # not posted: the next event or digest may try again
                self.store.release(nudge_key(name, version, marker, prompt=prompt))
            return 0
        log.info("nudged about %s v%s (%s)", name, version, ", ".join(fresh))
        return 1

    def _prompt_states(self, versions: list[tuple[str, str]]) -> list[DeployedVersion]:
        """Prompt versions as the nudges judge them: their deployment aliases and their own record."""
        prompts = self._prompts()
        found = []
        for name, version in versions:
            info = prompts.version(name, version, with_evaluations=False)
            subject = prompt_subject(name, version)
            record = self.records.run_tags(subject)
            try:
                review = self.records.mlflow.verifier.review(subject, record)
            except tags.UnreadableRecord as exc:
                log.warning("%s", exc)
                review = ReviewState(run_id=subject, untrusted=str(exc))
            found.append(
                DeployedVersion(
                    name=name,
                    version=version,
                    markers=deployment_markers(info.aliases, "", self.deployment_aliases),
                    version_url=info.url,
                    review=review,
                    snoozed_until=parse_moment(record.get(tags.SNOOZED_UNTIL)),
                    subject=subject,
                    prompt=True,
                    run_started=info.created,
                )
            )
        return found

    def _prompts(self) -> Prompts:
        if self.runs.subjects is None:
            raise NotFound("prompts are read by bot.mlflow.connect's readers")
        return self.runs.subjects.prompts

    def _snoozed_in_store(self, name: str, version: str, now: datetime, *, prompt: bool = False) -> bool:
        return is_snoozed(parse_moment(self.store.get_json(snooze_key(name, version, prompt=prompt))), now)

    # --- on a schedule: the digest -----------------------------------------------------------------

    def schedule_digest(self) -> None:
        """Put the digest on the scheduler (on becoming leader, so a changed NUDGE_CRON takes effect)."""
        if self.scheduler is not None and self.cron:
            self.scheduler.schedule_cron(DIGEST, DIGEST_SUBJECT, self.cron, self.timezone)

    def run_digest(self, kind: str, subject: str) -> None:
        now = datetime.now(tz=UTC)
        # The leader runs it once; the claim keeps a leader that took over mid-minute from repeating it.
        if not self.store.claim(f"digest:{now:%Y-%m-%dT%H:%M}", 3600):
            return
        self.post_digest(self.scan(now), now)

    def _digest_missed(self, kind: str, subject: str, due: datetime) -> None:
        log.warning("the digest due at %s was missed (no bot was running); the next one covers it", due)

    def scan(self, now: datetime) -> Scan:
        """Deployed versions whose run is not approved, and reviews pending too long; each model is
        checked on its own, so one that MLflow will not answer for is named rather than hiding the rest."""
        registry_error = ""
        try:
            candidates = self.registry.deployment_candidates(self.deployment_aliases)
        except ReviewBotError as exc:
            registry_error, candidates = _reason(exc), []
        found, unchecked = self._check_all(candidates)
        try:
            found += self._deployed_prompts()
        except ReviewBotError as exc:
            registry_error = registry_error or _reason(exc)
        unreviewed = [v for v in found if not v.approved]
        live = [v for v in unreviewed if not self._snoozed(v, now)]
        try:
            pending = [s for s, _ in self.runs.search_reviews(f"tags.`{tags.STATUS}` = 'pending'")]
        except ReviewBotError as exc:
            registry_error = registry_error or _reason(exc)
            pending = []
        try:
            reviewers = self.reviewers()
        except ReviewBotError as exc:  # the reviewer group could not be read: no one to DM this time
            log.warning("reading the reviewers failed (%s): no digest DMs", exc)
            reviewers = None
        waiting: dict[str, list[RunSummary]] = {}
        for summary in pending:
            for user in waiting_on(summary.review, reviewers):
                waiting.setdefault(user, []).append(summary)
        return Scan(
            unreviewed=live,
            snoozed=len(unreviewed) - len(live),
            overdue=[
                s
                for s in pending
                if s.review and is_overdue(s.review.requested_at, now, self.pending_max_days)
            ],
            waiting_on=waiting,
            unchecked=sorted(unchecked),
            registry_error=registry_error,
        )

    def _check_all(self, candidates: list[ModelVersionRef]) -> tuple[list[DeployedVersion], set[str]]:
        """Each deployed version (in parallel, one call each), then their runs' reviews in batches."""

        def check(candidate: ModelVersionRef) -> DeployedVersion | str | None:
            try:
                return self.registry.model_version_state(
                    candidate.name, candidate.version, self.deployment_aliases
                )
            except NotFound:
                return None  # deleted since the listing
            except MlflowUnavailable:
                return candidate.name

        with ContextThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="nudge-scan") as pool:
            results = list(pool.map(check, candidates))
        unchecked = {r for r in results if isinstance(r, str)}
        versions = [r for r in results if isinstance(r, DeployedVersion) and r.markers]
        try:
            return self.registry.with_reviews(versions), unchecked
        except MlflowUnavailable:  # no run could be read: none of these models was really checked
            return [], unchecked | {v.name for v in versions}

    def _deployed_prompts(self) -> list[DeployedVersion]:
        """Every prompt version under a deployment alias, with its own review (a call per version)."""
        candidates = self._prompts().deployment_candidates(self.deployment_aliases)
        with ContextThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="nudge-prompts") as pool:
            return [
                found[0]
                for found in pool.map(lambda c: self._prompt_states([(c[0], c[1])]), candidates)
                if found and found[0].markers
            ]

    def _snoozed(self, version: DeployedVersion, now: datetime) -> bool:
        return is_snoozed(version.snoozed_until, now) or self._snoozed_in_store(
            version.name, version.version, now, prompt=version.prompt
        )

    def post_digest(self, scan: Scan, now: datetime) -> SlackMessage | None:
        """The digest to the review channel, and to each reviewer the reviews that wait on them."""
        digest = build_digest(scan, now, self.pending_max_days)
        if digest is None:
            log.info("digest: nothing deployed unreviewed, nothing overdue")
        else:
            self._post(digest)
        for user, reviews in sorted(scan.waiting_on.items()):
            self.outbox.notice(user, build_reviewer_dm(reviews, now), what="digest DM")
        return digest

    # --- the nudge's buttons -----------------------------------------------------------------------

    def start_review(
        self,
        name: str,
        version: str,
        user: str,
        origin_channel: str,
        notify: Notify,
        nudge: dict[str, Any],
        *,
        prompt: bool = False,
    ) -> SlackMessage | None:
        """Post the version's review card; returns the nudge as it should now read, or None if no card."""
        ref = RunRef(
            kind=RefKind.PROMPT_VERSION if prompt else RefKind.MODEL_VERSION,
            raw=f"{'prompts' if prompt else 'models'}:/{name}/{version}",
            model_name=name,
            version=version,
        )
        ts = self.publisher.publish(ref, requested_by=user, origin_channel=origin_channel, notify=notify)
        if ts is None:
            return None
        channel = self.publisher.target_channel(origin_channel)
        line = started_line(user, self.publisher.permalink(channel, ts))
        return build_nudge_outcome(nudge.get("text", ""), nudge.get("blocks") or [], line)

    def snooze(
        self,
        name: str,
        version: str,
        user: str,
        nudge: dict[str, Any],
        now: datetime | None = None,
        *,
        prompt: bool = False,
    ) -> SlackMessage:
        """No nudges about this version for a week: the tag first (it survives Redis), then Redis."""
        until = (now or datetime.now(tz=UTC)) + SNOOZE_FOR
        where = prompt_subject(name, version) if prompt else model_version_subject(name, version)
        try:
            self.records.set_run_tags(where, {tags.SNOOZED_UNTIL: iso_utc(until)})
        except MlflowUnavailable as exc:
            raise SnoozeFailed(NOT_SNOOZED.format(uri=exc.tracking_uri)) from exc
        self.store.put_json(
            snooze_key(name, version, prompt=prompt), iso_utc(until), int(SNOOZE_FOR.total_seconds())
        )
        log.info("%s snoozed nudges about %s v%s until %s", user, name, version, iso_utc(until))
        return build_nudge_outcome(
            nudge.get("text", ""), nudge.get("blocks") or [], snoozed_line(user, until)
        )

    # --- Slack -------------------------------------------------------------------------------------

    def _post(self, message: SlackMessage) -> bool:
        if not self.channel:
            log.warning(NO_CHANNEL)
            return False
        return self.outbox.notice(self.channel, message, what="nudge")


class SnoozeFailed(ReviewBotError):
    pass


@dataclass(frozen=True)
class Delivery:
    """What /mlflow/webhook answers: 200 accepted, 400 unreadable, 401 refused (and why, for the log)."""

    status: int
    reason: str


def _reason(exc: ReviewBotError) -> str:
    if isinstance(exc, MlflowUnavailable):
        return f"MLflow at {exc.tracking_uri} did not answer"
    return exc.user_message()
