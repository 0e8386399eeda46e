"""The real stack, started outside pytest the way tests/conftest.py starts it, and always stopped.

`running_stack()` is a context manager: everything it started is stopped on the way out, whether the
benchmark finished, failed or was interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import servers, support
from tests.mlflow_runs import RunFactory
from tests.slack_api_server import SlackTestServer
from tests.slow_proxy import SlowProxy


@dataclass(frozen=True)
class Stack:
    workdir: Path
    mlflow_url: str
    redis_url: str
    slack: SlackTestServer
    bot: support.BotProcess
    runs: RunFactory


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """MLflow, Redis (or $REDIS_URL), the Slack test server and `review-bot serve`, on free local ports.

    Set KEEP_BENCH_DIR=1 to keep the temp folder with the bot's and MLflow's logs.
    """
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="review-bot-bench-"))
        if not os.environ.get("KEEP_BENCH_DIR"):
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        redis_url = cleanup.enter_context(servers.redis_server(workdir))
        mlflow_url = cleanup.enter_context(servers.mlflow_server(workdir))
        slack = cleanup.enter_context(_slack_server())
        bot = cleanup.enter_context(_review_bot(workdir, mlflow_url, redis_url, slack))
        yield Stack(workdir, mlflow_url, redis_url, slack, bot, RunFactory(mlflow_url))


@contextlib.contextmanager
def _slack_server() -> Iterator[SlackTestServer]:
    server = support.start_workspace()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _review_bot(
    workdir: Path, mlflow_url: str, redis_url: str, slack: SlackTestServer
) -> Iterator[support.BotProcess]:
    env = {  # as tests/conftest.py's `bots` fixture
        "SLACK_BOT_TOKEN": support.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": support.SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "REDIS_URL": redis_url,
        "REVIEW_CHANNEL": support.REVIEW_CHANNEL,
        "REVIEW_KEY_METRICS": "val_auc,val_loss",
        "REVIEW_SIGNING_KEY": support.SIGNING_KEY,
        "LOG_LEVEL": "INFO",
    }
    bot_dir = workdir / "bot"
    bot_dir.mkdir()
    bot = support.start_bot(env, bot_dir / "bot.log")
    try:
        yield bot
    finally:
        support.stop_process(bot.proc)


@contextlib.contextmanager
def second_replica(stack: Stack) -> Iterator[support.BotProcess]:
    """Another `review-bot serve` with the same settings, sharing the stack's Redis and MLflow."""
    bot_dir = stack.workdir / "second-replica"
    bot_dir.mkdir()
    bot = support.start_bot(stack.bot.env, bot_dir / "bot.log")
    try:
        yield bot
    finally:
        support.stop_process(bot.proc)


@contextlib.contextmanager
def counted_bot(stack: Stack, **env: str) -> Iterator[tuple[support.BotProcess, SlowProxy]]:
    """A second `review-bot serve` that reaches MLflow through a proxy counting every request (its links on
    MLflow's own address); `env` adds or overrides settings."""
    proxy = SlowProxy(stack.mlflow_url, delay_seconds=0).start()
    try:
        bot_env = {
            **stack.bot.env,
            "MLFLOW_TRACKING_URI": proxy.url,
            "MLFLOW_UI_URL": stack.mlflow_url,
            **env,
        }
        bot_dir = stack.workdir / f"counted-bot-{uuid.uuid4().hex[:6]}"
        bot_dir.mkdir()
        bot = support.start_bot(bot_env, bot_dir / "bot.log")
        try:
            yield bot, proxy
        finally:
            support.stop_process(bot.proc)
    finally:
        proxy.stop()


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (no psutil)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return sorted(set(children))
