"""Unit tests for bot.config: Settings from the environment only (no .env), read when built."""

from __future__ import annotations

import pytest

from bot.config import DEFAULT_SLACK_API_URL, MissingSettingError, Settings
from bot.models import Direction, MetricGoal

BOT_TOKEN = "xoxb-1234567890-secret-bot-token"
SIGNING_SECRET = "0123456789abcdef-signing-secret"
APP_TOKEN = "xapp-1-A1-secret-app-token"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def _settings() -> Settings:
    return Settings(_env_file=None)


def test_defaults() -> None:
    settings = _settings()
    assert settings.slack_bot_token is None
    assert settings.slack_api_url == DEFAULT_SLACK_API_URL
    assert settings.mlflow_tracking_uri == "http://localhost:5000"
    assert settings.ui_url == "http://localhost:5000"
    assert settings.review_key_metrics == []
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("auc", ["auc"]),
        ("auc,loss", ["auc", "loss"]),
        (" auc , loss ,, f1 ", ["auc", "loss", "f1"]),
        ("", []),
        (",", []),
    ],
)
def test_review_key_metrics_splits_on_commas(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("REVIEW_KEY_METRICS", raw)
    assert _settings().review_key_metrics == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://localhost:8080/api", "http://localhost:8080/api/"),
        ("http://localhost:8080/api/", "http://localhost:8080/api/"),
    ],
)
def test_slack_api_url_gets_a_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: str
) -> None:
    monkeypatch.setenv("SLACK_API_URL", raw)
    assert _settings().slack_api_url == expected


@pytest.mark.parametrize(
    ("tracking_uri", "expected"),
    [
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("https://mlflow.example.com/", "https://mlflow.example.com"),
        ("sqlite:///mlflow.db", ""),
        ("file:///tmp/mlruns", ""),
        ("databricks", ""),
    ],
)
def test_ui_url_defaults_from_the_tracking_uri(
    monkeypatch: pytest.MonkeyPatch, tracking_uri: str, expected: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    assert _settings().ui_url == expected


@pytest.mark.parametrize("tracking_uri", ["sqlite:///mlflow.db", "http://mlflow:5000"])
def test_mlflow_ui_url_overrides(monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("MLFLOW_UI_URL", "https://ui.example.com/mlflow/")
    assert _settings().ui_url == "https://ui.example.com/mlflow"


def test_require_slack_http_names_the_bot_token_first() -> None:
    with pytest.raises(MissingSettingError) as caught:
        _settings().require_slack_http()
    assert caught.value.variable == "SLACK_BOT_TOKEN"
    assert str(caught.value).startswith("SLACK_BOT_TOKEN is not set: ")


def test_require_slack_http_then_the_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with pytest.raises(MissingSettingError) as caught:
        _settings().require_slack_http()
    assert caught.value.variable == "SLACK_SIGNING_SECRET"
    assert str(caught.value).startswith("SLACK_SIGNING_SECRET is not set: ")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    _settings().require_slack_http()


def test_require_socket_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with pytest.raises(MissingSettingError) as caught:
        _settings().require_socket_mode()
    assert caught.value.variable == "SLACK_APP_TOKEN"
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    _settings().require_socket_mode()


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    settings = _settings()
    for shown in (repr(settings), str(settings)):
        assert BOT_TOKEN not in shown and SIGNING_SECRET not in shown and APP_TOKEN not in shown
    assert "slack_bot_token=SecretStr('**********')" in repr(settings)
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == BOT_TOKEN


def test_settings_are_read_when_built_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "3100")
    assert _settings().port == 3100
    monkeypatch.setenv("PORT", "3200")
    assert _settings().port == 3200


@pytest.mark.parametrize(
    ("name", "value"), [("PORT", "0"), ("MAX_THREAD_IMAGES", "21"), ("WORKER_THREADS", "0")]
)
def test_out_of_range_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.lower()):
        _settings()


def test_comparison_settings_defaults() -> None:
    settings = _settings()
    assert settings.primary_metric is None
    assert settings.metric_directions == {}
    assert settings.deployment_aliases == ["champion", "production", "prod"]


def test_comparison_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIMARY_METRIC", "rmse:min")
    monkeypatch.setenv("METRIC_DIRECTIONS", "accuracy:max, *_ms:min")
    monkeypatch.setenv("DEPLOYMENT_ALIASES", "live, champion")
    settings = _settings()
    assert settings.primary_metric == MetricGoal(key="rmse", direction=Direction.MIN)
    assert settings.metric_directions == {"accuracy": Direction.MAX, "*_ms": Direction.MIN}
    assert settings.deployment_aliases == ["live", "champion"]


def test_primary_metric_without_direction_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIMARY_METRIC", "val_auc")
    assert _settings().primary_metric == MetricGoal(key="val_auc")
    monkeypatch.setenv("PRIMARY_METRIC", "")
    assert _settings().primary_metric is None


@pytest.mark.parametrize(
    ("variable", "value"), [("PRIMARY_METRIC", "val_auc:up"), ("METRIC_DIRECTIONS", "accuracy")]
)
def test_bad_comparison_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable.lower()):
        _settings()
