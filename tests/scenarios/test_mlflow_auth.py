"""An MLflow server with authentication (MLflow's own `--app-name basic-auth`): the bot's credentials
refused (401) and a read-only account (403) each get their own accurate message, in Slack and in
/healthz, instead of "MLflow did not answer, try again in a minute"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.ids import ActionId
from tests import servers, support
from tests.scenarios.helpers import cards_for, response_texts

ADMIN_PASSWORD = "admin-Pa55word-for-tests"
READER, READER_PASSWORD = "reader", "reader-Pa55word"


@pytest.fixture(scope="module")
def auth_mlflow(workdir: Path) -> Iterator[str]:
    with servers.mlflow_server(workdir, basic_auth_admin_password=ADMIN_PASSWORD) as url:
        admin = ("admin", ADMIN_PASSWORD)
        created = requests.post(
            f"{url}/api/2.0/mlflow/users/create",
            json={"username": READER, "password": READER_PASSWORD},
            auth=admin,
            timeout=10,
        )
        assert created.status_code == 200, created.text
        yield url


def admin_run(url: str, name: str) -> str:
    """A run the admin logs (the reader may read it: default permission READ, never write)."""
    admin = ("admin", ADMIN_PASSWORD)
    experiment = requests.post(
        f"{url}/api/2.0/mlflow/experiments/create",
        json={"name": f"auth-{name}-{time.time_ns()}"},
        auth=admin,
        timeout=10,
    ).json()["experiment_id"]
    run = requests.post(
        f"{url}/api/2.0/mlflow/runs/create",
        json={"experiment_id": experiment, "run_name": name, "start_time": int(time.time() * 1000)},
        auth=admin,
        timeout=10,
    ).json()["run"]
    run_id = run["info"]["run_id"]
    requests.post(
        f"{url}/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run_id, "key": "val_auc", "value": 0.9, "timestamp": 0, "step": 0},
        auth=admin,
        timeout=10,
    ).raise_for_status()
    return run_id


def health(bot) -> dict:
    return requests.get(f"{bot.url}/healthz", timeout=10).json()


def test_wrong_credentials_are_named_in_slack_and_in_healthz(bots, slack, auth_mlflow, eventually) -> None:
    run_id = admin_run(auth_mlflow, "wrong-credentials")
    bot = bots.get(
        MLFLOW_TRACKING_URI=auth_mlflow, MLFLOW_TRACKING_USERNAME=READER, MLFLOW_TRACKING_PASSWORD="not-it"
    )
    state = health(bot)
    assert (
        state["status"] == "degraded"
        and state["mlflow"].startswith("unauthorized:")
        and "401" in state["mlflow"]
    )
    assert "unauthorized" in bot.log()  # the one-line warning at start-up
    url = slack.new_response_url()
    bot.command(run_id, url)
    text = eventually(lambda: response_texts(slack, url)[-1:])[0]
    assert "refused review-bot's credentials (HTTP 401)" in text and "MLFLOW_TRACKING_USERNAME" in text
    assert "did not answer" not in text and "not-it" not in text
    assert cards_for(slack, run_id) == []


def test_a_read_only_account_posts_the_card_and_says_it_cannot_record(
    bots, slack, auth_mlflow, eventually
) -> None:
    run_id = admin_run(auth_mlflow, "read-only")
    bot = bots.get(
        MLFLOW_TRACKING_URI=auth_mlflow,
        MLFLOW_TRACKING_USERNAME=READER,
        MLFLOW_TRACKING_PASSWORD=READER_PASSWORD,
    )
    assert health(bot)["mlflow"] == "ok"  # it may read: nothing to say yet
    url = slack.new_response_url()
    bot.command(run_id, url)
    texts = eventually(lambda: [t for t in response_texts(slack, url) if "HTTP 403" in t])
    assert f"account `{READER}` is not allowed to change the review's tags on run `{run_id}`" in texts[0]
    assert "EDIT permission" in texts[0] and "once MLflow answers" not in " ".join(response_texts(slack, url))
    [card] = cards_for(slack, run_id)

    vote_url = slack.new_response_url()
    bot.block_action(
        ActionId.APPROVE.value, "{}", vote_url, message=card, channel=card["channel"], user=support.BO
    )
    vote_reply = eventually(lambda: response_texts(slack, vote_url)[-1:])[0]
    assert (
        "not allowed to change" in vote_reply
        and "HTTP 403" in vote_reply
        and "did not answer" not in vote_reply
    )

    state = health(bot)
    assert (
        state["status"] == "degraded"
        and state["mlflow"].startswith("read-only:")
        and run_id in state["mlflow"]
    )
