"""Unit tests for bot.web: the health body and the /healthz WSGI app, called directly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.web import HEALTH_PATH, create_health_app, health_body


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ({"redis": "ok", "mlflow": "ok"}, "ok"),
        ({"redis": "in-process (single replica only)", "mlflow": "ok"}, "ok"),
        ({}, "ok"),
        ({"redis": "unreachable: ConnectionError", "mlflow": "ok"}, "degraded"),
        ({"redis": "ok", "mlflow": "unreachable: timeout"}, "degraded"),
    ],
)
def test_health_body(states: dict[str, str], status: str) -> None:
    assert health_body(states) == {"status": status, **states}


class _Response:
    def __init__(self) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}

    def __call__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = dict(headers)


def _call(path: str, method: str = "GET", states: dict[str, str] | None = None) -> tuple[_Response, bytes]:
    app = create_health_app(lambda: states if states is not None else {"redis": "ok"})
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    response = _Response()
    body = b"".join(app(environ, response))
    return response, body


def test_healthz_ok() -> None:
    response, body = _call(HEALTH_PATH)
    assert response.status == "200 OK"
    assert response.headers == {"Content-Type": "application/json", "Content-Length": str(len(body))}
    assert json.loads(body) == {"status": "ok", "redis": "ok"}


def test_healthz_degraded_is_still_200() -> None:
    response, body = _call(HEALTH_PATH, states={"redis": "unreachable: ConnectionError"})
    assert response.status == "200 OK"
    assert json.loads(body) == {"status": "degraded", "redis": "unreachable: ConnectionError"}


@pytest.mark.parametrize(
    ("path", "method"), [("/", "GET"), ("/healthz/x", "GET"), ("/slack/events", "GET"), (HEALTH_PATH, "POST")]
)
def test_everything_else_is_404(path: str, method: str) -> None:
    response, body = _call(path, method)
    assert response.status == "404 Not Found"
    assert body == b"Not Found"
