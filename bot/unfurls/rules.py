"""Which pasted links are unfurled, what each points at, where the unfurl goes, and the app manifest's
unfurl domain. Pure: no Slack, no MLflow.

A link is unfurled only when it is a page of the MLflow UI the bot links to itself (`Settings.ui_url`:
MLFLOW_UI_URL, or the tracking URI when it is http(s)): the same scheme, host and port, under the same
path. What it points at is read by `bot.commands.parse_ref` (a run, a LoggedModel, a model version, a
prompt), or is an experiment's page; any other page of the UI is left alone.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.commands import parse_ref
from bot.errors import BadReference
from bot.models import Direction, ModelMetric, ReviewState, RunRef, RunSummary, SubjectKind
from bot.subjects import subject_kind

MAX_LINKS = 5  # Slack sends a message's links in one event, a handful at most; more are left alone
CACHE_TTL_SECONDS = 60  # an edited message, or the same link in several channels, within a minute
CACHE_PREFIX = "unfurl:"
UNFURL_METRICS = 4  # metrics on an unfurl: REVIEW_KEY_METRICS, then PRIMARY_METRIC, then by name
EVENTS_PATH = "/slack/events"
SLACK_HOST = "slack.com"
DEFAULT_PORTS = {"http": 80, "https": 443}

# An experiment's page: `#/experiments/<id>`, its runs tab, or either with the UI's search in the query.
_EXPERIMENT_PAGE = re.compile(r"^/experiments/(?P<id>[0-9]+)/?(?:runs/?)?(?:\?.*)?$")

NO_UI_URL = (
    "MLFLOW_UI_URL is not set (nor an http(s) MLFLOW_TRACKING_URI): Slack needs the MLflow UI's domain to "
    "unfurl its links"
)
NOT_A_BOT_URL = "--bot-url must be the bot's public address, e.g. https://review-bot.example.com"
NOT_A_PUBLIC_DOMAIN = (
    "{domain} is not a public domain name: Slack unfurls links only on domains it can verify, so links to "
    "this MLflow UI will not unfurl"
)


@dataclass(frozen=True)
class UnfurlTarget:
    """A pasted link and what it points at: `ref` (run, LoggedModel, model version, prompt), or an
    experiment's page (`experiment_id`)."""

    url: str  # exactly as Slack sent it: the key of its unfurl
    ref: RunRef | None = None
    experiment_id: str = ""


@dataclass(frozen=True)
class ReviewShown:
    """Where the review of what a link points at stands, as its unfurl shows it."""

    subject: str  # the subject id (bot.subjects) the Review button asks for
    review: ReviewState | None
    required_approvals: int = 1
    waiting_on: tuple[str, ...] = ()  # reviewers who have not voted yet (Slack user ids)


@dataclass(frozen=True)
class VersionShown:
    """A registered model version as the registry describes it."""

    name: str
    version: str
    aliases: tuple[str, ...] = ()
    stage: str = ""
    status: str = ""


@dataclass(frozen=True)
class ExperimentShown:
    """An experiment: how many runs (`capped`: at least that many), and its best run by `metric`."""

    experiment_id: str
    name: str
    url: str
    runs: int
    capped: bool = False
    metric: str = ""  # PRIMARY_METRIC; "" when not set
    direction: Direction | None = None  # which way it improves; not judged: no best run
    best: RunSummary | None = None


# --- which links ----------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) of an http(s) URL, the default port made explicit; None otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme], parts.path


def ui_page(url: str, ui_url: str) -> str | None:
    """The page of the MLflow UI at `ui_url` that `url` shows (`/experiments/1/runs/…`: the part after
    `#`, or after the UI's path when it runs without a hash router), or None for a URL elsewhere."""
    link, ui = _origin(url), _origin(ui_url) if ui_url else None
    if link is None or ui is None or link[:3] != ui[:3]:
        return None
    prefix = ui[3].rstrip("/")
    path = link[3]
    if prefix and path != prefix and not path.startswith(prefix + "/"):
        return None
    parts = urlsplit(url.strip())
    if parts.fragment.startswith("/"):
        return parts.fragment
    page = path[len(prefix) :] or "/"
    return page + (f"?{parts.query}" if parts.query else "")


def target_of(url: str, ui_url: str) -> UnfurlTarget | None:
    """What a pasted link points at, or None when it is not a page of this MLflow UI the bot unfurls."""
    page = ui_page(url.replace("&amp;", "&"), ui_url)
    if page is None:
        return None
    experiment = _EXPERIMENT_PAGE.match(page)
    if experiment:
        return UnfurlTarget(url=url, experiment_id=experiment.group("id"))
    try:
        return UnfurlTarget(url=url, ref=parse_ref(url.replace("&amp;", "&")))
    except BadReference:  # the UI's home page, a registered model's page, a trace: nothing to show
        return None


def targets(links: Iterable[Mapping[str, Any]], ui_url: str, limit: int = MAX_LINKS) -> list[UnfurlTarget]:
    """The links of a link_shared event worth unfurling, each once, in order, at most `limit`."""
    found: list[UnfurlTarget] = []
    seen: set[str] = set()
    for link in links:
        url = str(link.get("url") or "")
        if not url or url in seen:
            continue
        seen.add(url)
        target = target_of(url, ui_url)
        if target is not None:
            found.append(target)
        if len(found) == limit:
            break
    return found


# --- where the unfurl goes ------------------------------------------------------------------------


def unfurl_address(event: Mapping[str, Any]) -> dict[str, str] | None:
    """chat.unfurl's address for the event's message: `unfurl_id` and `source` when the event has them
    (the only address of a link still in the composer), else `channel` and `ts`; None when neither."""
    if event.get("unfurl_id") and event.get("source"):
        return {"unfurl_id": str(event["unfurl_id"]), "source": str(event["source"])}
    if event.get("channel") and event.get("message_ts"):
        return {"channel": str(event["channel"]), "ts": str(event["message_ts"])}
    return None


def cache_key(url: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:40]


# --- what the unfurl says ---------------------------------------------------------------------------


def review_reference(subject_id: str) -> str:
    """A subject id (bot.subjects) as a reference `parse_ref` reads back: what the Review button carries."""
    if subject_kind(subject_id) is SubjectKind.LOGGED_MODEL:
        return f"models:/{subject_id}"
    return subject_id  # a run id, models:/<name>/<version> or prompts:/<name>/<version>


def shown_metrics(
    metrics: Mapping[str, float], key_metrics: Sequence[str], primary: str | None, limit: int = UNFURL_METRICS
) -> list[str]:
    """The metrics an unfurl shows: REVIEW_KEY_METRICS in their order, PRIMARY_METRIC, then by name."""
    first = [*key_metrics, *([primary] if primary else [])]
    chosen = [k for k in dict.fromkeys(first) if k in metrics]
    chosen += sorted(k for k in metrics if k not in set(chosen))
    return chosen[:limit]


def model_metrics_shown(
    metrics: Sequence[ModelMetric],
    key_metrics: Sequence[str],
    primary: str | None,
    limit: int = UNFURL_METRICS,
) -> list[tuple[str, float]]:
    """A LoggedModel's metrics as an unfurl shows them: the last step of each metric on each dataset,
    labelled `key (dataset)`, REVIEW_KEY_METRICS and PRIMARY_METRIC first, then by name."""
    last: dict[tuple[str, str], ModelMetric] = {}
    for metric in metrics:
        slot = (metric.key, metric.dataset_name)
        if slot not in last or metric.step >= last[slot].step:
            last[slot] = metric
    first = list(dict.fromkeys([*key_metrics, *([primary] if primary else [])]))

    def rank(slot: tuple[str, str]) -> tuple[int, str, str]:
        key, dataset = slot
        return (first.index(key) if key in first else len(first), key, dataset)

    return [
        (f"{key} ({dataset})" if dataset else key, last[(key, dataset)].value)
        for key, dataset in sorted(last, key=rank)[:limit]
    ]


def card_link(review: ReviewState | None) -> str:
    """The review card's permalink from the review's tags, when the bot can vouch for the record and it
    is a Slack address; "" otherwise (a tag anyone can set must not send people elsewhere)."""
    if review is None or review.untrusted or not review.slack_permalink:
        return ""
    origin = _origin(review.slack_permalink)
    if origin is None or origin[0] != "https":
        return ""
    host = origin[1]
    return review.slack_permalink if host == SLACK_HOST or host.endswith("." + SLACK_HOST) else ""


# --- the app manifest -------------------------------------------------------------------------------


def unfurl_domain(ui_url: str) -> str:
    """The domain Slack must be told to unfurl: the MLflow UI's host; "" when no UI address is known."""
    origin = _origin(ui_url) if ui_url else None
    return origin[1] if origin else ""


def domain_problem(domain: str) -> str | None:
    """Why Slack would not unfurl links on `domain` (an IP address, localhost, a bare name), or None."""
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        if "." in domain and not domain.endswith((".localhost", ".local")):
            return None
    return NOT_A_PUBLIC_DOMAIN.format(domain=domain)


def events_url(bot_url: str) -> str:
    """Slack's request URL for the bot at `bot_url` (its base address, or the events URL itself)."""
    origin = _origin(bot_url)
    if origin is None:
        raise ValueError(NOT_A_BOT_URL)
    base = bot_url.strip().rstrip("/")
    return base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH


def manifest_for(manifest: Mapping[str, Any], ui_url: str, bot_url: str | None = None) -> dict[str, Any]:
    """manifest.yml for this deployment: `features.unfurl_domains` is the MLflow UI's domain and, with
    `bot_url`, every request URL (the command, interactivity, events) points at the bot. ValueError
    when there is no UI address or `bot_url` is not an http(s) address."""
    domain = unfurl_domain(ui_url)
    if not domain:
        raise ValueError(NO_UI_URL)
    result = copy.deepcopy(dict(manifest))
    features = result.setdefault("features", {})
    features["unfurl_domains"] = [domain]
    if bot_url is not None:
        url = events_url(bot_url)
        for command in features.get("slash_commands") or []:
            command["url"] = url
        settings = result.get("settings") or {}
        for section in ("interactivity", "event_subscriptions"):
            if isinstance(settings.get(section), dict):
                settings[section]["request_url"] = url
    return result
