"""The real stack for scenario tests: an MLflow tracking server, Redis, the Slack test server, and
`review-bot serve` itself, each a real process or server on a free local port."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers, support
from tests.mlflow_runs import RunFactory
from tests.slack_api_server import SlackTestServer


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="review-bot-tests-"))
    yield path
    if not os.environ.get("KEEP_TEST_DIR"):  # set it to read the bot's and MLflow's logs after a run
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(workdir: Path) -> Iterator[str]:
    try:
        with servers.redis_server(workdir) as url:
            yield url
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def mlflow_server(workdir: Path) -> Iterator[str]:
    with servers.mlflow_server(workdir) as url:
        yield url


@pytest.fixture(scope="session")
def runs(mlflow_server: str) -> RunFactory:
    return RunFactory(mlflow_server)


@pytest.fixture(scope="session")
def slack() -> Iterator[SlackTestServer]:
    server = support.start_workspace()
    yield server
    server.stop()


class BotFactory:
    """Starts `review-bot serve` processes; one per distinct set of settings, reused across tests."""

    def __init__(self, workdir: Path, base_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.base_env = base_env
        self._bots: dict[tuple, support.BotProcess] = {}

    def get(self, **overrides: str) -> support.BotProcess:
        env = {**self.base_env, **overrides}
        env = {k: v for k, v in env.items() if v is not None}
        key = tuple(sorted(env.items()))
        if key not in self._bots:
            bot_dir = Path(tempfile.mkdtemp(prefix="bot-", dir=self.workdir))
            self._bots[key] = support.start_bot(env, bot_dir / "bot.log")
        return self._bots[key]

    def stop_all(self) -> None:
        for bot in self._bots.values():
            support.stop_process(bot.proc)


@pytest.fixture(scope="session")
def bots(workdir: Path, mlflow_server: str, redis_url: str, slack: SlackTestServer) -> Iterator[BotFactory]:
    factory = BotFactory(
        workdir,
        {
            "SLACK_BOT_TOKEN": support.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": support.SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "MLFLOW_TRACKING_URI": mlflow_server,
            "REDIS_URL": redis_url,
            "REVIEW_CHANNEL": support.REVIEW_CHANNEL,
            "REVIEW_KEY_METRICS": "val_auc,val_loss",
            "REVIEW_SIGNING_KEY": support.SIGNING_KEY,
            "LOG_LEVEL": "INFO",
        },
    )
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def bot(bots: BotFactory) -> support.BotProcess:
    """The bot as most teams run it: HTTP mode, a review channel, Redis."""
    return bots.get()


@pytest.fixture
def response_url(slack: SlackTestServer) -> str:
    return slack.new_response_url()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Fast unit tests first: a broken builder shows up before the stack starts.
    items.sort(key=lambda item: 0 if "/unit/" in str(item.fspath) else 1)


@pytest.fixture
def eventually():
    def wait(check, timeout: float = 20.0, what: str = "condition"):  # noqa: ANN001, ANN202
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                result = check()
            except (AssertionError, LookupError) as exc:  # not there yet: an empty list, a missing key
                last_error = exc
            else:
                if result:  # None, False and empty collections mean "not yet"
                    return result
            time.sleep(0.1)
        if last_error:
            raise last_error
        raise AssertionError(f"timed out waiting for {what}")

    return wait
