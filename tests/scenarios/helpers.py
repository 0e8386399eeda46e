"""Small queries over what the Slack test server received, shared by scenario tests."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bot.reviews.card import BASELINE_PENDING
from tests import support
from tests.slack_api_server import SlackTestServer


def png_bytes(width: int = 4, height: int = 3, label: str = "") -> bytes:
    fig = Figure(figsize=(width, height), dpi=50)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 0])
    ax.set_title(label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def cards_for(slack: SlackTestServer, run_id: str, channel: str | None = None) -> list[dict[str, Any]]:
    found = []
    for ch, messages in list(slack.messages.items()):
        if channel and ch != channel:
            continue
        for m in list(messages):
            meta = m.get("metadata") or {}
            if meta.get("event_payload", {}).get("run_id") == run_id:
                found.append({**m, "channel": ch})
    return found


def responses_to(slack: SlackTestServer, url: str) -> list[dict[str, Any]]:
    return [r for r in list(slack.responses) if r.get("_url") == url]


def response_texts(slack: SlackTestServer, url: str) -> list[str]:
    return [r.get("text", "") for r in responses_to(slack, url)]


def blocks_text(message: dict[str, Any]) -> str:
    """Everything a person could read in a message's blocks, as one string."""
    return json.dumps(message.get("blocks") or [], ensure_ascii=False)


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        element.get("action_id")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def complete_cards(slack: SlackTestServer, run_id: str, channel: str | None = None) -> list[dict[str, Any]]:
    """The run's cards the bot has completed: it posts a card as soon as it has read the run, and shows
    the baseline and the registered model versions in place a moment later."""
    return [
        c
        for c in cards_for(slack, run_id, channel)
        if BASELINE_PENDING not in json.dumps(c.get("blocks"), ensure_ascii=False)
    ]


def uploads_in_thread(slack: SlackTestServer, channel: str, ts: str) -> list[Any]:
    return [
        f for f in list(slack.files.values()) if f.completed and f.channel == channel and f.thread_ts == ts
    ]


def posts_mentioning(slack: SlackTestServer, user: str) -> list[Any]:
    """chat.postMessage calls whose content names the user (a card shows who requested it)."""
    return [c for c in slack.calls_to("chat.postMessage") if f"<@{user}>" in json.dumps(c.args)]


def post_card(
    bot, slack, runs, eventually, *, name="candidate", user="ana.lopez", requester=None, **run_args
):  # noqa: ANN001, ANN201
    """A new run, reviewed with /review through the served bot; returns (run_id, card) once it is posted.

    The review's tags are written before the requester hears "posted", so they are there too.
    """
    run_id = runs.make_run(name, user=user, **run_args)
    url = slack.new_response_url()
    bot.command(run_id, url, user=requester or support.ANA)
    eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t])
    return run_id, cards_for(slack, run_id)[-1]


def run_gate(ref: str, tracking_uri: str, cwd: Path) -> subprocess.CompletedProcess:
    """`review-bot gate` as a deploy pipeline runs it: the public key only, no other setting."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "gate", ref, "--tracking-uri", tracking_uri],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).parents[2]),
            "REVIEW_PUBLIC_KEYS": support.PUBLIC_KEY,
        },
    )
