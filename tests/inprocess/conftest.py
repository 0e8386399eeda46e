"""The in-process tier: the real services of bot/ and the real bolt App of app.py, in the test's own
process, on a FakeMlflow (tests/inprocess/fakes.py), a MemoryStore and the local Slack Web API test
server (tests/slack_api_server.py). No MLflow server, no Redis, no bot process: what needs only one
service is tested here in milliseconds; tests/scenarios still runs the whole stack.

The services come from the composition root itself, `app.build_services`, with only its MLflow
connection swapped for the fake (and REDIS_URL unset, so the store is a MemoryStore and the scheduler a
memory job store, never started): the wiring under test is the wiring in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from slack_sdk import WebClient

import app
from bot.config import Settings
from bot.mlflow import MlflowAccess
from bot.services import Services
from bot.store import MemoryStore
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import KEY_METRICS, InProcessBot, Told
from tests.slack_api_server import SlackTestServer


@pytest.fixture(scope="session")
def slack_workspace() -> Iterator[SlackTestServer]:
    """This tier's own Slack test server, with the workspace tests/conftest.py gives the scenarios."""
    server = support.start_workspace()
    yield server
    server.stop()


@pytest.fixture
def slack(slack_workspace: SlackTestServer) -> SlackTestServer:
    """Overrides the scenarios' session server here: the same workspace, with no messages, calls or
    faults left over from the previous test."""
    slack_workspace.reset()
    return slack_workspace


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's REVIEWERS or REDIS_URL must not change what these tests see (nor .env: see below)."""
    for name, info in Settings.model_fields.items():
        monkeypatch.delenv(name.upper(), raising=False)
        if isinstance(info.validation_alias, str):
            monkeypatch.delenv(info.validation_alias, raising=False)


@pytest.fixture
def fake_mlflow() -> FakeMlflow:
    return FakeMlflow()


@pytest.fixture
def slack_client(slack: SlackTestServer) -> WebClient:
    return WebClient(token=support.BOT_TOKEN, base_url=slack.api_url)


@pytest.fixture
def make_settings(slack: SlackTestServer, fake_mlflow: FakeMlflow) -> Callable[..., Settings]:
    """Settings built directly (no .env, no environment), as a team would set them; `overrides` by
    field name."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "slack_bot_token": support.BOT_TOKEN,
            "slack_signing_secret": support.SIGNING_SECRET,
            "slack_api_url": slack.api_url,
            "review_channel": support.REVIEW_CHANNEL,
            "mlflow_tracking_uri": fake_mlflow.tracking_uri,
            "redis_url": None,
            "review_key_metrics": KEY_METRICS,
            "review_signing_key": support.SIGNING_KEY,
            "worker_threads": 2,
        }
        return Settings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def make_services(
    make_settings: Callable[..., Settings],
    slack_client: WebClient,
    fake_mlflow: FakeMlflow,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Services]:
    """`app.build_services` with every MLflow part being the one FakeMlflow; settings `overrides`."""
    access = MlflowAccess(
        mlflow=fake_mlflow,  # type: ignore[arg-type]  # only its health() is used
        runs=fake_mlflow,  # type: ignore[arg-type]
        records=fake_mlflow,  # type: ignore[arg-type]
        histories=fake_mlflow,  # type: ignore[arg-type]
        registry=fake_mlflow,  # type: ignore[arg-type]
        artifacts=fake_mlflow,  # type: ignore[arg-type]
        logged_models=fake_mlflow,  # type: ignore[arg-type]  # runs only in the fake
        prompts=fake_mlflow,  # type: ignore[arg-type]
        experiments=fake_mlflow,  # type: ignore[arg-type]
    )
    monkeypatch.setattr(app, "create_mlflow", lambda settings, store=None: access)

    def make(**overrides: object) -> Services:
        services = app.build_services(make_settings(**overrides), slack_client)
        # The tier's promise: nothing here reaches Redis or runs a job on its own.
        assert isinstance(services.store, MemoryStore)
        assert not services.scheduler.scheduler.running
        return services

    return make


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services()


@pytest.fixture
def make_bot(
    make_services: Callable[..., Services], slack_client: WebClient
) -> Iterator[Callable[..., InProcessBot]]:
    """The bolt App of `app.create_app` over fresh services (settings `overrides`), answering in-process.
    Each one's lazy listeners are finished before the test ends, so none outlives it."""
    bots: list[InProcessBot] = []

    def make(**overrides: object) -> InProcessBot:
        services = make_services(**overrides)
        bot = InProcessBot(app.create_app(services.settings, services, client=slack_client), services)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.finish()


@pytest.fixture
def bot(make_bot: Callable[..., InProcessBot]) -> InProcessBot:
    return make_bot()


@pytest.fixture
def told() -> Told:
    return Told()
