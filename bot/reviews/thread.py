"""Messages for the thread under a review card: what did not fit on the card, chart captions."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from bot.compare.rules import format_value
from bot.mlflow.artifacts import MAX_ARTIFACT_DEPTH, MAX_LISTINGS
from bot.models import RunSummary
from bot.reviews.card import CardLayout
from bot.reviews.plots import Plot, PlotPlan
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, link, split_mrkdwn, truncate

# Each thread message keeps a few blocks spare under Slack's 50, and the thread as a whole is
# capped: beyond this, a link to MLflow is more useful than ten more messages.
BLOCKS_PER_MESSAGE = limits.MAX_BLOCKS - 2
MAX_MESSAGES_PER_PART = 3

NOTE_CONTINUED_TITLE = "*Notes (continued)*"
METRICS_TITLE = "*All metrics* ({n})"
PARAMS_TITLE = "*All params* ({n})"
PARAMS_DIFFER_NOTE = " · after `←`, the baseline's value where it differs"
PARAM_DIFFERS = "{value}  ← {before}"
PARAM_NOT_IN_BASELINE = "(not logged)"
CUT_SUFFIX = "_…and {n} more parts not shown. See everything in MLflow: {where}_"
CHART_TITLE = "Metric history: {run}"
CHART_COMMENT = ":chart_with_upwards_trend: Metric history ({n} charts)."
CHART_OMITTED = " Not charted for lack of room: {keys}."
CHART_SAMPLED = (
    " Too long to read whole here, so drawn from MLflow's sample (a one-step spike can be missing): {keys}."
)
CHART_NONFINITE = " NaN or ±inf, marked on the panel's edge: {keys}."
# Only when no metric was logged more than once (a metric logged once is a value on the card, not a
# history); a chart that was due and failed says so instead.
NO_HISTORY = ":information_source: No metric was logged more than once, so there is no history chart."
CHART_FAILED = ":warning: The metric history chart could not be drawn (the error is in the bot's log)."
PLOTS_COMMENT = ":frame_with_picture: Plots logged with the run ({n})."
PLOTS_SVG = " SVG, posted as a file (Slack shows no preview of SVG): {paths}."
PLOTS_SKIPPED = " Skipped (over {mb} MB): {paths}."
PLOTS_TOO_DEEP = " Not shown (more than {folders} folders deep): {paths}."
PLOTS_NOT_SHOWN = " Not shown ({n} more): {paths}."
PLOTS_UNLISTED = " Folders not searched for plots (only {listings} are listed per run): {paths}."
PLOTS_NAMED = 10  # names per reason; the rest are counted
PLOTS_MORE = " and {n} more"
STEPS_NAME = "`{key}` ({n} steps, {first} to {last})"


def build_note_continuation(layout: CardLayout, summary: RunSummary) -> list[SlackMessage]:
    """The rest of a long note, in as few messages as fit."""
    rest = layout.note_chunks[1:]
    if not rest:
        return []
    return _paged(NOTE_CONTINUED_TITLE, rest, summary, text="Notes (continued)")


def build_overflow(layout: CardLayout, summary: RunSummary) -> list[SlackMessage]:
    """All metrics and params, in monospace tables, when the card could not show them all."""
    messages: list[SlackMessage] = []
    if len(summary.metrics) > len(layout.metrics):
        rows = [(k, format_value(v)) for k, v in sorted(summary.metrics.items())]
        messages += _paged(
            METRICS_TITLE.format(n=len(rows)), _table_chunks(rows), summary, text=f"All metrics ({len(rows)})"
        )
    if len(summary.params) > len(layout.params):
        # In the card's order: what differs from the baseline, then what was set, then the defaults.
        rows = [
            (k, _param_cell(summary.params[k], k, layout))
            for k in layout.param_order or sorted(summary.params)
        ]
        title = PARAMS_TITLE.format(n=len(rows)) + (PARAMS_DIFFER_NOTE if layout.differing else "")
        messages += _paged(title, _table_chunks(rows), summary, text=f"All params ({len(rows)})")
    return messages


def _param_cell(value: str, key: str, layout: CardLayout) -> str:
    if key not in layout.differing:
        return value
    before = layout.differing[key]
    return PARAM_DIFFERS.format(value=value, before=PARAM_NOT_IN_BASELINE if before is None else before)


def build_chart_comment(
    panel_count: int, omitted: Sequence[str], sampled: Sequence[str] = (), nonfinite: Sequence[str] = ()
) -> str:
    comment = CHART_COMMENT.format(n=panel_count)
    for template, keys in ((CHART_NONFINITE, nonfinite), (CHART_SAMPLED, sampled), (CHART_OMITTED, omitted)):
        if keys:
            comment += template.format(keys=", ".join(f"`{escape(k)}`" for k in keys))
    return truncate(comment, limits.SECTION_TEXT)


def build_plots_comment(plan: PlotPlan, max_bytes: int) -> str:
    """What was uploaded, and every image that was not, with why."""
    comment = PLOTS_COMMENT.format(n=len(plan.upload))
    svg = [p for p in plan.upload if p.is_svg]
    if svg:
        comment += PLOTS_SVG.format(paths=_plot_names(svg))
    if plan.too_big:
        comment += PLOTS_SKIPPED.format(mb=max_bytes // (1024 * 1024), paths=_plot_names(plan.too_big))
    if plan.too_deep:
        comment += PLOTS_TOO_DEEP.format(folders=MAX_ARTIFACT_DEPTH - 1, paths=_plot_names(plan.too_deep))
    if plan.not_shown:
        comment += PLOTS_NOT_SHOWN.format(n=len(plan.not_shown), paths=_plot_names(plan.not_shown))
    if plan.unlisted:
        comment += PLOTS_UNLISTED.format(
            listings=MAX_LISTINGS,
            paths=_named([f"`{escape(folder)}/`" for folder in plan.unlisted]),
        )
    return truncate(comment, limits.SECTION_TEXT)


def _plot_names(plots: Sequence[Plot]) -> str:
    """Paths, and the steps of a logged key as one name: "`samples` (8 steps, 7 to 0)"."""
    groups: dict[tuple[bool, str], list[int]] = {}  # (a logged key?, its key or path) -> steps
    for plot in plots:
        if plot.step is None:
            groups[(False, plot.artifact.path)] = []
        else:
            groups.setdefault((True, plot.step.key), []).append(plot.step.step)
    names = []
    for (is_key, name), steps in groups.items():
        if not is_key:
            names.append(f"`{escape(name)}`")
        elif len(steps) == 1:
            names.append(f"`{escape(f'{name} (step {steps[0]})')}`")
        else:
            names.append(STEPS_NAME.format(key=escape(name), n=len(steps), first=steps[0], last=steps[-1]))
    return _named(names)


def _named(names: Sequence[str]) -> str:
    shown = ", ".join(names[:PLOTS_NAMED])
    return shown + (PLOTS_MORE.format(n=len(names) - PLOTS_NAMED) if len(names) > PLOTS_NAMED else "")


def _table_chunks(rows: list[tuple[str, str]]) -> list[str]:
    width = min(max((len(k) for k, _ in rows), default=0), 40)
    lines = [f"{escape(k).ljust(width)}  {escape(v)}" for k, v in rows]
    body = "```\n" + "\n".join(lines) + "\n```"
    return split_mrkdwn(body, limits.SECTION_BUDGET)


def _paged(title: str, chunks: list[str], summary: RunSummary, text: str) -> list[SlackMessage]:
    where = link(summary.run_url, "the run's page") if summary.run_url else f"run `{summary.run_id}`"
    return paged(title, chunks, text=text, where=where)


def paged(title: str, chunks: list[str], *, text: str, where: str) -> list[SlackMessage]:
    """Sections under a title, BLOCKS_PER_MESSAGE to a message, at most MAX_MESSAGES_PER_PART
    messages; what is cut is counted and pointed at `where`."""
    pages = [chunks[i : i + BLOCKS_PER_MESSAGE] for i in range(0, len(chunks), BLOCKS_PER_MESSAGE)]
    shown, cut = pages[:MAX_MESSAGES_PER_PART], pages[MAX_MESSAGES_PER_PART:]
    messages = []
    for index, page in enumerate(shown):
        blocks = [SectionBlock(text=MarkdownTextObject(text=title)).to_dict()] if index == 0 else []
        blocks += [SectionBlock(text=MarkdownTextObject(text=chunk)).to_dict() for chunk in page]
        messages.append(SlackMessage(text=text, blocks=blocks))
    if cut:
        hidden = sum(len(p) for p in cut)
        last = messages[-1]
        note = SectionBlock(text=MarkdownTextObject(text=CUT_SUFFIX.format(n=hidden, where=where))).to_dict()
        messages[-1] = SlackMessage(text=last.text, blocks=[*last.blocks, note])
    return messages
