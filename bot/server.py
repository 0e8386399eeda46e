"""Running the WSGI app under gunicorn (threads, so bolt's lazy listeners run beside requests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


class GunicornServer(BaseApplication):
    def __init__(self, wsgi: Callable[..., Any], options: dict[str, Any]) -> None:
        self._wsgi = wsgi
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self._wsgi


def serve(
    wsgi: Callable[..., Any],
    port: int,
    workers: int,
    threads: int,
    log_level: str,
    on_worker_start: Callable[[], None] | None = None,
) -> None:
    """Serve `wsgi`; `on_worker_start` runs in each worker after the fork (threads do not survive one)."""
    GunicornServer(
        wsgi,
        {
            "bind": f"0.0.0.0:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            # Slack waits 3 s for an ack; a request still running after 30 s is stuck.
            "timeout": 30,
            "graceful_timeout": 20,
            "loglevel": log_level.lower(),
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "review-bot",
            "post_worker_init": (lambda worker: on_worker_start())
            if on_worker_start
            else (lambda worker: None),
        },
    ).run()
