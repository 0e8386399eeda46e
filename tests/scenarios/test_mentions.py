"""Events API: `@review-bot <run>` posts the card; Slack's retries of an event are acted on once."""

from __future__ import annotations

import time
import uuid

from bot.commands import USAGE
from tests import support
from tests.scenarios.helpers import cards_for


def mention(text: str, channel: str = support.DEV_CHANNEL, user: str = support.ANA) -> dict:
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@U0BOT> {text}",
        "ts": f"{time.time():.6f}",
        "channel": channel,
        "event_ts": f"{time.time():.6f}",
    }


def ephemerals_to(slack, user: str) -> list[str]:
    return [e.get("text", "") for e in list(slack.ephemerals) if e.get("user") == user]


def test_mention_with_a_run_posts_the_card(bot, slack, runs, eventually) -> None:
    run_id = runs.make_run("mentioned")
    reply = bot.post_signed(
        support.event_body(mention(run_id), f"Ev{uuid.uuid4().hex[:10]}"), "application/json"
    )
    assert reply.status_code == 200
    card = eventually(lambda: cards_for(slack, run_id)[0])
    assert card["channel"] == support.REVIEW_CHANNEL
    assert eventually(
        lambda: [t for t in ephemerals_to(slack, support.ANA) if run_id[:8] in t or "posted" in t]
    )


def test_retried_event_is_acted_on_once(bot, slack, runs, eventually) -> None:
    run_id = runs.make_run("retried-event")
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    body = support.event_body(mention(run_id), event_id)
    first = bot.post_signed(body, "application/json")
    retry = bot.post_signed(
        body, "application/json", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert (first.status_code, retry.status_code) == (200, 200)
    eventually(lambda: cards_for(slack, run_id))
    time.sleep(1.0)  # a second card would be posted by now
    assert len(cards_for(slack, run_id)) == 1


def test_mention_without_a_run_answers_usage_to_the_person_only(bot, slack, eventually) -> None:
    bot.post_signed(
        support.event_body(mention("", user=support.CAROL), f"Ev{uuid.uuid4().hex[:10]}"), "application/json"
    )
    assert eventually(lambda: USAGE in ephemerals_to(slack, support.CAROL))


def test_mention_with_a_bad_reference_says_why(bot, slack, eventually) -> None:
    bot.post_signed(
        support.event_body(mention("nonsense", user=support.BO), f"Ev{uuid.uuid4().hex[:10]}"),
        "application/json",
    )
    assert eventually(
        lambda: [t for t in ephemerals_to(slack, support.BO) if "`nonsense` is not a run id" in t]
    )
