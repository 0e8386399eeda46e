"""Comparisons in Slack: the card's baseline line, the baseline deltas in the thread, `/review compare`
and `/review leaderboard` messages, and their tables as text, CSV rows or PNG input.

Pure: summaries and the rules of `bot.compare.rules` in, SlackMessages and table rows out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.charts import MetricChart
from bot.compare.baseline_line import build_baseline_line
from bot.compare.rules import (
    MetricDelta,
    Verdict,
    all_metrics,
    best_first,
    differing_params,
    direction_of,
    format_delta,
    format_relative,
    format_value,
    label_runs,
    metric_deltas,
    ordered,
    shared_metrics,
)
from bot.metrics.values import is_finite
from bot.models import Baseline, Direction, RunSummary
from bot.reviews.thread import paged
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, escape_code, link, split_mrkdwn, truncate
from bot.slack.outbox import FileUpload, UploadFile

# --- the baseline in the thread ---------------------------------------------------------------------

DELTAS_TITLE = "*Compared with the baseline*: {line}"
DELTAS_TEXT = "Compared with the baseline"
DELTAS_TALLY = "{better} better, {worse} worse, {same} unchanged"
NO_SHARED_METRICS = "_The two runs have no metric in common._"
ONLY_IN = "_Only in {which}: {keys}_"
PARAMS_DIFF_TITLE = "*Params that differ* ({n})"
NO_PARAMS_DIFFER = "_Every param is the same in both runs._"
OVERLAY_TITLE = "{run} vs baseline {baseline}"
OVERLAY_COMMENT = (
    ":chart_with_upwards_trend: Metric histories of this run (solid) and the baseline (dashed), {n} charts."
)
THIS_RUN = "this run"
BASELINE_COLUMN = "baseline"
KEY_WIDTH = 32
VALUE_WIDTH = 14
NAMES_SHOWN = 20
MISSING = "—"
VERDICT_WORDS = {Verdict.BETTER: "better", Verdict.WORSE: "worse", Verdict.SAME: "same", Verdict.UNJUDGED: ""}
# A metric the bot cannot judge says so (a bookkeeping metric like `epoch` stays blank).
NOT_JUDGED = "not judged"
DELTAS_NOT_JUDGED = ", {n} not judged"
# Once per message, naming the metrics whose direction the bot does not know.
DIRECTION_HINT = (
    "_Not judged: {keys}: the bot does not know whether higher or lower is better. "
    "Set `METRIC_DIRECTIONS` (for example `{example}:max` or `{example}:min`) to judge them._"
)
NON_FINITE_HINT = "_Not judged: {keys}: a value is `inf` or `nan` (MLflow stores ±inf as ±1.8e308)._"


def text_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    key_width: int = KEY_WIDTH,
    value_width: int = VALUE_WIDTH,
) -> str:
    """A monospace table in a code block; widths from the raw text (Slack shows `&lt;` as one `<`), long
    cells cut, every cell escaped and unable to close the block."""
    cells = [
        [_cell(c, key_width if i == 0 else value_width) for i, c in enumerate(row)] for row in [header, *rows]
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "```\n" + "\n".join(escape_code(line) for line in lines) + "\n```"


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def delta_rows(deltas: Sequence[MetricDelta]) -> list[list[str]]:
    return [
        [
            d.key,
            format_value(d.candidate),
            format_value(d.baseline),
            format_delta(d.delta) if d.finite else MISSING,
            format_relative(d.relative),
            verdict_word(d),
        ]
        for d in deltas
    ]


def verdict_word(delta: MetricDelta) -> str:
    """better / worse / same; "not judged" for an unknown direction or a value that is no number."""
    if delta.verdict is Verdict.UNJUDGED and (delta.direction is Direction.UNKNOWN or not delta.finite):
        return NOT_JUDGED
    return VERDICT_WORDS[delta.verdict]


def not_judged_notes(deltas: Sequence[MetricDelta]) -> list[str]:
    """Why metrics were not judged, once per message: unknown directions, then values that are no number."""
    unknown = [d.key for d in deltas if d.direction is Direction.UNKNOWN and d.verdict is Verdict.UNJUDGED]
    non_finite = [d.key for d in deltas if not d.finite and d.key not in set(unknown)]
    notes = []
    if unknown:
        notes.append(direction_hint(unknown))
    if non_finite:
        notes.append(NON_FINITE_HINT.format(keys=name_list(non_finite)))
    return notes


def direction_hint(keys: Sequence[str]) -> str:
    return DIRECTION_HINT.format(keys=name_list(list(keys)), example=escape(keys[0].replace("`", "'")))


def build_baseline_comparison(
    summary: RunSummary,
    baseline_summary: RunSummary,
    baseline: Baseline,
    directions: Mapping[str, Direction],
    key_metrics: Sequence[str] = (),
) -> list[SlackMessage]:
    """Metric deltas (absolute, relative, better or worse) and the params that differ, within limits."""
    deltas = metric_deltas(summary.metrics, baseline_summary.metrics, directions, key_metrics)
    tally = {v: sum(1 for d in deltas if d.verdict is v) for v in Verdict}
    parts: list[str] = []
    if deltas:
        rows = delta_rows(deltas)
        not_judged = sum(1 for row in rows if row[-1] == NOT_JUDGED)
        parts.append(
            DELTAS_TALLY.format(
                better=tally[Verdict.BETTER], worse=tally[Verdict.WORSE], same=tally[Verdict.SAME]
            )
            + (DELTAS_NOT_JUDGED.format(n=not_judged) if not_judged else "")
        )
        parts.append(text_table(["metric", THIS_RUN, BASELINE_COLUMN, "change", "%", ""], rows))
        parts += not_judged_notes(deltas)
    else:
        parts.append(NO_SHARED_METRICS)
    for which, keys in (
        (THIS_RUN, sorted(set(summary.metrics) - set(baseline_summary.metrics))),
        ("the baseline", sorted(set(baseline_summary.metrics) - set(summary.metrics))),
    ):
        if keys:
            parts.append(ONLY_IN.format(which=which, keys=name_list(keys)))
    params = differing_params([summary.params, baseline_summary.params])
    parts.append(PARAMS_DIFF_TITLE.format(n=len(params)))
    if params:
        rows = [[k, summary.params.get(k, MISSING), baseline_summary.params.get(k, MISSING)] for k in params]
        parts.append(text_table(["param", THIS_RUN, BASELINE_COLUMN], rows))
    else:
        parts.append(NO_PARAMS_DIFFER)
    chunks = split_mrkdwn("\n".join(parts), limits.SECTION_BUDGET)
    title = truncate(DELTAS_TITLE.format(line=build_baseline_line(baseline)), limits.SECTION_TEXT)
    where = link(summary.run_url, "the run's page") if summary.run_url else f"run `{summary.run_id}`"
    return paged(title, chunks, text=DELTAS_TEXT, where=where)


def name_list(keys: Sequence[str]) -> str:
    """Metric names in inline code; a backtick in a name (it would end the code, or with others open a
    code block) is shown as a quote."""
    shown = ", ".join("`" + escape_code(k.replace("`", "'")) + "`" for k in keys[:NAMES_SHOWN])
    return shown + (f" and {len(keys) - NAMES_SHOWN} more" if len(keys) > NAMES_SHOWN else "")


# --- /review compare --------------------------------------------------------------------------------

COMPARE_HEADER = "Comparing {n} runs"
COMPARE_TEXT = "Comparing {n} runs: {names}"
RUN_LINE = "*{label}* {run} · {experiment}"
DIFFERENT_EXPERIMENTS = (
    ":information_source: These runs come from {n} experiments ({names}). They are compared anyway; "
    "check that their metrics were measured on the same data."
)
BEST_TITLE = "*Best per metric*"
BEST_LINE = "• *{key}* ({way}): *{label}* `{value}`"
BEST_WAYS = {Direction.MAX: "higher is better", Direction.MIN: "lower is better"}
TABLE_TITLE = "*Shared metrics and the params that differ*"
TABLE_IN_THREAD = (
    "_The table ({metrics} shared metrics, {params} params that differ, {runs} runs) is too wide for a "
    "message: it is in the thread as a PNG and a CSV file._"
)
NOT_SHARED = "_Not logged by every run (left out): {keys}_"
NO_SHARED = "_These runs have no metric in common._"
BARS_TITLE = "Final metrics"
BARS_COMMENT = ":bar_chart: Final value of each shared metric, one bar per run ({n} charts)."
HISTORIES_TITLE = "Metric histories"
HISTORIES_COMMENT = ":chart_with_upwards_trend: Metric histories overlaid, one colour per run ({n} charts)."
NOT_CHARTED = " Not charted for lack of room: {keys}."
CHARTS_SAMPLED = (
    " Too long to read whole, so drawn from MLflow's sample (a one-step spike can be missing): {keys}."
)
CHARTS_NONFINITE = " NaN or ±inf, marked on the panel's edge: {keys}."
TABLE_FILES_COMMENT = ":page_facing_up: The whole comparison table: PNG to read, CSV for a spreadsheet."
COMPARISON_PART_FAILED = (
    ":warning: The comparison is posted, but part of its thread could not be ({part}: Slack said `{code}`)."
)
MAX_TABLE_WIDTH = 80  # characters in a code block before Slack wraps its lines on a laptop screen
MAX_TABLE_SECTIONS = 6
BEST_LINES = 15
NO_KNOWN_DIRECTION = "_No metric with a known direction (see `METRIC_DIRECTIONS`)._"


@dataclass(frozen=True)
class ComparisonTable:
    header: list[str]
    rows: list[list[str]]
    metrics: list[str]
    params: list[str]

    def csv(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class BuiltComparison:
    message: SlackMessage
    table: ComparisonTable
    table_in_thread: bool


def comparison_table(runs: Sequence[RunSummary], key_metrics: Sequence[str] = ()) -> ComparisonTable:
    """Rows: every shared metric (key metrics first), then each param that differs; a column per run."""
    labels = label_runs(len(runs))
    metrics = ordered(shared_metrics([r.metrics for r in runs]), key_metrics)
    params = differing_params([r.params for r in runs])
    rows = [[k, *(format_value(r.metrics[k]) for r in runs)] for k in metrics]
    rows += [[f"param {k}", *(r.params.get(k, MISSING) for r in runs)] for k in params]
    return ComparisonTable(header=["", *labels], rows=rows, metrics=metrics, params=params)


def build_comparison(
    runs: Sequence[RunSummary], directions: Mapping[str, Direction], key_metrics: Sequence[str] = ()
) -> BuiltComparison:
    labels = label_runs(len(runs))
    table = comparison_table(runs, key_metrics)
    blocks: list[dict] = [
        HeaderBlock(text=PlainTextObject(text=COMPARE_HEADER.format(n=len(runs)), emoji=False)).to_dict(),
        SectionBlock(text=MarkdownTextObject(text=_run_lines(runs, labels))).to_dict(),
    ]
    experiments = list(dict.fromkeys(r.experiment_name or r.experiment_id for r in runs))
    if len(experiments) > 1:
        names = ", ".join(f"`{escape(e)}`" for e in experiments)
        text = truncate(DIFFERENT_EXPERIMENTS.format(n=len(experiments), names=names), limits.SECTION_TEXT)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text)]).to_dict())
    if table.metrics:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=_best_text(runs, labels, table.metrics, directions))
            ).to_dict()
        )
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=NO_SHARED)).to_dict())
    not_shared = [k for k in all_metrics([r.metrics for r in runs]) if k not in set(table.metrics)]
    text = text_table(table.header, table.rows) if table.rows else ""
    chunks = split_mrkdwn(text, limits.SECTION_BUDGET) if text else []
    width = max((len(line) for line in text.splitlines()), default=0)
    in_thread = bool(table.rows) and (width > MAX_TABLE_WIDTH or len(chunks) > MAX_TABLE_SECTIONS)
    if table.rows and not in_thread:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=TABLE_TITLE)).to_dict())
        blocks += [SectionBlock(text=MarkdownTextObject(text=chunk)).to_dict() for chunk in chunks]
    elif in_thread:
        note = TABLE_IN_THREAD.format(metrics=len(table.metrics), params=len(table.params), runs=len(runs))
        blocks.append(SectionBlock(text=MarkdownTextObject(text=note)).to_dict())
    if not_shared:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=truncate(NOT_SHARED.format(keys=name_list(not_shared)), limits.SECTION_TEXT)
                    )
                ]
            ).to_dict()
        )
    fallback = COMPARE_TEXT.format(n=len(runs), names=", ".join(r.run_name for r in runs))
    return BuiltComparison(
        message=SlackMessage(text=truncate(escape(fallback), limits.MESSAGE_TEXT), blocks=blocks),
        table=table,
        table_in_thread=in_thread,
    )


def _run_lines(runs: Sequence[RunSummary], labels: Sequence[str]) -> str:
    lines = []
    for label, run in zip(labels, runs, strict=True):
        name = link(run.run_url, run.run_name) if run.run_url else f"`{escape(run.run_name)}`"
        experiment = (
            link(run.experiment_url, run.experiment_name)
            if run.experiment_url
            else escape(run.experiment_name)
        )
        lines.append(RUN_LINE.format(label=label, run=name, experiment=experiment))
    return truncate("\n".join(lines), limits.SECTION_TEXT)


def _best_text(
    runs: Sequence[RunSummary],
    labels: Sequence[str],
    metrics: Sequence[str],
    directions: Mapping[str, Direction],
) -> str:
    lines = [BEST_TITLE]
    all_directions = [(k, direction_of(k, directions)) for k in metrics]
    judged = [(k, d) for k, d in all_directions if d.judged]
    unknown = [k for k, d in all_directions if d is Direction.UNKNOWN]
    for key, direction in judged[:BEST_LINES]:
        values = {label: run.metrics[key] for label, run in zip(labels, runs, strict=True)}
        best = best_first(values, direction)[0]
        if not is_finite(values[best]):  # no run has a number for it: nobody is best
            continue
        lines.append(
            BEST_LINE.format(
                key=escape(key), way=BEST_WAYS[direction], label=best, value=format_value(values[best])
            )
        )
    if len(judged) > BEST_LINES:
        lines.append(f"_…and {len(judged) - BEST_LINES} more in the table._")
    if len(lines) == 1 and not unknown:
        lines.append(NO_KNOWN_DIRECTION)
    if unknown:
        lines.append(direction_hint(unknown))
    return truncate("\n".join(lines), limits.SECTION_TEXT)


def build_charts_comment(
    template: str,
    panels: int,
    omitted: Sequence[str],
    sampled: Sequence[str] = (),
    nonfinite: Sequence[str] = (),
) -> str:
    comment = template.format(n=panels)
    for note, keys in ((CHARTS_NONFINITE, nonfinite), (CHARTS_SAMPLED, sampled), (NOT_CHARTED, omitted)):
        if keys:
            comment += note.format(keys=name_list(list(keys)))
    return truncate(comment, limits.SECTION_TEXT)


def build_chart_upload(
    name: str, template: str, chart: MetricChart, filename: str, title: str
) -> FileUpload | None:
    """A rendered chart as a thread item with its comment; None when nothing was drawn."""
    if chart.png is None:
        return None
    return FileUpload(
        name=name,
        comment=build_charts_comment(
            template, len(chart.panels), chart.omitted, chart.sampled, chart.nonfinite
        ),
        files=[UploadFile(filename, title, chart.png)],
    )
