"""POST /mlflow/webhook: MLflow's registry webhooks, as a WSGI app. Thin: read, hand to bot/, answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from bot.nudges.service import NudgeService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # MLflow's payloads are a few hundred bytes
STATUS_LINES = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 405: "405 Method Not Allowed",
                413: "413 Payload Too Large"}  # fmt: skip


def create_webhook_app(nudges: NudgeService) -> Callable[..., Iterable[bytes]]:
    def webhook_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, 405, "use POST")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return _answer(start_response, 413, "body too large")
        body = environ["wsgi.input"].read(length) if length else b""
        delivery = nudges.receive(
            environ.get("HTTP_X_MLFLOW_DELIVERY_ID", ""),
            environ.get("HTTP_X_MLFLOW_TIMESTAMP", ""),
            environ.get("HTTP_X_MLFLOW_SIGNATURE", ""),
            body,
        )
        if delivery.status != 200:
            log.warning("MLflow webhook refused (%s): %s", delivery.status, delivery.reason)
        return _answer(start_response, delivery.status, delivery.reason)

    return webhook_app


def _answer(start_response: Callable[..., Any], status: int, reason: str) -> list[bytes]:
    body = json.dumps({"ok": status == 200, "reason": reason}).encode()
    start_response(
        STATUS_LINES[status], [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
