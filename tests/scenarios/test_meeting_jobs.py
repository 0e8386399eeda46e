"""Reminders and starts: exactly once across replicas, missed ones reported, jobs rebuilt from MLflow.

The replicas here are MeetingService instances in this process, each with its own scheduler, sharing
the real Redis, MLflow server and Slack test server. Time is moved with time-machine (APScheduler reads
the clock it patches); the only real waits are for Slack messages to arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from slack_sdk import WebClient

from bot.meetings.service import MeetingService
from bot.mlflow import connect
from bot.scheduler import LeaderScheduler
from bot.slack.outbox import Outbox
from bot.slack.people import People
from bot.store import RedisStore
from tests import support
from tests.scenarios.helpers import post_card

LEAD, GRACE = 15, 30
T0 = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def replicas(mlflow_server: str, redis_url: str, slack) -> Iterator[callable]:
    namespace = f"jobs-{uuid.uuid4().hex[:8]}"
    made: list[LeaderScheduler] = []

    def replica() -> MeetingService:
        store, client = RedisStore(redis_url), WebClient(token=support.BOT_TOKEN, base_url=slack.api_url)
        scheduler = LeaderScheduler(
            "meetings", redis_url=redis_url, misfire_grace_seconds=GRACE * 60, lock_ttl_seconds=3,
            namespace=namespace,
        )  # fmt: skip
        mlflow = connect(mlflow_server, mlflow_server)
        service = MeetingService(
            mlflow.runs,
            mlflow.records,
            store,
            Outbox(client),
            People(store, client),
            scheduler,
            reminder_lead_minutes=LEAD,
            missed_grace_minutes=GRACE,
            required_approvals=1,
            reviewers=lambda: None,
        )
        scheduler.start()
        made.append(scheduler)
        return service

    yield replica
    for scheduler in made:
        scheduler.stop()


# Cards are posted before time moves: the served bot checks request timestamps against its real clock.
def schedule(service: MeetingService, run_id: str, at: datetime) -> None:
    service.schedule(run_id, at, duration_min=30, invitees=[support.BO], agenda="", by=support.ANA, now=T0)


def texts(slack, card, needle: str) -> list[str]:
    return [
        m.get("text", "") for m in slack.thread(card["channel"], card["ts"]) if needle in m.get("text", "")
    ]


def dms_to(slack, user: str, needle: str) -> list[str]:
    return [m.get("text", "") for m in slack.messages.get("D" + user[1:], []) if needle in m.get("text", "")]


def tick(*services: MeetingService) -> None:
    for service in services:
        service.scheduler.campaign_once()  # leaders look at their jobs again, now


def test_two_replicas_send_each_reminder_and_start_once(bot, slack, runs, eventually, replicas) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="exactly-once")
    with time_machine.travel(T0, tick=True) as clock:
        a, b = replicas(), replicas()
        eventually(lambda: a.scheduler.is_leader or b.scheduler.is_leader)
        schedule(b, run_id, T0 + timedelta(hours=1))

        clock.shift(timedelta(minutes=45, seconds=1))
        tick(a, b)
        eventually(lambda: texts(slack, card, "starts in"))
        eventually(lambda: dms_to(slack, support.BO, "starts in"))
        clock.shift(timedelta(minutes=15))
        tick(a, b)
        eventually(lambda: texts(slack, card, "starting now"))
        tick(a, b)
        eventually(lambda: runs.tags(run_id).get("review.meeting_started"))
    assert len(texts(slack, card, "starts in")) == 1
    assert len(texts(slack, card, "starting now")) == 1
    broadcast = [
        c for c in slack.calls_to("chat.postMessage") if c.args.get("reply_broadcast") in (True, "true")
    ]
    assert any(c.args.get("thread_ts") == card["ts"] for c in broadcast)
    assert runs.tags(run_id)["review.meeting_reminded"] == runs.tags(run_id)["review.meeting_at"]


def test_a_reminder_due_while_no_bot_ran_is_sent_late_within_the_grace(
    bot, slack, runs, eventually, replicas
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="late")
    with time_machine.travel(T0, tick=True) as clock:
        first = replicas()
        eventually(lambda: first.scheduler.is_leader)
        schedule(first, run_id, T0 + timedelta(hours=1))
        first.scheduler.stop()  # no bot running when the reminder falls due
        clock.shift(timedelta(minutes=45 + 10))  # 10 minutes late, within the 30-minute grace
        later = replicas()
        eventually(lambda: later.scheduler.is_leader)
        tick(later)
        eventually(lambda: texts(slack, card, "starts in"))
    assert texts(slack, card, "was missed") == []


def test_jobs_missed_beyond_the_grace_are_reported_not_dropped(
    bot, slack, runs, eventually, replicas
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="missed")
    with time_machine.travel(T0, tick=True) as clock:
        first = replicas()
        eventually(lambda: first.scheduler.is_leader)
        schedule(first, run_id, T0 + timedelta(hours=1))
        first.scheduler.stop()
        clock.shift(timedelta(hours=3))
        later = replicas()
        eventually(lambda: later.scheduler.is_leader)
        tick(later)
        eventually(lambda: len(texts(slack, card, "was missed")) == 2)
    assert texts(slack, card, "starts in") == [] and texts(slack, card, "starting now") == []


def test_after_redis_is_flushed_the_jobs_are_rebuilt_from_mlflow(
    bot, slack, runs, eventually, replicas, redis_url
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="rebuilt")
    with time_machine.travel(T0, tick=True) as clock:
        first = replicas()
        eventually(lambda: first.scheduler.is_leader)
        schedule(first, run_id, T0 + timedelta(hours=2))
        first.scheduler.stop()
        redis.Redis.from_url(redis_url).flushall()
        later = replicas()
        eventually(lambda: later.scheduler.is_leader)
        assert later.scheduler.scheduled("start", run_id) == T0 + timedelta(hours=2)
        clock.shift(timedelta(hours=1, minutes=45, seconds=1))
        tick(later)
        eventually(lambda: texts(slack, card, "starts in"))
    assert len(texts(slack, card, "starts in")) == 1


def test_mlflow_down_when_a_reminder_falls_due_is_retried_until_it_goes_out(
    bot, slack, runs, eventually, replicas, mlflow_server
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="retried")
    with time_machine.travel(T0, tick=True) as clock:
        service = replicas()
        eventually(lambda: service.scheduler.is_leader)
        schedule(service, run_id, T0 + timedelta(hours=1))
        working = service.runs, service.records
        down = connect(f"http://127.0.0.1:{support.free_port()}", timeout_seconds=1, retries=0)
        service.runs, service.records = down.runs, down.records
        clock.shift(timedelta(minutes=45, seconds=1))
        tick(service)
        eventually(lambda: service.scheduler.scheduled("retry-reminder", run_id))  # failed: tried again later
        assert texts(slack, card, "starts in") == []
        service.runs, service.records = working  # MLflow is back
        clock.shift(timedelta(minutes=1, seconds=1))
        tick(service)
        eventually(lambda: texts(slack, card, "starts in"))
    assert len(texts(slack, card, "starts in")) == 1 and texts(slack, card, "was missed") == []
