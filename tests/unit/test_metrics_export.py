"""Unit tests for bot.metrics_export and the /metrics and /readyz routes of bot.web, called directly.

The metrics are process-wide (prometheus_client's default registry), so each test reads how much a
sample grew, never its absolute value."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot import metrics_export as m
from bot.meetings.service import JOB_KINDS
from bot.nudges.service import DIGEST
from bot.web import EVENTS_PATH, METRICS_PATH, READY_PATH, count_requests, create_health_app

REVIEW_ID = "0123456789abcdef0123456789abcdef"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Growth:
    """How much samples grew between `Growth(...)` and `.of(...)`."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.before = {
            (name, tuple(sorted(labels.items()))): sample(name, **labels) for name, labels in samples
        }

    def of(self, name: str, **labels: str) -> float:
        return sample(name, **labels) - self.before[(name, tuple(sorted(labels.items())))]


# --- which work is which ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "text", "kind"),
    [
        ("run_review_command", REVIEW_ID, m.CARD),
        ("run_review_command", f"{REVIEW_ID} --baseline {'f' * 32}", m.CARD),
        ("run_review_command", f"compare {REVIEW_ID} {'f' * 32}", "compare"),
        ("run_review_command", "leaderboard iris", "compare"),
        ("run_review_command", f"schedule {REVIEW_ID} tomorrow 3pm", m.MEETING),
        ("run_review_command", "agenda", m.MEETING),
        ("run_review_command", "help", None),  # answered in the ack: no work to time
        ("run_review_command", "not a run at all", None),
        ("review_on_mention", "", m.CARD),
        ("record_votes", "", m.VOTE),
        ("record_reaction_votes", "", m.VOTE),
        ("cancel_meeting", "", m.MEETING),
        ("snooze", "", m.NUDGE),
        ("a_listener_added_later", "", m.OTHER),
    ],
)
def test_lazy_work_kind(function: str, text: str, kind: str | None) -> None:
    assert m.lazy_work_kind(function, {"text": text}) == kind


def test_every_lazy_listener_of_the_handlers_has_a_kind() -> None:
    from slack_bolt import App

    from handlers import actions, commands, events, home, nudges, unfurls, views

    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    for module in (actions, commands, events, home, nudges, unfurls, views):
        module.register(app)
    names = {f.__name__ for listener in app._listeners for f in listener.lazy_functions}
    assert names, "no lazy listeners found: did bolt rename App._listeners?"
    assert names <= set(m.LAZY_WORK_KINDS), names - set(m.LAZY_WORK_KINDS)


def test_job_kinds_match_the_services() -> None:
    assert m.JOB_WORK_KINDS == {DIGEST: m.NUDGE}
    assert not set(JOB_KINDS) & set(m.JOB_WORK_KINDS)  # every meeting job is a "meeting job"


# --- timing and failures ------------------------------------------------------------------------------


def test_timed_work_observes_its_duration_and_no_failure() -> None:
    grew = Growth(
        ("review_bot_work_seconds_count", {"kind": "t-ok"}),
        ("review_bot_work_failures_total", {"kind": "t-ok"}),
    )
    with m.timed_work("t-ok"):
        logging.getLogger("test").warning("a warning is not a failure")
    assert grew.of("review_bot_work_seconds_count", kind="t-ok") == 1
    assert grew.of("review_bot_work_failures_total", kind="t-ok") == 0


def test_work_that_raises_failed_and_the_error_still_raises() -> None:
    grew = Growth(("review_bot_work_failures_total", {"kind": "t-raise"}))
    with pytest.raises(ValueError), m.timed_work("t-raise"):
        raise ValueError("boom")
    assert grew.of("review_bot_work_failures_total", kind="t-raise") == 1


def test_an_error_logged_during_work_fails_it_and_its_enclosing_work() -> None:
    m._watch_error_logs()
    grew = Growth(
        ("review_bot_work_failures_total", {"kind": "t-outer"}),
        ("review_bot_work_failures_total", {"kind": "t-inner"}),
        ("review_bot_work_failures_total", {"kind": "t-after"}),
    )
    with m.timed_work("t-outer"), m.timed_work("t-inner"):
        logging.getLogger("test").error("the thread could not be posted")
    with m.timed_work("t-after"):  # the failure does not leak into the next work
        pass
    logging.getLogger("test").error("outside any work: counted nowhere")
    assert grew.of("review_bot_work_failures_total", kind="t-outer") == 1
    assert grew.of("review_bot_work_failures_total", kind="t-inner") == 1
    assert grew.of("review_bot_work_failures_total", kind="t-after") == 0


def test_an_error_on_another_thread_does_not_fail_this_work() -> None:
    m._watch_error_logs()
    grew = Growth(("review_bot_work_failures_total", {"kind": "t-other-thread"}))
    with m.timed_work("t-other-thread"):
        worker = threading.Thread(target=lambda: logging.getLogger("test").error("someone else's"))
        worker.start()
        worker.join()
    assert grew.of("review_bot_work_failures_total", kind="t-other-thread") == 0


class _Inline(Executor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _command_request(text: str) -> BoltRequest:
    return BoltRequest(body=f"command=%2Freview&text={text}&user_id=U1&channel_id=C1", headers={})


def test_the_lazy_runner_times_a_review_and_injects_the_listener_arguments() -> None:
    runner = m.TimedLazyListenerRunner(logging.getLogger("test"), _Inline())
    seen: list[str] = []

    def run_review_command(command: dict[str, Any]) -> None:
        seen.append(command["text"])

    grew = Growth(("review_bot_work_seconds_count", {"kind": m.CARD}))
    runner.start(run_review_command, _command_request(REVIEW_ID))
    assert seen == [REVIEW_ID]
    assert grew.of("review_bot_work_seconds_count", kind=m.CARD) == 1


def test_the_lazy_runner_counts_a_listener_that_raised_and_logs_it_as_bolt_does(caplog) -> None:
    runner = m.TimedLazyListenerRunner(logging.getLogger("test.bolt"), _Inline())

    def record_votes(body: dict[str, Any]) -> None:
        raise RuntimeError("MLflow said no")

    grew = Growth(("review_bot_work_failures_total", {"kind": m.VOTE}))
    with caplog.at_level(logging.ERROR, "test.bolt"):
        runner.start(record_votes, _command_request("x"))
    assert grew.of("review_bot_work_failures_total", kind=m.VOTE) == 1
    assert "Failed to run an internal function (MLflow said no)" in caplog.text


def test_instrument_app_replaces_bolts_lazy_runner_once_and_counts_its_client() -> None:
    from slack_bolt import App

    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    m.instrument_app(app)
    runner = app.listener_runner.lazy_listener_runner
    m.instrument_app(app)
    assert isinstance(runner, m.TimedLazyListenerRunner)
    assert app.listener_runner.lazy_listener_runner is runner
    assert [type(h) for h in app.client.retry_handlers].count(m.SlackCallCounter) == 1


class _FakeScheduler:
    def __init__(self) -> None:
        self.kinds: dict[str, Callable[[str, str], None]] = {}
        self.is_leader = False

    def register(self, kinds: tuple[str, ...], run: Callable[[str, str], None], missed: Any) -> None:
        for kind in kinds:
            self.kinds[kind] = run


def test_scheduler_jobs_are_timed_by_kind_and_leadership_is_read_at_scrape() -> None:
    scheduler = _FakeScheduler()
    m.instrument_scheduler(scheduler)  # type: ignore[arg-type]
    ran: list[tuple[str, str]] = []
    scheduler.register((DIGEST,), lambda kind, subject: ran.append((kind, subject)), None)
    scheduler.register(JOB_KINDS, lambda kind, subject: ran.append((kind, subject)), None)
    grew = Growth(
        ("review_bot_work_seconds_count", {"kind": m.NUDGE}),
        ("review_bot_work_seconds_count", {"kind": m.MEETING_JOB}),
    )
    scheduler.kinds[DIGEST](DIGEST, "registry")
    scheduler.kinds[JOB_KINDS[0]](JOB_KINDS[0], "run1")
    assert ran == [(DIGEST, "registry"), (JOB_KINDS[0], "run1")]
    assert grew.of("review_bot_work_seconds_count", kind=m.NUDGE) == 1
    assert grew.of("review_bot_work_seconds_count", kind=m.MEETING_JOB) == 1

    m.render()
    assert sample("review_bot_scheduler_leader") == 0
    scheduler.is_leader = True
    m.render()
    assert sample("review_bot_scheduler_leader") == 1


# --- Slack and MLflow ---------------------------------------------------------------------------------


def _slack_response(status: int) -> HttpResponse:
    return HttpResponse(status_code=status, headers={"retry-after": ["1"]} if status == 429 else {})


def test_slack_call_counter_counts_every_answer_and_429s_and_never_retries() -> None:
    counter = m.SlackCallCounter()
    request = HttpRequest(method="POST", url="https://slack.com/api/chat.postMessage", headers={})
    grew = Growth(
        ("review_bot_slack_api_requests_total", {"method": "chat.postMessage", "status": "200"}),
        ("review_bot_slack_api_requests_total", {"method": "chat.postMessage", "status": "429"}),
        ("review_bot_slack_api_requests_total", {"method": "chat.postMessage", "status": "error"}),
        ("review_bot_slack_rate_limited_total", {"method": "chat.postMessage"}),
    )
    for response in (_slack_response(429), _slack_response(200), None):
        assert counter.can_retry(state=RetryState(), request=request, response=response) is False
    assert grew.of("review_bot_slack_api_requests_total", method="chat.postMessage", status="200") == 1
    assert grew.of("review_bot_slack_api_requests_total", method="chat.postMessage", status="429") == 1
    assert grew.of("review_bot_slack_api_requests_total", method="chat.postMessage", status="error") == 1
    assert grew.of("review_bot_slack_rate_limited_total", method="chat.postMessage") == 1


def test_count_slack_calls_goes_first_once_and_keeps_the_retry_handlers() -> None:
    rate_limit = RateLimitErrorRetryHandler(max_retry_count=3)
    client = WebClient(token="xoxb-test", retry_handlers=[rate_limit])
    m.count_slack_calls(client)
    m.count_slack_calls(client)
    assert [type(h) for h in client.retry_handlers] == [m.SlackCallCounter, RateLimitErrorRetryHandler]


def test_mlflow_calls_are_timed_and_errors_counted_by_class() -> None:
    from bot.errors import MlflowUnavailable, NotFound
    from bot.mlflow.client import Mlflow

    mlflow = Mlflow("http://127.0.0.1:9")  # never contacted: the calls below are plain functions
    grew = Growth(
        ("review_bot_mlflow_call_seconds_count", {}),
        ("review_bot_mlflow_errors_total", {"error": "MlflowUnavailable"}),
        ("review_bot_mlflow_errors_total", {"error": "NotFound"}),
    )
    assert mlflow.call("a run", lambda: 42) == 42

    def refused() -> None:
        raise OSError("connection refused")

    def missing() -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        raise MlflowException("no such run", error_code=RESOURCE_DOES_NOT_EXIST)

    with pytest.raises(MlflowUnavailable):
        mlflow.call("a run", refused)
    with pytest.raises(NotFound):
        mlflow.call("a run", missing)
    assert grew.of("review_bot_mlflow_call_seconds_count") == 3
    assert grew.of("review_bot_mlflow_errors_total", error="MlflowUnavailable") == 1
    assert grew.of("review_bot_mlflow_errors_total", error="NotFound") == 1


# --- readiness ----------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_readiness_is_kept_for_its_ttl_then_checked_again() -> None:
    clock = _Clock()
    answers = [{"mlflow": "ok", "redis": "ok"}, {"mlflow": "unreachable: ConnectionError", "redis": "ok"}]
    calls: list[int] = []

    def health() -> dict[str, str]:
        calls.append(1)
        return answers[len(calls) - 1]

    readiness = m.Readiness(health, ttl=3.0, clock=clock)
    assert readiness.check().ready
    clock.now += 2.9
    assert readiness.check().ready and len(calls) == 1
    assert sample("review_bot_dependency_up", dependency="mlflow") == 1
    clock.now += 0.2
    state = readiness.check()
    assert len(calls) == 2
    assert not state.ready
    assert state.reason == "mlflow unreachable: ConnectionError"
    assert sample("review_bot_dependency_up", dependency="mlflow") == 0
    assert sample("review_bot_dependency_up", dependency="redis") == 1


@pytest.mark.parametrize(
    ("state", "up"),
    [
        ("ok", True),
        ("in-process (single replica only)", True),
        ("unauthorized: MLflow refused the bot's credentials (HTTP 401)", True),
        ("read-only: the bot's MLflow account may not write", True),
        ("unreachable: ConnectionError", False),
    ],
)
def test_only_unreachable_is_down(state: str, up: bool) -> None:
    assert m.is_up(state) is up


def test_a_probe_during_a_slow_check_gets_the_last_answer_at_once() -> None:
    clock = _Clock()
    release = threading.Event()
    entered = threading.Event()
    calls: list[int] = []

    def health() -> dict[str, str]:
        calls.append(1)
        if len(calls) == 2:
            entered.set()
            release.wait(5)
        return {"mlflow": "ok"}

    readiness = m.Readiness(health, ttl=3.0, clock=clock)
    readiness.check()
    clock.now += 10
    slow = threading.Thread(target=readiness.check)
    slow.start()
    assert entered.wait(5)
    assert readiness.check().ready  # the stale answer, without waiting for the check in flight
    release.set()
    slow.join()
    assert len(calls) == 2


# --- the routes ---------------------------------------------------------------------------------------


class _Response:
    def __init__(self) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}

    def __call__(self, status: str, headers: list[tuple[str, str]], *exc_info: Any) -> None:
        self.status = status
        self.headers = dict(headers)


def _get(app: Callable[..., Any], path: str, method: str = "GET") -> tuple[_Response, bytes]:
    response = _Response()
    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": method}, response))
    return response, body


def test_readyz_is_200_when_both_answer_and_503_with_the_reason_when_not() -> None:
    states = {"mlflow": "ok", "redis": "ok"}
    app = create_health_app(lambda: dict(states), readiness=m.Readiness(lambda: dict(states), ttl=0))
    response, body = _get(app, READY_PATH)
    assert response.status == "200 OK"
    assert json.loads(body) == {"status": "ready", "mlflow": "ok", "redis": "ok"}
    states["redis"] = "unreachable: ConnectionError: Error 111"
    response, body = _get(app, READY_PATH)
    assert response.status == "503 Service Unavailable"
    assert json.loads(body) == {
        "status": "not ready",
        "mlflow": "ok",
        "redis": "unreachable: ConnectionError: Error 111",
        "reason": "redis unreachable: ConnectionError: Error 111",
    }


def test_metrics_is_prometheus_text_that_counts_requests_by_endpoint_and_status() -> None:
    app = create_health_app(lambda: {"mlflow": "ok", "redis": "ok"})
    grew = Growth(
        ("review_bot_http_requests_total", {"endpoint": READY_PATH, "status": "200"}),
        ("review_bot_http_requests_total", {"endpoint": "other", "status": "404"}),
    )
    _get(app, READY_PATH)
    _get(app, "/wp-admin")  # unknown paths share one label, so scanners cannot grow the series
    response, body = _get(app, METRICS_PATH)
    assert response.status == "200 OK"
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in (
        "review_bot_http_requests",
        "review_bot_slack_ack_seconds",
        "review_bot_work_seconds",
        "review_bot_mlflow_call_seconds",
        "review_bot_slack_api_requests",
        "review_bot_votes_recorded",
        "review_bot_scheduler_leader",
        "review_bot_dependency_up",
    ):
        assert name in families, name
    assert grew.of("review_bot_http_requests_total", endpoint=READY_PATH, status="200") == 1
    assert grew.of("review_bot_http_requests_total", endpoint="other", status="404") == 1
    up = {s.labels["dependency"]: s.value for s in families["review_bot_dependency_up"].samples}
    assert up == {"mlflow": 1.0, "redis": 1.0}


def test_the_ack_is_timed_for_answered_slack_requests_not_for_refused_ones() -> None:
    def slack(status: str) -> Callable[..., Any]:
        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response(status, [])
            return [b""]

        return count_requests(wsgi)

    grew = Growth(
        ("review_bot_slack_ack_seconds_count", {}),
        ("review_bot_http_requests_total", {"endpoint": EVENTS_PATH, "status": "401"}),
        ("review_bot_http_requests_total", {"endpoint": EVENTS_PATH, "status": "200"}),
    )
    _get(slack("200 OK"), EVENTS_PATH, "POST")
    _get(slack("401 Unauthorized"), EVENTS_PATH, "POST")
    assert grew.of("review_bot_slack_ack_seconds_count") == 1
    assert grew.of("review_bot_http_requests_total", endpoint=EVENTS_PATH, status="401") == 1
    assert grew.of("review_bot_http_requests_total", endpoint=EVENTS_PATH, status="200") == 1


def test_a_request_that_raises_is_counted_as_500() -> None:
    def broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("bug")

    grew = Growth(("review_bot_http_requests_total", {"endpoint": EVENTS_PATH, "status": "500"}))
    with pytest.raises(RuntimeError):
        _get(count_requests(broken), EVENTS_PATH, "POST")
    assert grew.of("review_bot_http_requests_total", endpoint=EVENTS_PATH, status="500") == 1


# --- several worker processes -------------------------------------------------------------------------

_WORKER = """
import sys
from bot import metrics_export as m
m.VOTES_RECORDED.inc(int(sys.argv[1]))
m.SCHEDULER_LEADER.set(int(sys.argv[2]))
print("counted", flush=True)
sys.stdin.read()  # alive until told to exit
"""
_SCRAPER = """
import sys
from bot import metrics_export as m
sys.stdout.write(m.render()[0].decode())
"""


def _scrape(env: dict[str, str], root: Path) -> dict[str, float]:
    text = subprocess.run(
        [sys.executable, "-c", _SCRAPER], env=env, cwd=root, check=True, capture_output=True, text=True
    ).stdout
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def test_with_a_multiprocess_dir_a_scrape_sums_every_workers_samples(tmp_path: Path) -> None:
    env = {**os.environ, m.MULTIPROC_ENV: str(tmp_path)}
    root = Path(__file__).parents[2]
    workers = []
    try:
        for votes, leads in ((2, 0), (3, 1)):  # two workers, the second one leading
            worker = subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(votes), str(leads)],
                env=env,
                cwd=root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            workers.append(worker)
            assert worker.stdout is not None and worker.stdout.readline().strip() == "counted"
        alive = _scrape(env, root)  # a third process answers the scrape
        assert alive["review_bot_votes_recorded_total"] == 5
        assert alive["review_bot_scheduler_leader"] == 1
    finally:
        for worker in workers:
            worker.communicate("", timeout=30)
    gone = _scrape(env, root)
    assert gone["review_bot_votes_recorded_total"] == 5  # counters outlive their worker
    assert gone["review_bot_scheduler_leader"] == 0  # a dead worker's leadership is not shown
