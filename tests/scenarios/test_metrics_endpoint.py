"""GET /metrics and GET /readyz of a served bot: a /review, a vote and a refused request are each counted
(scraped and parsed with prometheus_client's own parser), and readiness follows MLflow."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.ids import ActionId
from tests import support
from tests.scenarios.helpers import cards_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(bot: support.BotProcess) -> Samples:
    reply = requests.get(f"{bot.url}/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture(scope="module")
def lone_bot(bots, redis_url: str) -> support.BotProcess:
    """A bot alone on its own Redis database: nothing else leads its scheduler or records its votes."""
    parts = urlsplit(redis_url)
    return bots.get(REDIS_URL=urlunsplit(parts._replace(path="/7")))


def test_a_review_a_vote_and_a_refused_request_are_each_counted(lone_bot, slack, runs, eventually) -> None:
    bot = lone_bot
    before = scrape(bot)

    # A /review whose card Slack rate-limits once (retried after Retry-After), with a history to chart.
    run_id = runs.make_run("metrics-review", histories={"loss": [1.0, 0.6, 0.4, 0.3]})
    slack.fail_next(
        "chat.postMessage",
        "ratelimited",
        when=lambda args: (args.get("metadata") or {}).get("event_payload", {}).get("run_id") == run_id,
    )
    url = slack.new_response_url()
    assert bot.command(run_id, url).status_code == 200
    card = eventually(lambda: cards_for(slack, run_id)[-1], timeout=30)

    # A vote on its card, recorded in MLflow.
    reply = bot.block_action(
        ActionId.APPROVE.value, "{}", slack.new_response_url(), message=card, channel=card["channel"]
    )
    assert reply.status_code == 200
    eventually(lambda: runs.tags(run_id).get("review.status") == "approved", timeout=30)

    # A refused request: a command without Slack's signature.
    refused = bot.command(run_id, slack.new_response_url(), signed=False)
    assert refused.status_code == 401

    def everything_counted() -> Samples:
        after = scrape(bot)
        # the background work ends after the replies: wait until the review's and the vote's are timed
        for kind in ("card", "thread", "chart", "vote"):
            assert grew(before, after, "review_bot_work_seconds_count", kind=kind) >= 1, kind
        assert grew(before, after, "review_bot_votes_recorded_total") >= 1
        return after

    after = eventually(everything_counted, timeout=30)
    events = "/slack/events"
    assert grew(before, after, "review_bot_http_requests_total", endpoint=events, status="200") == 2
    assert grew(before, after, "review_bot_http_requests_total", endpoint=events, status="401") == 1
    assert grew(before, after, "review_bot_slack_ack_seconds_count") == 2  # the refused one is no ack
    assert 0 < grew(before, after, "review_bot_slack_ack_seconds_sum") < 2 * 3.0
    for kind in ("card", "thread", "chart", "vote"):
        assert grew(before, after, "review_bot_work_failures_total", kind=kind) == 0, kind
    assert grew(before, after, "review_bot_votes_recorded_total") == 1
    assert grew(before, after, "review_bot_mlflow_call_seconds_count") >= 5  # run, tags, vote, …
    post = {"method": "chat.postMessage"}
    assert grew(before, after, "review_bot_slack_api_requests_total", status="200", **post) >= 2
    assert grew(before, after, "review_bot_slack_api_requests_total", status="429", **post) == 1
    assert grew(before, after, "review_bot_slack_rate_limited_total", **post) == 1
    assert grew(before, after, "review_bot_slack_api_requests_total", method="chat.update", status="200") >= 1
    assert after[("review_bot_scheduler_leader", ())] == 1  # alone on its Redis database: it leads
    assert after[("review_bot_dependency_up", (("dependency", "mlflow"),))] == 1
    assert after[("review_bot_dependency_up", (("dependency", "redis"),))] == 1
    # the scrapes themselves are counted too
    assert grew(before, after, "review_bot_http_requests_total", endpoint="/metrics", status="200") >= 1


def test_readyz_is_200_while_mlflow_and_redis_answer(lone_bot) -> None:
    reply = requests.get(f"{lone_bot.url}/readyz", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ready", "mlflow": "ok", "redis": "ok"}


def test_readyz_is_503_with_the_reason_while_mlflow_is_unreachable(bots) -> None:
    dead = f"http://127.0.0.1:{support.free_port()}"
    bot = bots.get(MLFLOW_TRACKING_URI=dead)
    reply = requests.get(f"{bot.url}/readyz", timeout=10)
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "not ready" and body["redis"] == "ok"
    assert body["mlflow"].startswith("unreachable") and body["reason"].startswith("mlflow unreachable")
    assert requests.get(f"{bot.url}/healthz", timeout=10).status_code == 200  # still alive: liveness
    after = scrape(bot)
    assert after[("review_bot_dependency_up", (("dependency", "mlflow"),))] == 0
