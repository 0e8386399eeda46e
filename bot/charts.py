"""Metric history charts as PNG bytes, for review cards.

Rendering uses matplotlib's object API only (`Figure` + the Agg canvas) and passes every style per
call: `pyplot` keeps a global figure registry and rcParams are process-wide, so neither is safe when
several Slack workers render at once. Each call builds and discards its own Figure, which is the
matplotlib-supported way to draw from many threads.

Charts fail soft: a render error is logged and the chart is left out, so the message still goes.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import cycle

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from bot.metrics.names import panel_groups, parse_key
from bot.models import MetricSeries

logger = logging.getLogger(__name__)

# Sized for Slack's preview (~360-720 px wide): 12 in at 100 dpi is 1200 px, so 12 pt text stays
# legible when shown at half size.
FIGURE_WIDTH_IN = 12.0
PANEL_HEIGHT_IN = 3.0
TITLE_HEIGHT_IN = 0.5
DPI = 100
MAX_COLUMNS = 3
MAX_POINTS = 1000
FONT_SIZE = 12
TITLE_FONT_SIZE = 13
SUPTITLE_FONT_SIZE = 15
LEGEND_FONT_SIZE = 11
X_LABEL = "step"
# Colourblind-safe (Okabe-Ito); train first, so train is always the same colour.
LINE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")


def pair_metrics(keys: Iterable[str], first: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """Metric keys that belong on the same axes, one group per panel (`bot.metrics.names.panel_groups`):
    one metric's train/validation/test variants across libraries' spellings (`loss` + `val_loss`,
    `train-logloss` + `validation_0-logloss`, `train/loss` + `val/loss`); groups named in `first`
    (REVIEW_KEY_METRICS, then PRIMARY_METRIC) first, then pairs, then the rest alphabetically."""
    return [panel for _, panel in panel_groups(keys, first)]


def _group_name(group: tuple[str, ...]) -> str:
    """A panel's title: the shared base name of a group, the key itself when alone."""
    return group[0] if len(group) == 1 else parse_key(group[0]).base


def downsample(series: MetricSeries, max_points: int = MAX_POINTS) -> MetricSeries:
    """At most `max_points` points, keeping the first and last and the shape in between.

    The points between the ends are cut into equal buckets and each bucket keeps its minimum and
    maximum (in step order). Evenly spaced sampling would hide a single spike or divergence, which
    is exactly what a reviewer is looking for.
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2 to keep the first and last points")
    count = min(len(series.steps), len(series.values))
    if count <= max_points:
        return series
    values = np.asarray(series.values[:count], dtype=float)
    buckets = (max_points - 2) // 2
    keep = {0, count - 1}
    if buckets:
        edges = np.linspace(1, count - 1, buckets + 1).astype(int)
        for low, high in zip(edges[:-1], edges[1:], strict=True):
            if high <= low:
                continue
            bucket = values[low:high]
            finite = np.isfinite(bucket)
            if not finite.any():
                keep.add(int(low))
                continue
            keep.add(int(low + np.where(finite, bucket, np.inf).argmin()))
            keep.add(int(low + np.where(finite, bucket, -np.inf).argmax()))
    indices = sorted(keep)
    return MetricSeries(
        key=series.key,
        steps=[series.steps[i] for i in indices],
        values=[series.values[i] for i in indices],
    )


@dataclass(frozen=True)
class MetricChart:
    """A rendered figure: `png` is None when there was nothing to chart or rendering failed."""

    png: bytes | None
    panels: list[tuple[str, ...]] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)  # keys charted by nobody because of max_panels


def _finite(series: MetricSeries) -> MetricSeries:
    pairs = [(s, v) for s, v in zip(series.steps, series.values, strict=False) if math.isfinite(v)]
    return MetricSeries(key=series.key, steps=[s for s, _ in pairs], values=[v for _, v in pairs])


def _literal(text: str) -> str:
    # An even number of `$` would make matplotlib parse mathtext (and an odd one can raise); metric
    # names are plain text.
    return text.replace("$", r"\$")


def _render_png(panels: list[tuple[str, ...]], series_by_key: dict[str, MetricSeries], title: str) -> bytes:
    columns = min(MAX_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    height = PANEL_HEIGHT_IN * rows + (TITLE_HEIGHT_IN if title else 0.0)
    figure = Figure(figsize=(FIGURE_WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(_literal(title), fontsize=SUPTITLE_FONT_SIZE, fontweight="bold")
    for index, group in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        handles = []
        for colour, key in zip(cycle(LINE_COLOURS), group):
            points = series_by_key[key]
            (line,) = axes.plot(points.steps, points.values, color=colour, linewidth=1.8)
            handles.append(line)
        # Only the lowest panel of each column names the x axis; the others would repeat it.
        _style_axes(axes, _literal(_group_name(group)), show_x=index + columns >= len(panels))
        if len(group) > 1:
            # Explicit labels: matplotlib would silently drop keys starting with "_" from a legend.
            axes.legend(handles, [_literal(key) for key in group], fontsize=LEGEND_FONT_SIZE, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def render_metric_history(
    series: Sequence[MetricSeries], title: str = "", max_panels: int = 12
) -> MetricChart:
    """One PNG with a panel per metric group, for every metric with more than one (finite) point.

    Non-finite values are dropped; metrics left with one point or none are not charted and not
    listed as omitted. Groups beyond `max_panels` are listed in `omitted`. Never raises for a bad
    render: the error is logged and `png` is None.
    """
    series_by_key: dict[str, MetricSeries] = {}
    for item in series:
        finite = _finite(item)
        if len(finite.steps) > 1:
            series_by_key[item.key] = downsample(finite)
    groups = pair_metrics(series_by_key)
    if not groups:
        return MetricChart(png=None)
    panels = groups[: max(0, max_panels)]
    omitted = [key for group in groups[len(panels) :] for key in group]
    if not panels:
        return MetricChart(png=None, omitted=omitted)
    try:
        png = _render_png(panels, series_by_key, title)
    except Exception:
        logger.exception("metric chart failed to render; leaving it out")
        return MetricChart(png=None)
    return MetricChart(png=png, panels=panels, omitted=omitted)


# --- comparisons -----------------------------------------------------------------------------------

# One colour per compared run (up to 10), the same in the bar chart and the overlaid histories.
RUN_COLOURS = (*LINE_COLOURS[:7], "#882255", "#999999", "#44AA99")
COMPARE_COLUMNS = 4
BAR_PANEL_HEIGHT_IN = 2.6
TABLE_ROW_HEIGHT_IN = 0.3
TABLE_CHAR_WIDTH_IN = 0.09
TABLE_MAX_ROWS = 400  # a taller PNG is unreadable in Slack; the CSV next to it has everything


@dataclass(frozen=True)
class ComparedSeries:
    """One run's histories in an overlay chart, under a short label (A, B… or "candidate")."""

    label: str
    series: Sequence[MetricSeries]


def _run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def render_overlay(
    runs: Sequence[ComparedSeries], title: str = "", max_panels: int = 12, dashed_last: bool = False
) -> MetricChart:
    """A panel per metric that at least one run logged over several steps, one line per run.

    `dashed_last` draws the last run dashed (the baseline under a candidate). Fails soft like
    `render_metric_history`; `omitted` lists metrics beyond `max_panels`.
    """
    by_key: dict[str, list[tuple[int, MetricSeries]]] = {}
    single: dict[str, list[tuple[int, float]]] = {}  # a run that logged the metric once: its value
    for index, run in enumerate(runs):
        for item in run.series:
            finite = _finite(item)
            if len(finite.steps) > 1:
                by_key.setdefault(item.key, []).append((index, downsample(finite)))
            elif finite.values:
                single.setdefault(item.key, []).append((index, finite.values[0]))
    keys = sorted(by_key)
    if not keys:
        return MetricChart(png=None)
    shown, omitted = keys[: max(0, max_panels)], keys[max(0, max_panels) :]
    if not shown:
        return MetricChart(png=None, omitted=omitted)
    try:
        png = _render_overlay_png(runs, shown, by_key, single, title, dashed_last)
    except Exception:
        logger.exception("comparison chart failed to render; leaving it out")
        return MetricChart(png=None)
    return MetricChart(png=png, panels=[(k,) for k in shown], omitted=omitted)


def _render_overlay_png(
    runs: Sequence[ComparedSeries],
    keys: list[str],
    by_key: dict[str, list[tuple[int, MetricSeries]]],
    single: dict[str, list[tuple[int, float]]],
    title: str,
    dashed_last: bool,
) -> bytes:
    columns = min(MAX_COLUMNS, len(keys))
    rows = math.ceil(len(keys) / columns)
    height = PANEL_HEIGHT_IN * rows + TITLE_HEIGHT_IN + 0.4
    figure = Figure(figsize=(FIGURE_WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(_literal(title), fontsize=SUPTITLE_FONT_SIZE, fontweight="bold")
    last = len(runs) - 1
    for index, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, index + 1)
        for run_index, points in by_key[key]:
            axes.plot(
                points.steps,
                points.values,
                color=_run_colour(run_index),
                linewidth=1.6,
                linestyle="--" if dashed_last and run_index == last else "-",
            )
        # A run with one value of this metric (a final score, not a curve) is a level to compare with.
        for run_index, value in single.get(key, []):
            axes.axhline(value, color=_run_colour(run_index), linewidth=1.4, linestyle="--")
        _style_axes(axes, _literal(key), show_x=index + columns >= len(keys))
    handles = [
        Line2D([], [], color=_run_colour(i), linestyle="--" if dashed_last and i == last else "-")
        for i in range(len(runs))
    ]
    figure.legend(
        handles,
        [_literal(run.label) for run in runs],
        loc="outside lower center",
        ncols=min(len(runs), 5),
        fontsize=LEGEND_FONT_SIZE,
        frameon=False,
    )
    return _png(figure)


def _style_axes(axes, title: str, *, show_x: bool) -> None:  # noqa: ANN001 - a matplotlib Axes
    axes.set_title(title, fontsize=TITLE_FONT_SIZE, loc="left")
    if show_x:
        axes.set_xlabel(X_LABEL, fontsize=FONT_SIZE)
    axes.tick_params(labelsize=FONT_SIZE)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
    axes.yaxis.get_offset_text().set_fontsize(FONT_SIZE)
    axes.grid(True, color="#dddddd", linewidth=0.8)
    axes.spines[["top", "right"]].set_visible(False)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def render_final_bars(
    labels: Sequence[str],
    metrics: Sequence[tuple[str, Sequence[float | None]]],
    title: str = "",
    max_panels: int = 24,
) -> MetricChart:
    """A panel per metric with one bar per run (its final value); a run without the metric has no bar."""
    usable = [
        (key, values) for key, values in metrics if any(v is not None and math.isfinite(v) for v in values)
    ]
    if not usable:
        return MetricChart(png=None)
    shown, omitted = usable[:max_panels], [key for key, _ in usable[max_panels:]]
    try:
        png = _render_bars_png(labels, shown, title)
    except Exception:
        logger.exception("final-metrics chart failed to render; leaving it out")
        return MetricChart(png=None)
    return MetricChart(png=png, panels=[(key,) for key, _ in shown], omitted=omitted)


def _render_bars_png(
    labels: Sequence[str], metrics: Sequence[tuple[str, Sequence[float | None]]], title: str
) -> bytes:
    columns = min(COMPARE_COLUMNS, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(
        figsize=(FIGURE_WIDTH_IN, BAR_PANEL_HEIGHT_IN * rows + TITLE_HEIGHT_IN), dpi=DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(_literal(title), fontsize=SUPTITLE_FONT_SIZE, fontweight="bold")
    positions = list(range(len(labels)))
    for index, (key, values) in enumerate(metrics):
        axes = figure.add_subplot(rows, columns, index + 1)
        heights = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
        colours = [_run_colour(i) if values[i] is not None else "none" for i in positions]
        axes.bar(positions, heights, color=colours)
        axes.set_xticks(positions, [_literal(label) for label in labels], fontsize=FONT_SIZE - 1)
        axes.set_title(_literal(key), fontsize=TITLE_FONT_SIZE, loc="left")
        axes.tick_params(axis="y", labelsize=FONT_SIZE - 1)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=4))
        axes.grid(True, axis="y", color="#dddddd", linewidth=0.8)
        axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> bytes | None:
    """A table as a PNG, for a comparison too wide for a Slack message; None if it fails to render."""
    rows = list(rows)[:TABLE_MAX_ROWS]
    try:
        widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
        width_in = min(40.0, max(6.0, sum(w + 2 for w in widths) * TABLE_CHAR_WIDTH_IN))
        height_in = (len(rows) + 1) * TABLE_ROW_HEIGHT_IN + (TITLE_HEIGHT_IN if title else 0.2)
        figure = Figure(figsize=(width_in, height_in), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0, 0, 1, 1 - (TITLE_HEIGHT_IN / height_in if title else 0)))
        axes.axis("off")
        if title:
            figure.suptitle(_literal(title), fontsize=TITLE_FONT_SIZE, fontweight="bold")
        table = axes.table(
            cellText=[[_literal(str(c)) for c in row] for row in rows] or [[""] * len(header)],
            colLabels=[_literal(h) for h in header],
            colWidths=[w / sum(widths) for w in widths],
            loc="upper left",
            cellLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(FONT_SIZE - 2)
        for (row, _), cell in table.get_celld().items():
            cell.set_height(1 / (len(rows) + 1))
            cell.set_edgecolor("#dddddd")
            if row == 0:
                cell.set_text_props(fontweight="bold")
                cell.set_facecolor("#f0f0f0")
        return _png(figure)
    except Exception:
        logger.exception("comparison table failed to render; leaving it out")
        return None
