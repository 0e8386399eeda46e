"""LeaderScheduler against a real Redis: one leader, jobs run exactly once, failover, missed jobs.

Time is moved with time-machine (APScheduler reads the clock it patches), never slept through; the
only real waits are for a leader lock to expire in Redis, which time-machine cannot move.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from apscheduler.jobstores.memory import MemoryJobStore

from bot.scheduler import LeaderScheduler

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday
GRACE = 600
KINDS = ("reminder", "start", "digest")


class Recorder:
    def __init__(self) -> None:
        self.ran: list[tuple[str, str, str]] = []
        self.missed: list[tuple[str, str, datetime]] = []
        self.lock = threading.Lock()

    def handler(self, replica: str):  # noqa: ANN201
        def run(kind: str, subject: str) -> None:
            with self.lock:
                self.ran.append((replica, kind, subject))

        return run

    def on_missed(self, kind: str, subject: str, due: datetime) -> None:
        with self.lock:
            self.missed.append((kind, subject, due))


def wait_for(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    done = threading.Event()
    for _ in range(int(timeout * 20)):
        if check():
            return
        done.wait(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def replicas(redis_url: str, namespace: str) -> Iterator[tuple[Recorder, list[LeaderScheduler]]]:
    recorder = Recorder()
    made = [
        LeaderScheduler(
            f"{namespace}-{name}",
            redis_url=redis_url,
            misfire_grace_seconds=GRACE,
            lock_ttl_seconds=2,
            namespace=namespace,
        )
        for name in ("a", "b")
    ]
    for name, replica in zip(("a", "b"), made, strict=True):
        replica.register(KINDS, recorder.handler(name), recorder.on_missed)
        replica.start()
    yield recorder, made
    for replica in made:
        replica.stop()


def test_exactly_one_replica_leads(replicas) -> None:
    _, (a, b) = replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    assert [a.is_leader, b.is_leader].count(True) == 1


def test_a_job_added_by_any_replica_runs_once(replicas) -> None:
    recorder, (a, b) = replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    leader, follower = (a, b) if a.is_leader else (b, a)
    with time_machine.travel(T0, tick=True) as traveller:
        follower.schedule("reminder", "run-1", T0 + timedelta(minutes=15))
        assert leader.scheduled("reminder", "run-1") == T0 + timedelta(minutes=15)
        traveller.shift(timedelta(minutes=15, seconds=1))
        for replica in (a, b):
            replica.campaign_once()
        wait_for(lambda: recorder.ran)
        threading.Event().wait(0.5)  # a second run would come from the other replica right away
    # (In one process both replicas' handlers are registered, so which handler ran says nothing; that
    # it ran once while the follower stayed paused is the point.)
    assert [r[1:] for r in recorder.ran] == [("reminder", "run-1")]
    assert follower.scheduler.state == 2  # STATE_PAUSED
    assert recorder.missed == []


def test_rescheduling_replaces_and_cancel_removes(replicas) -> None:
    recorder, (a, _) = replicas
    with time_machine.travel(T0, tick=True):
        a.schedule("start", "run-2", T0 + timedelta(hours=1))
        a.schedule("start", "run-2", T0 + timedelta(hours=2))
        assert a.scheduled("start", "run-2") == T0 + timedelta(hours=2)
        assert a.cancel("start", "run-2") is True
        assert a.scheduled("start", "run-2") is None and a.cancel("start", "run-2") is False


def test_when_the_leader_dies_another_takes_over_and_runs_the_job(replicas) -> None:
    recorder, (a, b) = replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    leader, follower = (a, b) if a.is_leader else (b, a)
    with time_machine.travel(T0, tick=True) as traveller:
        follower.schedule("start", "run-3", T0 + timedelta(minutes=5))
        # The leader crashes: it stops campaigning and processing, and never releases its lock.
        leader._stopping.set()
        leader.scheduler.pause()
        traveller.shift(timedelta(minutes=5, seconds=1))
        wait_for(lambda: follower.campaign_once(), timeout=10)  # the lock expires after 2 s in Redis
        wait_for(lambda: recorder.ran)
    assert [r[1:] for r in recorder.ran] == [("start", "run-3")]


def test_a_job_due_longer_ago_than_the_grace_is_reported_missed_not_run(replicas) -> None:
    recorder, (a, b) = replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    with time_machine.travel(T0, tick=True) as traveller:
        a.schedule("reminder", "run-4", T0 + timedelta(minutes=10))
        traveller.shift(timedelta(minutes=10, seconds=GRACE + 5))
        for replica in (a, b):
            replica.campaign_once()
        wait_for(lambda: recorder.missed)
    assert recorder.missed == [("reminder", "run-4", T0 + timedelta(minutes=10))]
    assert recorder.ran == []


def test_without_redis_the_only_process_leads() -> None:
    recorder = Recorder()
    solo = LeaderScheduler("solo", redis_url=None, misfire_grace_seconds=60)
    solo.register(KINDS, recorder.handler("solo"), recorder.on_missed)
    solo.start()
    try:
        wait_for(lambda: solo.is_leader)
    finally:
        solo.stop()


def test_a_cron_job_runs_once_per_occurrence_in_its_timezone(replicas) -> None:
    recorder, (a, b) = replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    with time_machine.travel(T0, tick=True) as traveller:  # 09:00 UTC is 10:00 in Berlin
        a.schedule_cron("digest", "registry", "30 10 * * MON-FRI", "Europe/Berlin")
        b.schedule_cron("digest", "registry", "30 10 * * MON-FRI", "Europe/Berlin")  # replaces, not adds
        assert a.scheduled("digest", "registry") == T0 + timedelta(minutes=30)
        traveller.shift(timedelta(minutes=30, seconds=1))
        for replica in (a, b):
            replica.campaign_once()
        wait_for(lambda: recorder.ran)
        threading.Event().wait(0.5)
        assert a.scheduled("digest", "registry") == T0 + timedelta(days=1, minutes=30)  # Wednesday
    assert [r[1:] for r in recorder.ran] == [("digest", "registry")]


def test_a_job_of_a_kind_nobody_registered_is_an_error() -> None:
    solo = LeaderScheduler("unregistered", redis_url=None, misfire_grace_seconds=60)
    with pytest.raises(RuntimeError, match="no handler for 'mystery' jobs"):
        solo.dispatch("mystery", "x")


# --- a job removed while the scheduler processes it; shutting down ---------------------------------


class RemovedWhileProcessed(MemoryJobStore):
    """A job store whose due jobs are removed (once each) right after the scheduler read them: what a
    `cancel`, the job's own handler or another replica during a hand-over does at the wrong moment."""

    def get_due_jobs(self, now):  # noqa: ANN001, ANN201
        due = super().get_due_jobs(now)
        for job in due:
            super().remove_job(job.id)
        return due


def test_a_job_removed_while_processed_does_not_kill_the_scheduler_thread() -> None:
    recorder = Recorder()
    solo = LeaderScheduler("racy", redis_url=None, misfire_grace_seconds=60)
    solo.scheduler.remove_jobstore("default")
    solo.scheduler.add_jobstore(RemovedWhileProcessed(), "default")
    solo.register(KINDS, recorder.handler("solo"), recorder.on_missed)
    solo.start()
    try:
        wait_for(lambda: solo.is_leader)
        solo.schedule("reminder", "run-5", datetime.now(tz=UTC))
        wait_for(lambda: recorder.ran)  # it ran; removing it afterwards raised JobLookupError
        solo.schedule("start", "run-6", datetime.now(tz=UTC))  # the thread is still there to run this
        wait_for(lambda: len(recorder.ran) == 2, timeout=5)
        assert solo.scheduler._thread.is_alive()
    finally:
        solo.stop()
    assert [r[1:] for r in recorder.ran] == [("reminder", "run-5"), ("start", "run-6")]


@pytest.fixture
def slow_lock_replicas(
    redis_url: str, namespace: str
) -> Iterator[tuple[list[LeaderScheduler], threading.Event]]:
    """Two replicas whose lock lasts 30 s: a takeover within seconds can only come from a release. Their
    jobs block until the event is set."""
    release = threading.Event()
    made = [
        LeaderScheduler(
            f"{namespace}-{name}",
            redis_url=redis_url,
            misfire_grace_seconds=GRACE,
            lock_ttl_seconds=30,
            namespace=namespace,
        )
        for name in ("a", "b")
    ]
    for replica in made:
        replica.register(KINDS, lambda kind, subject: release.wait(10), lambda *_: None)
        replica.start()
    yield made, release
    release.set()
    for replica in made:
        replica.stop()


def test_stop_releases_leadership_at_once_so_another_replica_leads_within_seconds(slow_lock_replicas) -> None:
    (a, b), _ = slow_lock_replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    leader, follower = (a, b) if a.is_leader else (b, a)
    started = time.monotonic()
    assert leader.stop(grace_seconds=5) is True  # nothing running: returns at once
    assert not leader.is_leader
    wait_for(lambda: follower.is_leader, timeout=5)
    assert time.monotonic() - started < 3  # a follower asks every second; the lock would last 30 s


def test_stop_lets_a_running_job_finish_before_releasing_the_lock(slow_lock_replicas) -> None:
    (a, b), release = slow_lock_replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    leader, follower = (a, b) if a.is_leader else (b, a)
    leader.schedule("start", "run-7", datetime.now(tz=UTC))
    wait_for(lambda: leader.running_jobs == 1)
    stopped: list[bool] = []
    stopping = threading.Thread(target=lambda: stopped.append(leader.stop(grace_seconds=10)))
    stopping.start()
    threading.Event().wait(1.5)  # the follower asked at least once meanwhile
    assert stopped == [] and not follower.is_leader  # the job still runs: the lock stays held
    release.set()
    stopping.join(timeout=5)
    assert stopped == [True] and leader.running_jobs == 0
    wait_for(lambda: follower.is_leader, timeout=5)


def test_stop_gives_up_waiting_for_a_job_at_the_grace(slow_lock_replicas) -> None:
    (a, b), _ = slow_lock_replicas
    wait_for(lambda: a.is_leader or b.is_leader)
    leader, follower = (a, b) if a.is_leader else (b, a)
    leader.schedule("digest", "registry", datetime.now(tz=UTC))
    wait_for(lambda: leader.running_jobs == 1)
    started = time.monotonic()
    assert leader.stop(grace_seconds=1) is False
    assert 0.9 < time.monotonic() - started < 3
    wait_for(lambda: follower.is_leader, timeout=5)  # released anyway
