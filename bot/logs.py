"""Logging set-up. Tokens and secrets are redacted from every record, whoever logs them.

Two formats (LOG_FORMAT): `text`, one line a record for people, and `json`, one JSON object a line
for a log pipeline, each with the request id (bot.request_ids) of the request whose work logged it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Literal

from bot.request_ids import current_request_id

_TOKEN_RE = re.compile(r"xox[abposer]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
# user:password@ (or token@) in any URL: http://user:pw@host, https://token@host, redis://:pw@host
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s`'\"<>|?#]*@")
REDACTED = "[redacted]"


def strip_credentials(text: str) -> str:
    """`text` with the user and password taken out of every URL in it (what the bot shows or logs of a
    URL such as MLFLOW_TRACKING_URI=http://user:password@host); the host stays, so it still says where."""
    return _URL_CREDENTIALS_RE.sub(r"\g<scheme>", text)


def url_secrets(url: str | None) -> list[str]:
    """The password (or token) in a URL's user part, for the log filter, even outside a URL."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/\s?#]*)@", url or "")
    if not match:
        return []
    user, _, password = match.group(1).partition(":")
    return [password or user]


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        text = strip_credentials(_TOKEN_RE.sub(REDACTED, text))
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed logging call must not raise into the code that logged (logging itself never
            # does): keep the format and its arguments, redacted like everything else.
            message = f"{record.msg!s} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so it is redacted too; formatters show exc_text after the message
            # (the JSON one as its own field).
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record.msg, record.args = self.redact(message), None
        return True


def stamp_request_id(record: logging.LogRecord) -> bool:
    """A handler filter: the record carries the id of the request whose work logged it (None outside)."""
    record.request_id = current_request_id()
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, thread, and exc
    with the traceback when there is one. Newlines inside a message stay inside its JSON string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:  # not through RedactSecrets (a test's handler)
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def create_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, secrets: list[str], log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(create_formatter(log_format))
    handler.addFilter(RedactSecrets(secrets))
    handler.addFilter(stamp_request_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "mlflow", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Whatever Python itself writes to stderr goes through the handler too, so a JSON log stays one
    # object a line: warnings, and the traceback of a thread that dies (APScheduler's, a pool's).
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_death


def _log_thread_death(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("review-bot").critical(
        "thread %s died", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )
