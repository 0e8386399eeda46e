"""Faults on every side: forged requests, Slack refusing or rate-limiting, MLflow down or slow."""

from __future__ import annotations

import json
import time

import pytest
import requests

from bot.ids import COMMAND
from bot.reviews.replies import ACK_DUPLICATE
from bot.store import SINGLE_REPLICA_WARNING
from tests import support
from tests.scenarios.helpers import cards_for, posts_mentioning, response_texts
from tests.slow_proxy import SlowProxy


@pytest.mark.parametrize(
    ("how", "kwargs"),
    [
        ("missing signature", {"signed": False}),
        ("wrong secret", {"secret": "not-the-signing-secret"}),
        ("stale timestamp", {"timestamp": int(time.time()) - 6 * 60}),
    ],
)
def test_forged_or_replayed_requests_get_401_and_do_nothing(
    bot, slack, runs, response_url, how, kwargs
) -> None:
    run_id = runs.make_run("forged")
    reply = bot.command(run_id, response_url, user=support.CAROL, **kwargs)
    assert reply.status_code == 401, how
    time.sleep(0.5)  # anything wrongly started would show up right away
    assert not posts_mentioning(slack, support.CAROL)
    assert response_texts(slack, response_url) == []
    assert not cards_for(slack, run_id)


def test_tampered_body_gets_401(bot, slack, runs, response_url) -> None:
    run_id = runs.make_run("tampered")
    ts = int(time.time())
    body = f"command={COMMAND}&text={run_id}&user_id={support.CAROL}&channel_id={support.DEV_CHANNEL}"
    headers = {"X-Slack-Signature": support.sign(body, ts)}
    reply = bot.post_signed(
        body.replace(support.CAROL, support.ANA),
        "application/x-www-form-urlencoded",
        timestamp=ts,
        signed=False,
        headers=headers,
    )
    assert reply.status_code == 401


def test_review_channel_not_found_is_explained(bots, slack, runs, response_url, eventually) -> None:
    bot = bots.get(REVIEW_CHANNEL="C0MISSING")
    run_id = runs.make_run("lost-channel")
    ack = bot.command(run_id, response_url).json()
    assert "<#C0MISSING>" in ack["text"]
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert "can't find the review channel" in text and "REVIEW_CHANNEL" in text
    assert "channel_not_found" in eventually(lambda: "channel_not_found" in bot.log() and bot.log())
    assert not cards_for(slack, run_id)


def test_bot_not_in_channel_says_to_invite_it(bots, slack, runs, response_url, eventually) -> None:
    bot = bots.get(REVIEW_CHANNEL="")  # unset: the card goes where the command was typed
    run_id = runs.make_run("no-membership")
    ack = bot.command(run_id, response_url, channel=support.NOBOT_CHANNEL).json()
    assert f"<#{support.NOBOT_CHANNEL}>" in ack["text"]
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert "/invite @review-bot" in text
    assert eventually(lambda: "not_in_channel" in bot.log())
    assert not cards_for(slack, run_id)


def test_review_channel_unset_posts_where_the_command_came_from(
    bots, slack, runs, response_url, eventually
) -> None:
    bot = bots.get(REVIEW_CHANNEL="")
    run_id = runs.make_run("here")
    bot.command(run_id, response_url, channel=support.DEV_CHANNEL)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    assert card["channel"] == support.DEV_CHANNEL


def _is_card_for(run_id: str):  # noqa: ANN202
    return lambda args: (args.get("metadata") or {}).get("event_payload", {}).get("run_id") == run_id


def test_invalid_blocks_is_reported_and_logged(bot, slack, runs, response_url, eventually) -> None:
    run_id = runs.make_run("rejected-layout")
    slack.fail_next("chat.postMessage", "invalid_blocks", when=_is_card_for(run_id))
    bot.command(run_id, response_url)
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert "invalid_blocks" in text and "Nothing was posted" in text
    assert eventually(lambda: f"refused: invalid_blocks (run {run_id})" in bot.log())
    assert not cards_for(slack, run_id)


def test_rate_limited_post_is_retried_after_retry_after(bot, slack, runs, response_url, eventually) -> None:
    run_id = runs.make_run("rate-limited")
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=1, when=_is_card_for(run_id))
    bot.command(run_id, response_url)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    attempts = [c for c in slack.calls_to("chat.postMessage") if _is_card_for(run_id)(c.args)]
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert card["ts"]


def test_mlflow_unreachable_names_the_tracking_uri(bots, slack, response_url, eventually) -> None:
    dead = f"http://127.0.0.1:{support.free_port()}"
    bot = bots.get(MLFLOW_TRACKING_URI=dead)
    bot.command(support.new_run_id(), response_url, user=support.CAROL)
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert dead in text and "did not answer" in text
    assert not posts_mentioning(slack, support.CAROL)
    health = requests.get(f"{bot.url}/healthz", timeout=10).json()
    assert health["status"] == "degraded" and health["mlflow"].startswith("unreachable")
    assert health["redis"] == "ok"


def test_mlflow_slower_than_the_timeout_is_reported_and_the_bot_keeps_serving(
    bots, slack, runs, mlflow_server, response_url, eventually
) -> None:
    run_id = runs.make_run("slow")
    proxy = SlowProxy(mlflow_server, delay_seconds=6).start()
    try:
        bot = bots.get(MLFLOW_TRACKING_URI=proxy.url, MLFLOW_TIMEOUT_SECONDS="2")
        started = time.monotonic()
        ack = bot.command(run_id, response_url, user=support.CAROL)
        assert ack.status_code == 200
        # While that request waits on MLflow, the bot still answers others at once.
        other = bot.command("help", slack.new_response_url(), user=support.BO)
        assert other.status_code == 200 and "Usage" in other.json()["text"]
        text = eventually(lambda: response_texts(slack, response_url)[0], timeout=30)
        assert proxy.url in text and "did not answer" in text
        assert time.monotonic() - started < 20
        assert not cards_for(slack, run_id)
    finally:
        proxy.stop()


def test_health_reports_mlflow_and_redis(bot) -> None:
    reply = requests.get(f"{bot.url}/healthz", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "mlflow": "ok", "redis": "ok"}
    assert requests.get(f"{bot.url}/nope", timeout=10).status_code == 404


def test_secrets_never_reach_the_logs(bots, slack, runs, response_url, eventually) -> None:
    bot = bots.get(LOG_LEVEL="DEBUG")  # slack_sdk logs requests at DEBUG
    run_id = runs.make_run("debug-logging")
    bot.command(run_id, response_url)
    eventually(lambda: [t for t in response_texts(slack, response_url) if "Review card posted" in t])
    log = bot.log()
    assert "chat.postMessage" in log  # DEBUG logging really was on
    assert support.BOT_TOKEN not in log and support.SIGNING_SECRET not in log
    assert json.dumps(support.BOT_TOKEN)[1:-1] not in log


def test_without_redis_the_bot_runs_in_process_and_warns_once(
    bots, slack, runs, response_url, eventually
) -> None:
    bot = bots.get(REDIS_URL="")
    assert bot.log().count(SINGLE_REPLICA_WARNING) == 1
    health = requests.get(f"{bot.url}/healthz", timeout=10).json()
    assert health["redis"] == "in-process (single replica only)" and health["status"] == "ok"
    run_id = runs.make_run("no-redis")
    body, signed_at = support.command_body(run_id, response_url), int(time.time())
    first = bot.post_signed(body, support.FORM, timestamp=signed_at)
    replayed = bot.post_signed(body, support.FORM, timestamp=signed_at)
    assert first.json()["text"] != ACK_DUPLICATE
    assert replayed.json()["text"] == ACK_DUPLICATE  # de-duplication still works
    assert eventually(lambda: cards_for(slack, run_id))
