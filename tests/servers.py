"""Real servers for the tests and the benchmarks: redis-server and `mlflow server` on free ports.

Each is a context manager that stops what it started, its whole process group included.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import redis
import requests

from tests import support

VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[1] / ".venv")) / "bin"
MLFLOW_START_TIMEOUT = 120
REDIS_START_TIMEOUT = 15
STOP_TIMEOUT = 10
REDIS_HELP = (
    "The tests need a Redis server: set REDIS_URL=redis://host:port/db to use one, "
    "or install redis-server (Debian: apt-get install redis-server) so the tests start their own."
)


class ServerUnavailable(RuntimeError):
    pass


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and everything it started."""
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


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """$REDIS_URL when set, else a throwaway redis-server (no persistence) on a free port."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable(REDIS_HELP)
    port = support.free_port()
    proc = subprocess.Popen(
        [
            binary,
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
        start_new_session=True,
    )
    try:
        client = redis.Redis(port=port)
        support.wait_until(lambda: bool(client.ping()), REDIS_START_TIMEOUT, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_group(proc)


@contextlib.contextmanager
def mlflow_server(
    workdir: Path, *, basic_auth_admin_password: str | None = None, backend_store_uri: str | None = None
) -> Iterator[str]:
    """`mlflow server` with a sqlite backend and proxied artifacts, as a team would run it; with
    `basic_auth_admin_password`, MLflow's own basic-auth app (`--app-name basic-auth`: users, permissions,
    new users READ by default), its admin `admin` with that password; with `backend_store_uri`, that
    backend (PostgreSQL, say) instead of sqlite."""
    port = support.free_port()
    root = workdir / (
        "mlflow-auth" if basic_auth_admin_password else "mlflow-db" if backend_store_uri else "mlflow"
    )
    root.mkdir()
    mlflow_bin = VENV_BIN / "mlflow"
    log_path = workdir / ("mlflow-db-server.log" if backend_store_uri else "mlflow-server.log")
    env = {
        **os.environ,
        # Registry webhooks to the bot on loopback (MLflow refuses private addresses and http otherwise).
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",  # a webhook registered by a test is used at once
        # Each worker encrypts webhook secrets with this key; without one they would each make their own.
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    auth_args: list[str] = []
    if basic_auth_admin_password:
        config = root / "basic_auth.ini"
        config.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
            "admin_username = admin\n"
            f"admin_password = {basic_auth_admin_password}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = os.urandom(16).hex()
        auth_args = ["--app-name", "basic-auth"]
        log_path = workdir / "mlflow-auth-server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
                "server",
                "--backend-store-uri", backend_store_uri or f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", "2",
                *auth_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
            start_new_session=True,  # its workers are children: stopping the group stops them too
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise ServerUnavailable(f"mlflow server exited:\n{log_path.read_text(errors='replace')}")
        return requests.get(f"{url}/health", timeout=2).status_code == 200

    try:
        support.wait_until(up, MLFLOW_START_TIMEOUT, "mlflow server")
        yield url
    finally:
        stop_group(proc)
