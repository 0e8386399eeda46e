"""Unfurls through the served bot on the real stack: signed link_shared events in, chat.unfurl (and
nothing else) out, read from a real MLflow server. A run with its baseline and a review waiting on
reviewers, an experiment, a model version under an alias, a LoggedModel, a prompt version, an unknown
run, MLflow down, a link elsewhere, unfurls switched off, the Review button, the posted card's link; and
`review-bot manifest` making the unfurl domain follow MLFLOW_UI_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ids import UnfurlActionId
from bot.unfurls import blocks as b
from tests import support
from tests.mlflow3_data import Mlflow3Data, unique
from tests.scenarios.helpers import cards_for, response_texts

UI = "https://mlflow.unfurl.test"  # MLFLOW_UI_URL: the links people paste; the bot reads the tracking URI
DOMAIN = "mlflow.unfurl.test"
QUIET = 1.5  # s: how long an unfurl that should not happen would take to show up
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def unfurl_bot(bots, slack) -> support.BotProcess:  # noqa: ANN001
    """A team with two reviewers, two approvals needed, ranking by validation AUC, and its MLflow UI at
    UI; the app's manifest lists that domain (`review-bot manifest`), so Slack lets it unfurl there."""
    slack.unfurl_domains.add(DOMAIN)
    return bots.get(
        MLFLOW_UI_URL=UI,
        REVIEWERS=f"{support.DAN},{support.CAROL}",
        REQUIRED_APPROVALS="2",
        PRIMARY_METRIC="val_auc:max",
    )


@pytest.fixture(scope="module")
def data(mlflow_server: str) -> Mlflow3Data:
    return Mlflow3Data(mlflow_server)


def share(
    bot: support.BotProcess, *urls: str, channel: str = support.DEV_CHANNEL, message_ts: str = ""
) -> str:
    """Someone pastes `urls` in a message: Slack's signed link_shared event; its unfurl_id (or, with
    `message_ts`, no unfurl_id: the unfurl goes to channel + ts)."""
    unfurl_id = "" if message_ts else f"C-{uuid.uuid4().hex}"
    event: dict[str, Any] = {
        "type": "link_shared",
        "channel": channel,
        "is_bot_user_member": True,
        "user": support.ANA,
        "message_ts": message_ts or f"{time.time():.6f}",
        "links": [{"domain": DOMAIN, "url": url} for url in urls],
        "event_ts": f"{time.time():.6f}",
    }
    if unfurl_id:
        event |= {"unfurl_id": unfurl_id, "source": "conversations_history"}
    reply = bot.post_signed(support.event_body(event, f"Ev{uuid.uuid4().hex[:12]}"), "application/json")
    assert reply.status_code == 200
    return unfurl_id or message_ts


def unfurls_of(slack, key: str) -> list[dict[str, Any]]:  # noqa: ANN001
    return [u for u in list(slack.unfurls) if key in (u["unfurl_id"], u["ts"])]


def attempts(slack, key: str) -> list[Any]:  # noqa: ANN001
    """Every chat.unfurl call for `key`, refused ones too (off the app's domains, not in the message)."""
    return [c for c in slack.calls_to("chat.unfurl") if key in (c.args.get("unfurl_id"), c.args.get("ts"))]


def unfurled(slack, eventually, key: str) -> dict[str, Any]:  # noqa: ANN001
    """The unfurls (by URL) of the one chat.unfurl made for `key` (an unfurl_id or a message ts)."""
    [made] = eventually(lambda: unfurls_of(slack, key), what=f"the unfurl {key}")
    return made["unfurls"]


def text_of(unfurl: dict[str, Any]) -> str:
    return json.dumps(unfurl["blocks"], ensure_ascii=False)


def last_button(unfurl: dict[str, Any]) -> dict[str, Any]:
    [button] = unfurl["blocks"][-1]["elements"]
    return button


def run_url(runs, run_id: str) -> str:  # noqa: ANN001
    return f"{UI}/#/experiments/{runs.client.get_run(run_id).info.experiment_id}/runs/{run_id}"


def channel_posts(slack, since: float, about: str) -> list[Any]:  # noqa: ANN001
    """Messages (posted or ephemeral) since `since` that say anything about `about` (the link's run):
    other tests' bots share the Slack test server, and their background posts are not this link's."""
    return [
        c
        for c in slack.calls
        if c.method in {"chat.postMessage", "chat.postEphemeral"}
        and c.at >= since
        and about in json.dumps(c.args)
    ]


# --- what each link unfurls into ----------------------------------------------------------------------


def test_a_run_shows_its_deltas_against_the_baseline_who_it_waits_on_and_links_its_card(
    unfurl_bot, slack, runs, eventually
) -> None:
    experiment = unique("unfurl-runs")
    runs.make_run("logreg-baseline", experiment=experiment, metrics={"val_auc": 0.90, "val_loss": 0.30})
    candidate = runs.make_run(
        "gbm-candidate", experiment=experiment, metrics={"val_auc": 0.95, "val_loss": 0.25}
    )
    url = slack.new_response_url()
    unfurl_bot.command(candidate, url, user=support.ANA)
    eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t], what="the card")
    [card] = cards_for(slack, candidate, support.REVIEW_CHANNEL)
    link = run_url(runs, candidate)

    unfurl = unfurled(slack, eventually, share(unfurl_bot, link))[link]

    text = text_of(unfurl)
    assert f"*Run <{link}|gbm-candidate>*" in text
    assert "*val_auc*\\n`0.95` · +0.05 (+5.6%), better vs the baseline" in text
    assert "*val_loss*\\n`0.25` · -0.05 (-16.7%), better vs the baseline" in text
    assert "Baseline: vs <" in text and "|logreg-baseline>, the best earlier run by `val_auc`" in text
    waiting = f"waiting on <@{support.CAROL}>, <@{support.DAN}>"
    assert f":hourglass_flowing_sand: Review pending · 0/2 approvals · {waiting}" in text
    button = last_button(unfurl)
    assert button["action_id"] == UnfurlActionId.OPEN_CARD
    assert button["url"].endswith(f"/{support.REVIEW_CHANNEL}/p{card['ts'].replace('.', '')}")


def test_an_experiment_shows_its_run_count_and_best_run(unfurl_bot, slack, runs, eventually) -> None:
    experiment = unique("unfurl-experiment")
    best = runs.make_run("best", experiment=experiment, metrics={"val_auc": 0.97})
    runs.make_run("worse", experiment=experiment, metrics={"val_auc": 0.91})
    runs.make_run("no-auc", experiment=experiment, metrics={"rmse": 0.2})
    link = f"{UI}/#/experiments/{runs.experiment(experiment)}"

    unfurl = unfurled(slack, eventually, share(unfurl_bot, link))[link]

    assert unfurl["blocks"][0]["text"]["text"] == f"*Experiment <{link}|{experiment}>*\n3 runs"
    assert unfurl["blocks"][1]["text"]["text"] == (
        f"Best run by `val_auc` (higher is better): <{run_url(runs, best)}|best> · `0.97`"
    )
    assert json.loads(last_button(unfurl)["value"]) == {"ref": best}


def test_a_model_version_under_an_alias(unfurl_bot, slack, runs, eventually) -> None:
    model = unique("unfurl-clf")
    run_id = runs.make_run("served", metrics={"val_auc": 0.93})
    version = runs.register(model, run_id, alias="champion")
    link = f"{UI}/#/models/{model}/versions/{version}"

    unfurl = unfurled(slack, eventually, share(unfurl_bot, link))[link]

    assert unfurl["blocks"][0]["text"]["text"] == (
        f"*Model <{link}|{model} v{version}>* `@champion` · Ready\n"
        f"From run <{run_url(runs, run_id)}|served> · review-bot-tests"
    )
    assert unfurl["blocks"][1]["fields"][0]["text"] == "*val_auc*\n`0.93`"
    assert json.loads(last_button(unfurl)["value"]) == {"ref": run_id}  # reviewed as its source run


def test_a_logged_model_and_a_prompt_version(unfurl_bot, slack, data, eventually) -> None:
    made = data.logged_model_without_run(alias="staging")
    model_link = f"{UI}/#/experiments/{data.experiment()}/models/{made.model_id}"
    prompt = data.prompt()
    prompt_link = f"{UI}/#/prompts/{prompt}?promptVersion=1"

    found = unfurled(slack, eventually, share(unfurl_bot, model_link, prompt_link))

    model_text = text_of(found[model_link])
    assert f"*Logged model <{model_link}|support-agent>*" in model_text
    assert f"`{made.model_id}` · mlflow3-reviews · Ready" in model_text
    assert "*answer_correctness (support-eval)*\\n`0.81`" in model_text
    assert json.loads(last_button(found[model_link])["value"]) == {"ref": f"models:/{made.model_id}"}
    prompt_text = text_of(found[prompt_link])
    assert f"*Prompt <{prompt_link}|{prompt} v1>* `@production`" in prompt_text
    assert "> first cut" in prompt_text
    assert "`Summarize the following text in {{ sentences }} sentences:`" in prompt_text
    assert json.loads(last_button(found[prompt_link])["value"]) == {"ref": f"prompts:/{prompt}/1"}


def test_a_logged_model_from_a_run_is_unfurled_as_the_run_it_is_reviewed_as(
    unfurl_bot, slack, data, runs, eventually
) -> None:
    run_id, made = data.logged_model_from_run()
    link = f"{UI}/#/experiments/{data.experiment()}/models/{made.model_id}"
    unfurl = unfurled(slack, eventually, share(unfurl_bot, link))[link]
    text = text_of(unfurl)
    assert f"*Run <{link}|{runs.client.get_run(run_id).info.run_name}>*" in text
    assert b.FROM_LOGGED_MODEL.format(model_id=made.model_id) in text
    assert json.loads(last_button(unfurl)["value"]) == {"ref": run_id}


def test_an_unknown_run_unfurls_as_not_found_and_nothing_is_said_in_the_channel(
    unfurl_bot, slack, eventually
) -> None:
    since = time.time()
    missing = support.new_run_id()
    link = f"{UI}/#/experiments/0/runs/{missing}"
    assert unfurled(slack, eventually, share(unfurl_bot, link)) == {
        link: b.build_not_found_unfurl(f"run `{missing}`")
    }
    assert channel_posts(slack, since, missing) == []


def test_the_review_button_posts_the_card_as_review_does(unfurl_bot, slack, runs, eventually) -> None:
    run_id = runs.make_run("unfurl-to-review", metrics={"val_auc": 0.88})
    link = run_url(runs, run_id)
    message = slack.add_message(support.DEV_CHANNEL, f"thoughts on <{link}>?", support.ANA)
    unfurl = unfurled(slack, eventually, share(unfurl_bot, link, message_ts=message["ts"]))[link]
    assert unfurls_of(slack, message["ts"])[0]["channel"] == support.DEV_CHANNEL  # channel + ts
    assert b.NOT_REVIEWED in text_of(unfurl)
    button = last_button(unfurl)
    assert button["action_id"] == UnfurlActionId.REVIEW

    click = slack.new_response_url()
    reply = unfurl_bot.block_action(
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
    assert f"<@{support.BO}>" in json.dumps(card["blocks"])  # requested by who clicked
    assert runs.tags(run_id)["review.requested_by"] == support.BO


# --- when nothing is unfurled -------------------------------------------------------------------------


def test_mlflow_down_unfurls_nothing_and_says_nothing(bots, slack, eventually) -> None:
    dead = f"http://127.0.0.1:{support.free_port()}"
    bot = bots.get(MLFLOW_TRACKING_URI=dead, MLFLOW_UI_URL=UI, MLFLOW_TIMEOUT_SECONDS="2")
    slack.unfurl_domains.add(DOMAIN)
    since = time.time()
    unknown = support.new_run_id()
    key = share(bot, f"{UI}/#/experiments/0/runs/{unknown}")
    eventually(lambda: "could not be unfurled" in bot.log(), what="the failure logged")
    time.sleep(QUIET)
    assert attempts(slack, key) == []
    assert channel_posts(slack, since, unknown) == []


def test_links_elsewhere_are_ignored(unfurl_bot, slack, runs, eventually) -> None:
    run_id = runs.make_run("elsewhere")
    page = f"/#/experiments/{runs.client.get_run(run_id).info.experiment_id}/runs/{run_id}"
    ignored = share(unfurl_bot, f"https://mlflow.other.test{page}", f"{UI}/#/models/some-model")
    ours = share(unfurl_bot, UI + page)  # the same page on this UI: unfurled, after the ignored event
    unfurled(slack, eventually, ours)
    time.sleep(QUIET)
    assert attempts(slack, ignored) == []


def test_unfurls_switched_off_unfurl_nothing(bots, slack, runs) -> None:
    bot = bots.get(MLFLOW_UI_URL=UI, UNFURLS_ENABLED="false")
    slack.unfurl_domains.add(DOMAIN)
    run_id = runs.make_run("switched-off")
    since = time.time()
    key = share(bot, run_url(runs, run_id))
    time.sleep(QUIET)
    assert attempts(slack, key) == [] and channel_posts(slack, since, run_id) == []


# --- the manifest -------------------------------------------------------------------------------------


def test_review_bot_manifest_puts_the_mlflow_ui_domain_in_unfurl_domains(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "MLFLOW_UI_URL": "https://mlflow.acme.io/",
    }
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "manifest",
            "--bot-url",
            "https://bot.acme.io",
            "--file",
            str(ROOT / "manifest.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    manifest = yaml.safe_load(made.stdout)
    assert manifest["features"]["unfurl_domains"] == ["mlflow.acme.io"]
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://bot.acme.io/slack/events"
    assert manifest["oauth_config"] == yaml.safe_load((ROOT / "manifest.yml").read_text())["oauth_config"]
    missing = subprocess.run(
        [sys.executable, "-m", "bot", "manifest"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**env, "MLFLOW_UI_URL": "", "MLFLOW_TRACKING_URI": "sqlite:///x.db"},
    )
    assert missing.returncode == 2 and "manifest.yml" in missing.stderr  # no manifest.yml in tmp_path
