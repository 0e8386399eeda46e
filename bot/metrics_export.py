"""What GET /metrics shows Prometheus about this process, and the few hooks that feed it.

(Not `bot/metrics/`: that package is about the *ML* metrics of the runs under review.)

- HTTP requests by endpoint and status, and the ack latency of /slack/events (bot.web counts them);
- background work by kind, its duration and failures: the lazy listeners bolt runs after the ack
  (`instrument_app` puts a timed lazy runner into the App), the thread under a card and its charts
  (bot.slack.outbox), the scheduler's meeting jobs and nudge digest (`instrument_scheduler`);
- MLflow calls, their latency and errors by class (bot.mlflow.client), Slack Web API requests and 429s
  by method (`count_slack_calls`: a retry handler that sees every response), votes recorded
  (bot.mlflow.records);
- read at scrape time: scheduler leadership and whether MLflow and Redis answer (the /readyz result).

A failure is work that raised, or logged at ERROR while it ran (the handlers catch what they can and log
it with an error id, so "raised" alone would count almost nothing), or that says so (`work_failed`).

Several worker processes (WEB_CONCURRENCY > 1): set PROMETHEUS_MULTIPROC_DIR to an empty directory
shared by the workers (an `emptyDir` in Kubernetes) before the server starts; every worker then writes
its samples there and the worker that answers a scrape sums them up (prometheus_client's
MultiProcessCollector). Without it a scrape shows only the worker that happened to answer.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from slack_bolt.kwargs_injection import build_required_kwargs
from slack_bolt.lazy_listener.thread_runner import ThreadLazyListenerRunner
from slack_bolt.util.utils import get_arg_names_of_callable, get_name_for_callable
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.commands import (
    AgendaCommand,
    CompareCommand,
    LeaderboardCommand,
    ReviewCommand,
    ScheduleCommand,
    parse_command,
)
from bot.errors import BadReference

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.request import BoltRequest
    from slack_sdk import WebClient

    from bot.scheduler import LeaderScheduler

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP_429 = 429

# Work kinds (the label `kind`): a /review's lazy work posts the `card` and completes it, then fills its
# `thread`, in which each `chart` is drawn and uploaded (so a card's time includes its thread's).
CARD, THREAD, CHART, VOTE, MEETING, MEETING_JOB, NUDGE = (
    "card",
    "thread",
    "chart",
    "vote",
    "meeting",
    "meeting job",
    "nudge",
)
OTHER = "other"
# bolt's lazy listeners (handlers/), by function name. `run_review_command` is split by what was typed.
LAZY_WORK_KINDS = {
    "run_review_command": CARD,
    "review_on_mention": CARD,
    "review_from_leaderboard": CARD,
    "start_review": CARD,  # the nudge's "Start review": posts the version's card
    "review_from_unfurl": CARD,
    "record_votes": VOTE,
    "record_reaction_votes": VOTE,
    "record_home_votes": VOTE,
    "open_schedule_modal": MEETING,
    "schedule": MEETING,
    "cancel_meeting": MEETING,
    "snooze": NUDGE,
    "publish_home": "home",
    "show_page": "home",
    "unfurl_links": "unfurl",
}
COMMAND_WORK_KINDS: dict[type, str] = {
    ReviewCommand: CARD,
    CompareCommand: "compare",
    LeaderboardCommand: "compare",
    ScheduleCommand: MEETING,
    AgendaCommand: MEETING,
}
# The scheduler's job kinds (bot.nudges.service.DIGEST; every other kind is a meeting's reminder or start).
JOB_WORK_KINDS = {"digest": NUDGE}

# Buckets: an ack must be under Slack's 3 s; background work runs from milliseconds to minutes.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
WORK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MLFLOW_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# No `*_created` series: Prometheus' text format does not use them, and they doubled the scrape's size.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "review_bot_http_requests", "HTTP requests answered, by endpoint and status code", ["endpoint", "status"]
)
ACK_SECONDS = Histogram(
    "review_bot_slack_ack_seconds",
    "POST /slack/events: request in to response out, for the requests bolt answered (not the refused)",
    buckets=ACK_BUCKETS,
)
WORK_SECONDS = Histogram(
    "review_bot_work_seconds",
    "Background work after the ack, and scheduler jobs, by kind",
    ["kind"],
    buckets=WORK_BUCKETS,
)
WORK_FAILURES = Counter(
    "review_bot_work_failures", "Background work that raised or logged an error, by kind", ["kind"]
)
MLFLOW_SECONDS = Histogram(
    "review_bot_mlflow_call_seconds",
    "MLflow client calls (MLflow's own retry included)",
    buckets=MLFLOW_BUCKETS,
)
MLFLOW_ERRORS = Counter(
    "review_bot_mlflow_errors",
    "Failed MLflow calls by error class (MlflowUnavailable, NotFound, …)",
    ["error"],
)
SLACK_CALLS = Counter(
    "review_bot_slack_api_requests",
    "Slack Web API HTTP requests (each retry is one) by method and HTTP status ('error': no answer)",
    ["method", "status"],
)
SLACK_RATE_LIMITED = Counter(
    "review_bot_slack_rate_limited",
    "Slack Web API answers 429 (retried after Retry-After), by method",
    ["method"],
)
VOTES_RECORDED = Counter(
    "review_bot_votes_recorded", "Voters' tags written to MLflow (a vote or a withdrawal)"
)
# Read at scrape time; with several processes, `livemax`: 1 when any live worker of this pod leads.
SCHEDULER_LEADER = Gauge(
    "review_bot_scheduler_leader",
    "1 while this replica runs the scheduler's jobs",
    multiprocess_mode="livemax",
)
DEPENDENCY_UP = Gauge(
    "review_bot_dependency_up",
    "1 when the dependency answered the last readiness check (cached a few seconds), else 0",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)


# --- background work ---------------------------------------------------------------------------------


@dataclass(eq=False)  # compared by identity: nested work of one kind is still two
class _Work:
    kind: str
    failed: bool = False


class _Stack(threading.local):
    def __init__(self) -> None:
        self.works: list[_Work] = []


_running = _Stack()


@contextmanager
def timed_work(kind: str) -> Iterator[None]:
    """Time the work in the block as `kind`; it failed if it raised, logged an error or `work_failed()`.
    Nested work (a chart in a thread in a card's work) marks the enclosing work failed too."""
    work = _Work(kind)
    _running.works.append(work)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        work_failed()
        raise
    finally:
        _running.works.remove(work)
        observe_work(kind, time.perf_counter() - started, failed=work.failed)


def observe_work(kind: str, seconds: float, *, failed: bool = False) -> None:
    WORK_SECONDS.labels(kind).observe(seconds)
    if failed:
        WORK_FAILURES.labels(kind).inc()


def work_failed() -> None:
    """The work this thread is running (and the work around it) failed, though nothing was raised."""
    for work in _running.works:
        work.failed = True


class _ErrorsFailWork(logging.Handler):
    """An ERROR logged on a thread that runs timed work marks that work failed."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        work_failed()


def _watch_error_logs() -> None:
    """On the root logger, once (bot.logs configures its handlers first: this one is added after)."""
    root = logging.getLogger()
    if not any(isinstance(h, _ErrorsFailWork) for h in root.handlers):
        root.addHandler(_ErrorsFailWork())


def lazy_work_kind(function_name: str, body: dict[str, Any]) -> str | None:
    """The kind of a lazy listener's work; None for a `/review` whose ack said it all (help, a typo)."""
    if function_name != "run_review_command":
        return LAZY_WORK_KINDS.get(function_name, OTHER)
    try:
        command = parse_command(str(body.get("text", "")))
    except BadReference:
        return None
    return COMMAND_WORK_KINDS.get(type(command))


class TimedLazyListenerRunner(ThreadLazyListenerRunner):
    """bolt's lazy runner (the listener's function on the App's executor), with each run timed."""

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        kind = lazy_work_kind(get_name_for_callable(function), request.body)
        arg_names = get_arg_names_of_callable(function)

        def run() -> None:
            try:
                args = build_required_kwargs(
                    logger=self.logger,
                    required_arg_names=arg_names,
                    request=request,
                    response=None,
                    this_func=function,
                )
                if kind is None:
                    function(**args)
                    return
                with timed_work(kind):
                    function(**args)
            except Exception as exc:  # what bolt's own runner does, after the timing has seen it
                self.logger.error(f"Failed to run an internal function ({exc})")

        self.executor.submit(run)


def instrument_app(app: App) -> None:
    """Time the App's lazy work by kind, and count the Slack calls of its client."""
    runner = app.listener_runner
    lazy = runner.lazy_listener_runner
    if not isinstance(lazy, TimedLazyListenerRunner) and isinstance(lazy, ThreadLazyListenerRunner):
        runner.lazy_listener_runner = TimedLazyListenerRunner(lazy.logger, lazy.executor)
    count_slack_calls(app.client)
    _watch_error_logs()


def instrument_scheduler(scheduler: LeaderScheduler) -> None:
    """Time the jobs of the services that register with `scheduler` from now on (meeting reminders and
    starts, the nudge digest), and show its leadership on /metrics. Call it before they register."""
    register = scheduler.register

    def timed_register(kinds: tuple[str, ...], run: Callable[[str, str], None], missed: Any) -> None:
        def timed_run(kind: str, subject: str) -> None:
            with timed_work(JOB_WORK_KINDS.get(kind, MEETING_JOB)):
                run(kind, subject)

        register(kinds, timed_run, missed)

    scheduler.register = timed_register  # type: ignore[method-assign]
    _Scrape.scheduler = scheduler
    _watch_error_logs()
    if multiprocess_dir():  # other workers answer scrapes: keep this worker's gauge current for them
        threading.Thread(
            target=_refresh_leadership_forever, args=(scheduler,), name="metrics-leadership", daemon=True
        ).start()


def _refresh_leadership_forever(scheduler: LeaderScheduler, interval: float = 5.0) -> None:
    while True:
        SCHEDULER_LEADER.set(1 if scheduler.is_leader else 0)
        time.sleep(interval)


# --- Slack and MLflow --------------------------------------------------------------------------------


class SlackCallCounter(RetryHandler):
    """First of a WebClient's retry handlers: slack_sdk asks each one about every response, 200s
    included, so this sees every HTTP request; it counts and never asks for a retry itself."""

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rsplit("/", 1)[-1].split("?", 1)[0] or "unknown"
        status = response.status_code if response is not None else None
        SLACK_CALLS.labels(method, str(status) if status is not None else "error").inc()
        if status == HTTP_429:
            SLACK_RATE_LIMITED.labels(method).inc()
        return False


def count_slack_calls(client: WebClient) -> None:
    """Count `client`'s Web API requests and 429s (once, however often it is called)."""
    handlers = getattr(client, "retry_handlers", None)  # a test's fake client has none: nothing to count
    if handlers is not None and not any(isinstance(h, SlackCallCounter) for h in handlers):
        handlers.insert(0, SlackCallCounter())


@contextmanager
def timed_mlflow_call() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        MLFLOW_ERRORS.labels(type(exc).__name__).inc()
        raise
    finally:
        MLFLOW_SECONDS.observe(time.perf_counter() - started)


def votes_recorded(count: int) -> None:
    if count:
        VOTES_RECORDED.inc(count)


# --- readiness and the scrape ------------------------------------------------------------------------


def is_up(state: str) -> bool:
    """A dependency state of /healthz: only "unreachable" is down (a refused account is up, and says so
    in Slack: taking every replica out of the Service would only hide that message)."""
    return not state.startswith("unreachable")


@dataclass(frozen=True)
class ReadyState:
    ready: bool
    states: dict[str, str]

    @property
    def reason(self) -> str:
        return "; ".join(f"{name} {state}" for name, state in self.states.items() if not is_up(state))


class Readiness:
    """Whether MLflow and Redis answer, from the health checks behind /healthz, kept `ttl` seconds so
    probes and scrapes do not each cost MLflow a request. One check at a time; callers meanwhile get the
    previous answer (or wait for the first)."""

    def __init__(
        self,
        health: Callable[[], dict[str, str]],
        ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.health = health
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._last: ReadyState | None = None
        self._at = 0.0

    def check(self) -> ReadyState:
        last = self._last
        if last is not None and self.clock() - self._at < self.ttl:
            return last
        if last is not None and not self._lock.acquire(blocking=False):
            return last  # another thread is checking: its answer comes in a moment, this one now
        if last is None:
            self._lock.acquire()
        try:
            if self._last is not None and self.clock() - self._at < self.ttl:
                return self._last
            states = self.health()
            state = ReadyState(all(is_up(s) for s in states.values()), states)
            for name, value in states.items():
                DEPENDENCY_UP.labels(name).set(1 if is_up(value) else 0)
            self._last, self._at = state, self.clock()
            return state
        finally:
            self._lock.release()


class _Scrape:
    scheduler: LeaderScheduler | None = None


def multiprocess_dir() -> str:
    return os.environ.get(MULTIPROC_ENV, "")


def render(readiness: Readiness | None = None) -> tuple[bytes, str]:
    """The exposition text (and its content type), after reading the scrape-time gauges."""
    if _Scrape.scheduler is not None:
        SCHEDULER_LEADER.set(1 if _Scrape.scheduler.is_leader else 0)
    if readiness is not None:
        readiness.check()
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


if multiprocess_dir():  # a worker that exits leaves its live* gauges out of the sums
    atexit.register(multiprocess.mark_process_dead, os.getpid())
