"""What a prompt version's card and its thread show: the fields, the body (commit message, the diff
against the deployed version or the template itself, the model config, the evaluation runs) and what
did not fit, for the thread.

Pure: PromptInfo in, Block Kit models, (label, mrkdwn) pairs and thread items out. Every text from
MLflow is escaped, and a template's own backticks are broken up, so nothing in a prompt can close the
code block it is shown in, ping a channel or form a link.
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.compare.rules import format_value
from bot.metrics.directions import direction_of
from bot.mlflow.prompts import EVALUATIONS_SHOWN
from bot.models import PromptEvaluation, PromptInfo
from bot.prompts.rules import config_lines, diff_stats, prompt_diff, prompt_text, version_label
from bot.slack import limits
from bot.slack.mrkdwn import CODE_FENCE, escape, escape_code, link, split_mrkdwn, truncate
from bot.slack.outbox import FileUpload, ThreadItem, UploadFile

# --- the fields -------------------------------------------------------------------------------------

FIELD_PROMPT = "Prompt"
FIELD_VERSION = "Version"
FIELD_AUTHOR = "Author"
FIELD_CREATED = "Created"
FIELD_ALIASES = "Aliases"
VERSION_VALUE = "v{version} · {kind}"
KIND_TEXT = "text"
KIND_CHAT = "chat, {n} messages"
KIND_CHAT_ONE = "chat, 1 message"
UNKNOWN = "_unknown_"
NO_ALIASES = "_none_"
FIELD_VALUE_CHARS = limits.FIELD_TEXT - 100  # room for the label the card puts above

# --- the body ---------------------------------------------------------------------------------------

COMMIT_TITLE = "*Commit message*"
NO_COMMIT_MESSAGE = "_No commit message._"
DIFF_TITLE = "*Changes* `+{added} −{removed}` lines vs {baseline}"
NO_CHANGES = "*Changes* vs {baseline}: none. The template and the model config are the same."
DIFF_CUT = "_The diff is cut here: all of it ({lines} lines) is in the thread as `prompt.diff`._"
TEMPLATE_TITLE = "*Template* ({kind})"
NO_BASELINE = (
    "_No version of this prompt is under a deployment alias, so there is nothing to diff against: "
    "here is the template itself._"
)
EMPTY_TEMPLATE = "_The template is empty._"
TEMPLATE_CUT = "_The template is cut here: all of it ({chars} characters) is in the thread._"
CONFIG_TITLE = "*Model config*"
NO_CONFIG = "_No model config._"
CONFIG_CUT = "_…and {n} more lines._"
EVALUATIONS_TITLE = "*Evaluation runs* ({n})"
EVALUATIONS_TITLE_NEWEST = "*Evaluation runs* (the newest {n})"
NO_EVALUATIONS = "_No evaluation run used this version._"
EVALUATIONS_MORE = "_…and {n} more in the thread._"
METRICS_MORE = " · +{n} more in the thread"
NO_METRICS = "_no metrics_"
CARD_EVALUATIONS = 3  # runs on the card
CARD_METRICS = 3  # metrics per run on the card

# --- the thread -------------------------------------------------------------------------------------

DIFF_FILE = "prompt.diff"
DIFF_FILE_TITLE = "{new} vs {old}"
DIFF_COMMENT = ":page_facing_up: The whole diff of {new} against {old}: `+{added} −{removed}` lines."
TEMPLATE_FILE = "prompt.txt"
TEMPLATE_COMMENT = ":page_facing_up: The whole template of {new} ({chars} characters)."
EVALUATIONS_THREAD_TITLE = "*Evaluation runs of {version}* ({n}), with all their metrics"
EVALUATIONS_THREAD_TEXT = "Evaluation runs ({n})"
THE_PROMPT_PAGE = "the prompt's page"

_FENCE_OVERHEAD = len(CODE_FENCE) * 2 + 2  # "```\n" + body + "\n```"


# --- the fields -------------------------------------------------------------------------------------


def build_prompt_fields(p: PromptInfo, baseline: PromptInfo | None) -> list[tuple[str, str]]:
    """(label, mrkdwn value) for the card's fields section; the card adds "Requested by" and the
    baseline (`baseline` is taken for the same signature as the other builders, and not shown here)."""
    del baseline
    prompt = link(p.url, p.name) if p.url else f"`{escape(p.name)}`"
    aliases = " ".join(f"`@{escape(a)}`" for a in p.aliases) or NO_ALIASES
    fields = [
        (FIELD_PROMPT, prompt),
        (FIELD_VERSION, VERSION_VALUE.format(version=escape(p.version), kind=_kind(p))),
        (FIELD_AUTHOR, escape(p.author) or UNKNOWN),
        (FIELD_CREATED, _created(p)),
        (FIELD_ALIASES, aliases),
    ]
    return [(label, truncate(value, FIELD_VALUE_CHARS)) for label, value in fields]


def _created(p: PromptInfo) -> str:
    # Imported here: the review card (bot.reviews.card) is where this builder is called from.
    from bot.reviews.card import format_time

    return format_time(p.created) if p.created else UNKNOWN


def _kind(p: PromptInfo) -> str:
    if not p.is_chat:
        return KIND_TEXT
    return KIND_CHAT_ONE if len(p.messages) == 1 else KIND_CHAT.format(n=len(p.messages))


# --- the body ---------------------------------------------------------------------------------------


def build_prompt_sections(p: PromptInfo, baseline: PromptInfo | None) -> list[Block]:
    """The card's body: commit message, the diff against `baseline` (or the template when there is
    none), the model config, the evaluation runs. Four sections, each within Slack's limit."""
    texts = [
        _commit_text(p),
        (_diff_text(p, baseline) if baseline is not None else _template_text(p))[0],
        _config_text(p),
        _evaluations_text(p),
    ]
    return [SectionBlock(text=MarkdownTextObject(text=text)) for text in texts]


def _commit_text(p: PromptInfo) -> str:
    if not p.commit_message.strip():
        return f"{COMMIT_TITLE}\n{NO_COMMIT_MESSAGE}"
    # Backticks broken up like a template's: a commit message opens no code block on the card either.
    quoted = "\n".join(f">{line}" for line in code_safe(p.commit_message.strip()).split("\n"))
    return truncate(f"{COMMIT_TITLE}\n{quoted}", limits.SECTION_BUDGET)


def _diff_text(p: PromptInfo, baseline: PromptInfo) -> tuple[str, bool]:
    """The diff section, and whether the diff was cut to fit."""
    name = escape(version_label(baseline))
    diff = prompt_diff(p, baseline)
    if not diff:
        return NO_CHANGES.format(baseline=name), False
    added, removed = diff_stats(diff)
    title = DIFF_TITLE.format(added=added, removed=removed, baseline=name)
    cut_line = DIFF_CUT.format(lines=len(diff.splitlines()))
    block, cut = _fit_code(diff, limits.SECTION_BUDGET - len(title) - len(cut_line) - 2)
    return "\n".join([title, block, *([cut_line] if cut else [])]), cut


def _template_text(p: PromptInfo) -> tuple[str, bool]:
    """The template section (no baseline to diff against), and whether the template was cut to fit."""
    title = TEMPLATE_TITLE.format(kind=_kind(p))
    text = prompt_text(p)
    if not text.strip():
        return "\n".join([title, NO_BASELINE, EMPTY_TEMPLATE]), False
    cut_line = TEMPLATE_CUT.format(chars=len(text))
    room = limits.SECTION_BUDGET - len(title) - len(NO_BASELINE) - len(cut_line) - 3
    block, cut = _fit_code(text, room)
    return "\n".join([title, NO_BASELINE, block, *([cut_line] if cut else [])]), cut


def _config_text(p: PromptInfo) -> str:
    lines = config_lines(p)
    if not lines:
        return f"{CONFIG_TITLE}\n{NO_CONFIG}"
    room = limits.SECTION_BUDGET - len(CONFIG_TITLE) - len(CONFIG_CUT) - 10
    block, cut = _fit_code("\n".join(lines), room)
    shown = block.count("\n") - 1  # lines between the fences
    more = [CONFIG_CUT.format(n=len(lines) - shown)] if cut else []
    return "\n".join([CONFIG_TITLE, block, *more])


def _evaluations_text(p: PromptInfo) -> str:
    runs = p.evaluations
    if not runs:
        return f"{EVALUATIONS_TITLE.format(n=0)}\n{NO_EVALUATIONS}"
    title = (EVALUATIONS_TITLE_NEWEST if len(runs) >= EVALUATIONS_SHOWN else EVALUATIONS_TITLE).format(
        n=len(runs)
    )
    lines = [_evaluation_line(run) for run in runs[:CARD_EVALUATIONS]]
    if len(runs) > CARD_EVALUATIONS:
        lines.append(EVALUATIONS_MORE.format(n=len(runs) - CARD_EVALUATIONS))
    return truncate("\n".join([title, *lines]), limits.SECTION_BUDGET)


def _evaluation_line(run: PromptEvaluation) -> str:
    name = _run_name(run)
    keys = card_metrics(run.metrics)
    if not keys:
        return f"• {name} · {NO_METRICS}"
    shown = " · ".join(f"`{escape(k)}` {format_value(run.metrics[k])}" for k in keys)
    more = METRICS_MORE.format(n=len(run.metrics) - len(keys)) if len(run.metrics) > len(keys) else ""
    return truncate(f"• {name} · {shown}{more}", limits.SECTION_BUDGET // CARD_EVALUATIONS)


def _run_name(run: PromptEvaluation) -> str:
    label = run.run_name or run.run_id
    return link(run.run_url, label) if run.run_url else f"`{escape(label)}`"


def card_metrics(metrics: dict[str, float]) -> list[str]:
    """The metrics a run shows on the card: those whose better direction is known first (no judging,
    only which to show), then by name; at most CARD_METRICS."""
    return sorted(metrics, key=lambda k: (not direction_of(k).judged, k))[:CARD_METRICS]


# --- the thread -------------------------------------------------------------------------------------


def build_prompt_thread(p: PromptInfo, baseline: PromptInfo | None) -> list[ThreadItem]:
    """What did not fit on the card: the whole diff as `prompt.diff` (Slack highlights it), the whole
    template as `prompt.txt`, every evaluation run with all its metrics. Empty when all fit."""
    items: list[ThreadItem] = []
    if baseline is not None and _diff_text(p, baseline)[1]:
        diff = prompt_diff(p, baseline)
        added, removed = diff_stats(diff)
        new, old = version_label(p), version_label(baseline)
        items.append(
            FileUpload(
                name="prompt diff",
                comment=DIFF_COMMENT.format(new=escape(new), old=escape(old), added=added, removed=removed),
                files=[UploadFile(DIFF_FILE, DIFF_FILE_TITLE.format(new=new, old=old), diff.encode("utf-8"))],
            )
        )
    elif baseline is None and _template_text(p)[1]:
        text = prompt_text(p)
        label = version_label(p)
        items.append(
            FileUpload(
                name="prompt template",
                comment=TEMPLATE_COMMENT.format(new=escape(label), chars=len(text)),
                files=[UploadFile(TEMPLATE_FILE, label, text.encode("utf-8"))],
            )
        )
    items += _evaluations_thread(p)
    return items


def _evaluations_thread(p: PromptInfo) -> list[ThreadItem]:
    # Imported here: bot.reviews (card, thread) calls this module's builders.
    from bot.reviews.thread import paged

    runs = p.evaluations
    all_shown = len(runs) <= CARD_EVALUATIONS and all(len(r.metrics) <= CARD_METRICS for r in runs)
    if all_shown:
        return []
    chunks: list[str] = []
    for run in runs:
        chunks += split_mrkdwn(_evaluation_table(run), limits.SECTION_BUDGET)
    title = EVALUATIONS_THREAD_TITLE.format(version=escape(version_label(p)), n=len(runs))
    where = link(p.url, THE_PROMPT_PAGE) if p.url else f"`{escape(p.name)}`"
    return list(paged(title, chunks, text=EVALUATIONS_THREAD_TEXT.format(n=len(runs)), where=where))


def _evaluation_table(run: PromptEvaluation) -> str:
    name = _run_name(run)
    if not run.metrics:
        return f"{name}\n{NO_METRICS}"
    rows = sorted(run.metrics.items())
    width = min(max(len(k) for k, _ in rows), 40)
    lines = [f"{code_safe(k).ljust(width)}  {format_value(v)}" for k, v in rows]
    return "\n".join([name, CODE_FENCE, *lines, CODE_FENCE])


# --- code blocks ------------------------------------------------------------------------------------


code_safe = escape_code  # MLflow text inside a code block: escaped, unable to close it


def _fit_code(text: str, room: int) -> tuple[str, bool]:
    """`text` as a code block of at most `room` characters, fences included, cut after the last
    whole line that fits (or inside a first line too long on its own); and whether it was cut."""
    budget = max(room - _FENCE_OVERHEAD, 1)
    lines = [code_safe(line) for line in text.split("\n")]
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = len(line) + (1 if kept else 0)
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    cut = len(kept) < len(lines)
    if not kept:  # one line longer than the whole block: cut inside it, never inside an entity
        kept = [truncate(lines[0], budget)]
    body = "\n".join(kept)
    return f"{CODE_FENCE}\n{body}\n{CODE_FENCE}", cut
