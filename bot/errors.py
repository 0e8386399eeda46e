"""Failures the bot knows how to explain to a person in Slack.

Each carries the user-facing text, which the service that caught it tells the person. Anything else is
a bug: the error handler logs it with an id and tells the person that id.
"""

from __future__ import annotations

import logging
import uuid

from bot.logs import strip_credentials


class ReviewBotError(Exception):
    """A failure with a message fit for the person who asked."""

    def user_message(self) -> str:
        return str(self)


class BadReference(ReviewBotError):
    """The text after /review is not something that names a run."""


class NotFound(ReviewBotError):
    """A run, model, version or alias that MLflow does not have."""


class MlflowUnavailable(ReviewBotError):
    def __init__(self, tracking_uri: str, detail: str) -> None:
        tracking_uri, detail = strip_credentials(tracking_uri), strip_credentials(detail)
        super().__init__(
            f":warning: MLflow at `{tracking_uri}` did not answer ({detail}). "
            "Nothing was posted. Try again in a minute; if it keeps failing, ask whoever runs MLflow."
        )
        self.tracking_uri = tracking_uri  # as shown to people: without credentials


class SlackRefused(ReviewBotError):
    """Slack refused a post; `advice` says what the person can do about it."""

    def __init__(self, error_code: str, channel: str, advice: str) -> None:
        super().__init__(advice)
        self.error_code = error_code
        self.channel = channel


def log_unexpected(logger: logging.Logger, what: str, error: BaseException | None = None) -> str:
    """Log a failure nobody planned for, with a short id the person in Slack can quote; returns the id.

    Called from inside an `except` block (or with `error`), so the traceback is logged too.
    """
    error_id = uuid.uuid4().hex[:8]
    logger.error("%s failed (error id %s)", what, error_id, exc_info=error or True)
    return error_id
