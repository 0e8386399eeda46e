"""What a Slack refusal means for the person who asked, and what they are told of a failure nobody planned."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

from bot.errors import log_unexpected
from bot.ids import COMMAND

F = TypeVar("F", bound=Callable[..., Any])

UNEXPECTED = (
    ":boom: Something went wrong on review-bot's side (error id `{error_id}`). Nothing more was done. "
    "Try again; if it happens again, give the error id to whoever runs the bot."
)

SLACK_ADVICE = {
    "channel_not_found": (
        ":no_entry: I can't find the review channel {channel}. Ask whoever runs review-bot to check "
        "`REVIEW_CHANNEL` (a channel id such as `C0123ABCD`), or that the channel was not deleted."
    ),
    "not_in_channel": (
        ":wave: I'm not a member of {channel}, so I can't post the review there. "
        "Invite me with `/invite @review-bot` in that channel, then run `" + COMMAND + "` again."
    ),
    "is_archived": (
        ":file_cabinet: {channel} is archived. Unarchive it or point `REVIEW_CHANNEL` at another channel."
    ),
    "invalid_blocks": (
        ":bug: Slack rejected the card's layout (`invalid_blocks`). Nothing was posted. This is a review-bot "
        "bug and it has been logged; please report it with the run id."
    ),
    "msg_too_long": (
        ":bug: Slack rejected the card as too long (`msg_too_long`). Nothing was posted. "
        "This is a review-bot bug and it has been logged; please report it with the run id."
    ),
    "ratelimited": (
        ":hourglass: Slack is rate-limiting review-bot right now. Nothing was posted; try again in a minute."
    ),
}
SLACK_DEFAULT_ADVICE = (
    ":no_entry: Slack refused to post the review in {channel} (`{code}`). Nothing was posted."
)


def error_code(exc: SlackApiError) -> str:
    """Slack's error code (`channel_not_found`, `ratelimited`, …) from a refused call."""
    response = getattr(exc, "response", None)
    return str(response.get("error", "unknown_error")) if response is not None else "unknown_error"


def channel_mention(channel: str | None) -> str:
    return f"<#{channel}>" if channel else "this channel"


def build_slack_advice(code: str, channel: str) -> str:
    template = SLACK_ADVICE.get(code, SLACK_DEFAULT_ADVICE)
    return template.format(channel=channel_mention(channel), code=code)


def tells_the_unexpected(what: str) -> Callable[[F], F]:
    """For a service method with a `notify` argument: a failure nobody planned for is logged with an
    error id (`what`, formatted with the call's arguments, says what was being done) and the person
    is told that id. Failures the bot can explain (ReviewBotError) are the method's own to tell."""

    def decorate(method: F) -> F:
        signature = inspect.signature(method)
        logger = logging.getLogger(method.__module__)

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Exception:
                call = signature.bind(*args, **kwargs).arguments
                error_id = log_unexpected(logger, what.format(**call))
                call["notify"](UNEXPECTED.format(error_id=error_id))
                return None

        return wrapper  # type: ignore[return-value]

    return decorate
