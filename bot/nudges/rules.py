"""What counts as deployed, what is overdue, and what the nudges and the digest say. Pure: no Slack,
no MLflow, no clock (callers pass `now`).

A version is deployed when it carries one of the deployment aliases (MLflow's current way of marking
what serves) or the legacy stage `Production`. It needs a nudge when the run it came from is not
approved and nobody snoozed it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bot.deployments import DeployedVersion
from bot.models import ReviewState, RunSummary

SNOOZE_FOR = timedelta(days=7)
# MLflow's webhook signature: "v1,<base64 HMAC-SHA256 of '{delivery_id}.{timestamp}.{body}'>".
SIGNATURE_VERSION = "v1"
WEBHOOK_MAX_SKEW = timedelta(minutes=5)
# The registry events the bot subscribes to; each may put a version under a deployment alias.
WEBHOOK_EVENTS = (
    "model_version_alias.created",
    "model_version_tag.set",
    "model_version.created",
    "prompt_alias.created",
)
PROMPT_ALIAS_EVENT = "prompt_alias.created"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Scan(_Frozen):
    """What one look at the registry found."""

    unreviewed: list[DeployedVersion] = Field(default_factory=list)  # deployed, not approved, not snoozed
    snoozed: int = 0
    overdue: list[RunSummary] = Field(default_factory=list)  # pending longer than PENDING_MAX_AGE
    waiting_on: dict[str, list[RunSummary]] = Field(default_factory=dict)  # reviewer -> pending reviews
    unchecked: list[str] = Field(default_factory=list)  # models MLflow would not tell us about
    registry_error: str = ""  # the registry could not even be listed

    @property
    def empty(self) -> bool:
        return not (self.unreviewed or self.overdue or self.unchecked or self.registry_error)


def needs_nudge(version: DeployedVersion, now: datetime) -> bool:
    return not version.approved and not is_snoozed(version.snoozed_until, now)


def is_snoozed(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def working_days_between(start: datetime, end: datetime) -> int:
    """Whole working days (Monday to Friday) from `start` to `end`; weekends don't count."""
    if end <= start:
        return 0
    return int(np.busday_count(start.astimezone(UTC).date(), end.astimezone(UTC).date()))


def is_overdue(requested_at: datetime | None, now: datetime, max_working_days: int) -> bool:
    return requested_at is not None and working_days_between(requested_at, now) > max_working_days


def waiting_on(review: ReviewState | None, reviewers: frozenset[str] | None) -> list[str]:
    """Reviewers who have not voted on a pending review yet (none when anyone may vote)."""
    if not reviewers:
        return []
    voted = {v.user for v in (review.approvals + review.change_requests)} if review else set()
    return sorted(reviewers - voted - ({review.requested_by} if review else set()))


def nudge_key(name: str, version: str, marker: str, *, prompt: bool = False) -> str:
    """The de-duplication key of one nudge: per (model or prompt, version, alias)."""
    return f"nudge:{'prompt:' if prompt else ''}{name}:{version}:{marker}"


def snooze_key(name: str, version: str, *, prompt: bool = False) -> str:
    return f"snooze:{'prompt:' if prompt else ''}{name}:{version}"


def sign_webhook(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature of one delivery (what `X-MLflow-Signature` must carry)."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def webhook_refusal(
    secret: str, delivery_id: str, timestamp: str, body: bytes, signature: str, now: datetime
) -> str | None:
    """Why a webhook delivery must be refused, or None when it is signed, fresh and well formed."""
    if not (delivery_id and timestamp and signature):
        return "unsigned (missing X-MLflow-Signature, -Timestamp or -Delivery-Id)"
    if not hmac.compare_digest(sign_webhook(secret, delivery_id, timestamp, body), signature.strip()):
        return "bad signature"
    try:
        sent = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return "unreadable timestamp"
    if abs(now - sent) > WEBHOOK_MAX_SKEW:
        return "timestamp more than 5 minutes off"
    return None
