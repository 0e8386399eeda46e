"""The review card: one message that says what the run is and what reviewers can do about it.

Pure: takes a RunSummary and returns a SlackMessage. Whatever does not fit Slack's limits is cut
here with "…and N more" and lands in the thread (bot.reviews.thread), never dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.compare.baseline_line import BASELINE_FIELD, build_baseline_line
from bot.compare.rules import format_value
from bot.ids import ActionId, BlockId, MetadataEvent
from bot.models import Meeting, ReviewState, ReviewStatus, RunSummary, SubjectKind, Vote
from bot.reviews.run_state import build_run_state_caveat
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, link, markdown_to_mrkdwn, split_mrkdwn, truncate
from bot.slack.values import run_value
from bot.subjects import plain_name
from bot.sweeps.blocks import build_sweep_line

CARD_METRICS = 12
CARD_PARAMS = 12
CARD_DATASETS = 5
CARD_MODEL_VERSIONS = 5
PARAM_VALUE_CHARS = 80
SHORT_COMMIT = 7

HEADER_PREFIX = "Model review: "
NO_METRICS = "_No metrics logged._"
NO_PARAMS = "_No params logged._"
PENDING_STATUS = ":hourglass_flowing_sand: *Review pending*"
MEETING_LINE = ":calendar: Review meeting {when} ({minutes} min)"
APPROVED_STATUS = ":white_check_mark: *Approved*"
CHANGES_STATUS = ":x: *Changes requested*"
APPROVE_LABEL = "Approve"
REQUEST_CHANGES_LABEL = "Request changes"
SCHEDULE_LABEL = "Schedule meeting"
OPEN_LABEL = "Open in MLflow"
NOTE_CONTINUED = "_…the note continues in the thread._"
NO_NOTE = "_No notes on this run. Add them in the MLflow UI (the run's Description) for reviewers._"
NO_DESCRIPTION = "_No description. Add one in the MLflow UI for reviewers._"
PROMPT_HEADER_PREFIX = "Prompt review: "
MODEL_VERSION_ONLY = (
    "_This version was registered with neither a run nor a logged model, so MLflow holds no metrics or "
    "params for it: review what its source holds. The decision is recorded on the version itself._"
)
MORE_IN_THREAD = "_…and {n} more in the thread._"
METRICS_TITLE = "*Metrics*"
PARAMS_TITLE = "*Params*"
# With a baseline: what differs from it comes first, marked, with the baseline's value after the arrow.
DIFFERS_MARK = ":small_orange_diamond:"
PARAMS_DIFFER_TITLE = f"*Params* ({DIFFERS_MARK} differs from the baseline: ← its value)"
PARAMS_SAME_TITLE = "*Params* (none differs from the baseline)"
# A baseline of another kind of model (see `differing_params`): say how little it shares.
PARAMS_FEW_SHARED_TITLE = (
    "*Params* (the baseline logged {shared} of these {total}; "
    f"{DIFFERS_MARK} differs from it: ← its value)"
)
PARAMS_FEW_SHARED_SAME_TITLE = (
    "*Params* (the baseline logged {shared} of these {total}, with the same values)"
)
PARAMS_NONE_SHARED_TITLE = "*Params* (the baseline logged none of these)"
NOT_IN_BASELINE = "_not logged_"
# On a card posted before its baseline was looked up; replaced in place within a moment.
BASELINE_PENDING = "_looking it up…_"
# Values that mean "left at the library's default": autolog logs every argument, mostly these.
DEFAULT_VALUES = frozenset({"", "none", "null", "nan", "[]", "{}"})
SAME_KIND_SHARE = 0.5  # of the run's params the baseline logs too, for a param it did not log to count


@dataclass(frozen=True)
class CardLayout:
    """Which metrics and params made it onto the card; the thread shows the rest."""

    metrics: list[str]
    params: list[str]  # on the card, in the order of `param_order`
    note_chunks: list[str]
    # Every param, in the order the card and the thread list them (see `order_params`).
    param_order: list[str] = field(default_factory=list)
    # The params that differ from the baseline's, with the baseline's value (None: it did not log it).
    differing: Mapping[str, str | None] = field(default_factory=dict)
    compared: bool = False  # whether the baseline's params were known
    shared: int = 0  # how many of the run's params the baseline logged too


def is_default_value(value: str) -> bool:
    """`None`, `null`, `nan`, empty, `[]`, `{}`: what autolog logs for an argument nobody set."""
    return value.strip().lower() in DEFAULT_VALUES


def same_value(value: str, other: str) -> bool:
    """Whether two logged values say the same: equal text, both defaults, or equal numbers (`6`, `6.0`;
    `False` and `0`, as Python, which logged them, has it)."""
    if value == other or (is_default_value(value) and is_default_value(other)):
        return True
    number, other_number = _as_number(value), _as_number(other)
    return number is not None and number == other_number


def _as_number(value: str) -> float | None:
    flag = value.strip().lower()
    if flag in {"true", "false"}:
        return float(flag == "true")
    try:
        return float(value)
    except ValueError:
        return None


def differing_params(params: Mapping[str, str], baseline: Mapping[str, str]) -> dict[str, str | None]:
    """The run's params that differ from the baseline's, with the baseline's value (None: not logged).

    A param the baseline did not log counts when the run set it and the two runs log mostly the same
    params (SAME_KIND_SHARE of the run's: the same kind of model, so a new param is a change). A model
    of another kind (gradient boosting against a logistic regression) is compared on the params both
    logged only: every other one would be marked, which says nothing."""
    shared = [key for key in params if key in baseline]
    same_kind = bool(params) and len(shared) >= SAME_KIND_SHARE * len(params)
    found: dict[str, str | None] = {}
    for key, value in params.items():
        if key in baseline:
            if not same_value(value, baseline[key]):
                found[key] = baseline[key]
        elif same_kind and not is_default_value(value):
            found[key] = None
    return found


def order_params(params: Mapping[str, str], differing: Mapping[str, str | None]) -> list[str]:
    """What a reviewer looks for first: the params that differ from the baseline, then those set
    explicitly, then the defaults (`None` and the like); alphabetically within each."""

    def rank(key: str) -> tuple[int, str]:
        if key in differing:
            return 0, key
        return (2 if is_default_value(params[key]) else 1), key

    return sorted(params, key=rank)


def ordered_metrics(metrics: dict[str, float], key_metrics: list[str]) -> list[str]:
    """Key metrics in the configured order, then the rest alphabetically."""
    first = [k for k in key_metrics if k in metrics]
    return first + sorted(k for k in metrics if k not in set(first))


def plan_card(
    summary: RunSummary, key_metrics: list[str], baseline_params: Mapping[str, str] | None = None
) -> CardLayout:
    """What goes on the card. `baseline_params` are the params of the run in `summary.baseline`
    (ignored without one; an empty dict counts as unknown: nothing to compare with)."""
    compared = bool(baseline_params) and summary.baseline is not None and bool(summary.baseline.run_id)
    differing = differing_params(summary.params, baseline_params or {}) if compared else {}
    order = order_params(summary.params, differing)
    metrics = ordered_metrics(summary.metrics, key_metrics)[:CARD_METRICS]
    params = order[:CARD_PARAMS]
    # Long names can overflow a section before the count cap does: keep only whole lines that fit with
    # the "…and N more" line, so whatever is cut is counted and lands in the thread.
    metric_lines = [_metric_line(summary, k) for k in metrics]
    param_lines = [_param_line(summary, k, differing) for k in params]
    shared = sum(1 for key in summary.params if key in (baseline_params or {})) if compared else 0
    title = _params_title(compared, differing, shared, len(summary.params))
    return CardLayout(
        metrics=metrics[: _lines_that_fit(METRICS_TITLE, metric_lines, len(summary.metrics))],
        params=params[: _lines_that_fit(title, param_lines, len(summary.params))],
        note_chunks=split_mrkdwn(markdown_to_mrkdwn(summary.note), limits.SECTION_BUDGET)
        if summary.note
        else [],
        param_order=order,
        differing=differing,
        compared=compared,
        shared=shared,
    )


def _params_title(compared: bool, differing: Mapping[str, str | None], shared: int, total: int) -> str:
    if not compared:
        return PARAMS_TITLE
    if not shared:
        return PARAMS_NONE_SHARED_TITLE
    if shared < SAME_KIND_SHARE * total:
        title = PARAMS_FEW_SHARED_TITLE if differing else PARAMS_FEW_SHARED_SAME_TITLE
        return title.format(shared=shared, total=total)
    return PARAMS_DIFFER_TITLE if differing else PARAMS_SAME_TITLE


def _lines_that_fit(title: str, lines: list[str], total: int) -> int:
    """How many of `lines` fit in one section together with the title and the "…and N more" line."""
    for count in range(len(lines), 0, -1):
        hidden = total - count
        tail = [MORE_IN_THREAD.format(n=hidden)] if hidden else []
        if len("\n".join([title, *lines[:count], *tail])) <= limits.SECTION_TEXT:
            return count
    return 0


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def format_time(moment: datetime | None) -> str:
    """A time every reader sees in their own timezone, with a UTC fallback."""
    if moment is None:
        return "not started"
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def review_value(summary: RunSummary) -> str:
    """What rides in every button's value: enough to find the run again."""
    return run_value(summary.run_id, summary.experiment_id)


def card_title(card: dict[str, Any]) -> str:
    """The run's name, read back from a posted card's header block (the one `build_review_card` writes
    with BlockId.HEADER). Not carried in the buttons' values: a name is text anyone with MLflow access
    can set, and only the header shows it as plain text."""
    header = next((b for b in card.get("blocks") or [] if b.get("block_id") == BlockId.HEADER), {})
    return str((header.get("text") or {}).get("text", "")).removeprefix(HEADER_PREFIX)


STATUS_VOTERS_SHOWN = 10  # the rest as "and N more": a run can have any number of voters
UNTRUSTED_STATUS = (
    ":warning: *Not a decision*: the review tags in MLflow were not written by review-bot ({why}); "
    "they count for nothing, and the next vote starts a signed record."
)


def build_status_line(review: ReviewState | None, requested_by: str, required_approvals: int) -> str:
    """Where the review stands, who voted and when (times in each reader's timezone)."""

    def voters(votes: list[Vote]) -> str:
        shown = ", ".join(f"{escape(v.name)} ({format_time(v.at)})" for v in votes[:STATUS_VOTERS_SHOWN])
        more = len(votes) - STATUS_VOTERS_SHOWN
        return f"{shown} and {more} more" if more > 0 else shown

    approvals = review.approvals if review else []
    changes = review.change_requests if review else []
    status = review.status if review else ReviewStatus.PENDING
    if status is ReviewStatus.APPROVED:
        line = f"{APPROVED_STATUS} by {voters(approvals)}"
    elif status is ReviewStatus.CHANGES_REQUESTED:
        line = f"{CHANGES_STATUS} by {voters(changes)}"
        if approvals:
            line += f" · approved by {voters(approvals)}"
    else:
        line = f"{PENDING_STATUS} · {len(approvals)}/{required_approvals} approvals"
        if approvals:
            line += f" ({voters(approvals)})"
    if review and review.untrusted:
        line = f"{UNTRUSTED_STATUS.format(why=escape(review.untrusted))}\n{line}"
    return truncate(f"{line} · requested by <@{requested_by}>", limits.SECTION_TEXT)


def build_meeting_line(meeting: Meeting) -> str:
    return MEETING_LINE.format(when=format_time(meeting.at), minutes=meeting.duration_min)


def build_review_card(
    summary: RunSummary,
    *,
    requested_by: str,
    key_metrics: list[str],
    required_approvals: int = 1,
    baseline_params: Mapping[str, str] | None = None,
    completing: bool = False,
) -> SlackMessage:
    """The card. `baseline_params`: the params of the baseline run, to put what differs first.
    `completing`: posted before the baseline is looked up (its field says so until the card is updated)."""
    layout = plan_card(summary, key_metrics, baseline_params)
    if summary.review and summary.review.requested_by:
        requested_by = summary.review.requested_by  # a re-posted card keeps who first asked
    fields = _fields(summary, requested_by, completing=completing)
    blocks = [
        HeaderBlock(
            block_id=BlockId.HEADER,
            text=PlainTextObject(text=truncate(_header(summary), limits.HEADER_TEXT), emoji=False),
        ),
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields[: limits.SECTION_FIELDS]]),
        *_body(summary, layout),
    ]
    blocks.append(DividerBlock())
    if summary.kind is not SubjectKind.PROMPT_VERSION:  # a prompt's commit message is in its body
        blocks.append(
            SectionBlock(block_id=BlockId.NOTE, text=MarkdownTextObject(text=_note_text(layout, summary)))
        )
    blocks.append(
        ContextBlock(
            block_id=BlockId.STATUS,
            elements=[
                MarkdownTextObject(text=build_status_line(summary.review, requested_by, required_approvals)),
                *([MarkdownTextObject(text=build_meeting_line(summary.meeting))] if summary.meeting else []),
            ],
        )
    )
    blocks.append(ActionsBlock(block_id=BlockId.ACTIONS, elements=_buttons(summary, required_approvals)))
    return SlackMessage(
        text=build_card_fallback(summary),
        blocks=[b.to_dict() for b in blocks],
        metadata={
            "event_type": MetadataEvent.MODEL_REVIEW.value,
            "event_payload": {"run_id": summary.run_id, "experiment_id": summary.experiment_id},
        },
    )


def _header(summary: RunSummary) -> str:
    if summary.kind is SubjectKind.PROMPT_VERSION:
        return PROMPT_HEADER_PREFIX + summary.run_name
    return HEADER_PREFIX + summary.run_name


def _body(summary: RunSummary, layout: CardLayout) -> list[Block]:
    """What the card says about the subject between its fields and its note."""
    # Imported here: their builders reuse bot.compare.blocks, which reuses bot.reviews.thread, which
    # reads this module's CardLayout.
    from bot.logged_models.blocks import build_logged_model_sections, build_run_models_section
    from bot.prompts.blocks import build_prompt_sections

    if summary.kind is SubjectKind.PROMPT_VERSION and summary.prompt is not None:
        return build_prompt_sections(summary.prompt, summary.prompt_baseline)
    if summary.kind is SubjectKind.LOGGED_MODEL and summary.logged_model is not None:
        return build_logged_model_sections(summary.logged_model)
    if summary.kind is SubjectKind.MODEL_VERSION:
        return [SectionBlock(text=MarkdownTextObject(text=MODEL_VERSION_ONLY))]
    metric_lines = [_metric_line(summary, k) for k in layout.metrics]
    metrics = _listing_text(METRICS_TITLE, NO_METRICS, metric_lines, len(summary.metrics))
    param_lines = [_param_line(summary, k, layout.differing) for k in layout.params]
    params = _listing_text(
        _params_title(layout.compared, layout.differing, layout.shared, len(summary.params)),
        NO_PARAMS,
        param_lines,
        len(summary.params),
    )
    blocks: list[Block] = [
        *_run_notes(summary),
        SectionBlock(text=MarkdownTextObject(text=metrics)),
        SectionBlock(text=MarkdownTextObject(text=params)),
    ]
    if summary.datasets:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_datasets_text(summary))))
    if summary.run_models:
        blocks += build_run_models_section(summary.run_models)
    return blocks


def _run_notes(summary: RunSummary) -> list[SectionBlock]:
    """Under the run's status: a caveat when the run is not finished, and a sweep's children."""
    lines = [
        build_run_state_caveat(summary.status),
        build_sweep_line(summary.sweep) if summary.sweep else None,
    ]
    return [SectionBlock(text=MarkdownTextObject(text=line)) for line in lines if line]


def build_card_fallback(summary: RunSummary) -> str:
    """The notification text: no formatting, no mentions, just what and where."""
    if summary.kind is SubjectKind.PROMPT_VERSION:
        text = f"Prompt review requested: {summary.run_name}"
    elif summary.kind is SubjectKind.RUN:
        text = f"Model review requested: {summary.run_name} ({summary.experiment_name}), run {summary.run_id}"
    else:
        text = f"Model review requested: {summary.run_name} ({plain_name(summary.run_id)})"
    return truncate(escape(text), limits.MESSAGE_TEXT)


def _field(label: str, value: str) -> str:
    return truncate(f"*{label}*\n{value}", limits.FIELD_TEXT)


def _fields(summary: RunSummary, requested_by: str, *, completing: bool = False) -> list[str]:
    """The card's fields: what the subject is, who asked, and (last) its baseline."""
    from bot.logged_models.blocks import build_logged_model_fields  # see _body
    from bot.prompts.blocks import build_prompt_fields

    if summary.kind is SubjectKind.RUN:
        fields = _run_fields(summary, requested_by)
    else:
        if summary.kind is SubjectKind.PROMPT_VERSION and summary.prompt is not None:
            described = build_prompt_fields(summary.prompt, summary.prompt_baseline)
        elif summary.kind is SubjectKind.LOGGED_MODEL and summary.logged_model is not None:
            described = build_logged_model_fields(summary.logged_model)
        else:
            described = _model_version_fields(summary)
        fields = [_field(label, value) for label, value in described]
        fields.insert(min(len(fields), 3), _field("Requested by", f"<@{requested_by}>"))
    fields = fields[: limits.SECTION_FIELDS - 1]  # room for the baseline
    if summary.baseline is not None:
        fields.append(_field(BASELINE_FIELD, build_baseline_line(summary.baseline)))
    elif completing:
        fields.append(_field(BASELINE_FIELD, BASELINE_PENDING))
    return fields


def _model_version_fields(summary: RunSummary) -> list[tuple[str, str]]:
    """A model version registered with neither a run nor a LoggedModel: what the registry says."""
    mv = summary.model_versions[0] if summary.model_versions else None
    name = escape(f"{mv.name} v{mv.version}") if mv else escape(summary.run_name)
    aliases = " ".join(f"`@{escape(a)}`" for a in mv.aliases) if mv and mv.aliases else "_none_"
    return [
        ("Model version", link(summary.run_url, name) if summary.run_url else name),
        ("Aliases", aliases),
        ("Author", escape(summary.user) or "_unknown_"),
        ("Registered", format_time(summary.start_time)),
        (
            "Source",
            f"`{escape(truncate(summary.source_name, PARAM_VALUE_CHARS))}`"
            if summary.source_name
            else "_not recorded_",
        ),
        ("Status", escape(summary.status.title() or "Unknown")),
    ]


def _run_fields(summary: RunSummary, requested_by: str) -> list[str]:
    field = _field

    experiment = (
        link(summary.experiment_url, summary.experiment_name)
        if summary.experiment_url
        else escape(summary.experiment_name)
    )
    run = link(summary.run_url, summary.run_id) if summary.run_url else f"`{summary.run_id}`"
    status = escape(summary.status.title() or "Unknown")
    duration = format_duration(summary.duration_seconds)
    started = format_time(summary.start_time) + (f" · {duration}" if duration else "")
    fields = [
        field("Experiment", experiment),
        field("Run", run),
        field("Author", escape(summary.user) or "_unknown_"),
        field("Requested by", f"<@{requested_by}>"),
        field("Run status", f"{status} · {started}"),
        field("Source", escape(summary.source_name) or "_not recorded_"),
        field(
            "Git commit",
            f"`{escape(summary.git_commit[:SHORT_COMMIT])}`" if summary.git_commit else "_not recorded_",
        ),
    ]
    if summary.model_versions:
        shown = summary.model_versions[:CARD_MODEL_VERSIONS]
        lines = [
            escape(f"{mv.name} v{mv.version}") + "".join(f" `@{escape(a)}`" for a in mv.aliases)
            for mv in shown
        ]
        if len(summary.model_versions) > len(shown):
            lines.append(f"…and {len(summary.model_versions) - len(shown)} more")
        fields.append(field("Registered models", "\n".join(lines)))
    return fields


def _listing_text(title: str, empty: str, shown: list[str], total: int) -> str:
    """A card section of `• name: value` lines, with how many more are in the thread."""
    if not total:
        return f"{title}\n{empty}"
    hidden = total - len(shown)
    return _section(title, shown + ([MORE_IN_THREAD.format(n=hidden)] if hidden else []))


def _metric_line(summary: RunSummary, key: str) -> str:
    return f"• *{escape(key)}*: `{format_value(summary.metrics[key])}`"


def _param_line(summary: RunSummary, key: str, differing: Mapping[str, str | None]) -> str:
    line = f"{escape(key)} = {_param_value(summary.params[key])}"
    if key not in differing:
        return f"• {line}"
    before = differing[key]
    return f"• {DIFFERS_MARK} {line} ← {NOT_IN_BASELINE if before is None else _param_value(before)}"


def _param_value(value: str) -> str:
    return f"`{truncate(escape(value), PARAM_VALUE_CHARS)}`"


def _datasets_text(summary: RunSummary) -> str:
    lines = []
    for ds in summary.datasets[:CARD_DATASETS]:
        detail = ", ".join(
            x for x in (ds.context, ds.source_type, f"digest {ds.digest}" if ds.digest else "") if x
        )
        lines.append(f"• {escape(ds.name)}" + (f" ({escape(detail)})" if detail else ""))
    if len(summary.datasets) > CARD_DATASETS:
        lines.append(f"…and {len(summary.datasets) - CARD_DATASETS} more")
    return _section("*Datasets*", lines)


def _note_text(layout: CardLayout, summary: RunSummary) -> str:
    if not layout.note_chunks:
        return NO_NOTE if summary.kind is SubjectKind.RUN else NO_DESCRIPTION
    first = layout.note_chunks[0]
    if len(layout.note_chunks) > 1:
        return truncate(first, limits.SECTION_TEXT - len(NOTE_CONTINUED) - 1) + "\n" + NOTE_CONTINUED
    return first


def _section(title: str, lines: list[str]) -> str:
    """Title plus as many whole lines as fit in one section."""
    return truncate(title + "\n" + "\n".join(lines), limits.SECTION_TEXT)


def _buttons(summary: RunSummary, required_approvals: int) -> list[ButtonElement]:
    """The votes so far are on the buttons; a decided review no longer highlights its button."""
    value = review_value(summary)
    review = summary.review
    approvals = len(review.approvals) if review else 0
    changes = len(review.change_requests) if review else 0
    status = review.status if review else ReviewStatus.PENDING
    approve_label = f"{APPROVE_LABEL} ({approvals}/{required_approvals})" if approvals else APPROVE_LABEL
    changes_label = f"{REQUEST_CHANGES_LABEL} ({changes})" if changes else REQUEST_CHANGES_LABEL
    buttons = [
        ButtonElement(
            text=approve_label,
            action_id=ActionId.APPROVE,
            value=value,
            style="primary" if status is ReviewStatus.PENDING else None,
        ),
        ButtonElement(
            text=changes_label,
            action_id=ActionId.REQUEST_CHANGES,
            value=value,
            style="danger" if status is not ReviewStatus.CHANGES_REQUESTED else None,
        ),
        ButtonElement(text=SCHEDULE_LABEL, action_id=ActionId.SCHEDULE, value=value),
    ]
    if summary.run_url:
        buttons.append(
            ButtonElement(text=OPEN_LABEL, action_id=ActionId.OPEN_MLFLOW, url=summary.run_url, value=value)
        )
    return buttons
