"""Nudges: the real MLflow server delivers its registry webhooks to the served bot, which nudges the
review channel about deployed versions without an approved review; the buttons on a nudge; the
digest, scheduled (in-process replicas sharing Redis, time moved) and from `review-bot nudge --once`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
import time_machine
from slack_sdk import WebClient

from bot.ids import ActionId
from bot.mlflow import connect
from bot.models import ReviewState, ReviewStatus
from bot.nudges.rules import sign_webhook
from bot.nudges.service import NudgeService
from bot.scheduler import LeaderScheduler
from bot.slack.outbox import Outbox
from bot.store import RedisStore
from bot.tags import SNOOZED_UNTIL as SNOOZED_UNTIL_TAG
from tests import support
from tests.scenarios.helpers import cards_for, response_texts, responses_to
from tests.slow_proxy import SlowProxy

SECRET = "whsec-test-0123456789"
REVIEW_BOT = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[2] / ".venv")) / "bin" / "review-bot"
QUIET = 1.5  # after the nudge we wait for, how long a second one would take to show up


def nudges_about(slack, model: str, version: str | None = None) -> list[dict]:
    needle = f"{model} v{version} is deployed" if version else f"{model} v"
    return [
        m
        for m in slack.messages.get(support.REVIEW_CHANNEL, [])
        if needle in m.get("text", "") and "is deployed" in m.get("text", "")
    ]


def model_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REVIEW_BOT), *args],
        env={**os.environ, "REVIEW_PUBLIC_KEYS": support.PUBLIC_KEY, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def nudge_bot(bots, mlflow_server: str, runs) -> Iterator[support.BotProcess]:
    """The bot with a webhook secret, registered with MLflow by `review-bot webhook register`."""
    bot = bots.get(MLFLOW_WEBHOOK_SECRET=SECRET, NUDGE_REPEAT="1d")
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_WEBHOOK_SECRET": SECRET}
    created = cli("webhook", "register", "--url", f"{bot.url}/mlflow/webhook", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Created MLflow webhook 'review-bot'")
    assert SECRET not in created.stdout + created.stderr
    again = cli("webhook", "register", "--url", f"{bot.url}/mlflow/webhook", env=env)
    assert again.returncode == 0 and again.stdout.startswith("Updated MLflow webhook 'review-bot'")
    hooks = [w for w in runs.client.list_webhooks() if w.name == "review-bot"]
    assert len(hooks) == 1
    assert {str(e) for e in hooks[0].events} == {
        "model_version_alias.created",
        "model_version_tag.set",
        "model_version.created",
        "prompt_alias.created",
    }
    yield bot
    for hook in hooks:
        runs.client.delete_webhook(hook.webhook_id)


def signed_post(bot, payload: dict, *, secret: str = SECRET, delivery: str | None = None, age: int = 0):
    body = json.dumps(payload).encode()
    delivery = delivery or str(uuid.uuid4())
    timestamp = str(int(time.time()) - age)
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign_webhook(secret, delivery, timestamp, body),
    }
    return requests.post(f"{bot.url}/mlflow/webhook", data=body, headers=headers, timeout=10)


def alias_event(name: str, version: str, alias: str = "champion") -> dict:
    return {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": datetime.now(tz=UTC).isoformat(),
        "data": {"name": name, "alias": alias, "version": version},
    }


# --- as it happens ------------------------------------------------------------------------------------


def test_a_deployment_alias_on_an_unreviewed_version_nudges_exactly_once(
    nudge_bot, slack, runs, eventually
) -> None:
    model = model_name("fraud-clf")
    run_id = runs.make_run("unreviewed-candidate")
    version = runs.register(model, run_id)  # model_version.created: not deployed, no nudge
    runs.client.set_registered_model_alias(model, "champion", version)
    nudge = eventually(lambda: nudges_about(slack, model, version))[0]
    time.sleep(QUIET)
    assert len(nudges_about(slack, model)) == 1
    text = json.dumps(nudge["blocks"])
    assert "is deployed as @champion without an approved review" in text
    assert "never reviewed" in text and "unreviewed-candidate" in text
    buttons = [e["action_id"] for b in nudge["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [ActionId.NUDGE_START_REVIEW, ActionId.NUDGE_SNOOZE]

    # The same alias again (moved away and back) within NUDGE_REPEAT: no second nudge.
    runs.client.delete_registered_model_alias(model, "champion")
    runs.client.set_registered_model_alias(model, "champion", version)
    # Another deployment alias on the same version is news: one more nudge, for @prod.
    runs.client.set_registered_model_alias(model, "prod", version)
    eventually(lambda: len(nudges_about(slack, model)) == 2)
    time.sleep(QUIET)
    assert len(nudges_about(slack, model)) == 2
    assert "deployed as @prod" in nudges_about(slack, model)[-1]["text"]
    assert SECRET not in nudge_bot.log()


def test_approved_runs_and_other_aliases_are_not_nudged(nudge_bot, slack, runs, eventually) -> None:
    model = model_name("churn")
    approved = runs.make_run("approved")
    signed = support.signed_review_tags(
        ReviewState(
            run_id=approved, status=ReviewStatus.APPROVED, approvals=[], decided_at=datetime.now(tz=UTC)
        )
    )
    for key, value in signed.items():
        runs.client.set_tag(approved, key, value)
    canary = runs.make_run("canary-only")
    sentinel = runs.make_run("sentinel")
    v_approved, v_canary = runs.register(model, approved), runs.register(model, canary)
    runs.client.set_registered_model_alias(model, "champion", v_approved)
    runs.client.set_registered_model_alias(model, "canary", v_canary)
    v_sentinel = runs.register(model, sentinel)
    runs.client.set_registered_model_alias(model, "production", v_sentinel)
    eventually(lambda: nudges_about(slack, model, v_sentinel))
    time.sleep(QUIET)
    assert [m["text"] for m in nudges_about(slack, model)] == [
        f"{model} v{v_sentinel} is deployed as @production without an approved review"
    ]
    eventually(lambda: "is not a deployment alias: ignored" in nudge_bot.log())


def test_unsigned_mis_signed_stale_and_replayed_webhooks_get_401(nudge_bot, slack, runs) -> None:
    model = model_name("forged")
    version = runs.register(model, runs.make_run("forged-target"))
    payload = alias_event(model, version)
    url = f"{nudge_bot.url}/mlflow/webhook"
    unsigned = requests.post(url, json=payload, timeout=10)
    wrong = signed_post(nudge_bot, payload, secret="not-the-secret")
    stale = signed_post(nudge_bot, payload, age=6 * 60)
    garbage = requests.post(
        url,
        data=json.dumps(payload),
        headers={"X-MLflow-Delivery-Id": "d", "X-MLflow-Timestamp": "x", "X-MLflow-Signature": "v1,AAAA"},
        timeout=10,
    )
    assert [r.status_code for r in (unsigned, wrong, stale, garbage)] == [401, 401, 401, 401]
    assert stale.json()["reason"] == "timestamp more than 5 minutes off"
    assert wrong.json()["reason"] == "bad signature"
    assert requests.get(url, timeout=10).status_code == 405
    time.sleep(QUIET)
    assert nudges_about(slack, model) == []  # none of those was acted on

    delivery = str(uuid.uuid4())
    first = signed_post(nudge_bot, alias_event(model, version, "canary"), delivery=delivery)
    replay = signed_post(nudge_bot, alias_event(model, version, "canary"), delivery=delivery)
    assert (first.status_code, replay.status_code) == (200, 401)
    assert replay.json()["reason"] == "delivery id already seen (a replay)"


def test_a_version_deleted_since_the_event_is_logged_and_skipped(nudge_bot, slack, runs, eventually) -> None:
    model = model_name("gone")
    version = runs.register(model, runs.make_run("gone"))
    runs.client.delete_model_version(model, version)
    assert signed_post(nudge_bot, alias_event(model, version)).status_code == 200
    eventually(lambda: f"model {model} version {version} no longer exists: skipped" in nudge_bot.log())
    assert nudges_about(slack, model) == []


def test_without_a_secret_every_delivery_is_refused(bot) -> None:
    reply = signed_post(bot, alias_event("any", "1"))
    assert reply.status_code == 401
    assert reply.json()["reason"] == "MLFLOW_WEBHOOK_SECRET is not set: webhooks are refused"


# --- the buttons --------------------------------------------------------------------------------------


def click(bot, slack, nudge: dict, action: ActionId, user: str = support.BO) -> str:
    url = slack.new_response_url()
    value = next(
        e["value"]
        for b in nudge["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action
    )
    reply = bot.block_action(
        action.value, value, url, message=nudge, channel=support.REVIEW_CHANNEL, user=user
    )
    assert reply.status_code == 200
    return url


def test_start_review_posts_the_card_and_marks_the_nudge(nudge_bot, slack, runs, eventually) -> None:
    model = model_name("start")
    run_id = runs.make_run("start-me", user="carol")
    version = runs.register(model, run_id, alias="champion")
    nudge = eventually(lambda: nudges_about(slack, model, version))[0]
    url = click(nudge_bot, slack, nudge, ActionId.NUDGE_START_REVIEW)
    card = eventually(lambda: cards_for(slack, run_id, support.REVIEW_CHANNEL))[0]
    replaced = eventually(lambda: [r for r in responses_to(slack, url) if r.get("replace_original")])[0]
    assert "Review started by <@U0BO>" in json.dumps(replaced["blocks"])
    assert not [b for b in replaced["blocks"] if b["type"] == "actions"]  # the buttons are gone
    assert eventually(lambda: runs.tags(run_id).get("review.requested_by")) == support.BO
    assert card["metadata"]["event_payload"]["run_id"] == run_id


def test_snooze_tags_the_version_and_quiets_later_nudges(nudge_bot, slack, runs, eventually) -> None:
    model = model_name("snooze")
    version = runs.register(model, runs.make_run("snooze-me"), alias="champion")
    nudge = eventually(lambda: nudges_about(slack, model, version))[0]
    url = click(nudge_bot, slack, nudge, ActionId.NUDGE_SNOOZE)
    replaced = eventually(lambda: [r for r in responses_to(slack, url) if r.get("replace_original")])[0]
    assert "Snoozed by <@U0BO> until" in json.dumps(replaced["blocks"])
    until = runs.client.get_model_version(model, version).tags[SNOOZED_UNTIL_TAG]
    snoozed = datetime.fromisoformat(until.replace("Z", "+00:00"))
    assert timedelta(days=6, hours=23) < snoozed - datetime.now(tz=UTC) <= timedelta(days=7)
    runs.client.set_registered_model_alias(model, "prod", version)  # a new alias while snoozed
    time.sleep(QUIET * 2)
    assert len(nudges_about(slack, model)) == 1


def test_snooze_with_mlflow_down_says_so_and_changes_nothing(bots, slack, eventually) -> None:
    down = bots.get(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{support.free_port()}", MLFLOW_TIMEOUT_SECONDS="2")
    nudge = {
        "ts": "1767225600.000100",
        "text": "x v1 is deployed as @champion without an approved review",
        "blocks": [
            {
                "type": "actions",
                "block_id": "nudge_actions",
                "elements": [
                    {"type": "button", "action_id": "nudge_snooze", "value": '{"model":"x","version":"1"}'}
                ],
            }
        ],
    }
    url = click(down, slack, nudge, ActionId.NUDGE_SNOOZE)
    text = eventually(lambda: response_texts(slack, url))[0]
    assert text.startswith(":warning: Not snoozed: MLflow at `http://127.0.0.1:")
    assert not [r for r in responses_to(slack, url) if r.get("replace_original")]


# --- the digest ---------------------------------------------------------------------------------------


def test_nudge_once_dry_run_prints_the_digest_and_says_what_could_not_be_checked(
    mlflow_server, runs, redis_url
) -> None:
    healthy, broken, alias = model_name("healthy"), model_name("broken"), model_name("live")
    runs.register(healthy, runs.make_run("h"), alias=alias)  # an alias only this test deploys with
    runs.register(broken, runs.make_run("b"), alias=alias)
    legacy = model_name("legacy")  # deployed the old way: the Production stage, no alias
    runs.client.transition_model_version_stage(
        legacy, runs.register(legacy, runs.make_run("l")), "Production"
    )
    failing = True
    proxy = SlowProxy(
        mlflow_server, fail=lambda path: failing and "model-versions/get" in path and broken in path
    )
    proxy.start()
    env = {
        "MLFLOW_TRACKING_URI": proxy.url,
        "MLFLOW_TIMEOUT_SECONDS": "3",
        "REDIS_URL": redis_url,
        "DEPLOYMENT_ALIASES": alias,
    }
    try:
        first = cli("nudge", "--once", "--dry-run", env=env)
        failing = False  # MLflow answers again: the next scan checks it
        second = cli("nudge", "--once", "--dry-run", env=env)
    finally:
        proxy.stop()
    assert first.returncode == 1, first.stderr
    assert "Deployed without an approved review" in first.stdout
    assert f"/#/models/{healthy}/versions/1)\n• v1 @{alias}: never reviewed" in first.stdout
    assert "Could not be checked" in first.stdout and f"*{broken}*" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"/#/models/{broken}/versions/1)\n• v1 @{alias}: never reviewed" in second.stdout
    assert f"/#/models/{legacy}/versions/1)\n• v1 Production: never reviewed, the run is" in second.stdout
    assert "Could not be checked" not in second.stdout


def test_nudge_once_needs_a_channel_to_post(mlflow_server) -> None:
    result = cli("nudge", "--once", env={"MLFLOW_TRACKING_URI": mlflow_server, "REVIEW_CHANNEL": ""})
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN and REVIEW_CHANNEL are needed to post; add --dry-run" in result.stderr


def test_nudge_once_without_a_key_refuses_to_call_every_approval_unsigned(mlflow_server) -> None:
    result = cli(
        "nudge", "--once", "--dry-run", env={"MLFLOW_TRACKING_URI": mlflow_server, "REVIEW_PUBLIC_KEYS": ""}
    )
    assert result.returncode == 2 and "REVIEW_PUBLIC_KEYS" in result.stderr


MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


DIGEST_ALIAS = f"weekly-{uuid.uuid4().hex[:6]}"  # the only deployment alias the digest replicas know


@pytest.fixture
def digest_replicas(mlflow_server: str, redis_url: str, slack) -> Iterator[callable]:
    namespace = f"digest-{uuid.uuid4().hex[:8]}"
    redis.Redis.from_url(redis_url).delete(f"review-bot:digest:{MONDAY_10:%Y-%m-%dT%H:%M}")
    made: list[LeaderScheduler] = []

    def replica() -> NudgeService:
        store, client = RedisStore(redis_url), WebClient(token=support.BOT_TOKEN, base_url=slack.api_url)
        scheduler = LeaderScheduler(
            "nudges", redis_url=redis_url, misfire_grace_seconds=1800, lock_ttl_seconds=3, namespace=namespace
        )
        mlflow = connect(mlflow_server, mlflow_server)
        service = NudgeService(
            mlflow.registry,
            mlflow.runs,
            mlflow.records,
            store,
            Outbox(client),
            None,  # type: ignore[arg-type]  # the digest never posts a card
            channel=support.REVIEW_CHANNEL,
            deployment_aliases=[DIGEST_ALIAS],
            pending_max_days=3,
            repeat_seconds=86400,
            reviewers=lambda: frozenset({support.DAN}),
            scheduler=scheduler,
            cron="0 10 * * MON-FRI",
            timezone="UTC",
        )
        scheduler.start()
        made.append(scheduler)
        return service

    yield replica
    for scheduler in made:
        scheduler.stop()


def digests(slack) -> list[dict]:
    return [
        m
        for m in slack.messages.get(support.REVIEW_CHANNEL, [])
        if m.get("text", "").startswith("Model review digest")
    ]


def test_the_scheduled_digest_goes_out_once_across_replicas(slack, runs, eventually, digest_replicas) -> None:
    model = model_name("digest")
    old_request = (MONDAY_10 - timedelta(days=10)).isoformat().replace("+00:00", "Z")
    runs.make_run(
        "waiting-long",
        tags={
            "review.status": "pending",
            "review.requested_at": old_request,
            "review.requested_by": support.ANA,
        },
    )
    runs.register(model, runs.make_run("digest-unreviewed"), alias=DIGEST_ALIAS)
    before = len(digests(slack))
    with time_machine.travel(MONDAY_10 - timedelta(seconds=30), tick=True) as clock:
        a, b = digest_replicas(), digest_replicas()
        eventually(lambda: a.scheduler.is_leader or b.scheduler.is_leader)
        assert a.scheduler.scheduled("digest", "registry") == MONDAY_10
        clock.shift(timedelta(seconds=31))
        for service in (a, b):
            service.scheduler.campaign_once()
        eventually(lambda: len(digests(slack)) > before, timeout=60)
        threading.Event().wait(QUIET)
        for service in (a, b):
            service.scheduler.campaign_once()
        threading.Event().wait(QUIET)
    posted = digests(slack)[before:]
    assert len(posted) == 1
    text = json.dumps(posted[0]["blocks"], ensure_ascii=False)
    assert f"{model}" in text and f"• v1 @{DIGEST_ALIAS}: never reviewed" in text
    assert "Reviews pending longer than 3 working days" in text and "waiting-long" in text
    dms = [
        m
        for m in slack.messages.get("D" + support.DAN[1:], [])
        if "Reviews waiting on you" in json.dumps(m.get("blocks"))
    ]
    assert dms and "waiting-long" in json.dumps(dms[-1]["blocks"])
