"""Unfurls in-process: signed link_shared events through the bolt App of app.create_app, on FakeMlflow,
the chat.unfurl the Slack test server received, and which MLflow reads each unfurl cost."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import app
from bot import tags
from bot.ids import UnfurlActionId
from bot.models import Baseline, BaselineReason, ReviewState, Via, Vote
from bot.unfurls import blocks as b
from bot.unfurls.rules import ReviewShown, cache_key
from tests import support
from tests.inprocess.fakes import DEFAULT_EXPERIMENT, FAKE_TRACKING_URI, FakeMlflow
from tests.inprocess.harness import InProcessBot, post_card
from tests.scenarios.helpers import cards_for, response_texts
from tests.slack_api_server import SlackTestServer

UI = FAKE_TRACKING_URI  # the fake's UI address is its tracking URI: settings.ui_url
DOMAIN = "mlflow.inprocess.test"
VOTED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def unfurl_domains(slack: SlackTestServer) -> Iterator[None]:
    """The app's manifest lists the MLflow UI's domain (`review-bot manifest`)."""
    slack.unfurl_domains = {DOMAIN}
    yield
    slack.unfurl_domains = set()


def run_url(fake: FakeMlflow, run_id: str, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """The run's page (the fake's experiment ids are read without a call to it)."""
    return f"{UI}/#/experiments/{fake.add_experiment(experiment)}/runs/{run_id}"


def link_shared(*urls: str, message_ts: str = "", composer: bool = False) -> dict[str, Any]:
    """Slack's link_shared event: with an unfurl_id and source unless `message_ts` is given."""
    event: dict[str, Any] = {
        "type": "link_shared",
        "channel": "COMPOSER" if composer else support.DEV_CHANNEL,
        "is_bot_user_member": True,
        "user": support.ANA,
        "message_ts": message_ts or f"{time.time():.6f}",
        "links": [{"domain": DOMAIN, "url": url} for url in urls],
        "event_ts": f"{time.time():.6f}",
    }
    if not message_ts:
        event |= {
            "unfurl_id": f"C-{uuid.uuid4().hex}",
            "source": "composer" if composer else "conversations_history",
        }
    return event


def unfurled(bot: InProcessBot, slack: SlackTestServer, event: dict[str, Any]) -> dict[str, Any]:
    """The one chat.unfurl the event made (its unfurls by URL); every lazy listener finished first."""
    bot.event(event)
    bot.finish()
    [made] = slack.unfurls
    return made


def reads(fake: FakeMlflow) -> list[str]:
    """The calls that reached MLflow (`resolve` of a run id asks it nothing)."""
    return [call for call in fake.calls if call != "resolve"]


def nothing_unfurled(bot: InProcessBot, slack: SlackTestServer, event: dict[str, Any]) -> None:
    assert bot.event(event).status_code == 200
    bot.finish()
    assert slack.calls_to("chat.unfurl") == []
    assert slack.calls_to("chat.postMessage") == [] and slack.calls_to("chat.postEphemeral") == []


def test_a_run_with_its_baseline_and_a_pending_review_waiting_on_the_reviewers(
    make_bot: Callable[..., InProcessBot], slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    baseline_id = fake_mlflow.add_run("logreg", metrics={"val_auc": 0.90, "val_loss": 0.30})
    baseline = Baseline(reason=BaselineReason.PARENT, run_id=baseline_id, run_name="logreg")
    run_id = fake_mlflow.add_run("gbm", metrics={"val_auc": 0.95, "val_loss": 0.25, "epoch": 9.0})
    vote = Vote(user=support.DAN, name="Dan Okafor", at=VOTED_AT, via=Via.BUTTON)
    state = ReviewState(run_id=run_id, requested_by=support.ANA, approvals=[vote])
    fake_mlflow.set_run_tags(run_id, {**tags.baseline_tags(baseline)})
    fake_mlflow.set_run_tags(run_id, support.signed_review_tags(state, fake_mlflow.tags_of(run_id)))
    bot = make_bot(reviewers=[support.DAN, support.CAROL, support.BO], required_approvals=2)
    url = run_url(fake_mlflow, run_id)
    fake_mlflow.calls.clear()

    made = unfurled(bot, slack, link_shared(url))
    # what a card's first post reads (the run), and the baseline run's metrics: nothing else
    assert reads(fake_mlflow) == ["run_summary", "active_run"]

    summary = fake_mlflow.run_summary(run_id, with_model_versions=False)
    expected = b.build_run_unfurl(
        url,
        summary,
        ReviewShown(
            subject=run_id,
            review=summary.review,
            required_approvals=2,
            waiting_on=(support.BO, support.CAROL),
        ),
        ["val_auc", "val_loss", "epoch"],
        baseline_metrics={"val_auc": 0.90, "val_loss": 0.30},
    )
    assert made["unfurls"] == {url: expected}
    text = json.dumps(expected, ensure_ascii=False)
    assert "`0.95` · +0.05 (+5.6%), better vs the baseline" in text
    assert "1/2 approvals · waiting on <@U0BO>, <@U0CAROL>" in text
    assert made["source"] == "conversations_history" and made["unfurl_id"]
    assert slack.calls_to("chat.postMessage") == []


def test_the_same_link_within_a_minute_is_not_read_again(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("cached", metrics={"val_auc": 0.8})
    url = run_url(fake_mlflow, run_id)
    fake_mlflow.calls.clear()
    bot.event(link_shared(url))
    bot.event(link_shared(url))  # the message edited, or the link pasted in another channel
    bot.finish()
    assert len(slack.unfurls) == 2
    assert slack.unfurls[0]["unfurls"] == slack.unfurls[1]["unfurls"]
    assert reads(fake_mlflow) == ["run_summary"]


def test_an_experiment_with_its_run_count_and_best_run(
    make_bot: Callable[..., InProcessBot], slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    ids = {
        auc: fake_mlflow.add_run(f"r{auc}", experiment="ranked", metrics={"val_auc": auc})
        for auc in (0.7, 0.9, 0.8)
    }
    fake_mlflow.add_run("no-auc", experiment="ranked", metrics={"loss": 1.0})
    experiment_id = fake_mlflow.active_run(ids[0.9]).info.experiment_id
    url = f"{UI}/#/experiments/{experiment_id}?searchFilter=&orderByKey=attributes.start_time"
    bot = make_bot(primary_metric="val_auc:max")
    fake_mlflow.calls.clear()

    made = unfurled(bot, slack, link_shared(url))

    blocks = made["unfurls"][url]["blocks"]
    assert blocks[0]["text"]["text"] == f"*Experiment <{url.replace('&', '&amp;')}|ranked>*\n4 runs"
    assert blocks[1]["text"]["text"].startswith("Best run by `val_auc` (higher is better): <")
    assert f"/runs/{ids[0.9]}|r0.9> · `0.9`" in blocks[1]["text"]["text"]
    assert json.loads(blocks[2]["elements"][0]["value"]) == {"ref": ids[0.9]}
    assert sorted(fake_mlflow.calls) == ["find_experiment", "metric_keys", "top_runs"]


def test_an_experiment_is_never_ranked_by_a_metric_of_unknown_direction(
    make_bot: Callable[..., InProcessBot], slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("r", experiment="mystery", metrics={"wibble": 1.0})
    url = f"{UI}/#/experiments/{fake_mlflow.active_run(run_id).info.experiment_id}"
    bot = make_bot(primary_metric="wibble")
    fake_mlflow.calls.clear()
    made = unfurled(bot, slack, link_shared(url))
    assert made["unfurls"][url]["blocks"][1:] == [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": b.UNRANKED.format(metric="wibble")}]}
    ]
    assert "top_runs" not in fake_mlflow.calls


def test_a_model_version_is_unfurled_with_its_source_run(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("gbm", metrics={"val_auc": 0.93})
    version = fake_mlflow.register("fraud-clf", run_id, alias="champion")
    url = f"{UI}/#/models/fraud-clf/versions/{version}"
    made = unfurled(bot, slack, link_shared(url))
    text = made["unfurls"][url]["blocks"][0]["text"]["text"]
    assert text.startswith(f"*Model <{url}|fraud-clf v1>*")
    assert f"From run <{run_url(fake_mlflow, run_id)}|gbm>" in text
    assert made["unfurls"][url]["blocks"][1]["fields"][0]["text"] == "*val_auc*\n`0.93`"


def test_an_unknown_run_unfurls_as_not_found_and_says_nothing_in_the_channel(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    missing = "0" * 32
    deleted = fake_mlflow.add_run("gone")
    fake_mlflow.delete_run(deleted)
    urls = [f"{UI}/#/experiments/1/runs/{missing}", run_url(fake_mlflow, deleted), f"{UI}/#/experiments/999"]
    made = unfurled(bot, slack, link_shared(*urls))
    assert made["unfurls"] == {
        urls[0]: b.build_not_found_unfurl(f"run `{missing}`"),
        urls[1]: b.build_not_found_unfurl(f"run `{deleted}`"),
        urls[2]: b.build_not_found_unfurl("experiment `999`"),
    }
    assert slack.calls_to("chat.postMessage") == [] and slack.calls_to("chat.postEphemeral") == []


def test_mlflow_down_unfurls_nothing_and_says_nothing(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("r")
    url = run_url(fake_mlflow, run_id)
    fake_mlflow.down = True
    nothing_unfurled(bot, slack, link_shared(url))
    fake_mlflow.down = False  # and nothing was cached: it unfurls once MLflow answers
    assert list(unfurled(bot_again(bot), slack, link_shared(url))["unfurls"]) == [url]


def bot_again(bot: InProcessBot) -> InProcessBot:
    """The same services behind a new App (the finished one takes no more requests)."""
    return InProcessBot(app.create_app(bot.services.settings, bot.services), bot.services)


def test_one_link_that_fails_does_not_cost_the_others(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("fine")
    fake_mlflow.crash_calls = {"find_experiment"}
    urls = [f"{UI}/#/experiments/1", run_url(fake_mlflow, run_id)]
    made = unfurled(bot, slack, link_shared(*urls))
    assert list(made["unfurls"]) == [urls[1]]


def test_links_elsewhere_and_pages_without_a_subject_are_left_alone(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("r")
    fake_mlflow.calls.clear()
    nothing_unfurled(
        bot,
        slack,
        link_shared(
            f"https://elsewhere.example.com/#/experiments/1/runs/{run_id}",
            f"{UI}/#/models/fraud-clf",
            f"{UI}/",
        ),
    )
    assert fake_mlflow.calls == []


def test_unfurls_switched_off_read_nothing(
    make_bot: Callable[..., InProcessBot], slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("r")
    bot = make_bot(unfurls_enabled=False)
    fake_mlflow.calls.clear()
    nothing_unfurled(bot, slack, link_shared(run_url(fake_mlflow, run_id)))
    assert fake_mlflow.calls == []


def test_a_message_without_unfurl_id_is_unfurled_by_channel_and_ts(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("r")
    url = run_url(fake_mlflow, run_id)
    message = slack.add_message(support.DEV_CHANNEL, f"what about <{url}>?", support.ANA)
    made = unfurled(bot, slack, link_shared(url, message_ts=message["ts"]))
    assert (made["channel"], made["ts"], made["unfurl_id"]) == (support.DEV_CHANNEL, message["ts"], None)


def test_the_review_button_posts_the_card_as_review_does_then_the_unfurl_links_to_it(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow, eventually: Callable[..., Any]
) -> None:
    run_id = fake_mlflow.add_run("to-review", metrics={"val_auc": 0.9})
    url = run_url(fake_mlflow, run_id)
    bot.event(link_shared(url))
    made = eventually(lambda: slack.unfurls[0])
    button = made["unfurls"][url]["blocks"][-1]["elements"][0]
    assert button["action_id"] == UnfurlActionId.REVIEW
    message = slack.add_message(support.DEV_CHANNEL, url, support.ANA)
    click = slack.new_response_url()
    reply = bot.block_action(
        button["action_id"],
        button["value"],
        click,
        message=message,
        channel=support.DEV_CHANNEL,
        user=support.BO,
    )
    assert reply.status_code == 200
    card = eventually(lambda: cards_for(slack, run_id, support.REVIEW_CHANNEL)[0], what="the card")
    eventually(lambda: [t for t in response_texts(slack, click) if "Review card posted" in t])
    assert f"<@{support.BO}>" in json.dumps(card["blocks"])
    bot.finish()

    # the link pasted again, after the cache's minute: the unfurl now opens the card
    slack.unfurls.clear()
    bot.services.store.put_json(cache_key(url), None, 1)
    again = unfurled(bot_again(bot), slack, link_shared(url))
    [button] = again["unfurls"][url]["blocks"][-1]["elements"]
    assert button["action_id"] == UnfurlActionId.OPEN_CARD
    assert button["url"] == fake_mlflow.review(run_id).slack_permalink
    assert button["url"].endswith(card["ts"].replace(".", ""))


def test_a_review_button_without_a_reference_is_ignored(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    message = slack.add_message(support.DEV_CHANNEL, "x", support.ANA)
    reply = bot.block_action(
        UnfurlActionId.REVIEW.value,
        "{}",
        slack.new_response_url(),
        message=message,
        channel=support.DEV_CHANNEL,
    )
    assert reply.status_code == 200
    bot.finish()
    assert slack.calls_to("chat.postMessage") == [] and fake_mlflow.calls == []


def test_a_posted_card_is_linked_from_the_unfurl(
    bot: InProcessBot, slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> None:
    run_id = fake_mlflow.add_run("carded")
    card = post_card(bot.services, slack, run_id)
    url = run_url(fake_mlflow, run_id)
    made = unfurled(bot, slack, link_shared(url))
    [button] = made["unfurls"][url]["blocks"][-1]["elements"]
    assert button["action_id"] == UnfurlActionId.OPEN_CARD
    assert button["url"].endswith(f"/{card['channel']}/p{card['ts'].replace('.', '')}")


def test_the_open_card_link_button_is_acknowledged(bot: InProcessBot, slack: SlackTestServer) -> None:
    """A link button still sends block_actions: unanswered, Slack would show the person an error."""
    message = slack.add_message(support.DEV_CHANNEL, "x", support.ANA)
    reply = bot.block_action(
        UnfurlActionId.OPEN_CARD.value,
        "",
        slack.new_response_url(),
        message=message,
        channel=support.DEV_CHANNEL,
    )
    assert reply.status_code == 200
    unknown = bot.block_action("unfurl_nothing", "", slack.new_response_url(), message=message, channel="C1")
    assert unknown.status_code == 404  # so the 200 above means "handled"
