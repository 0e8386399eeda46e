"""Unit tests for bot.logs: secrets never reach a log line, whoever logs them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, RedactSecrets, strip_credentials, url_secrets

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
