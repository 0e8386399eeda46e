"""Serving the HTTP surface (bot.web's WSGI app) under uvicorn.

Why uvicorn and not gunicorn's threads: under gunicorn's gthread workers a connection holds a request
thread from its first byte until its request is complete, and there is no read timeout, so eight clients
that each sent half a request froze `/healthz` and every Slack request for minutes. Here asyncio holds
the connections (an idle or half-sent one costs a socket, not a thread), this front reads each body
whole, bounded in size and time, before a thread runs the app (a2wsgi's pool, WORKER_THREADS), and Slack's
3-second ack never waits behind a slow client. Measured in `make bench` (README, Benchmarks).

Each request gets a request id (bot.request_ids) here, which the work it starts carries along.

On SIGTERM uvicorn stops accepting connections and lets the requests in progress be answered (for up to
ACK_DRAIN_SECONDS: Slack gives up on an ack after 3 s anyway); then the lifespan's shutdown stops the
services (`Services.stop`), which lets lazy work in flight (`LazyWorkPool`) and running scheduler jobs
finish within SHUTDOWN_GRACE_SECONDS. uvicorn then re-raises the SIGTERM, so whatever is still running
past that bound ends with the process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

from a2wsgi import WSGIMiddleware

from bot.request_ids import (
    ContextThreadPoolExecutor,
    bind_request_id,
    new_request_id,
    reset_request_id,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few kB (a card's blocks ride along: tens of kB)
BODY_TIMEOUT_SECONDS = 10.0  # a client that has not sent its whole body by then is refused
KEEP_ALIVE_SECONDS = 5
ACK_DRAIN_SECONDS = 5  # on SIGTERM, requests being answered get this long before the services stop
# The requests whose answer is logged ("acknowledged"): Slack's and MLflow's, not probes or scrapes.
ACKNOWLEDGED_PATHS = frozenset({"/slack/events", "/mlflow/webhook"})

P = ParamSpec("P")
T = TypeVar("T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _answer(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Front:
    """The ASGI app uvicorn serves: lifespan starts and stops the background work; each HTTP request's
    body is read here (413 past MAX_BODY_BYTES, before reading it when Content-Length says so; 408 past
    BODY_TIMEOUT_SECONDS), then the WSGI app runs on a thread with the body in hand."""

    def __init__(
        self,
        wsgi: Callable[..., Any],
        threads: int,
        on_start: Callable[[], None] = lambda: None,
        on_stop: Callable[[], None] = lambda: None,
        *,
        max_body: int = MAX_BODY_BYTES,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = WSGIMiddleware(wsgi, workers=threads)
        self.on_start = on_start
        self.on_stop = on_stop
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(self.on_start)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.on_stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            log.warning(
                "request to %s refused: body of %d bytes (limit %d)",
                scope.get("path"),
                declared,
                self.max_body,
            )
            await _answer(send, 413, "Request body too large")
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.body_timeout)
        except TooLarge:
            log.warning("request to %s refused: body over %d bytes", scope.get("path"), self.max_body)
            await _answer(send, 413, "Request body too large")
            return
        except TimeoutError:
            log.warning(
                "request to %s refused: body not sent within %.0f s", scope.get("path"), self.body_timeout
            )
            await _answer(send, 408, "Request body not received in time")
            return
        if body is None:  # the client went away
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only http.disconnect is left

        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # This task's context, which a2wsgi copies into the thread that runs the app: the id follows
        # the request into bolt, and from there into its lazy listeners (LazyWorkPool).
        token = bind_request_id(new_request_id(_header(scope, b"x-slack-request-timestamp")))
        started = time.monotonic()
        try:
            await self.app(scope, replay, answer)
            path = scope.get("path", "")
            if path in ACKNOWLEDGED_PATHS and 200 <= status < 400:  # refusals are logged by bot.web
                log.info(
                    "acknowledged %s %s: %d in %.0f ms",
                    scope.get("method"),
                    path,
                    status,
                    (time.monotonic() - started) * 1000,
                )
        finally:
            reset_request_id(token)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class TooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


_pools: weakref.WeakSet[LazyWorkPool] = weakref.WeakSet()


class LazyWorkPool(ContextThreadPoolExecutor):
    """The pool bolt runs lazy listeners on (the App's `listener_executor`): each task runs in the
    submitter's context (its request id), and the process can wait for the work in flight before it
    exits (`drain_lazy_work`), so a SIGTERM does not cut a card or its thread in half."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._in_flight = 0
        self._settled = threading.Condition()
        _pools.add(self)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._settled:
            self._in_flight += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any] | None) -> None:
        with self._settled:
            self._in_flight -= 1
            self._settled.notify_all()

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the work submitted so far; what is left then and has not
        started is cancelled. Returns how many tasks had not finished."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._settled.wait(left)
            unfinished = self._in_flight
        if unfinished:
            self.shutdown(wait=False, cancel_futures=True)
        return unfinished


def drain_lazy_work(timeout: float) -> int:
    """Wait (all pools together, up to `timeout` seconds) for the lazy work of this process; the number
    of tasks that did not finish."""
    pools = list(_pools)
    waiting = sum(pool.in_flight for pool in pools)
    if not waiting:
        return 0
    log.info("waiting up to %.0f s for %d lazy task(s) in flight", timeout, waiting)
    started = time.monotonic()
    deadline = started + timeout
    unfinished = sum(pool.drain(max(0.0, deadline - time.monotonic())) for pool in pools)
    if unfinished:
        log.warning("%d lazy task(s) did not finish within %.0f s: cut short", unfinished, timeout)
    else:
        log.info("lazy work in flight finished in %.1f s", time.monotonic() - started)
    return unfinished


def serve(factory: str, port: int, workers: int, log_level: str) -> None:
    """Serve the ASGI app `factory` ("module:function", called in each worker process) on `port`."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host="0.0.0.0",
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        log_config=None,  # bot.logs configures logging (with its redaction) in each worker
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=ACK_DRAIN_SECONDS,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
    )
