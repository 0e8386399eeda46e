"""A password in MLFLOW_TRACKING_URI (the bot's MLflow account) never reaches Slack or the log."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from bot.ids import ActionId
from tests import support
from tests.scenarios.helpers import post_card, response_texts

PASSWORD = "s3cret-Pa55word-xyz"


def with_password(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"review-bot:{PASSWORD}@{parts.netloc}", parts.path, "", ""))


def everything_posted(slack) -> str:
    return json.dumps([c.args for c in slack.calls]) + json.dumps(slack.ephemerals)


def test_a_password_in_the_tracking_uri_is_in_no_post_link_or_log_line(
    bots, slack, runs, mlflow_server, eventually
):
    bot = bots.get(MLFLOW_TRACKING_URI=with_password(mlflow_server))  # MLFLOW_UI_URL unset: links from it
    run_id, card = post_card(bot, slack, runs, eventually, name="with-password")
    url = slack.new_response_url()
    bot.block_action(
        ActionId.APPROVE.value, "{}", url, message=card, channel=card["channel"], user=support.BO
    )
    eventually(lambda: runs.tags(run_id).get("review.status") == "approved")
    host = urlsplit(mlflow_server).netloc
    assert f"http://{host}/#/experiments/" in json.dumps(card["blocks"])  # the links still point at MLflow
    assert PASSWORD not in everything_posted(slack)
    assert PASSWORD not in bot.log()


def test_a_password_in_an_unreachable_tracking_uri_is_not_in_the_error(bots, slack, runs, eventually) -> None:
    dead = with_password(f"http://127.0.0.1:{support.free_port()}")
    bot = bots.get(MLFLOW_TRACKING_URI=dead)
    url = slack.new_response_url()
    bot.command(support.new_run_id(), url)
    [text] = eventually(lambda: response_texts(slack, url)[-1:])
    assert "did not answer" in text and "127.0.0.1" in text
    assert PASSWORD not in text and PASSWORD not in everything_posted(slack) and PASSWORD not in bot.log()
