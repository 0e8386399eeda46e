"""Helpers for the scenario tests: processes, ports, signed Slack requests, MLflow runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from bot import signature, tags
from bot.models import ReviewState

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token"
# The test bot's decision-signing pair (bot.signature): fixed, so a gate in a test can check what a bot
# process signed. Never a key for anything real.
SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()
PUBLIC_KEY = signature.public_text(signature.private_key(SIGNING_KEY).public_key())
OTHER_SIGNING_KEY = base64.b64encode(bytes(range(100, 132))).decode()  # a key the gate does not trust
APP_TOKEN = "xapp-test-token"
TEAM_ID = "T0TEST"
REVIEW_CHANNEL = "C0REVIEW"
DEV_CHANNEL = "C0DEV"
NOBOT_CHANNEL = "C0NOBOT"
ANA = "U0ANA"
BO = "U0BO"
DAN = "U0DAN"
ML_REVIEWERS_GROUP = "S0MLREVIEW"
CAROL = "U0CAROL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class BotProcess:
    """`review-bot serve` running as a subprocess, as it would in production."""

    url: str
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post_signed(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> requests.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts)}
        if signed:
            all_headers["X-Slack-Signature"] = sign(body, ts, secret)
        all_headers.update(headers or {})
        return requests.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers, timeout=10)

    def command(
        self, text: str, response_url: str, *, user: str = ANA, channel: str = DEV_CHANNEL, **kwargs: Any
    ) -> requests.Response:
        body = command_body(text, response_url, user=user, channel=channel)
        return self.post_signed(body, FORM, **kwargs)

    def block_action(
        self,
        action_id: str,
        value: str,
        response_url: str,
        *,
        message: dict,
        channel: str,
        user: str = BO,
        **kwargs: Any,
    ) -> requests.Response:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0TEST",
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": f"{uuid.uuid4().int % 10**12}.abc",
            "channel": {"id": channel, "name": "review"},
            "message": message,
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "review_actions",
                    "text": {"type": "plain_text", "text": action_id},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self.post_signed(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kwargs
        )


FORM = "application/x-www-form-urlencoded"


def command_body(text: str, response_url: str, *, user: str = ANA, channel: str = DEV_CHANNEL) -> str:
    """A `/review` slash command as Slack posts it (a new trigger_id each time: a new delivery)."""
    form = {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "dev",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/review",
        "text": text,
        "api_app_id": "A0TEST",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().int % 10**12}.abc",
    }
    return urlencode(form)


def view_submission_body(
    view: dict[str, Any], user: str, *, view_id: str | None = None, view_hash: str | None = None
) -> str:
    """A modal submitted; pass the same `view_id`/`view_hash` for a resubmission of the same modal
    (after a field error Slack keeps both and sends a new trigger_id)."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0TEST",
        "token": "deprecated-verification-token",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.abc",
        "view": {
            "id": view_id or f"V{uuid.uuid4().hex[:10].upper()}",
            "hash": view_hash or uuid.uuid4().hex[:12],
            "type": "modal",
            **view,
        },
    }
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0TEST",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT", "is_bot": True}],
        }
    )


def reaction_event(
    user: str, emoji: str, channel: str, ts: str, *, removed: bool = False, item_user: str = "U0BOT"
) -> dict:
    return {
        "type": "reaction_removed" if removed else "reaction_added",
        "user": user,
        "reaction": emoji,
        "item_user": item_user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": f"{time.time():.6f}",
    }


def start_bot(env: dict[str, str], log_path: Path, timeout: float = 60) -> BotProcess:
    port = free_port()
    full_env = {**os.environ, **env, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    log_file = log_path.open("w")
    review_bot = (
        Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[1] / ".venv")) / "bin" / "review-bot"
    )
    command = [str(review_bot), "serve"] if review_bot.exists() else ["python", "-m", "bot", "serve"]
    proc = subprocess.Popen(
        command, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, cwd=log_path.parent
    )
    bot = BotProcess(url=f"http://127.0.0.1:{port}", proc=proc, log_path=log_path, env=env)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"review-bot exited with {proc.returncode}:\n{bot.log()}")
        return requests.get(f"{bot.url}/healthz", timeout=5).status_code == 200

    try:
        wait_until(healthy, timeout, "review-bot /healthz")
    except BaseException:
        stop_process(proc)  # never leave a bot that did not come up running
        raise
    return bot


def new_run_id() -> str:
    return uuid.uuid4().hex


def signed_review_tags(state: ReviewState, current: dict[str, str] | None = None) -> dict[str, str]:
    """The review tags the test bot would write for `state` over a run's `current` tags, signed with
    its key: a record set up by hand in a test that the bot and the gate trust."""
    current = current or {}
    changes = tags.review_changes(current, state)
    signer = signature.Signer(signature.private_key(SIGNING_KEY))
    return {**changes, tags.SIGNATURE: signer.sign(state.run_id, {**current, **changes})}


def start_workspace() -> Any:
    """The Slack test server with the workspace every test tier uses: the review and dev channels, a
    channel without the bot, four people (their timezones differ) and the reviewers' user group."""
    from tests.slack_api_server import SlackTestServer

    server = SlackTestServer(bot_token=BOT_TOKEN, app_token=APP_TOKEN, team_id=TEAM_ID).start()
    server.add_channel(REVIEW_CHANNEL, "model-review")
    server.add_channel(DEV_CHANNEL, "ml-dev")
    server.add_channel(NOBOT_CHANNEL, "random", is_member=False)
    server.add_user(ANA, "ana.lopez", "Ana Lopez", "ana.lopez@example.com", "Europe/Madrid")
    server.add_user(BO, "bo", "Bo Chen", "bo.chen@example.com", "America/New_York")
    server.add_user(CAROL, "carol", "Carol Diaz", "carol@example.com", "UTC")
    server.add_user(DAN, "dan", "Dan Okafor", "dan.okafor@example.com", "Africa/Lagos")
    server.add_usergroup(ML_REVIEWERS_GROUP, "ml-reviewers", [DAN])
    return server
