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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import cycle

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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

# Roles a key can play within a group; the order is the order inside a group (train first).
_ROLE_ORDER = ("train", "", "val", "valid", "validation", "eval", "test")
_ROLE_PREFIX = re.compile(r"^(train|val|valid|validation|eval|test)[_/](.+)$")
_ROLE_SUFFIX = re.compile(r"^(.+)[_/](train|val|valid|validation|eval|test)$")


def _role_and_base(key: str) -> tuple[str, str]:
    """(role, base) of a metric key: `val_loss` -> ("val", "loss"); `loss` -> ("", "loss")."""
    match = _ROLE_PREFIX.match(key)
    if match:
        return match.group(1), match.group(2)
    match = _ROLE_SUFFIX.match(key)
    if match:
        return match.group(2), match.group(1)
    return "", key


def pair_metrics(keys: Iterable[str]) -> list[tuple[str, ...]]:
    """Group metric keys that belong on the same axes (train/validation/test variants of one metric).

    `loss` + `val_loss`, `train_acc` + `val_acc` + `test_acc`, `acc_train` + `acc_val` end up together;
    a key with no partner is a group of one. Groups are sorted by group name (the shared base name,
    or the key itself for a group of one) and ordered train, bare, val..., test inside.
    """
    by_base: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(set(keys)):
        role, base = _role_and_base(key)
        by_base.setdefault(base, []).append((role, key))
    named: list[tuple[str, tuple[str, ...]]] = []
    for base, members in by_base.items():
        if len(members) == 1:
            key = members[0][1]
            named.append((key, (key,)))
            continue
        members.sort(key=lambda member: (_ROLE_ORDER.index(member[0]), member[1]))
        named.append((base, tuple(key for _, key in members)))
    named.sort()
    return [group for _, group in named]


def _group_name(group: tuple[str, ...]) -> str:
    return group[0] if len(group) == 1 else _role_and_base(group[0])[1]


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
        axes.set_title(_literal(_group_name(group)), fontsize=TITLE_FONT_SIZE, loc="left")
        # Only the lowest panel of each column names the x axis; the others would repeat it.
        if index + columns >= len(panels):
            axes.set_xlabel(X_LABEL, fontsize=FONT_SIZE)
        axes.tick_params(labelsize=FONT_SIZE)
        axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
        axes.yaxis.get_offset_text().set_fontsize(FONT_SIZE)
        axes.grid(True, color="#dddddd", linewidth=0.8)
        axes.spines[["top", "right"]].set_visible(False)
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
