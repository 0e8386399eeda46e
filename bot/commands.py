"""What the text after `/review` means. Pure: no Slack, no MLflow."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from bot.compare.rules import MAX_COMPARED, MIN_COMPARED
from bot.errors import BadReference
from bot.ids import COMMAND
from bot.models import Direction, RefKind, RunRef
from bot.slack.mrkdwn import escape, truncate

SHOWN_INPUT_CHARS = 120
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_URL_RUN_RE = re.compile(r"/runs/([0-9a-fA-F]{32})(?:[/?#]|$)")
_RUNS_URI_RE = re.compile(r"^runs:/([^/]+)(?:/.*)?$")
_MODELS_URI_RE = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))/?$")
_LOGGED_MODEL_URI_RE = re.compile(r"^models:/(?P<id>m-[0-9a-fA-F]{32})(?:/.*)?$")
_PROMPTS_URI_RE = re.compile(r"^prompts:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?/?$")
# The MLflow UI's pages (the part after `#`, or the path when the UI runs without a hash router).
_URL_LOGGED_MODEL_RE = re.compile(r"/experiments/[^/]+/models/(m-[0-9a-fA-F]{32})(?:[/?#]|$)")
_URL_MODEL_VERSION_RE = re.compile(r"/models/([^/?#]+)/versions/([0-9]+)(?:[/?#]|$)")
_URL_MODEL_RE = re.compile(r"/models/([^/?#]+)/?(?:[?#]|$)")
_URL_PROMPT_RE = re.compile(r"/prompts/([^/?#]+)/?(?:\?(?P<query>[^#]*))?(?:#|$)")
_URL_PROMPT_VERSION_RE = re.compile(r"(?:^|&)(?:promptVersion|version)=([0-9]+)(?:&|$)")
# MLflow's legacy stages, as `models:/name/<stage>` names them (case-insensitive, as MLflow reads them).
MODEL_STAGES = {"production": "Production", "staging": "Staging", "archived": "Archived", "none": "None"}
LATEST = "latest"
# Names echoed back in messages must not be able to format, mention or link.
_UNSAFE_NAME_RE = re.compile(r"[<>&`\n\r]")
# `/review leaderboard <experiment> valid-l2:min`: which way the metric improves, said with it.
_METRIC_WAY_RE = re.compile(r"^(?P<metric>.+):(?P<way>max|min)$", re.IGNORECASE)
_RANK_WAY_RE = re.compile(r"^:(?:max|min)$", re.IGNORECASE)
_RANK_WAYS = {"max": Direction.MAX, "min": Direction.MIN}
# Slack wraps links in command text as <url> or <url|label> when "escape links" is on.
_SLACK_LINK_RE = re.compile(r"^<([^|>]+)(?:\|[^>]*)?>$")

USAGE = (
    f"*Usage:* `{COMMAND} <run>` posts a review card for an MLflow run.\n"
    "`<run>` can be:\n"
    "• a run id: `3f2a9c…` (32 hex characters)\n"
    "• a run's URL from the MLflow UI: `https://mlflow.example.com/#/experiments/1/runs/3f2a9c…`\n"
    "• a run URI: `runs:/3f2a9c…/model`\n"
    "• a registered model version: `models:/fraud-clf/3`, an alias: `models:/fraud-clf@champion`, "
    "`models:/fraud-clf/latest` or a legacy stage: `models:/fraud-clf/Production`\n"
    "• a logged model (MLflow 3): `models:/m-3f2a9c…`, as `log_model` returns it\n"
    "• a prompt version: `prompts:/summarizer/2` or `prompts:/summarizer@production`\n"
    "• the page of any of these in the MLflow UI: a run, a logged model, a model version or a prompt\n"
    "The card names its baseline (the deployed champion, the parent run or the best earlier run); "
    f"`{COMMAND} <run> --baseline <run>` picks it yourself.\n"
    f"`{COMMAND} compare <run> <run> […]` compares 2 to {MAX_COMPARED} runs side by side.\n"
    f"`{COMMAND} leaderboard <experiment> [metric[:max|:min]] [n]` lists an experiment's best runs "
    "(by `PRIMARY_METRIC` unless you name a metric; `:max` or `:min` says which way it improves when the "
    "bot does not know; 10 unless you give `n`).\n"
    f"`{COMMAND} schedule <run> <when>` schedules its review meeting (`tomorrow 3pm`, `next tuesday 10:30`, "
    "`in 2 hours`, `2026-12-01 15:00`; in your Slack timezone).\n"
    f"`{COMMAND} agenda` lists the reviews still pending; `{COMMAND} agenda <when>` schedules them all "
    "into one meeting.\n"
    f"`{COMMAND} help` shows this message. Mentioning the bot works too: `@review-bot <run>`."
)


@dataclass(frozen=True)
class HelpCommand:
    pass


@dataclass(frozen=True)
class ReviewCommand:
    ref: RunRef
    baseline: RunRef | None = None  # --baseline <run>


@dataclass(frozen=True)
class CompareCommand:
    refs: tuple[RunRef, ...]


@dataclass(frozen=True)
class LeaderboardCommand:
    """`words` name the experiment and maybe a metric; which is which needs MLflow (names have spaces)."""

    words: tuple[str, ...]
    limit: int = 10
    direction: Direction | None = None  # `val_l2:min`: the last word is the metric, ranked this way


@dataclass(frozen=True)
class ScheduleCommand:
    ref: RunRef
    when: str


@dataclass(frozen=True)
class AgendaCommand:
    when: str  # "" lists the pending reviews; a time schedules them all into one meeting


Command = HelpCommand | ReviewCommand | ScheduleCommand | AgendaCommand | CompareCommand | LeaderboardCommand

BASELINE_FLAG = "--baseline"
LEADERBOARD_MAX = 25


HELP_WORDS = frozenset({"help", "-h", "--help", "?"})


COMPARE_COUNT = (
    f":thinking_face: `{COMMAND} compare` takes {MIN_COMPARED} to {MAX_COMPARED} runs, got {{n}}. "
    f"For example `{COMMAND} compare <run id> <run id>`."
)
COMPARE_TWICE = ":thinking_face: `{ref}` is named twice; compare different runs."
LEADERBOARD_USAGE = (
    f":thinking_face: Usage: `{COMMAND} leaderboard <experiment name or id> [metric[:max|:min]] [n]`, "
    f"for example `{COMMAND} leaderboard fraud-detection val_auc 5` or "
    f"`{COMMAND} leaderboard fraud-detection valid-l2:min`."
)
LEADERBOARD_LIMIT = f":thinking_face: `n` is how many runs to list: 1 to {LEADERBOARD_MAX}, got {{n}}."
BASELINE_USAGE = (
    f":thinking_face: Usage: `{COMMAND} <run> {BASELINE_FLAG} <run>`, with one run after `{BASELINE_FLAG}`."
)

SCHEDULE_USAGE = (
    f":thinking_face: Usage: `{COMMAND} schedule <run> <when>`, for example "
    f"`{COMMAND} schedule 0123456789abcdef0123456789abcdef tomorrow 3pm`."
)


def is_help(text: str) -> bool:
    words = text.split()
    return not words or words[0].lower() in HELP_WORDS


def parse_command(text: str) -> Command:
    words = text.split()
    if is_help(text):
        return HelpCommand()
    if words[0].lower() == "compare":
        return _compare(words[1:])
    if words[0].lower() == "leaderboard":
        return _leaderboard(text.strip()[len(words[0]) :])
    if words[0].lower() == "agenda":
        return AgendaCommand(when=" ".join(words[1:]))
    if words[0].lower() == "schedule":
        if len(words) < 3:
            raise BadReference(SCHEDULE_USAGE)
        return ScheduleCommand(ref=parse_ref(words[1]), when=" ".join(words[2:]))
    if BASELINE_FLAG in [w.lower() for w in words] or any(
        w.lower().startswith(BASELINE_FLAG + "=") for w in words
    ):
        return _review_with_baseline(words)
    if len(words) > 1:
        raise BadReference(
            f":thinking_face: `{COMMAND}` takes one run, got {len(words)} words. "
            f"Try `{COMMAND} <run id>` or `{COMMAND} help`."
        )
    return ReviewCommand(ref=parse_ref(words[0]))


def _review_with_baseline(words: list[str]) -> ReviewCommand:
    """`<run> --baseline <run>`, `--baseline <run> <run>` or `<run> --baseline=<run>`."""
    rest: list[str] = []
    baseline: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word.lower() == BASELINE_FLAG:
            baseline += words[index + 1 : index + 2]
            index += 2
            continue
        if word.lower().startswith(BASELINE_FLAG + "="):
            baseline.append(word[len(BASELINE_FLAG) + 1 :])
        else:
            rest.append(word)
        index += 1
    if len(rest) != 1 or len(baseline) != 1 or not baseline[0]:
        raise BadReference(BASELINE_USAGE)
    return ReviewCommand(ref=parse_ref(rest[0]), baseline=parse_ref(baseline[0]))


def _compare(words: list[str]) -> CompareCommand:
    if not MIN_COMPARED <= len(words) <= MAX_COMPARED:
        raise BadReference(COMPARE_COUNT.format(n=len(words)))
    refs = tuple(parse_ref(w) for w in words)
    seen: set[RunRef] = set()
    for ref in refs:
        key = ref.model_copy(update={"raw": ""})
        if key in seen:
            raise BadReference(COMPARE_TWICE.format(ref=_shown(ref.raw)))
        seen.add(key)
    return CompareCommand(refs=refs)


def _leaderboard(text: str) -> LeaderboardCommand:
    try:
        words = shlex.split(text)  # "my experiment" in quotes is one name
    except ValueError:
        words = text.split()
    if not words:
        raise BadReference(LEADERBOARD_USAGE)
    limit = 10
    if len(words) > 1 and words[-1].isdigit():
        limit = int(words.pop())
        if not 1 <= limit <= LEADERBOARD_MAX:
            raise BadReference(LEADERBOARD_LIMIT.format(n=limit))
    direction = None
    if len(words) > 2 and _RANK_WAY_RE.match(words[-1]):  # `valid-l2 :min`
        words[-2:] = [words[-2] + words[-1]]
    match = _METRIC_WAY_RE.match(words[-1]) if len(words) > 1 else None
    if match:
        words[-1] = match.group("metric")
        direction = _RANK_WAYS[match.group("way").lower()]
    return LeaderboardCommand(words=tuple(words), limit=limit, direction=direction)


ACCEPTED_FORMS = (
    "a run id (32 hex characters), `runs:/<run id>/…`, `models:/<name>/<version>`, `models:/<name>@<alias>`, "
    "`models:/<name>/latest`, `models:/<name>/<stage>`, `models:/m-<id>` (a logged model), "
    "`prompts:/<name>/<version>`, `prompts:/<name>@<alias>`, or the MLflow UI page of a run, a logged model, "
    "a model version or a prompt"
)
UNSAFE_NAME = (
    ":thinking_face: `{raw}` has characters no registered model or prompt name uses here "
    "(`<`, `>`, `&`, backticks or line breaks). Copy the name from the MLflow UI."
)
BAD_MODEL_URI = f":thinking_face: `{{raw}}` is not a model URI I can review. I accept {ACCEPTED_FORMS}."
BAD_PROMPT_URI = (
    ":thinking_face: `{raw}` is not a prompt URI I can review: use `prompts:/<name>/<version number>` or "
    "`prompts:/<name>@<alias>`."
)
NOT_A_PAGE = (
    ":thinking_face: `{raw}` does not look like an MLflow page I can review. "
    "Open the run, logged model, model version or prompt in the MLflow UI and copy its URL."
)
MODEL_PAGE = (
    ":thinking_face: `{raw}` is a registered model's page, which has many versions. Open the version you "
    "want reviewed and copy its URL, or use `models:/{name}@<alias>` or `models:/{name}/latest`."
)
NOT_A_REFERENCE = (
    f":thinking_face: `{{raw}}` is not a run id, nor anything else I can review. I accept {ACCEPTED_FORMS}. "
    f"`{COMMAND} help` shows examples."
)


def parse_ref(raw: str) -> RunRef:
    """Accept what people paste: ids, UI URLs, runs:/, models:/ and prompts:/ URIs."""
    text = raw.strip()
    link = _SLACK_LINK_RE.match(text)
    if link:
        text = link.group(1)
    if RUN_ID_RE.match(text.lower()):
        return RunRef(kind=RefKind.RUN, raw=raw, run_id=text.lower())
    if text.startswith("runs:/"):
        match = _RUNS_URI_RE.match(text)
        if match and RUN_ID_RE.match(match.group(1).lower()):
            return RunRef(kind=RefKind.RUN, raw=raw, run_id=match.group(1).lower())
    elif text.startswith("models:/"):
        return _model_ref(raw, text)
    elif text.startswith("prompts:/"):
        return _prompt_ref(raw, text)
    elif urlparse(text).scheme in {"http", "https"}:
        return _page_ref(raw, text)
    raise BadReference(NOT_A_REFERENCE.format(raw=_shown(raw)))


def _safe_name(raw: str, *names: str | None) -> None:
    if _UNSAFE_NAME_RE.search("".join(unquote(n or "") for n in names)):
        raise BadReference(UNSAFE_NAME.format(raw=_shown(raw)))


def _model_ref(raw: str, text: str) -> RunRef:
    logged = _LOGGED_MODEL_URI_RE.match(text)
    if logged:
        return RunRef(kind=RefKind.LOGGED_MODEL, raw=raw, model_id=logged.group("id").lower())
    match = _MODELS_URI_RE.match(text)
    if not match:
        raise BadReference(BAD_MODEL_URI.format(raw=_shown(raw)))
    _safe_name(raw, match.group("name"), match.group("alias"))
    name, version, alias = unquote(match.group("name")), match.group("version"), match.group("alias")
    if alias:
        return RunRef(kind=RefKind.MODEL_ALIAS, raw=raw, model_name=name, alias=alias)
    assert version is not None
    if version.isdigit():
        return RunRef(kind=RefKind.MODEL_VERSION, raw=raw, model_name=name, version=version)
    if version.lower() == LATEST:
        return RunRef(kind=RefKind.MODEL_LATEST, raw=raw, model_name=name)
    if version.lower() in MODEL_STAGES:
        return RunRef(kind=RefKind.MODEL_STAGE, raw=raw, model_name=name, stage=MODEL_STAGES[version.lower()])
    raise BadReference(BAD_MODEL_URI.format(raw=_shown(raw)))


def _prompt_ref(raw: str, text: str) -> RunRef:
    match = _PROMPTS_URI_RE.match(text)
    if not match:
        raise BadReference(BAD_PROMPT_URI.format(raw=_shown(raw)))
    _safe_name(raw, match.group("name"), match.group("alias"))
    name, version, alias = unquote(match.group("name")), match.group("version"), match.group("alias")
    if version is not None and version.isdigit():
        return RunRef(kind=RefKind.PROMPT_VERSION, raw=raw, model_name=name, version=version)
    if version is not None and version.lower() != LATEST:
        raise BadReference(BAD_PROMPT_URI.format(raw=_shown(raw)))
    # `prompts:/name`, `prompts:/name/latest`: the latest version, as MLflow's load_prompt reads them
    return RunRef(kind=RefKind.PROMPT_ALIAS, raw=raw, model_name=name, alias=alias or LATEST)


def _page_ref(raw: str, text: str) -> RunRef:
    """A page of the MLflow UI: a run, a logged model, a model version or a prompt."""
    match = _URL_RUN_RE.search(text)
    if match:
        return RunRef(kind=RefKind.RUN, raw=raw, run_id=match.group(1).lower())
    match = _URL_LOGGED_MODEL_RE.search(text)
    if match:
        return RunRef(kind=RefKind.LOGGED_MODEL, raw=raw, model_id=match.group(1).lower())
    match = _URL_MODEL_VERSION_RE.search(text)
    if match:
        _safe_name(raw, match.group(1))
        return RunRef(
            kind=RefKind.MODEL_VERSION, raw=raw, model_name=unquote(match.group(1)), version=match.group(2)
        )
    match = _URL_PROMPT_RE.search(text)
    if match:
        _safe_name(raw, match.group(1))
        name = unquote(match.group(1))
        version = _URL_PROMPT_VERSION_RE.search(match.group("query") or "")
        if version:
            return RunRef(kind=RefKind.PROMPT_VERSION, raw=raw, model_name=name, version=version.group(1))
        return RunRef(kind=RefKind.PROMPT_ALIAS, raw=raw, model_name=name, alias=LATEST)
    match = _URL_MODEL_RE.search(text)
    if match:
        _safe_name(raw, match.group(1))
        raise BadReference(MODEL_PAGE.format(raw=_shown(raw), name=_shown(unquote(match.group(1)))))
    raise BadReference(NOT_A_PAGE.format(raw=_shown(raw)))


def _shown(raw: str) -> str:
    """The input echoed back safely inside `code`: no backticks, no mrkdwn escapes, bounded."""
    return truncate(escape(raw.replace("`", "'")), SHOWN_INPUT_CHARS)
