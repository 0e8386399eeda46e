"""Named jobs that run exactly once across replicas: APScheduler 3 with its Redis job store, and one
leader at a time.

Every replica starts a *paused* scheduler, so any of them can add or remove jobs (they go straight
to Redis), but only the replica holding the leader lock processes them. The lock expires after
`lock_ttl` seconds; the leader renews it every third of that, and when it dies another replica takes
over within `lock_ttl`. A job that fell due while no leader ran is run late if within
`misfire_grace` and otherwise reported to `on_missed`: nothing is dropped silently.

A replica shutting down (`stop`) starts no more jobs, lets those running finish (within a bound) and
then releases the lock at once; followers try for it every second, so one of them leads within about a
second of the release instead of waiting out the lock's expiry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from redis.connection import parse_url

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "review-bot"
FOLLOWER_POLL_SECONDS = 1.0  # how often a follower tries for the leader lock (one SET NX on Redis)

JobHandler = Callable[[str, str], None]  # (kind, subject) -> None
MissedHandler = Callable[[str, str, datetime], None]  # (kind, subject, when it was due)

# APScheduler stores a job as a textual reference to a module-level function plus its arguments, so
# the job can run in whichever replica leads. That function finds this process's scheduler here.
_schedulers: dict[str, LeaderScheduler] = {}


def run_job(scheduler_name: str, kind: str, subject: str) -> None:
    scheduler = _schedulers.get(scheduler_name)
    if scheduler is None:
        raise RuntimeError(f"no scheduler named {scheduler_name!r} in this process")
    scheduler.dispatch(kind, subject)


def job_id(kind: str, subject: str) -> str:
    return f"{kind}:{subject}"


class _TolerantScheduler(BackgroundScheduler):
    """APScheduler's BackgroundScheduler, except that a job removed between the moment the scheduler
    read it as due and the moment it removes or updates it (a date job that ran is removed; a cron
    job is rescheduled) no longer kills the scheduler's thread. That happens when the job's own
    handler, a `cancel`, or another replica during a leadership hand-over removed it first: the
    JobLookupError it raised escaped `_process_jobs` and ended the thread, so no job ran again in
    this process. The job is gone either way, which is what everyone wanted; the pass is run again
    for the jobs it had not reached."""

    def _process_jobs(self) -> float | None:
        try:
            return super()._process_jobs()
        except JobLookupError as exc:
            log.info("a job was removed while the scheduler processed it (%s); looking again", exc)
            return 0


class LeaderScheduler:
    """One scheduler per process, shared by the services that own jobs: each registers the kinds of
    job it runs (`register`) and what to do on becoming leader (`on_leader`)."""

    def __init__(
        self,
        name: str,
        *,
        redis_url: str | None,
        misfire_grace_seconds: int,
        lock_ttl_seconds: int = 30,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.name = name
        self.identity = uuid.uuid4().hex
        self.lock_ttl = lock_ttl_seconds
        self._kinds: dict[str, tuple[JobHandler, MissedHandler]] = {}
        self._leader_hooks: list[Callable[[], None]] = []
        _schedulers[name] = self
        if redis_url:
            params = parse_url(redis_url)
            jobstore: Any = RedisJobStore(
                jobs_key=f"{namespace}:scheduler:jobs",
                run_times_key=f"{namespace}:scheduler:run_times",
                **params,
            )
            self._redis: redis.Redis | None = redis.Redis.from_url(redis_url, socket_timeout=5)
        else:
            jobstore = MemoryJobStore()
            self._redis = None
        self.scheduler = _TolerantScheduler(
            jobstores={"default": jobstore},
            job_defaults={"misfire_grace_time": misfire_grace_seconds, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self._leader_key = f"{namespace}:scheduler:leader"
        self._lock: Any = None
        self._leading = threading.Event()
        self._stopping = threading.Event()
        self._running = 0  # jobs of this process running now (stop lets them finish)
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._campaign, name=f"{name}-leader", daemon=True)

    def register(self, kinds: tuple[str, ...], run: JobHandler, missed: MissedHandler) -> None:
        """`run` runs the jobs of these kinds; `missed` hears of those that fell due past the grace."""
        for kind in kinds:
            self._kinds[kind] = (run, missed)

    def on_leader(self, hook: Callable[[], None]) -> None:
        """Run `hook` each time this replica becomes leader, before it runs any job (rebuild jobs)."""
        self._leader_hooks.append(hook)

    def dispatch(self, kind: str, subject: str) -> None:
        if kind not in self._kinds:
            raise RuntimeError(f"no handler for {kind!r} jobs in scheduler {self.name!r}")
        with self._idle:
            self._running += 1
        try:
            self._kinds[kind][0](kind, subject)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    @property
    def running_jobs(self) -> int:
        return self._running

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def start(self) -> None:
        self.scheduler.start(paused=True)
        self._thread.start()

    def stop(self, grace_seconds: float = 0.0) -> bool:
        """Start no more jobs, let the running ones finish for up to `grace_seconds` (the lock is kept
        meanwhile, so no other replica runs them again), then give up leadership at once: another
        replica need not wait for the lock to expire. False when jobs were still running at the end."""
        if self._stopping.is_set():
            return True
        self._stopping.set()
        if self._thread.is_alive():  # it may be becoming leader: let it finish before pausing
            self._thread.join(timeout=self.lock_ttl)
        if self.scheduler.running:
            self.scheduler.pause()
        finished = self._wait_for_running_jobs(grace_seconds)
        if not finished:
            log.warning(
                "%d scheduler job(s) still running after %.0f s: leadership released anyway",
                self._running,
                grace_seconds,
            )
        if self.is_leader:
            log.info("this replica no longer runs the scheduler: leadership released")
        self._step_down()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        return finished

    def _wait_for_running_jobs(self, grace_seconds: float) -> bool:
        deadline = time.monotonic() + grace_seconds
        renew_every = max(1.0, self.lock_ttl / 3)
        with self._idle:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, renew_every))
                if self._running and self._lock is not None:
                    with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
                        self._lock.reacquire()  # still ours while the job finishes
        return True

    # --- jobs ------------------------------------------------------------------------------------

    def schedule(self, kind: str, subject: str, at: datetime) -> None:
        """Run `kind` for `subject` once at `at`, replacing an earlier job of that kind and subject."""
        self.scheduler.add_job(
            run_job,
            "date",
            run_date=at,
            args=[self.name, kind, subject],
            id=job_id(kind, subject),
            replace_existing=True,
        )
        self.scheduler.wakeup()

    def schedule_cron(self, kind: str, subject: str, crontab: str, timezone: str) -> None:
        """Run `kind` for `subject` on a crontab schedule in `timezone` (replacing an earlier one)."""
        self.scheduler.add_job(
            run_job,
            CronTrigger.from_crontab(crontab, timezone=ZoneInfo(timezone)),
            args=[self.name, kind, subject],
            id=job_id(kind, subject),
            replace_existing=True,
        )
        self.scheduler.wakeup()

    def cancel(self, kind: str, subject: str) -> bool:
        try:
            self.scheduler.remove_job(job_id(kind, subject))
        except JobLookupError:
            return False
        return True

    def scheduled(self, kind: str, subject: str) -> datetime | None:
        job = self.scheduler.get_job(job_id(kind, subject))
        return job.next_run_time if job else None

    def _missed(self, event: JobExecutionEvent) -> None:
        job_kind, _, subject = event.job_id.partition(":")
        try:
            if job_kind not in self._kinds:
                raise RuntimeError(f"no handler for {job_kind!r} jobs")
            self._kinds[job_kind][1](job_kind, subject, event.scheduled_run_time)
        except Exception:  # a listener must not kill the scheduler thread
            log.exception("reporting the missed job %s failed", event.job_id)

    # --- leadership ------------------------------------------------------------------------------

    def campaign_once(self) -> bool:
        """Take or keep the leader lock; returns whether this replica leads now."""
        if self._redis is None:  # one process: it leads
            if not self.is_leader:
                self._become_leader()
            return True
        try:
            if self._lock is not None:
                self._lock.reacquire()
            else:
                lock = self._redis.lock(self._leader_key, timeout=self.lock_ttl, thread_local=False)
                if lock.acquire(blocking=False):
                    self._lock = lock
                    self._become_leader()
        except (redis.exceptions.LockError, redis.RedisError) as exc:
            log.warning("scheduler leadership lost: %s", exc)
            self._step_down()
        if self.is_leader:
            self.scheduler.wakeup()  # jobs other replicas added are only seen when it looks again
        return self.is_leader

    def _become_leader(self) -> None:
        log.info("this replica holds the scheduler's lock: rebuilding jobs")
        for hook in self._leader_hooks:
            try:
                hook()
            except Exception:  # one service's rebuild failing must not keep the others' jobs from running
                log.exception("a job rebuild on becoming leader failed")
        self.scheduler.resume()
        self._leading.set()  # only now: whoever waits for a leader finds its jobs rebuilt
        log.info("this replica now runs the scheduler")  # after the rebuild: its jobs can run from here

    def _step_down(self) -> None:
        if self.is_leader:
            self.scheduler.pause()
            self._leading.clear()
        if self._lock is not None:
            with contextlib.suppress(redis.exceptions.LockError):  # expired already: nothing to free
                self._lock.release()
            self._lock = None

    def _campaign(self) -> None:
        while not self._stopping.is_set():
            leading = self.campaign_once()
            # The leader renews every third of the TTL; a follower asks every second, so a lock
            # released by a replica shutting down is taken at once rather than after its expiry.
            self._stopping.wait(max(1.0, self.lock_ttl / 3) if leading else FOLLOWER_POLL_SECONDS)
