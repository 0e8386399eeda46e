"""The one connection to MLflow: a client, the error mapping every call goes through, and health.

MLflow's own HTTP client retries 7 times with exponential back-off and waits up to 120 s per
request; a Slack bot must give up long before that. MLflow reads its timeout and retries from
process-wide environment variables on each request, so `configure_http` sets them once, from the
composition root, rather than as a side effect of building a client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request, verify_rest_response

from bot.errors import HTTP_FORBIDDEN, HTTP_UNAUTHORIZED, MlflowRefused, MlflowUnavailable, NotFound
from bot.logs import strip_credentials
from bot.metrics_export import timed_mlflow_call
from bot.signature import Verifier

T = TypeVar("T")

HEALTH_TIMEOUT_SECONDS = 2
NOT_FOUND = ":mag: MLflow has no {what}. Check the id, or paste the run's URL."
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


def configure_http(timeout_seconds: int, retries: int = 1) -> None:
    """How long MLflow's client waits and how often it retries, for every request of this process."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout_seconds)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"


class Mlflow:
    """A tracking server (or local store) and the address of its UI, for links."""

    def __init__(self, tracking_uri: str, ui_url: str = "", verifier: Verifier | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.ui_url = ui_url
        # Which review records the readers vouch for (signed by a trusted key); none without keys.
        self.verifier = verifier or Verifier([])
        # `tracking`, not `client`: the manifest test reads `client.<method>(` as a Slack Web API call.
        self.tracking = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.write_refused = ""  # the last write MLflow refused with 403 (shown in /healthz), if any

    @property
    def account(self) -> str:
        """The user name the bot's MLflow requests authenticate as ("" when none or a token)."""
        try:
            return get_default_host_creds(self.tracking_uri).username or "" if self.is_server else ""
        except Exception:  # noqa: BLE001 - only for messages
            return ""

    @property
    def is_server(self) -> bool:
        """A tracking server samples long histories itself; a local store does not."""
        return self.tracking_uri.startswith(("http://", "https://"))

    def call(self, what: str, fn: Callable[[], T], *, writes: bool = False) -> T:
        """Run one MLflow call, turning its failures into NotFound, MlflowRefused (401/403: the bot's
        account) or MlflowUnavailable. `writes`: the call changes something (for the 403's message).
        Timed and counted for /metrics (errors by the class raised here)."""
        with timed_mlflow_call():
            return self._call(what, fn, writes=writes)

    def _call(self, what: str, fn: Callable[[], T], *, writes: bool) -> T:
        try:
            return fn()
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                raise NotFound(NOT_FOUND.format(what=what)) from exc
            status = _refusal_status(exc)
            if status is not None:
                refused = MlflowRefused(self.tracking_uri, status, what, writes=writes, account=self.account)
                if status == HTTP_FORBIDDEN and writes:
                    self.write_refused = f"{what} ({datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC)"
                raise refused from exc
            raise MlflowUnavailable(self.tracking_uri, short(exc)) from exc
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            raise MlflowUnavailable(self.tracking_uri, short(exc)) from exc

    def rest_get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        """One GET to a REST endpoint the Python client does not wrap (errors as MLflow raises them)."""
        response = http_request(get_default_host_creds(self.tracking_uri), endpoint, "GET", params=params)
        verify_rest_response(response, endpoint)
        return response.json()

    def health(self) -> str:
        """ "ok" or why not, within about HEALTH_TIMEOUT_SECONDS whatever state MLflow is in: unreachable,
        the bot's credentials refused (401), its account not allowed to read (403), or read-only (a write
        refused with 403 since this process started)."""
        try:
            if self.is_server:
                # The server's own health endpoint: one quick request, no client retries.
                response = requests.get(
                    f"{self.tracking_uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_SECONDS
                )
                response.raise_for_status()
                # Then what the bot's account may do: one authenticated read, no retries.
                answer = http_request(
                    get_default_host_creds(self.tracking_uri),
                    "/api/2.0/mlflow/experiments/search",
                    "GET",
                    params={"max_results": 1},
                    max_retries=0,
                    timeout=HEALTH_TIMEOUT_SECONDS,
                )
                if answer.status_code == HTTP_UNAUTHORIZED:
                    return "unauthorized: MLflow refused the bot's credentials (HTTP 401)"
                if answer.status_code == HTTP_FORBIDDEN:
                    return "forbidden: the bot's MLflow account may not read experiments (HTTP 403)"
                answer.raise_for_status()
            else:
                self.tracking.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - health reports any failure as text
            return f"unreachable: {strip_credentials(short(exc))}"
        if self.write_refused:
            return f"read-only: the bot's MLflow account may not write (HTTP 403 on {self.write_refused})"
        return "ok"


def _refusal_status(exc: MlflowException) -> int | None:
    """401 or 403 when MLflow refused the bot's account, else None."""
    if exc.error_code == "UNAUTHENTICATED":
        return HTTP_UNAUTHORIZED
    if exc.error_code == "PERMISSION_DENIED":
        return HTTP_FORBIDDEN
    try:
        status = exc.get_http_status_code()
    except Exception:  # noqa: BLE001
        return None
    return status if status in (HTTP_UNAUTHORIZED, HTTP_FORBIDDEN) else None


def short(exc: BaseException) -> str:
    """One line about a failure, without URLs' query strings or long bodies."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 200 else text[:199] + "…"


def ms_to_datetime(ms: int | None) -> datetime | None:
    """MLflow's epoch milliseconds as an aware UTC moment; None for 0 or missing."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None
