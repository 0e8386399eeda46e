"""How the bot starts: settings errors as one line, Socket Mode against a local Socket Mode server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bot import signature
from bot.config import Settings
from tests import support
from tests.scenarios.helpers import cards_for, response_texts

REVIEW_BOT = [sys.executable, "-m", "bot"]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MLFLOW_", "REDIS_", "REVIEW_"))
    }
    return subprocess.run(
        [*REVIEW_BOT, *args], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["serve"], {}, "SLACK_BOT_TOKEN"),
        (["serve"], {"SLACK_BOT_TOKEN": support.BOT_TOKEN}, "SLACK_SIGNING_SECRET"),
        (["socket"], {"SLACK_BOT_TOKEN": support.BOT_TOKEN}, "SLACK_APP_TOKEN"),
        (
            ["serve"],
            {"SLACK_BOT_TOKEN": support.BOT_TOKEN, "SLACK_SIGNING_SECRET": "s"},
            "REVIEW_SIGNING_KEY",
        ),
        (
            ["serve"],
            {"SLACK_BOT_TOKEN": support.BOT_TOKEN, "SLACK_SIGNING_SECRET": "s", "REVIEW_SIGNING_KEY": "nope"},
            "review-bot keys generate",
        ),
        (
            ["serve"],
            {
                "SLACK_BOT_TOKEN": support.BOT_TOKEN,
                "SLACK_SIGNING_SECRET": "s",
                "REVIEW_SIGNING_KEY": support.SIGNING_KEY,
                "PORT": "http",
            },
            "PORT",
        ),
    ],
)
def test_missing_or_bad_settings_exit_2_with_one_line(tmp_path, args, env, named) -> None:
    result = run_cli(args, {**env, "PYTHONPATH": str(Path(__file__).parents[2])}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0] and "Traceback" not in result.stderr
    assert support.BOT_TOKEN not in result.stderr


def test_settings_come_from_dotenv(tmp_path) -> None:
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN={support.BOT_TOKEN}\n")
    result = run_cli(["serve"], {"PYTHONPATH": str(Path(__file__).parents[2])}, tmp_path)
    assert result.returncode == 2 and "SLACK_SIGNING_SECRET" in result.stderr  # the token was read from .env


def test_socket_mode_acks_envelopes_and_posts_the_card(
    tmp_path, slack, mlflow_server, redis_url, runs, response_url, eventually
) -> None:
    socket_server = slack.start_socket_mode()
    env = {
        "SLACK_BOT_TOKEN": support.BOT_TOKEN,
        "SLACK_APP_TOKEN": support.APP_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "REDIS_URL": redis_url,
        "REVIEW_CHANNEL": support.REVIEW_CHANNEL,
        "REVIEW_SIGNING_KEY": support.SIGNING_KEY,
        "PORT": str(support.free_port()),
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MLFLOW_", "REVIEW_"))}
    log = (tmp_path / "socket.log").open("w")
    proc = subprocess.Popen(
        [*REVIEW_BOT, "socket"], env={**clean, **env}, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        socket_server.wait_connected(timeout=60)
        run_id = runs.make_run("over-socket-mode")
        payload = {
            "token": "x",
            "team_id": support.TEAM_ID,
            "channel_id": support.DEV_CHANNEL,
            "user_id": support.ANA,
            "command": "/review",
            "text": run_id,
            "response_url": response_url,
            "trigger_id": "1.2.abc",
            "api_app_id": "A0TEST",
        }
        envelope = socket_server.send_envelope("slash_commands", payload, accepts_response_payload=True)
        ack = socket_server.wait_for_ack(envelope)
        assert f"<#{support.REVIEW_CHANNEL}>" in ack["payload"]["text"]
        card = eventually(lambda: cards_for(slack, run_id)[0], timeout=30)
        assert card["channel"] == support.REVIEW_CHANNEL
        assert eventually(
            lambda: [t for t in response_texts(slack, response_url) if "Review card posted" in t]
        )
        # MLflow's webhooks reach a Socket Mode bot on $PORT, beside /healthz (refused here: no secret).
        webhook = requests.post(f"http://127.0.0.1:{env['PORT']}/mlflow/webhook", json={}, timeout=10)
        assert webhook.status_code == 401
        assert webhook.json()["reason"] == "MLFLOW_WEBHOOK_SECRET is not set: webhooks are refused"
    finally:
        support.stop_process(proc)
        log.close()


def test_keys_generate_prints_a_pair_the_settings_accept(tmp_path) -> None:
    result = run_cli(["keys", "generate"], {"PYTHONPATH": str(Path(__file__).parents[2])}, tmp_path)
    assert result.returncode == 0, result.stderr
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if not line.startswith("#"))
    assert set(values) == {"REVIEW_SIGNING_KEY", "REVIEW_PUBLIC_KEYS"}
    settings = Settings(
        _env_file=None,
        review_signing_key=values["REVIEW_SIGNING_KEY"],
        review_public_keys=values["REVIEW_PUBLIC_KEYS"],
    )
    signer = settings.signer()
    assert signer is not None and signature.public_text(signer.public) == values["REVIEW_PUBLIC_KEYS"]
