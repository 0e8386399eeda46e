"""The request id: made when a request comes in, it follows the work that request started, from the ack
through the lazy listener to the last post in a card's thread, so every log line of one `/review`
can be found by one value (LOG_FORMAT=json writes it on each line).

A context variable carries it. The serving front sets it for each request (an asyncio task, whose
context a2wsgi copies into the thread that runs the WSGI app); threads do not inherit context, so work
handed to a pool must go through a `ContextThreadPoolExecutor`, which runs each task in a copy of the
context of whoever submitted it.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")

P = ParamSpec("P")
T = TypeVar("T")


def new_request_id(slack_timestamp: str | None = None) -> str:
    """`<Slack's X-Slack-Request-Timestamp>-<12 hex digits>` for a Slack request (the timestamp says
    when Slack sent it, to match Slack's side), or the hex digits alone for any other request."""
    suffix = uuid.uuid4().hex[:12]
    if slack_timestamp and _SLACK_TIMESTAMP.fullmatch(slack_timestamp):
        return f"{slack_timestamp}-{suffix}"
    return suffix


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Set the id for the rest of this context; `reset_request_id(token)` puts the previous one back."""
    return _request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in a copy of the submitter's context: the request id (and
    any other context variable) follows the work into the pool's threads."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(_run_in, context, fn, *args, **kwargs)


def _run_in(context: contextvars.Context, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return context.run(fn, *args, **kwargs)
