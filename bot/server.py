"""Serving the HTTP surface (bot.web's WSGI app) under uvicorn.

Why uvicorn and not gunicorn's threads: under gunicorn's gthread workers a connection holds a request
thread from its first byte until its request is complete, and there is no read timeout, so eight clients
that each sent half a request froze `/healthz` and every Slack request for minutes. Here asyncio holds
the connections (an idle or half-sent one costs a socket, not a thread), this front reads each body
whole, bounded in size and time, before a thread runs the app (a2wsgi's pool, WORKER_THREADS), and Slack's
3-second ack never waits behind a slow client. Measured in `make bench` (README, Benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from a2wsgi import WSGIMiddleware

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few kB (a card's blocks ride along: tens of kB)
BODY_TIMEOUT_SECONDS = 10.0  # a client that has not sent its whole body by then is refused
KEEP_ALIVE_SECONDS = 5

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

        await self.app(scope, replay, send)

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
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


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
        timeout_graceful_shutdown=20,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
    )
