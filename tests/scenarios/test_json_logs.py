"""LOG_FORMAT=json on a served bot: one JSON object a line, and the request id of a `/review` on every
line of its work, from the ack on the request's thread through the lazy listener to the thread's last
post. LOG_LEVEL=DEBUG, so slack_sdk logs each Web API call the review makes: each of them must carry it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from tests.scenarios.helpers import cards_for, uploads_in_thread

FIELDS = {"time", "level", "logger", "message", "request_id", "thread"}
QUIET_SECONDS = 2.0  # no Slack call for this long: the review's work is over


def records(text: str) -> list[dict[str, Any]]:
    """Every line as the JSON object it must be (a line that is not one fails here, shown)."""
    parsed = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"line {number} is not JSON: {line[:300]!r}") from exc
        assert isinstance(record, dict) and record.keys() >= FIELDS, f"line {number}: {line[:300]}"
        parsed.append(record)
    return parsed


def slack_calls_logged(lines: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """slack_sdk's DEBUG line for each call to `method` (it logs the URL, then the arguments)."""
    return [
        r
        for r in lines
        if r["logger"].startswith("slack_sdk")
        and r["message"].startswith("Sending a request - url: ")
        and r["message"].split(",", 1)[0].endswith(f"/{method}")
    ]


def test_every_line_of_a_review_is_json_and_carries_its_request_id(bots, slack, runs, eventually) -> None:
    bot = bots.get(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    run_id = runs.make_run(
        "json-logs",
        metrics={"val_auc": 0.91},
        histories={"val_auc": [0.7, 0.8, 0.9], "val_loss": [0.5, 0.4, 0.3]},
    )
    before = len(bot.log().splitlines())
    sent_at = int(time.time())
    reply = bot.command(run_id, slack.new_response_url(), timestamp=sent_at)
    assert reply.status_code == 200, reply.text

    card = eventually(lambda: cards_for(slack, run_id)[0], what="the card")
    eventually(lambda: uploads_in_thread(slack, card["channel"], card["ts"]), what="the chart in the thread")

    def quiet() -> bool:
        return time.time() - max(c.at for c in slack.calls) > QUIET_SECONDS

    eventually(quiet, timeout=30, what="the review's Slack calls to end")
    last_post = max(
        c.at
        for c in slack.calls
        if c.method in {"chat.postMessage", "files.completeUploadExternal"}
        and c.args.get("thread_ts") == card["ts"]
    )

    lines = records(bot.log())[before:]  # every line since the bot started must parse; these are ours
    [acked] = [r for r in lines if r["message"].startswith("acknowledged POST /slack/events: 200")]
    request_id = acked["request_id"]
    assert request_id and request_id.startswith(f"{sent_at}-")  # Slack's request timestamp, then a uuid

    # Nothing else runs on this bot meanwhile, so every line the bot's own code, bolt or slack_sdk wrote
    # in this window is the review's: the request's thread, the lazy listener's, the pools they use.
    # (The scheduler's lines are background work; apscheduler, redis, asyncio and uvicorn are not ours.)
    review = [
        r
        for r in lines
        if r["logger"].startswith(("bot.", "slack_sdk.", "slack_bolt.", "review-bot"))
        and r["logger"] != "bot.scheduler"
    ]
    strays = [(r["thread"], r["logger"], r["message"][:100]) for r in review if r["request_id"] != request_id]
    assert strays == []
    assert {r["request_id"] for r in lines} <= {request_id, None}  # and no line has another id
    threads = {r["thread"].rsplit("_", 1)[0] for r in review}
    assert {"review-bot-listener", "slack-permalink", "review-histories"} <= threads, threads

    # Each Web API call of the review is among them: the card, its update, the permalink (from the
    # publisher's own pool), the thread's messages and files.
    for method in ("chat.postMessage", "chat.update", "chat.getPermalink", "files.completeUploadExternal"):
        assert slack_calls_logged(review, method), method
    # ... up to the thread's last post: slack_sdk logs its answer after the test server recorded it.
    assert max(r["time"] for r in review) >= _iso(last_post)


def _iso(epoch: float) -> str:
    """The log's time format (milliseconds, truncated)."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
