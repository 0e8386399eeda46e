"""The HTTP surface: POST /slack/events (bolt), POST /mlflow/webhook and GET /healthz, as one WSGI app."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
WEBHOOK_PATH = "/mlflow/webhook"

Wsgi = Callable[..., Iterable[bytes]]


def health_body(states: dict[str, str]) -> dict[str, Any]:
    ok = all(state == "ok" or state.startswith("in-process") for state in states.values())
    return {"status": "ok" if ok else "degraded", **states}


def create_health_app(health: Callable[[], dict[str, str]], webhook: Wsgi | None = None) -> Wsgi:
    """GET /healthz, and POST /mlflow/webhook when given (what Socket Mode serves on $PORT too)."""

    def health_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if webhook is not None and environ.get("PATH_INFO") == WEBHOOK_PATH:
            return webhook(environ, start_response)
        if environ.get("PATH_INFO") != HEALTH_PATH or environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found"]
        body = json.dumps(health_body(health())).encode()
        # 200 while the process serves: the body says which dependency is down (liveness, not readiness).
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return health_app


def create_wsgi_app(app: App, health: Callable[[], dict[str, str]], webhook: Wsgi | None = None) -> Wsgi:
    slack = SlackRequestHandler(app, path=EVENTS_PATH)
    health_app = create_health_app(health, webhook)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in (HEALTH_PATH, WEBHOOK_PATH):
            return health_app(environ, start_response)
        return slack(environ, start_response)

    return wsgi
