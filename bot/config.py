"""Typed settings, read from the environment and `.env` when (and only when) a Settings is built."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot import signature
from bot.compare.rules import parse_metric_directions, parse_metric_goal
from bot.logs import LogFormat, strip_credentials
from bot.models import Direction, MetricGoal

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class MissingSettingError(Exception):
    """A setting a command needs is not set; the message names the variable."""

    def __init__(self, variable: str, purpose: str) -> None:
        super().__init__(f"{variable} is not set: {purpose}")
        self.variable = variable


class Settings(BaseSettings):
    """All of review-bot's settings. README.md documents each one."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    review_channel: str | None = None

    # MLflow
    mlflow_tracking_uri: str = "http://localhost:5000"
    mlflow_ui_url: str | None = None
    mlflow_timeout_seconds: int = Field(default=10, ge=1)
    # Unfurl MLflow UI links pasted in Slack (a summary anyone in that channel sees; README "Unfurls")
    unfurls_enabled: bool = True

    # Redis
    redis_url: str | None = None
    # How long a finished run's reduced metric histories are kept in the store (0: not kept)
    history_cache_ttl: int = Field(default=24 * 60 * 60, ge=0)

    # The card
    review_key_metrics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_thread_images: int = Field(default=6, ge=0, le=20)
    max_image_bytes: int = Field(default=5 * 1024 * 1024, gt=0)

    # Comparisons: the baseline on every card, /review compare, /review leaderboard
    primary_metric: Annotated[MetricGoal | None, NoDecode] = None  # "val_auc:max", "rmse:min", "val_auc"
    metric_directions: Annotated[dict[str, Direction], NoDecode] = Field(default_factory=dict)

    # Approvals
    reviewers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    reviewer_group: str | None = None
    required_approvals: int = Field(default=1, ge=1, le=20)
    approve_emoji: str = "white_check_mark"
    changes_emoji: str = "x"
    # Signed decisions (bot.signature): the bot's private key, and the public keys the gate trusts
    review_signing_key: SecretStr | None = None
    review_public_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Meetings
    reminder_lead_minutes: int = Field(default=15, ge=0, le=24 * 60, validation_alias="REMINDER_LEAD")
    missed_grace_minutes: int = Field(default=30, ge=0, le=7 * 24 * 60, validation_alias="MISSED_GRACE")
    scheduler_lock_ttl: int = Field(default=30, ge=3, le=600)

    # Nudges
    deployment_aliases: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["champion", "production", "prod"]
    )
    nudge_cron: str = "0 10 * * MON-FRI"
    nudge_tz: str = "UTC"
    pending_max_age_days: int = Field(default=3, ge=0, le=365, validation_alias="PENDING_MAX_AGE")
    nudge_repeat_minutes: int = Field(
        default=24 * 60, ge=1, le=365 * 24 * 60, validation_alias="NUDGE_REPEAT"
    )
    mlflow_webhook_secret: SecretStr | None = None

    # Serving
    port: int = Field(default=3000, ge=1, le=65535)
    web_concurrency: int = Field(default=1, ge=1)
    worker_threads: int = Field(default=8, ge=1)
    log_level: str = "INFO"
    log_format: LogFormat = "text"  # json: one object a line, with the request id (bot.logs)
    # On SIGTERM: how long lazy work in flight and running scheduler jobs may take to finish
    shutdown_grace_seconds: int = Field(default=25, ge=0, le=3600)

    @field_validator(
        "review_key_metrics", "reviewers", "deployment_aliases", "review_public_keys", mode="before"
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("review_signing_key")
    @classmethod
    def _private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signature.private_key(value.get_secret_value())  # raises BadKey (a ValueError) with advice
        return value

    @field_validator("review_public_keys")
    @classmethod
    def _public_keys(cls, value: list[str]) -> list[str]:
        for text in value:
            signature.public_key(text)
        return value

    def signer(self) -> signature.Signer | None:
        if self.review_signing_key is None:
            return None
        return signature.Signer(signature.private_key(self.review_signing_key.get_secret_value()))

    def verifier(self) -> signature.Verifier:
        """The keys this bot or gate trusts: REVIEW_PUBLIC_KEYS and, for the bot, its own."""
        return signature.verifier_for(self.review_public_keys, self.signer())

    def require_signing_key(self) -> None:
        if self.review_signing_key is None:
            raise MissingSettingError(
                "REVIEW_SIGNING_KEY",
                "the key the bot signs decisions with; make one with `review-bot keys generate`",
            )

    @field_validator("primary_metric", mode="before")
    @classmethod
    def _metric_goal(cls, value: object) -> object:
        """`val_auc:max`, `rmse:min`, or a bare name whose direction the naming rules decide."""
        if not isinstance(value, str):
            return value
        return parse_metric_goal(value) if value.strip() else None

    @field_validator("metric_directions", mode="before")
    @classmethod
    def _directions(cls, value: object) -> object:
        """`accuracy:max,*_time:min`: names or shell-style patterns, each with max or min."""
        if not isinstance(value, str):
            return value
        return parse_metric_directions(value)

    @field_validator("reminder_lead_minutes", "missed_grace_minutes", "nudge_repeat_minutes", mode="before")
    @classmethod
    def _minutes(cls, value: object) -> object:
        """`15`, `15m`, `2h`, `1h30m` or `1d`: minutes, as people write them."""
        if not isinstance(value, str):
            return value
        text = value.strip().lower().replace(" ", "")
        match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m?)?", text)
        if not text or not match:
            raise ValueError("use minutes: 15, 15m, 2h, 1h30m or 1d")
        return (int(match.group(1) or 0) * 24 + int(match.group(2) or 0)) * 60 + int(match.group(3) or 0)

    @field_validator("pending_max_age_days", mode="before")
    @classmethod
    def _working_days(cls, value: object) -> object:
        """`3` or `3d`: working days."""
        if isinstance(value, str) and value.strip().lower().endswith("d"):
            return value.strip()[:-1]
        return value

    @field_validator("nudge_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        """Five crontab fields, checked now rather than when the first digest falls due."""
        try:
            CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc}); e.g. 0 10 * * MON-FRI") from exc
        return value

    @field_validator("nudge_tz")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name like Europe/Berlin") from exc
        return value

    @field_validator("deployment_aliases")
    @classmethod
    def _some_alias(cls, value: list[str]) -> list[str]:
        return [alias.lstrip("@") for alias in value]

    @field_validator("approve_emoji", "changes_emoji")
    @classmethod
    def _bare_emoji(cls, value: str) -> str:
        return value.strip().strip(":")  # accept ":x:" as well as "x"

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def ui_url(self) -> str:
        """Base URL of the MLflow UI for links; "" when none is known (a local sqlite store)."""
        if self.mlflow_ui_url:
            return strip_credentials(self.mlflow_ui_url).rstrip("/")
        if self.mlflow_tracking_uri.startswith(("http://", "https://")):
            # The tracking URI may carry a password for the bot's MLflow account: links never do.
            return strip_credentials(self.mlflow_tracking_uri).rstrip("/")
        return ""

    def require_slack_http(self) -> None:
        """Fail with the variable's name when HTTP mode cannot run."""
        if self.slack_bot_token is None:
            raise MissingSettingError(
                "SLACK_BOT_TOKEN", "the bot's xoxb- token from the Slack app's OAuth page"
            )
        if self.slack_signing_secret is None:
            raise MissingSettingError(
                "SLACK_SIGNING_SECRET", "the signing secret from the Slack app's Basic Information page"
            )

    def require_socket_mode(self) -> None:
        if self.slack_bot_token is None:
            raise MissingSettingError(
                "SLACK_BOT_TOKEN", "the bot's xoxb- token from the Slack app's OAuth page"
            )
        if self.slack_app_token is None:
            raise MissingSettingError(
                "SLACK_APP_TOKEN", "an xapp- app-level token with connections:write, for Socket Mode"
            )
