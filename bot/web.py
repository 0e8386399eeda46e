"""The HTTP surface: POST /slack/events (bolt), POST /mlflow/webhook, GET /healthz (liveness), GET /readyz
(readiness) and GET /metrics (Prometheus), as one WSGI app."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body

from bot import metrics_export
from bot.metrics_export import Readiness

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
WEBHOOK_PATH = "/mlflow/webhook"
PROBE_PATHS = frozenset({HEALTH_PATH, READY_PATH, METRICS_PATH})
ENDPOINTS = frozenset({EVENTS_PATH, WEBHOOK_PATH}) | PROBE_PATHS  # anything else is counted as "other"

Wsgi = Callable[..., Iterable[bytes]]
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE_WINDOW_SECONDS = 5 * 60  # Slack's own: an older request is refused as a possible replay


def health_body(states: dict[str, str]) -> dict[str, Any]:
    ok = all(state == "ok" or state.startswith("in-process") for state in states.values())
    return {"status": "ok" if ok else "degraded", **states}


def ready_body(state: metrics_export.ReadyState) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "ready" if state.ready else "not ready", **state.states}
    if not state.ready:
        body["reason"] = state.reason
    return body


def _json(start_response: Callable[..., Any], status: str, payload: dict[str, Any]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def create_health_app(
    health: Callable[[], dict[str, str]], webhook: Wsgi | None = None, readiness: Readiness | None = None
) -> Wsgi:
    """GET /healthz, /readyz and /metrics, and POST /mlflow/webhook when given (what Socket Mode serves on
    $PORT too), each request counted for /metrics."""
    readiness = readiness or Readiness(health)

    def health_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if webhook is not None and path == WEBHOOK_PATH:
            return webhook(environ, start_response)
        if path not in PROBE_PATHS or environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found"]
        if path == READY_PATH:
            # 503 while MLflow or Redis does not answer (a result kept a few seconds: see Readiness).
            state = readiness.check()
            return _json(
                start_response, "200 OK" if state.ready else "503 Service Unavailable", ready_body(state)
            )
        if path == METRICS_PATH:
            body, content_type = metrics_export.render(readiness)
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        # 200 while the process serves: the body says which dependency is down (liveness, not readiness).
        return _json(start_response, "200 OK", health_body(health()))

    return count_requests(health_app)


def count_requests(wsgi: Wsgi) -> Wsgi:
    """Count each answer by endpoint and status; time the answers bolt gave on /slack/events (the ack)."""

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get(_COUNTED):  # already counted by an outer layer
            return wsgi(environ, start_response)
        environ[_COUNTED] = True
        started = time.perf_counter()
        status = ""

        def capture(status_line: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            nonlocal status
            status = status_line[:3]
            return start_response(status_line, headers, *exc_info)

        try:
            return wsgi(environ, capture)
        except Exception:
            status = "500"
            raise
        finally:
            path = environ.get("PATH_INFO", "")
            endpoint = path if path in ENDPOINTS else "other"
            metrics_export.HTTP_REQUESTS.labels(endpoint, status or "none").inc()
            if endpoint == EVENTS_PATH and status and not status.startswith("4"):
                metrics_export.ACK_SECONDS.observe(time.perf_counter() - started)

    return counted


_COUNTED = "review_bot.counted"


class RefusalLog:
    """One log line per refused request, at most one a second (the rest are counted into the next line),
    and never the request's body: it carries a response_url anyone could post with for 30 minutes."""

    def __init__(self, interval_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval_seconds
        self.clock = clock
        self._last = -math.inf
        self._suppressed = 0
        self._lock = threading.Lock()

    def refused(self, path: str, status: int, reason: str) -> bool:
        """Log it (True) or count it for the next line (False)."""
        with self._lock:
            now = self.clock()
            if now - self._last < self.interval:
                self._suppressed += 1
                return False
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        more = f" (and {suppressed} more refused since the last line)" if suppressed else ""
        log.warning("refused a request to %s: %d %s%s", path, status, reason, more)
        return True


def _plain(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def guard_slack_requests(slack: Wsgi, signing_secret: str, refusals: RefusalLog | None = None) -> Wsgi:
    """Before bolt sees a request: its timestamp is a recent whole number and its signature Slack's
    (else 401), its body UTF-8 and the form or JSON that bolt parses, into an object (else 400). Bolt
    would answer the malformed ones with 500 and log unsigned ones with their body; neither happens."""
    secret = signing_secret.encode()
    refusals = refusals or RefusalLog()

    def refuse(path: str, status: str, reason: str, start_response: Callable[..., Any]) -> list[bytes]:
        refusals.refused(path, int(status[:3]), reason)
        return _plain(start_response, status, reason)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != EVENTS_PATH:
            return slack(environ, start_response)  # bolt's handler answers 404 for anything else
        if environ.get("REQUEST_METHOD") != "POST":
            return refuse(path, "405 Method Not Allowed", "POST only", start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return refuse(path, "400 Bad Request", "bad Content-Length", start_response)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not TIMESTAMP.fullmatch(timestamp) or abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
            return refuse(path, "401 Unauthorized", "missing, malformed or stale timestamp", start_response)
        # Over the raw bytes: slack_sdk's SignatureVerifier decodes the body first, and a body that is not
        # UTF-8 must be a 401 when unsigned (a 400 when signed), never a crash.
        expected = (
            "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(expected, signature):
            return refuse(path, "401 Unauthorized", "bad signature", start_response)
        try:
            parsed = parse_body(body.decode("utf-8"), environ.get("CONTENT_TYPE"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return refuse(path, "400 Bad Request", "body is not the form or JSON Slack sends", start_response)
        if not isinstance(parsed, dict):
            return refuse(path, "400 Bad Request", "body is not an object", start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return slack(environ, start_response)

    return wsgi


def create_wsgi_app(
    app: App,
    health: Callable[[], dict[str, str]],
    webhook: Wsgi | None = None,
    signing_secret: str | None = None,
) -> Wsgi:
    handler = SlackRequestHandler(app, path=EVENTS_PATH)
    slack = guard_slack_requests(handler, signing_secret) if signing_secret else handler
    health_app = create_health_app(health, webhook)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in PROBE_PATHS or environ.get("PATH_INFO") == WEBHOOK_PATH:
            return health_app(environ, start_response)
        return slack(environ, start_response)

    return count_requests(wsgi)
