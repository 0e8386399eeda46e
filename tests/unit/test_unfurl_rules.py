"""bot.unfurls.rules: which links unfurl and what they point at, where the unfurl goes, the manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.models import ModelMetric, RefKind, ReviewState, ReviewStatus
from bot.unfurls import rules
from bot.unfurls.rules import UnfurlTarget

UI = "https://mlflow.example.com"
RUN = "0123456789abcdef0123456789abcdef"
MODEL = "m-" + "a" * 32
MANIFEST = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())


@pytest.mark.parametrize(
    ("url", "kind", "fields"),
    [
        (f"{UI}/#/experiments/3/runs/{RUN}", RefKind.RUN, {"run_id": RUN}),
        (f"{UI}/#/experiments/3/runs/{RUN.upper()}/artifacts", RefKind.RUN, {"run_id": RUN}),
        (f"{UI}/#/experiments/3/models/{MODEL}", RefKind.LOGGED_MODEL, {"model_id": MODEL}),
        (f"{UI}/#/models/fraud%20clf/versions/4", RefKind.MODEL_VERSION, {"model_name": "fraud clf"}),
        (f"{UI}/#/prompts/summarizer?promptVersion=2", RefKind.PROMPT_VERSION, {"version": "2"}),
        (f"{UI}/#/prompts/summarizer", RefKind.PROMPT_ALIAS, {"alias": "latest"}),
        (f"HTTPS://MLFLOW.example.com:443/#/experiments/3/runs/{RUN}", RefKind.RUN, {"run_id": RUN}),
    ],
)
def test_a_page_of_the_ui_is_read_as_the_reference_it_shows(url: str, kind: RefKind, fields: dict) -> None:
    target = rules.target_of(url, UI)
    assert target is not None and target.ref is not None and target.url == url
    assert target.ref.kind is kind
    assert {k: getattr(target.ref, k) for k in fields} == fields


@pytest.mark.parametrize(
    "page",
    [
        "/#/experiments/12",
        "/#/experiments/12/",
        "/#/experiments/12/runs",
        "/#/experiments/12?searchFilter=metrics.auc%20%3E%200.9&orderByKey=x",
        "/#/experiments/12/runs?searchFilter=&amp;orderByAsc=false",
    ],
)
def test_an_experiment_page_is_an_experiment(page: str) -> None:
    assert rules.target_of(UI + page, UI) == UnfurlTarget(url=UI + page, experiment_id="12")


@pytest.mark.parametrize(
    "url",
    [
        f"https://evil.example.com/#/experiments/3/runs/{RUN}",  # another host
        f"https://mlflow.example.com.evil.io/#/experiments/3/runs/{RUN}",
        f"http://mlflow.example.com/#/experiments/3/runs/{RUN}",  # another scheme
        f"https://mlflow.example.com:8443/#/experiments/3/runs/{RUN}",  # another port
        f"ftp://mlflow.example.com/#/experiments/3/runs/{RUN}",
        f"{UI}/",  # the UI's home page
        f"{UI}/#/models/fraud-clf",  # a registered model's page: many versions
        f"{UI}/#/experiments/3/traces",
        f"{UI}/#/compare-runs?runs=[]",
        "not a url",
        "",
    ],
)
def test_other_links_are_left_alone(url: str) -> None:
    assert rules.target_of(url, UI) is None


def test_a_ui_under_a_path_unfurls_its_own_pages_only() -> None:
    ui = "https://tools.example.com/mlflow/"
    assert rules.target_of(f"https://tools.example.com/mlflow/#/experiments/3/runs/{RUN}", ui) is not None
    assert rules.target_of(f"https://tools.example.com/mlflow#/experiments/3/runs/{RUN}", ui) is not None
    assert rules.target_of(f"https://tools.example.com/other/#/experiments/3/runs/{RUN}", ui) is None
    assert rules.target_of(f"https://tools.example.com/mlflowx/#/experiments/3/runs/{RUN}", ui) is None
    # without a hash router the page is the path under the UI's
    assert rules.target_of("https://tools.example.com/mlflow/experiments/7", ui) == UnfurlTarget(
        url="https://tools.example.com/mlflow/experiments/7", experiment_id="7"
    )


def test_no_ui_address_unfurls_nothing() -> None:
    assert rules.target_of(f"{UI}/#/experiments/3/runs/{RUN}", "") is None


def test_targets_keep_each_link_once_in_order_up_to_the_limit() -> None:
    links = [{"url": f"{UI}/#/experiments/{i}", "domain": "mlflow.example.com"} for i in range(8)]
    links.insert(1, {"url": f"{UI}/#/experiments/0"})  # the same link twice
    links.insert(2, {"url": "https://elsewhere.example.com/x"})
    links.insert(3, {"domain": "mlflow.example.com"})  # no url
    found = rules.targets(links, UI, limit=3)
    assert [t.experiment_id for t in found] == ["0", "1", "2"]
    assert len(rules.targets(links, UI)) == rules.MAX_LINKS


@pytest.mark.parametrize(
    ("event", "address"),
    [
        (
            {"channel": "C1", "message_ts": "1.2", "unfurl_id": "U-1", "source": "conversations_history"},
            {"unfurl_id": "U-1", "source": "conversations_history"},
        ),
        (
            {"channel": "COMPOSER", "unfurl_id": "U-2", "source": "composer"},
            {"unfurl_id": "U-2", "source": "composer"},
        ),
        ({"channel": "C1", "message_ts": "1.2"}, {"channel": "C1", "ts": "1.2"}),
        ({"channel": "C1", "message_ts": "1.2", "unfurl_id": "U-1"}, {"channel": "C1", "ts": "1.2"}),
        ({"channel": "C1"}, None),
        ({}, None),
    ],
)
def test_the_unfurl_goes_to_the_unfurl_id_when_the_event_has_one(event: dict, address: dict | None) -> None:
    assert rules.unfurl_address(event) == address


def test_the_review_button_carries_a_reference_parse_ref_reads_back() -> None:
    assert rules.review_reference(RUN) == RUN
    assert rules.review_reference(MODEL) == f"models:/{MODEL}"
    assert rules.review_reference("models:/fraud%2Fclf/3") == "models:/fraud%2Fclf/3"
    assert rules.review_reference("prompts:/summarizer/2") == "prompts:/summarizer/2"


def test_shown_metrics_key_metrics_then_the_primary_then_by_name() -> None:
    metrics = {"b": 1.0, "a": 2.0, "val_loss": 0.3, "val_auc": 0.9, "z": 0.0}
    assert rules.shown_metrics(metrics, ["val_auc", "missing"], "val_loss") == [
        "val_auc",
        "val_loss",
        "a",
        "b",
    ]
    assert rules.shown_metrics(metrics, [], "val_auc", limit=2) == ["val_auc", "a"]
    assert rules.shown_metrics(metrics, ["z"], "z") == ["z", "a", "b", "val_auc"]
    assert rules.shown_metrics({}, ["val_auc"], None) == []


def test_model_metrics_last_step_per_dataset_key_metrics_first() -> None:
    metrics = [
        ModelMetric(key="latency", value=3.0, step=0),
        ModelMetric(key="accuracy", value=0.5, step=0, dataset_name="holdout"),
        ModelMetric(key="accuracy", value=0.8, step=2, dataset_name="holdout"),
        ModelMetric(key="accuracy", value=0.7, step=1, dataset_name="holdout"),
        ModelMetric(key="accuracy", value=0.6, step=0, dataset_name="shadow"),
    ]
    assert rules.model_metrics_shown(metrics, [], "latency") == [
        ("latency", 3.0),
        ("accuracy (holdout)", 0.8),
        ("accuracy (shadow)", 0.6),
    ]
    assert rules.model_metrics_shown(metrics, [], None, limit=1) == [("accuracy (holdout)", 0.8)]


def _review(permalink: str, untrusted: str = "") -> ReviewState:
    return ReviewState(
        run_id=RUN,
        status=ReviewStatus.PENDING,
        requested_at=datetime(2026, 1, 5, tzinfo=UTC),
        slack_permalink=permalink,
        untrusted=untrusted,
    )


def test_card_link_only_for_a_trusted_record_pointing_at_slack() -> None:
    card = "https://acme.slack.com/archives/C0REVIEW/p1700000000000100"
    assert rules.card_link(_review(card)) == card
    assert rules.card_link(_review("https://slack.com/archives/C1/p1")) == "https://slack.com/archives/C1/p1"
    assert rules.card_link(_review(card, untrusted="no signature")) == ""
    assert rules.card_link(_review("https://evil.example.com/archives/C1/p1")) == ""
    assert rules.card_link(_review("https://notslack.com/archives/C1/p1")) == ""
    assert rules.card_link(_review("http://acme.slack.com/archives/C1/p1")) == ""
    assert rules.card_link(_review("")) == ""
    assert rules.card_link(None) == ""


def test_the_cache_key_is_per_url() -> None:
    key = rules.cache_key(f"{UI}/#/experiments/1")
    assert key.startswith(rules.CACHE_PREFIX) and key == rules.cache_key(f"{UI}/#/experiments/1")
    assert key != rules.cache_key(f"{UI}/#/experiments/2")


# --- the manifest -------------------------------------------------------------------------------------


def test_unfurl_domain_and_what_slack_would_refuse() -> None:
    assert rules.unfurl_domain("https://MLflow.Acme.io:8443/ui/") == "mlflow.acme.io"
    assert rules.unfurl_domain("") == ""
    assert rules.unfurl_domain("sqlite:///mlflow.db") == ""
    assert rules.domain_problem("mlflow.acme.io") is None
    for domain in ("127.0.0.1", "localhost", "mlflow", "mlflow.localhost", "::1"):
        assert rules.domain_problem(domain) == rules.NOT_A_PUBLIC_DOMAIN.format(domain=domain)


@pytest.mark.parametrize(
    ("bot_url", "events"),
    [
        ("https://bot.acme.io", "https://bot.acme.io/slack/events"),
        ("https://bot.acme.io/", "https://bot.acme.io/slack/events"),
        ("https://acme.io/review-bot", "https://acme.io/review-bot/slack/events"),
        ("https://bot.acme.io/slack/events", "https://bot.acme.io/slack/events"),
    ],
)
def test_events_url(bot_url: str, events: str) -> None:
    assert rules.events_url(bot_url) == events


def test_manifest_for_sets_the_unfurl_domain_and_the_request_urls() -> None:
    made = rules.manifest_for(MANIFEST, "https://mlflow.acme.io/", "https://bot.acme.io")
    events = "https://bot.acme.io/slack/events"
    expected = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    expected["features"]["unfurl_domains"] = ["mlflow.acme.io"]
    expected["features"]["slash_commands"][0]["url"] = events
    expected["settings"]["interactivity"]["request_url"] = events
    expected["settings"]["event_subscriptions"]["request_url"] = events
    assert made == expected
    assert MANIFEST["features"]["unfurl_domains"] == ["mlflow.example.com"]  # the input is not changed


def test_manifest_for_without_a_bot_url_keeps_the_request_urls() -> None:
    made = rules.manifest_for(MANIFEST, "http://mlflow.internal.acme.io:5000")
    assert made["features"]["unfurl_domains"] == ["mlflow.internal.acme.io"]
    assert {k: v for k, v in made.items() if k != "features"} == {
        k: v for k, v in MANIFEST.items() if k != "features"
    }
    assert made["features"]["slash_commands"] == MANIFEST["features"]["slash_commands"]


def test_manifest_for_refuses_without_a_ui_or_with_a_bad_bot_url() -> None:
    with pytest.raises(ValueError, match="MLFLOW_UI_URL"):
        rules.manifest_for(MANIFEST, "")
    with pytest.raises(ValueError, match="--bot-url"):
        rules.manifest_for(MANIFEST, UI, "bot.acme.io")
    assert rules.manifest_for({}, UI) == {"features": {"unfurl_domains": ["mlflow.example.com"]}}
