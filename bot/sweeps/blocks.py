"""A sweep on the parent's card (one line) and in its thread (the children, best first). Pure."""

from __future__ import annotations

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from bot.compare.rules import format_value
from bot.models import Sweep
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, link, truncate
from bot.sweeps.rules import SWEEP_RANK, SWEEP_SCORE, SweepChild, SweepRanking

CHILDREN_LISTED = 10  # in the thread; the rest are counted and left to MLflow's page of the parent

SWEEP_LINE = ":control_knobs: *Sweep*: {children}; best: {best} (`{metric}` {value})"
SWEEP_PARAMS = "Best's params: {params}"
SWEEP_MORE_PARAMS = " and {n} more (see the thread)"
SWEEP_NO_BEST = ":control_knobs: *Sweep*: {children}; no best named: {why}"
NO_SWEEP_METRIC = (
    f"the children log neither `PRIMARY_METRIC` nor `{SWEEP_SCORE}` / `{SWEEP_RANK}`, so nothing says "
    "which is best"
)
UNKNOWN_DIRECTION = (
    "whether `{metric}` is better higher or lower is not known (set `PRIMARY_METRIC={metric}:max` or `:min`)"
)
CHILDREN_TITLE = "*Sweep: {children}*"
CHILDREN_RANKED = "Best first by `{metric}`{shown}:"
CHILDREN_UNRANKED = "Not ranked ({why}){shown}:"
CHILDREN_SHOWN = " (the top {n})"
CHILDREN_REST = "_…and {n} more: see the parent run's page in MLflow._"
CHILDREN_NO_VALUE = "_{n} of them log no `{metric}` value, so they are not ranked._"
CHILDREN_TEXT = "Sweep: {children}"


def count_text(children: int, more: bool) -> str:
    """ "6 child runs", "1 child run", "2000+ child runs" (a count that stopped at its cap)."""
    plus = "+" if more else ""
    return f"{children}{plus} child run" + ("" if children == 1 and not more else "s")


def _params_text(params: dict[str, str], varied: int) -> str:
    shown = ", ".join(f"{escape(k)} = `{escape(v)}`" for k, v in params.items())
    hidden = varied - len(params)
    return shown + (SWEEP_MORE_PARAMS.format(n=hidden) if hidden > 0 else "")


def _no_best_reason(metric: str) -> str:
    return UNKNOWN_DIRECTION.format(metric=escape(metric)) if metric else NO_SWEEP_METRIC


def build_sweep_line(sweep: Sweep) -> str:
    """The parent's card: how many children, the best one and the params that made it the best."""
    children = count_text(sweep.children, sweep.more)
    best = sweep.best
    if best is None:
        return truncate(
            SWEEP_NO_BEST.format(children=children, why=_no_best_reason(sweep.metric)), limits.SECTION_TEXT
        )
    name = best.run_name or best.run_id
    line = SWEEP_LINE.format(
        children=children,
        best=link(best.run_url, name) if best.run_url else f"`{escape(name)}`",
        metric=escape(sweep.metric),
        value=format_value(best.value),
    )
    if best.params:
        line += "\n" + SWEEP_PARAMS.format(params=_params_text(best.params, sweep.varied))
    return truncate(line, limits.SECTION_TEXT)


def _child_line(index: int, child: SweepChild, ranking: SweepRanking) -> str:
    name = child.run_name or child.run_id
    parts = [f"{index}. " + (link(child.run_url, name) if child.run_url else f"`{escape(name)}`")]
    if ranking.metric in child.metrics:
        parts.append(f"`{format_value(child.metrics[ranking.metric])}`")
    params = ", ".join(
        f"{escape(k)} = `{escape(truncate(child.params[k], 60))}`"
        for k in ranking.varied
        if k in child.params
    )
    if params:
        parts.append(params)
    return " · ".join(parts)


def build_sweep_children(ranking: SweepRanking) -> SlackMessage:
    """The thread: the children best first (the top CHILDREN_LISTED), with the params the sweep varies;
    how many more there are, and how many could not be ranked."""
    children = count_text(ranking.total, ranking.more)
    ranked = ranking.direction is not None and bool(ranking.ranked)
    order = ranking.ranked if ranked else ranking.children
    listed = order[:CHILDREN_LISTED]
    shown = CHILDREN_SHOWN.format(n=len(listed)) if len(listed) < ranking.total else ""
    if ranked:
        intro = CHILDREN_RANKED.format(metric=escape(ranking.metric), shown=shown)
    else:
        intro = CHILDREN_UNRANKED.format(why=_no_best_reason(ranking.metric), shown=shown)
    lines = [intro, *(_child_line(i, c, ranking) for i, c in enumerate(listed, start=1))]
    if ranking.total > len(listed):
        lines.append(CHILDREN_REST.format(n=f"{ranking.total - len(listed)}{'+' if ranking.more else ''}"))
    unranked = len(ranking.children) - len(ranking.ranked)
    if ranked and unranked:
        lines.append(CHILDREN_NO_VALUE.format(n=unranked, metric=escape(ranking.metric)))
    title = CHILDREN_TITLE.format(children=children)
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=title)).to_dict(),
        SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), limits.SECTION_TEXT))).to_dict(),
    ]
    return SlackMessage(text=CHILDREN_TEXT.format(children=children), blocks=blocks)
