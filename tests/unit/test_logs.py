"""Unit tests for bot.logs: secrets never reach a log line, whoever logs them."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.logs import (
    REDACTED,
    RedactSecrets,
    configure_logging,
    create_formatter,
    stamp_request_id,
    strip_credentials,
    url_secrets,
)
from bot.request_ids import (
    ContextThreadPoolExecutor,
    bind_request_id,
    current_request_id,
    new_request_id,
    reset_request_id,
)
from bot.server import LazyWorkPool, drain_lazy_work

BOT_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
APP_TOKEN = "xapp-1-A012345-1234567890-abcdef0123456789"
USER_TOKEN = "xoxp-1111-2222-3333-abcd"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets([SIGNING_SECRET, "", "short"]))
    logger = logging.getLogger(f"test_logs.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_tokens_in_the_message_are_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info(f"token={BOT_TOKEN} app={APP_TOKEN} user={USER_TOKEN}")
    assert stream.getvalue() == f"INFO {logger.name}: token={REDACTED} app={REDACTED} user={REDACTED}\n"


def test_tokens_and_secrets_in_args_are_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.warning(
        "calling %s with %r and secret %s", "chat.postMessage", {"token": BOT_TOKEN}, SIGNING_SECRET
    )
    assert stream.getvalue() == (
        f"WARNING {logger.name}: calling chat.postMessage with {{'token': '{REDACTED}'}} "
        f"and secret {REDACTED}\n"
    )


def test_tokens_in_exception_tracebacks_are_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise RuntimeError(f"auth failed for {BOT_TOKEN} / {SIGNING_SECRET}")
    except RuntimeError:
        logger.exception("request failed")
    output = stream.getvalue()
    assert output.startswith(f"ERROR {logger.name}: request failed\nTraceback (most recent call last):")
    assert f"RuntimeError: auth failed for {REDACTED} / {REDACTED}" in output
    assert "xoxb-" not in output and SIGNING_SECRET not in output


def test_short_and_empty_secrets_are_ignored(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("a short word and nothing else")
    assert stream.getvalue().endswith(": a short word and nothing else\n")


def test_redact_directly() -> None:
    redact = RedactSecrets(["supersecret"]).redact
    assert redact("x supersecret y xoxa-2-abc z") == f"x {REDACTED} y {REDACTED} z"
    assert redact("nothing here: xoxz-1 is not a token") == "nothing here: xoxz-1 is not a token"


def test_a_record_is_still_emitted_to_every_handler(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    second = io.StringIO()
    handler = logging.StreamHandler(second)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        logger.info("token %s", BOT_TOKEN)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().endswith(f"token {REDACTED}\n")
    # The filter rewrote the record, so a handler after it sees the redacted text too.
    assert second.getvalue() == f"token {REDACTED}\n"


def test_a_malformed_logging_call_does_not_raise(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.warning("token %s and %s", BOT_TOKEN)
    assert stream.getvalue() == f"WARNING {logger.name}: token %s and %s ('{REDACTED}',)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:password@mlflow:5000", "http://mlflow:5000"),
        (
            "MLflow at `https://bot:p@ss@mlflow.example.com/` did",
            "MLflow at `https://mlflow.example.com/` did",
        ),
        ("<https://token@host/x|link>", "<https://host/x|link>"),
        ("redis://:pw@redis:6379/0", "redis://redis:6379/0"),
        ("http://host/path?email=a@b.c", "http://host/path?email=a@b.c"),
        ("write to ana@example.com", "write to ana@example.com"),
    ],
)
def test_strip_credentials_takes_the_user_part_out_of_every_url(text: str, expected: str) -> None:
    assert strip_credentials(text) == expected


def test_url_secrets_are_redacted_even_outside_a_url() -> None:
    [secret] = url_secrets("http://bot:hunter2-long@mlflow:5000")
    assert RedactSecrets([secret]).redact("password hunter2-long, and http://bot:hunter2-long@mlflow") == (
        f"password {REDACTED}, and http://mlflow"
    )


# --- LOG_FORMAT=json and the request id ------------------------------------------------------------


@pytest.fixture
def json_logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A handler as configure_logging builds it for LOG_FORMAT=json (redaction, request id, JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(create_formatter("json"))
    handler.addFilter(RedactSecrets([SIGNING_SECRET]))
    handler.addFilter(stamp_request_id)
    logger = logging.getLogger(f"test_logs.json.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def lines_of(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_request_id_bound_at_the_time(
    json_logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logged
    logger.info("before any request")
    token = bind_request_id("1767225600-abc123def456")
    try:
        logger.warning("card of %s posted\nsecond line", "run-1")
    finally:
        reset_request_id(token)
    logger.info("after it")
    first, second, third = lines_of(stream)
    assert len(stream.getvalue().splitlines()) == 3  # a newline in a message stays inside its string
    assert second == {
        "time": second["time"],
        "level": "WARNING",
        "logger": logger.name,
        "message": "card of run-1 posted\nsecond line",
        "request_id": "1767225600-abc123def456",
        "thread": threading.current_thread().name,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", second["time"])
    assert first["request_id"] is None and third["request_id"] is None


def test_json_tracebacks_go_to_exc_redacted(json_logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logged
    try:
        raise RuntimeError(f"auth failed for {BOT_TOKEN} / {SIGNING_SECRET}")
    except RuntimeError:
        logger.exception("posting failed with %s", BOT_TOKEN)
    [line] = lines_of(stream)
    assert line["message"] == f"posting failed with {REDACTED}"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith(f"RuntimeError: auth failed for {REDACTED} / {REDACTED}")
    assert "xoxb-" not in stream.getvalue() and SIGNING_SECRET not in stream.getvalue()


def test_text_format_is_unchanged_by_default(json_logged: tuple[logging.Logger, io.StringIO]) -> None:
    record = logging.LogRecord("review-bot", logging.INFO, __file__, 1, "posted %s", ("x",), None)
    assert create_formatter("text")._fmt == "%(asctime)s %(levelname)s %(name)s: %(message)s"
    assert create_formatter("text").format(record).endswith(" INFO review-bot: posted x")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    threading.excepthook = hook
    logging.captureWarnings(False)


def test_configure_logging_json_puts_warnings_and_dying_threads_on_json_lines(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", [SIGNING_SECRET], "json")
    logging.getLogger("review-bot").info("secret %s", SIGNING_SECRET)
    warnings.warn("a library's warning", UserWarning, stacklevel=1)

    def die() -> None:
        raise ValueError("a pool thread's bug")

    thread = threading.Thread(target=die, name="doomed")
    thread.start()
    thread.join()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["logger"], r["level"]) for r in lines] == [
        ("review-bot", "INFO"),
        ("py.warnings", "WARNING"),
        ("review-bot", "CRITICAL"),
    ]
    assert lines[0]["message"] == f"secret {REDACTED}"
    assert "a library's warning" in lines[1]["message"]
    assert lines[2]["message"] == "thread doomed died"
    assert lines[2]["exc"].endswith("ValueError: a pool thread's bug")


def test_new_request_ids_start_with_slacks_timestamp_when_there_is_one() -> None:
    assert re.fullmatch(r"1767225600-[0-9a-f]{12}", new_request_id("1767225600"))
    assert re.fullmatch(r"[0-9a-f]{12}", new_request_id(None))
    assert re.fullmatch(r"[0-9a-f]{12}", new_request_id("12; drop"))  # not a timestamp: not copied
    assert new_request_id("1767225600") != new_request_id("1767225600")


def test_a_context_pool_carries_the_request_id_into_its_threads() -> None:
    token = bind_request_id("req-1")
    try:
        with ContextThreadPoolExecutor(max_workers=1) as pool:
            carried = pool.submit(current_request_id).result()
            mapped = list(pool.map(lambda _: current_request_id(), range(2)))
        with ThreadPoolExecutor(max_workers=1) as plain:
            lost = plain.submit(current_request_id).result()
    finally:
        reset_request_id(token)
    assert carried == "req-1" and mapped == ["req-1", "req-1"]
    assert lost is None  # why the pools of a request's work must be context pools
    assert current_request_id() is None


def test_a_context_pool_does_not_leak_an_id_into_the_next_task() -> None:
    with ContextThreadPoolExecutor(max_workers=1) as pool:
        token = bind_request_id("req-1")
        pool.submit(bind_request_id, "set inside the task").result()
        reset_request_id(token)
        assert pool.submit(current_request_id).result() is None


def test_lazy_work_pool_drain_waits_for_work_in_flight() -> None:
    pool = LazyWorkPool(max_workers=2, thread_name_prefix="test-lazy")
    release = threading.Event()
    done: list[int] = []

    def work(n: int) -> None:
        release.wait(5)
        done.append(n)

    for n in range(3):
        pool.submit(work, n)
    assert pool.in_flight == 3
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    assert pool.drain(timeout=5) == 0
    assert 0.2 < time.monotonic() - started < 3
    assert sorted(done) == [0, 1, 2] and pool.in_flight == 0
    pool.submit(done.append, 3).result()  # still usable after a drain that finished
    pool.shutdown()


def test_lazy_work_pool_drain_gives_up_at_the_bound_and_cancels_what_has_not_started() -> None:
    pool = LazyWorkPool(max_workers=1, thread_name_prefix="test-lazy")
    release = threading.Event()
    ran: list[str] = []
    pool.submit(lambda: (release.wait(5), ran.append("first")))
    queued = pool.submit(ran.append, "queued")
    started = time.monotonic()
    assert drain_lazy_work(timeout=0.3) >= 2  # every pool of the process, this one's two tasks among them
    assert time.monotonic() - started < 2
    assert queued.cancelled()
    release.set()
    pool.shutdown(wait=True)
    assert ran == ["first"]
