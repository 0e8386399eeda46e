"""Metric history charts as PNG bytes, for review cards and comparisons.

Rendering uses matplotlib's object API only (`Figure` + the Agg canvas) and passes every style per
call: `pyplot` keeps a global figure registry and rcParams are process-wide, so neither is safe when
several Slack workers render at once. Each call builds and discards its own Figure, which is the
matplotlib-supported way to draw from many threads. Text goes through a font fallback chain
(FONT_FAMILY), so CJK and emoji in run and metric names are drawn, not boxes.

Histories arrive as min-max envelopes (`bot.envelope`), reduced again to each panel's pixel width, so
every spike is drawn; NaN and ±inf are marked at the panel's edge and named in its legend.

Charts fail soft: a render error is logged and the chart is left out, so the message still goes.
"""

from __future__ import annotations

import io
import logging
import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import cycle

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from bot import envelope as envelopes
from bot.envelope import NAN, NEG_INF, POS_INF, Envelope, NonFinite, XAxis
from bot.metrics.names import panel_groups, parse_key
from bot.metrics.values import as_float
from bot.models import MetricSeries

logger = logging.getLogger(__name__)

# Sized for Slack's preview (~360-720 px wide): 12 in at 100 dpi is 1200 px, so 12 pt text stays
# legible when shown at half size.
FIGURE_WIDTH_IN = 12.0
PANEL_HEIGHT_IN = 3.0
TITLE_HEIGHT_IN = 0.5
DPI = 100
MAX_COLUMNS = 3
FONT_SIZE = 12
TITLE_FONT_SIZE = 13
SUPTITLE_FONT_SIZE = 15
LEGEND_FONT_SIZE = 11
X_LABEL = "step"
X_LABEL_LOGGING_ORDER = "logging order (every value at step {step})"
X_LABEL_MIXED = "step / logging order"
LOGGING_ORDER_SUFFIX = " (logging order)"
SAMPLED_SUFFIX = " (sampled)"
NO_FINITE_VALUE = "no finite value: {counts}"
NONFINITE_AT = "{kind} at {where}"
PANEL_FAILED = "could not draw {key}"
Y_SCALED = "÷ {scale:.3g}"
# Colourblind-safe (Okabe-Ito); train first, so train is always the same colour.
LINE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
# Where a non-finite value is marked: +inf on the top edge, -inf and NaN on the bottom one.
MARK_STYLE = {POS_INF: ("^", 1.0), NEG_INF: ("v", 0.0), NAN: ("X", 0.0)}

# Latin, Greek and Cyrillic from DejaVu Sans, then CJK (Debian fonts-droid-fallback), then
# monochrome emoji and symbols (Debian fonts-symbola): matplotlib (>= 3.6) falls back glyph by glyph
# along this list. Only installed families are named, so a missing one costs a box, not a warning on
# every draw. No bold text: the fallback fonts have no bold face (matplotlib warns, then fakes none).
WANTED_FONTS = ("DejaVu Sans", "Droid Sans Fallback", "Symbola")
# Emoji presentation selectors and joiners have no glyph of their own in these fonts; without them an
# emoji sequence is drawn as its parts.
_INVISIBLE = dict.fromkeys(map(ord, "\ufe0e\ufe0f\u200d"), None)

# The fixed grid of a history chart, in pixels (constrained layout measured 0.7 s of a 1.1 s render of
# 12 panels): left room for y tick labels, a gap between columns for the next one's, and per row a
# title above and tick labels and the x label below.
LEFT_PX = 80
RIGHT_PX = 25
COLUMN_GAP_PX = 90
ROW_TOP_PX = 38
ROW_BOTTOM_PX = 55
FIGURE_LEGEND_PX = 40
PANEL_TITLE_CHARS = 42
# PNG compression: level 1 is several times faster than the default 6 for a few % more bytes.
PNG_COMPRESS_LEVEL = 1


def _installed(family: str) -> bool:
    try:
        font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    except ValueError:
        return False
    return True


@cache
def font_family() -> tuple[str, ...]:
    """The fallback chain of installed families (DejaVu Sans, matplotlib's own, always)."""
    return tuple(f for f in WANTED_FONTS if f == "DejaVu Sans" or _installed(f))


def panel_width_px(columns: int) -> int:
    """The pixel width of each panel of a history chart with this many columns."""
    usable = FIGURE_WIDTH_IN * DPI - LEFT_PX - RIGHT_PX - (columns - 1) * COLUMN_GAP_PX
    return int(usable // columns)


# What Histories reduce to (and cache): a panel of the widest grid. A chart with fewer columns draws
# these buckets over more pixels, every extreme still in.
HISTORY_WIDTH_PX = panel_width_px(MAX_COLUMNS)


def pair_metrics(keys: Iterable[str], first: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """Metric keys that belong on the same axes, one group per panel (`bot.metrics.names.panel_groups`):
    one metric's train/validation/test variants across libraries' spellings (`loss` + `val_loss`,
    `train-logloss` + `validation_0-logloss`, `train/loss` + `val/loss`); groups named in `first`
    (REVIEW_KEY_METRICS, then PRIMARY_METRIC) first, then pairs, then the rest alphabetically."""
    return [panel for _, panel in panel_groups(keys, first)]


def _group_name(group: tuple[str, ...]) -> str:
    """A panel's title: the shared base name of a group, the key itself when alone."""
    return group[0] if len(group) == 1 else parse_key(group[0]).base


@dataclass(frozen=True)
class MetricChart:
    """A rendered figure: `png` is None when there was nothing to chart or rendering failed (`failed`)."""

    png: bytes | None
    panels: list[tuple[str, ...]] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)  # keys charted by nobody because of max_panels
    sampled: list[str] = field(default_factory=list)  # keys drawn from MLflow's sample, not every point
    nonfinite: list[str] = field(default_factory=list)  # charted keys with NaN or ±inf values
    failed: bool = False


def _literal(text: str) -> str:
    # An even number of `$` would make matplotlib parse mathtext (and an odd one can raise); metric
    # names are plain text.
    return text.translate(_INVISIBLE).replace("$", r"\$")


def _short(text: str, limit: int = PANEL_TITLE_CHARS) -> str:
    # East Asian wide characters take two columns.
    width, out = 0, []
    for char in text:
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if width > limit:
            return "".join(out) + "…"
        out.append(char)
    return text


def _as_envelope(item: MetricSeries | Envelope, width: int) -> Envelope:
    if isinstance(item, Envelope):
        return envelopes.reduce(item, width)
    return envelopes.from_series(item, width)


def charted_keys(
    keys_with_history: Iterable[str], first: Sequence[str] = (), max_panels: int = 12
) -> list[str]:
    """The keys a history chart of these (each logged more than once) shows, in panel order: what is
    worth fetching in full."""
    groups = pair_metrics(keys_with_history, first)
    return [key for group in groups[: max(0, max_panels)] for key in group]


def render_metric_history(
    series: Sequence[MetricSeries | Envelope],
    title: str = "",
    max_panels: int = 12,
    first: Sequence[str] = (),
) -> MetricChart:
    """One PNG with a panel per metric group, for every metric logged more than once.

    Finite values are drawn as a line (every bucket's extremes of the full history); NaN and ±inf
    are marked on the panel's edge and named in its legend; a metric with no finite value still gets
    its panel, saying so. Metrics logged once (or never) are not charted and not listed as omitted.
    Panels follow `pair_metrics(keys, first)`; groups beyond `max_panels` are listed in `omitted`.
    Never raises for a bad render: the error is logged, `png` is None and `failed` is set.
    """
    by_key: dict[str, Envelope] = {}
    for item in series:
        env = _as_envelope(item, HISTORY_WIDTH_PX)
        if env.charted:
            by_key[env.key] = env
    groups = pair_metrics(by_key, first)
    if not groups:
        return MetricChart(png=None)
    panels = groups[: max(0, max_panels)]
    omitted = [key for group in groups[len(panels) :] for key in group]
    if not panels:
        return MetricChart(png=None, omitted=omitted)
    shown = [by_key[key] for group in panels for key in group]
    sampled = [env.key for env in shown if env.sampled]
    nonfinite = [env.key for env in shown if env.nonfinite]
    try:
        png = _render_png(panels, by_key, title)
    except Exception:
        logger.exception("metric chart failed to render; leaving it out")
        return MetricChart(png=None, failed=True)
    return MetricChart(png=png, panels=panels, omitted=omitted, sampled=sampled, nonfinite=nonfinite)


@dataclass(frozen=True)
class _Grid:
    figure: Figure
    spec: GridSpec
    rows: int
    columns: int
    width_px: int


def _grid(count: int, title: str, *, legend: bool = False) -> _Grid:
    """A figure with a fixed grid of `count` panels (no layout engine: every margin is set here)."""
    columns = min(MAX_COLUMNS, count)
    rows = math.ceil(count / columns)
    title_px = TITLE_HEIGHT_IN * DPI if title else 0.0
    legend_px = FIGURE_LEGEND_PX if legend else 0.0
    height_px = PANEL_HEIGHT_IN * DPI * rows + title_px + legend_px
    width_px = FIGURE_WIDTH_IN * DPI
    axes_height = PANEL_HEIGHT_IN * DPI - ROW_TOP_PX - ROW_BOTTOM_PX
    axes_width = panel_width_px(columns)
    figure = Figure(figsize=(FIGURE_WIDTH_IN, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    spec = GridSpec(
        rows,
        columns,
        figure=figure,
        left=LEFT_PX / width_px,
        right=1 - RIGHT_PX / width_px,
        top=1 - (title_px + ROW_TOP_PX) / height_px,
        bottom=(legend_px + ROW_BOTTOM_PX) / height_px,
        wspace=COLUMN_GAP_PX / axes_width,
        hspace=(ROW_TOP_PX + ROW_BOTTOM_PX) / axes_height,
    )
    if title:
        figure.suptitle(
            _literal(title),
            fontsize=SUPTITLE_FONT_SIZE,
            fontfamily=font_family(),
            y=1 - (title_px * 0.2) / height_px,
            va="top",
        )
    return _Grid(figure, spec, rows, columns, axes_width)


def _render_png(panels: list[tuple[str, ...]], by_key: dict[str, Envelope], title: str) -> bytes:
    grid = _grid(len(panels), title)
    for index, group in enumerate(panels):
        axes = grid.figure.add_subplot(grid.spec[index // grid.columns, index % grid.columns])
        lines = [(key, by_key[key], colour, "-") for colour, key in zip(cycle(LINE_COLOURS), group)]
        lowest = index + grid.columns >= len(panels)
        _draw_panel(axes, _group_name(group), lines, grid.width_px, lowest=lowest, legend=len(group) > 1)
    return _png(grid.figure)


_Line = tuple[str, Envelope, str, str]  # (legend label, envelope, colour, line style)
SAME_VALUES = " = {other}"
DUPLICATE_STYLE = (0, (4, 4))  # dashes over the line it repeats


def _draw_panel(  # noqa: ANN001 - a matplotlib Axes
    axes,
    name: str,
    lines: Sequence[_Line],
    width_px: int,
    *,
    lowest: bool,
    legend: bool,
    levels: Sequence[tuple[float, str]] = (),
) -> None:
    """One panel: each envelope as a line at this pixel width, its non-finite values marked on the
    edges; `levels` are horizontal lines (a value logged once). A panel that cannot be drawn says so
    instead of failing the chart."""
    try:
        _draw_lines(axes, name, lines, width_px, lowest=lowest, legend=legend, levels=levels)
    except Exception:
        logger.exception("a chart panel failed to draw; it says so instead")
        axes.clear()
        axes.set_axis_off()
        axes.text(
            0.5,
            0.5,
            _literal(PANEL_FAILED.format(key=name)),
            ha="center",
            va="center",
            transform=axes.transAxes,
            fontsize=FONT_SIZE,
            fontfamily=font_family(),
        )


def _draw_lines(  # noqa: ANN001 - a matplotlib Axes
    axes,
    name: str,
    lines: Sequence[_Line],
    width_px: int,
    *,
    lowest: bool,
    legend: bool,
    levels: Sequence[tuple[float, str]],
) -> None:
    reduced = [(label, envelopes.reduce(env, width_px), colour, style) for label, env, colour, style in lines]
    finite = [v for _, env, _, _ in reduced for v in env.values] + [value for value, _ in levels]
    scale = _y_scale(finite)
    edge = blended_transform_factory(axes.transData, axes.transAxes)
    handles: list[Line2D] = []
    labels: list[str] = []
    extent: list[int] = []
    axis_kinds = {env.axis for _, env, _, _ in reduced}
    drawn: dict[tuple[tuple[int, ...], tuple[float, ...]], str] = {}
    for label, env, colour, style in reduced:
        shown = label + (
            LOGGING_ORDER_SUFFIX if env.axis is XAxis.LOGGING_ORDER and len(axis_kinds) > 1 else ""
        )
        # A line identical to one already drawn (Keras' val_* and MLflow's validation_* copies) would
        # hide under it: dashed, so both show, and named as the same.
        same = drawn.setdefault((tuple(env.x), tuple(env.values)), label) if env.values else label
        if same != label:
            style = DUPLICATE_STYLE
            shown = label + SAME_VALUES.format(other=same)  # short: the legend sits inside the panel
        values = [v / scale for v in env.values] if scale != 1.0 else env.values
        (line,) = axes.plot(env.x, values, color=colour, linewidth=1.6, linestyle=style)
        extent += env.extent or ()
        if legend:
            handles.append(line)
            labels.append(shown)
        for counted in env.nonfinite:
            marker, y = MARK_STYLE[counted.kind]
            xs = [x for x, kind in env.marks if kind == counted.kind]
            (mark,) = axes.plot(
                xs,
                [y] * len(xs),
                transform=edge,
                linestyle="none",
                marker=marker,
                markersize=7,
                color=colour,
                markeredgecolor="#000000",
                markeredgewidth=0.6,
                clip_on=False,
            )
            handles.append(mark)
            text = NONFINITE_AT.format(kind=counted.kind, where=_where(env, counted))
            labels.append(f"{shown}: {text}" if len(reduced) > 1 else text)
    for value, colour in levels:
        axes.axhline(value / scale, color=colour, linewidth=1.4, linestyle="--")
    if extent and min(extent) == max(extent):  # every point at one x: give it some room
        axes.set_xlim(extent[0] - 0.5, extent[0] + 0.5)
    x_label = _x_label([env for _, env, _, _ in reduced])
    _style_axes(axes, _literal(_short(name)), x_label=x_label if lowest or x_label != X_LABEL else None)
    if scale != 1.0:
        axes.set_ylabel(Y_SCALED.format(scale=scale), fontsize=FONT_SIZE - 1)
    if not finite:
        counts = ", ".join(f"{n.count:,} × {n.kind}" for _, env, _, _ in reduced for n in env.nonfinite)
        axes.text(
            0.5,
            0.5,
            NO_FINITE_VALUE.format(counts=counts),
            ha="center",
            va="center",
            transform=axes.transAxes,
            fontsize=FONT_SIZE,
            color="#555555",
            fontfamily=font_family(),
        )
        axes.set_yticks([])
    if handles:
        # Explicit labels: matplotlib would silently drop keys starting with "_" from a legend.
        axes.legend(
            handles,
            [_literal(label) for label in labels],
            frameon=False,
            prop={"family": font_family(), "size": LEGEND_FONT_SIZE},
        )


def _y_scale(values: Sequence[float]) -> float:
    """1, or what to divide values by when their range overflows a float (±1e308 both logged): the
    tick locator would fail on it (`arange: cannot compute length`) and the line would vanish."""
    if not values:
        return 1.0
    low, high = min(values), max(values)
    if math.isfinite((high - low) * 1.25):
        return 1.0
    return max(abs(low), abs(high))


def _where(env: Envelope, counted: NonFinite) -> str:
    count, first, last = counted.count, counted.first, counted.last
    noun = "step" if env.axis is XAxis.STEP else "value #"
    sep = " " if env.axis is XAxis.STEP else ""
    if count == 1:
        return f"{noun}{sep}{first:,}"
    plural = "steps" if env.axis is XAxis.STEP else "values"
    return f"{count:,} {plural}, {noun}{sep}{first:,}–{last:,}"


def _x_label(lines: Sequence[Envelope]) -> str:
    kinds = {env.axis for env in lines}
    if kinds == {XAxis.STEP}:
        return X_LABEL
    if kinds == {XAxis.LOGGING_ORDER}:
        steps = {env.step for env in lines}
        return X_LABEL_LOGGING_ORDER.format(step=steps.pop() if len(steps) == 1 else "0")
    return X_LABEL_MIXED


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
    series: Sequence[MetricSeries | Envelope]


def _run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def render_overlay(
    runs: Sequence[ComparedSeries],
    title: str = "",
    max_panels: int = 12,
    dashed_last: bool = False,
    first: Sequence[str] = (),
) -> MetricChart:
    """A panel per metric that at least one run logged more than once, one line per run.

    Panels are in `pair_metrics` order (a metric's train and validation panels side by side).
    `dashed_last` draws the last run dashed (the baseline under a candidate). A run that logged the
    metric once is drawn as a level. Fails soft like `render_metric_history`; `omitted` lists metrics
    beyond `max_panels`.
    """
    by_key: dict[str, list[tuple[int, Envelope]]] = {}
    single: dict[str, list[tuple[int, float]]] = {}  # a run that logged the metric once: its value
    for index, run in enumerate(runs):
        for item in run.series:
            env = _as_envelope(item, HISTORY_WIDTH_PX)
            if env.charted:
                by_key.setdefault(env.key, []).append((index, env))
            elif env.values:
                single.setdefault(env.key, []).append((index, env.values[0]))
    keys = [key for group in pair_metrics(by_key, first) for key in group]
    if not keys:
        return MetricChart(png=None)
    shown, omitted = keys[: max(0, max_panels)], keys[max(0, max_panels) :]
    if not shown:
        return MetricChart(png=None, omitted=omitted)
    sampled = sorted({env.key for key in shown for _, env in by_key[key] if env.sampled})
    nonfinite = sorted({env.key for key in shown for _, env in by_key[key] if env.nonfinite})
    try:
        png = _render_overlay_png(runs, shown, by_key, single, title, dashed_last)
    except Exception:
        logger.exception("comparison chart failed to render; leaving it out")
        return MetricChart(png=None, failed=True)
    return MetricChart(
        png=png, panels=[(k,) for k in shown], omitted=omitted, sampled=sampled, nonfinite=nonfinite
    )


def _render_overlay_png(
    runs: Sequence[ComparedSeries],
    keys: list[str],
    by_key: dict[str, list[tuple[int, Envelope]]],
    single: dict[str, list[tuple[int, float]]],
    title: str,
    dashed_last: bool,
) -> bytes:
    grid = _grid(len(keys), title, legend=True)
    last = len(runs) - 1
    for index, key in enumerate(keys):
        axes = grid.figure.add_subplot(grid.spec[index // grid.columns, index % grid.columns])
        lines = [
            (runs[i].label, env, _run_colour(i), "--" if dashed_last and i == last else "-")
            for i, env in by_key[key]
        ]
        # A run with one value of this metric (a final score, not a curve) is a level to compare with.
        levels = [(value, _run_colour(i)) for i, value in single.get(key, [])]
        lowest = index + grid.columns >= len(keys)
        # Runs are named in the figure's legend; a panel's own legend only names its non-finite marks.
        _draw_panel(axes, key, lines, grid.width_px, lowest=lowest, legend=False, levels=levels)
    handles = [
        Line2D([], [], color=_run_colour(i), linestyle="--" if dashed_last and i == last else "-")
        for i in range(len(runs))
    ]
    grid.figure.legend(
        handles,
        [_literal(run.label) for run in runs],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=min(len(runs), 5),
        frameon=False,
        prop={"family": font_family(), "size": LEGEND_FONT_SIZE},
    )
    return _png(grid.figure)


def _style_axes(axes, title: str, *, x_label: str | None) -> None:  # noqa: ANN001 - a matplotlib Axes
    axes.set_title(title, fontsize=TITLE_FONT_SIZE, loc="left", fontfamily=font_family())
    if x_label:
        axes.set_xlabel(x_label, fontsize=FONT_SIZE, fontfamily=font_family())
    axes.tick_params(labelsize=FONT_SIZE)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
    axes.yaxis.get_offset_text().set_fontsize(FONT_SIZE)
    axes.grid(True, color="#dddddd", linewidth=0.8)
    axes.spines[["top", "right"]].set_visible(False)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(
        buffer, format="png", dpi=DPI, facecolor="white", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL}
    )
    return buffer.getvalue()


def render_final_bars(
    labels: Sequence[str],
    metrics: Sequence[tuple[str, Sequence[float | None]]],
    title: str = "",
    max_panels: int = 24,
) -> MetricChart:
    """A panel per metric with one bar per run (its final value); a run without the metric has no bar."""
    usable = [(key, values) for key, values in metrics if any(v is not None for v in values)]
    if not usable:
        return MetricChart(png=None)
    shown, omitted = usable[:max_panels], [key for key, _ in usable[max_panels:]]
    try:
        png = _render_bars_png(labels, shown, title)
    except Exception:
        logger.exception("final-metrics chart failed to render; leaving it out")
        return MetricChart(png=None)
    return MetricChart(png=png, panels=[(key,) for key, _ in shown], omitted=omitted)


def _nonfinite_name(value: float) -> str:
    return NAN if math.isnan(value) else POS_INF if value > 0 else NEG_INF


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
        figure.suptitle(_literal(title), fontsize=SUPTITLE_FONT_SIZE, fontfamily=font_family())
    positions = list(range(len(labels)))
    for index, (key, values) in enumerate(metrics):
        axes = figure.add_subplot(rows, columns, index + 1)
        numbers = [None if v is None else as_float(v) for v in values]
        heights = [v if v is not None and math.isfinite(v) else 0.0 for v in numbers]
        colours = [
            _run_colour(i) if numbers[i] is not None and math.isfinite(numbers[i]) else "none"
            for i in positions
        ]
        axes.bar(positions, heights, color=colours)
        # NaN and ±inf have no height: named where the bar would stand, never drawn as 0.
        for position, value in zip(positions, numbers, strict=True):
            if value is not None and not math.isfinite(value):
                axes.text(
                    position,
                    0.02,
                    _nonfinite_name(value),
                    ha="center",
                    va="bottom",
                    fontsize=FONT_SIZE - 1,
                    color=_run_colour(position),
                    transform=blended_transform_factory(axes.transData, axes.transAxes),
                )
        axes.set_xticks(positions, [_literal(label) for label in labels], fontsize=FONT_SIZE - 1)
        for tick in axes.get_xticklabels():
            tick.set_fontfamily(font_family())
        axes.set_title(_literal(key), fontsize=TITLE_FONT_SIZE, loc="left", fontfamily=font_family())
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
            figure.suptitle(_literal(title), fontsize=TITLE_FONT_SIZE, fontfamily=font_family())
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
            cell.get_text().set_fontfamily(font_family())
            if row == 0:
                cell.set_facecolor("#f0f0f0")
        return _png(figure)
    except Exception:
        logger.exception("comparison table failed to render; leaving it out")
        return None
