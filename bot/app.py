"""The one place the Slack app is built: `create_app(settings)` wires services and handlers."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.cards import CardIndex
from bot.comparisons import ComparisonPublisher, ComparisonService
from bot.config import Settings
from bot.errors import log_unexpected
from bot.meeting_service import MeetingService
from bot.mlflow_gateway import MlflowGateway
from bot.nudge_service import NudgeService
from bot.people import People
from bot.reviews import ReviewPreparer, ReviewPublisher
from bot.scheduler import LeaderScheduler
from bot.store import Store, create_store
from bot.voting import VoteService

log = logging.getLogger(__name__)

SLACK_RATE_LIMIT_RETRIES = 3


@dataclass(frozen=True)
class Services:
    settings: Settings
    gateway: MlflowGateway
    store: Store
    client: WebClient
    preparer: ReviewPreparer
    publisher: ReviewPublisher
    votes: VoteService
    scheduler: LeaderScheduler
    meetings: MeetingService
    nudges: NudgeService
    comparisons: ComparisonPublisher

    def health(self) -> dict[str, str]:
        return {"mlflow": self.gateway.health(), "redis": self.store.health()}


def create_gateway(settings: Settings) -> MlflowGateway:
    return MlflowGateway(settings.mlflow_tracking_uri, settings.ui_url, settings.mlflow_timeout_seconds)


def create_preparer(settings: Settings, gateway: MlflowGateway) -> ReviewPreparer:
    return ReviewPreparer(
        gateway,
        settings.review_key_metrics,
        settings.max_thread_images,
        settings.max_image_bytes,
        settings.required_approvals,
        primary_metric=settings.primary_metric,
        metric_directions=settings.metric_directions,
        deployment_aliases=settings.deployment_aliases,
    )


def create_slack_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            ConnectionErrorRetryHandler(),
            RateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES),
        ],
    )


def build_services(settings: Settings) -> Services:
    gateway = create_gateway(settings)
    store = create_store(settings.redis_url)
    client = create_slack_client(settings)
    preparer = create_preparer(settings, gateway)
    cards = CardIndex(store, client)
    people = People(store, client)
    publisher = ReviewPublisher(preparer, client, settings.review_channel, store, cards)
    votes = VoteService(
        gateway,
        store,
        client,
        cards,
        people,
        reviewers=settings.reviewers,
        reviewer_group=settings.reviewer_group,
        required_approvals=settings.required_approvals,
        key_metrics=settings.review_key_metrics,
    )
    scheduler = LeaderScheduler(
        "review-bot",
        redis_url=settings.redis_url,
        misfire_grace_seconds=settings.missed_grace_minutes * 60,
        lock_ttl_seconds=settings.scheduler_lock_ttl,
    )
    meetings = MeetingService(
        gateway,
        store,
        client,
        people,
        scheduler,
        reminder_lead_minutes=settings.reminder_lead_minutes,
        missed_grace_minutes=settings.missed_grace_minutes,
        required_approvals=settings.required_approvals,
        reviewers=lambda: votes.policy().reviewers,
        key_metrics=settings.review_key_metrics,
    )
    secret = settings.mlflow_webhook_secret
    nudges = NudgeService(
        gateway,
        store,
        client,
        publisher,
        channel=settings.review_channel,
        deployment_aliases=settings.deployment_aliases,
        pending_max_days=settings.pending_max_age_days,
        repeat_seconds=settings.nudge_repeat_minutes * 60,
        reviewers=lambda: votes.policy().reviewers,
        scheduler=scheduler,
        cron=settings.nudge_cron,
        timezone=settings.nudge_tz,
        webhook_secret=secret.get_secret_value() if secret else None,
    )
    comparisons = ComparisonPublisher(
        ComparisonService(
            gateway,
            primary_metric=settings.primary_metric,
            metric_directions=settings.metric_directions,
            key_metrics=settings.review_key_metrics,
        ),
        client,
    )
    return Services(
        settings, gateway, store, client, preparer, publisher, votes, scheduler, meetings, nudges, comparisons
    )


def create_app(settings: Settings, services: Services | None = None, *, socket_mode: bool = False) -> App:
    """Build the bolt App once, from typed settings; handlers get services, never globals."""
    from handlers import register_all  # handlers depend on bot/, never the other way at import time

    services = services or build_services(settings)
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = App(
        client=services.client,
        signing_secret=signing_secret,
        # Socket Mode requests come over an authenticated WebSocket, not signed HTTP.
        request_verification_enabled=not socket_mode,
        # The ack function runs on the request thread, so a burst of commands is acknowledged at
        # once; slow work goes to lazy listeners on the executor below (measured: README, Benchmarks).
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(
            max_workers=settings.worker_threads * 2, thread_name_prefix="review-bot-listener"
        ),
    )
    register_all(app, services)
    app.error(log_unexpected_error)
    return app


def log_unexpected_error(error: Exception, logger: logging.Logger) -> None:
    """Listener failures the handlers did not expect: logged with an id (never the payload)."""
    log_unexpected(logger, f"a Slack listener ({type(error).__name__})", error)
