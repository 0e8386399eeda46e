"""The real stack, started outside pytest the way tests/conftest.py starts it, and always stopped.

`running_stack()` is a context manager: everything it started is stopped on the way out, whether the
benchmark finished, failed or was interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from tests import support
from tests.mlflow_runs import RunFactory
from tests.slack_api_server import SlackTestServer

VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[2] / ".venv")) / "bin"
MLFLOW_START_TIMEOUT = 120
REDIS_START_TIMEOUT = 15
STOP_TIMEOUT = 10


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
        redis_url = os.environ.get("REDIS_URL") or cleanup.enter_context(_redis_server(workdir))
        mlflow_url = cleanup.enter_context(_mlflow_server(workdir))
        slack = cleanup.enter_context(_slack_server())
        bot = cleanup.enter_context(_review_bot(workdir, mlflow_url, redis_url, slack))
        yield Stack(workdir, mlflow_url, redis_url, slack, bot, RunFactory(mlflow_url))


@contextlib.contextmanager
def _redis_server(workdir: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("The benchmark needs redis-server on PATH, or REDIS_URL=redis://host:port/db.")
    port = support.free_port()
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        support.wait_until(lambda: bool(client.ping()), REDIS_START_TIMEOUT, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        support.stop_process(proc)


@contextlib.contextmanager
def _mlflow_server(workdir: Path) -> Iterator[str]:
    port = support.free_port()
    root = workdir / "mlflow"
    root.mkdir()
    mlflow_bin = VENV_BIN / "mlflow"
    log_path = workdir / "mlflow-server.log"
    with log_path.open("w") as log:
        # Its own process group: `mlflow server` runs its workers as children, and stopping the group
        # stops them too.
        proc = subprocess.Popen(
            [
                str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
                "server",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited:\n{log_path.read_text(errors='replace')}")
        return requests.get(f"{url}/health", timeout=2).status_code == 200

    try:
        support.wait_until(up, MLFLOW_START_TIMEOUT, "mlflow server")
        yield url
    finally:
        _stop_group(proc)


@contextlib.contextmanager
def _slack_server() -> Iterator[SlackTestServer]:
    server = SlackTestServer(
        bot_token=support.BOT_TOKEN, app_token=support.APP_TOKEN, team_id=support.TEAM_ID
    )
    server.start()
    try:
        server.add_channel(support.REVIEW_CHANNEL, "model-review")
        server.add_channel(support.DEV_CHANNEL, "ml-dev")
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
        "LOG_LEVEL": "INFO",
    }
    bot_dir = workdir / "bot"
    bot_dir.mkdir()
    before = set(child_pids(os.getpid()))
    try:
        bot = support.start_bot(env, bot_dir / "bot.log")
    except BaseException:
        # start_bot does not stop the process when it never became healthy; find it among our children.
        for pid in set(child_pids(os.getpid())) - before:
            if _cmdline(pid).endswith(" serve"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        raise
    try:
        yield bot
    finally:
        support.stop_process(bot.proc)


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The leader may be gone while a worker still shuts down: the group is ours, make sure it is empty.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (no psutil)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return sorted(set(children))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
