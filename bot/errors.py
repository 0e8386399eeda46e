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


class MlflowRefused(ReviewBotError):
    """MLflow answered, and said no to the bot's account: wrong or missing credentials (HTTP 401), or an
    account not allowed to do this (HTTP 403). Trying again changes nothing; an admin must act."""

    def __init__(self, tracking_uri: str, status: int, what: str, *, writes: bool, account: str) -> None:
        uri = strip_credentials(tracking_uri)
        who = f"review-bot's MLflow account `{account}`" if account else "review-bot's MLflow account"
        if status == HTTP_UNAUTHORIZED:
            text = (
                f":no_entry: MLflow at `{uri}` refused review-bot's credentials (HTTP 401). Nothing was "
                "changed. Whoever runs the bot: check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
                "(or MLFLOW_TRACKING_TOKEN)."
            )
        else:
            verb, needed = ("change", "EDIT") if writes else ("read", "READ")
            text = (
                f":no_entry: {who} is not allowed to {verb} {what} in MLflow at `{uri}` (HTTP 403). Nothing "
                f"was changed. Ask an MLflow admin to give that account {needed} permission on the "
                "experiment (or the registered model)."
            )
        super().__init__(text)
        self.tracking_uri = uri
        self.status = status
        self.writes = writes


HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403


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
