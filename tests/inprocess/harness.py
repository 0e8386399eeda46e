"""What the in-process tests drive the bot with: the bolt App answering signed requests in this process,
the notify a service is given, and the review cards the Slack test server holds."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.models import RefKind, RunRef
from bot.services import Services
from bot.slack.advice import UNEXPECTED
from tests import support
from tests.scenarios.helpers import cards_for
from tests.slack_api_server import SlackTestServer

KEY_METRICS = ["val_auc", "val_loss"]  # REVIEW_KEY_METRICS here, as the scenarios set it


@dataclass(frozen=True)
class Answer:
    """What app.dispatch answered, with the parts of a requests.Response the scenario tests read."""

    status_code: int
    text: str
    headers: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.text)


class InProcessBot(support.BotProcess):
    """The bolt App from `app.create_app`, fed the very requests the scenario tests send (`command`,
    `block_action`, `post_signed`, all from tests/support.py), signed the same way, through
    `app.dispatch(BoltRequest(...))` instead of HTTP: the way bolt-python tests itself.

    Acks come back from dispatch; lazy listeners then run on the app's executor, so wait for their
    effects with `eventually`, or call `finish()` before asserting that nothing happened.
    """

    def __init__(self, app: App, services: Services) -> None:
        super().__init__(url="in-process", proc=None, log_path=Path(os.devnull))  # type: ignore[arg-type]
        self.app = app
        self.services = services

    def post_signed(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = support.SIGNING_SECRET,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> Answer:
        ts = int(time.time()) if timestamp is None else timestamp
        all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts)}
        if signed:
            all_headers["X-Slack-Signature"] = support.sign(body, ts, secret)
        all_headers.update(headers or {})
        response = self.app.dispatch(BoltRequest(body=body, headers=all_headers))
        return Answer(response.status, response.body, dict(response.headers))

    def event(self, event: dict[str, Any]) -> Answer:
        return self.post_signed(support.event_body(event, f"Ev{uuid.uuid4().hex[:12]}"), "application/json")

    def finish(self) -> None:
        """Wait for every lazy listener started so far; the app takes no more requests after this."""
        self.app.listener_runner.listener_executor.shutdown(wait=True)


class Told(list[str]):
    """A service's `notify`: what the person who asked was told, in order."""

    def __call__(self, text: str) -> None:
        self.append(text)


def run_ref(run_id: str) -> RunRef:
    return RunRef(kind=RefKind.RUN, raw=run_id, run_id=run_id)


def post_card(
    services: Services,
    slack: SlackTestServer,
    run_id: str,
    *,
    requested_by: str = support.ANA,
    origin: str = support.DEV_CHANNEL,
) -> dict[str, Any]:
    """Post the run's review card the way /review does; the card as Slack holds it (with "channel")."""
    told = Told()
    ts = services.publisher.publish(
        run_ref(run_id), requested_by=requested_by, origin_channel=origin, notify=told
    )
    assert ts is not None, told
    [card] = [c for c in cards_for(slack, run_id) if c["ts"] == ts]
    return card


def is_unexpected(text: str) -> bool:
    """Whether a reply is the one for a failure nobody planned (an error id, logged)."""
    return unexpected_error_id(text) is not None


def unexpected_error_id(text: str) -> str | None:
    """The error id in the reply for a failure nobody planned; None for any other reply."""
    before, after = UNEXPECTED.split("{error_id}")
    if not (text.startswith(before) and text.endswith(after)):
        return None
    return text[len(before) : len(text) - len(after)]


def updates_of(slack: SlackTestServer, card: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat.update calls that reached the card, oldest first (their args)."""
    return [
        c.args
        for c in slack.calls_to("chat.update")
        if c.ok and c.args.get("channel") == card["channel"] and c.args.get("ts") == card["ts"]
    ]


def thread_texts(slack: SlackTestServer, card: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for m in slack.thread(card["channel"], card["ts"])]
