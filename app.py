"""The composition root: the one module that sees both sides. It builds the services of `bot/` from
typed settings and the bolt App with the listeners of `handlers/`, and is the `review-bot` command.

Nothing in `bot/` imports this module or `handlers/`: the CLI in `bot.cli` receives what it needs
from here as a `bot.cli.Wiring`.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

import handlers
from bot import cli, metrics_export
from bot.compare.baseline import BaselineFinder
from bot.compare.service import ComparisonPublisher, ComparisonService
from bot.config import Settings
from bot.errors import log_unexpected
from bot.home.service import HomeService
from bot.meetings.service import MeetingService
from bot.mlflow import MlflowAccess, connect
from bot.mlflow.histories import HistoryCache
from bot.nudges.service import NudgeService
from bot.reviews.card_index import CardIndex
from bot.reviews.prepare import ReviewPreparer
from bot.reviews.publish import ReviewPublisher
from bot.scheduler import LeaderScheduler
from bot.server import LazyWorkPool
from bot.services import Services
from bot.slack.outbox import Outbox
from bot.slack.people import People
from bot.store import Store, create_store
from bot.sweeps.service import SweepReader
from bot.unfurls.service import UnfurlService
from bot.votes.service import VoteService
from handlers.webhooks import create_webhook_app

SLACK_RATE_LIMIT_RETRIES = 3


def create_mlflow(settings: Settings, store: Store | None = None) -> MlflowAccess:
    """Every MLflow part; with a `store`, finished runs' histories are cached in it (HISTORY_CACHE_TTL)."""
    return connect(
        settings.mlflow_tracking_uri,
        settings.ui_url,
        settings.mlflow_timeout_seconds,
        signer=settings.signer(),
        verifier=settings.verifier(),
        history_cache=HistoryCache(store, settings.history_cache_ttl) if store is not None else None,
    )


def create_preparer(settings: Settings, mlflow: MlflowAccess) -> ReviewPreparer:
    baselines = BaselineFinder(
        mlflow.runs,
        mlflow.registry,
        mlflow.experiments,
        primary_metric=settings.primary_metric,
        metric_directions=settings.metric_directions,
        deployment_aliases=settings.deployment_aliases,
    )
    return ReviewPreparer(
        mlflow.runs,
        mlflow.histories,
        mlflow.artifacts,
        baselines,
        key_metrics=settings.review_key_metrics,
        max_images=settings.max_thread_images,
        max_image_bytes=settings.max_image_bytes,
        required_approvals=settings.required_approvals,
        metric_directions=settings.metric_directions,
        registry=mlflow.registry,
        primary_metric=settings.primary_metric.key if settings.primary_metric else None,
        sweeps=SweepReader(
            mlflow.experiments,
            mlflow.runs.ui_url,
            primary_metric=settings.primary_metric,
            metric_directions=settings.metric_directions,
        ),
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


def build_services(settings: Settings, client: WebClient | None = None) -> Services:
    store = create_store(settings.redis_url)
    mlflow = create_mlflow(settings, store)
    client = client or create_slack_client(settings)
    outbox = Outbox(client)
    cards = CardIndex(store, client)
    people = People(store, client)
    publisher = ReviewPublisher(
        create_preparer(settings, mlflow), mlflow.records, outbox, store, cards, settings.review_channel
    )
    votes = VoteService(
        mlflow.runs,
        mlflow.records,
        store,
        outbox,
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
    metrics_export.instrument_scheduler(scheduler)  # before the services register their jobs
    meetings = MeetingService(
        mlflow.runs,
        mlflow.records,
        store,
        outbox,
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
        mlflow.registry,
        mlflow.runs,
        mlflow.records,
        store,
        outbox,
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
            mlflow.runs,
            mlflow.histories,
            mlflow.experiments,
            primary_metric=settings.primary_metric,
            metric_directions=settings.metric_directions,
            key_metrics=settings.review_key_metrics,
        ),
        outbox,
    )
    unfurls = UnfurlService(mlflow, settings, store, outbox, cards, publisher, votes.policy)
    home = HomeService(
        mlflow,
        settings,
        store,
        outbox,
        client,
        cards,
        reviewers=lambda: votes.policy().reviewers,
        scan=nudges.scan,
    )
    votes.on_change = publisher.on_change = meetings.on_change = home.changed
    return Services(
        settings=settings,
        store=store,
        publisher=publisher,
        votes=votes,
        meetings=meetings,
        nudges=nudges,
        comparisons=comparisons,
        unfurls=unfurls,
        home=home,
        scheduler=scheduler,
        health=lambda: {"mlflow": mlflow.health(), "redis": store.health()},
    )


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    socket_mode: bool = False,
    client: WebClient | None = None,
) -> App:
    """Build the bolt App once, from typed settings; handlers get services from the request context."""
    client = client or create_slack_client(settings)
    services = services or build_services(settings, client)
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = App(
        client=client,
        signing_secret=signing_secret,
        # Socket Mode requests come over an authenticated WebSocket, not signed HTTP.
        request_verification_enabled=not socket_mode,
        # The ack function runs on the request thread, so a burst of commands is acknowledged at
        # once; slow work goes to lazy listeners on the executor below (measured: README, Benchmarks).
        process_before_response=True,
        # LazyWorkPool: the request id follows the work, and SIGTERM waits for it (bot.server).
        listener_executor=LazyWorkPool(
            max_workers=settings.worker_threads * 2, thread_name_prefix="review-bot-listener"
        ),
    )
    handlers.register_all(app, services)
    app.error(log_unexpected_error)
    metrics_export.instrument_app(app)  # lazy work timed by kind, Slack calls counted (GET /metrics)
    return app


def log_unexpected_error(error: Exception, logger: logging.Logger) -> None:
    """Listener failures the handlers did not expect: logged with an id (never the payload)."""
    log_unexpected(logger, f"a Slack listener ({type(error).__name__})", error)


WIRING = cli.Wiring(
    build_services=build_services,
    create_app=create_app,
    create_mlflow=create_mlflow,
    create_preparer=create_preparer,
    create_webhook_app=lambda services: create_webhook_app(services.nudges),
)


def create_asgi() -> object:
    """The serving process's app (`review-bot serve` runs it under uvicorn, once per worker)."""
    return cli.create_asgi(WIRING)


def main(argv: list[str] | None = None) -> None:
    cli.main(argv, WIRING)


if __name__ == "__main__":
    main()
