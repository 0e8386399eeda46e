"""An HTTP proxy in front of MLflow that answers late (up, but slower than the bot's timeout), or fails
the requests a test picks with 503 (MLflow down for some calls)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class SlowProxy:
    def __init__(
        self, upstream: str, delay_seconds: float = 0.0, fail: Callable[[str], bool] | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay_seconds = delay_seconds
        self.fail = fail  # given the request's path and query: answer 503 instead of forwarding
        self.requests_seen = 0
        self.paths: list[str] = []  # every request's path and query, in order
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.requests_seen += 1
                proxy.paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.fail is not None and proxy.fail(self.path):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                time.sleep(proxy.delay_seconds)
                try:
                    upstream = requests.request(
                        self.command,
                        proxy.upstream + self.path,
                        data=body,
                        headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                        timeout=30,
                    )
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except (OSError, requests.RequestException):
                    pass  # the client gave up first: that is the point

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> SlowProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
