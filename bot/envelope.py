"""Min-max envelopes of metric histories: what a chart needs of a history of any length. Pure.

A chart panel is a few hundred pixels wide. Cutting a history into at most that many buckets of equal
x range and keeping each bucket's first, last, minimum and maximum point (M4) draws the same line the
full history draws at that width, so a one-step spike survives 100,000 steps, in at most 4 points per
pixel column however long the run was. Reducing an envelope again to fewer buckets still keeps every
extreme: each coarse bucket's minimum and maximum are some fine bucket's.

NaN and ±inf (MLflow gives ±inf back as ±1.7976931348623157e308) have no place on a y axis: they are
kept apart as marks (where they happened, first and last per bucket) and counted per kind, so a chart
can show that a run diverged, and when, instead of failing or drawing nothing.

A series whose step never advances (Keras logs `validation_*` at step 0 every epoch; `log_metric`
without a step does the same) is laid out in the order it was logged, not stacked on one step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np

from bot.metrics.values import MLFLOW_INFINITY
from bot.models import MetricSeries

Point = tuple[int, int, float]  # (step, timestamp in ms, value), as MLflow returns a metric

NAN = "nan"
POS_INF = "inf"
NEG_INF = "-inf"
KINDS = (NAN, POS_INF, NEG_INF)


class XAxis(StrEnum):
    STEP = "step"
    LOGGING_ORDER = "logging order"  # the n-th value logged, for a series whose step never advances


@dataclass(frozen=True)
class NonFinite:
    """How often a history was NaN, +inf or -inf, and where first and last (on its x axis)."""

    kind: str
    count: int
    first: int
    last: int


@dataclass(frozen=True)
class Envelope:
    """A metric's history reduced to at most `width` buckets of its x range.

    `x`/`values` are the finite points kept (x ascending); `marks` the non-finite points kept, as
    (x, kind); `nonfinite` counts every non-finite point of the history. `points` is how many points
    the history has. `sampled`: built from the tracking server's sample of the history, not from every
    point, so a spike between two sampled steps can be missing.
    """

    key: str
    x: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    marks: tuple[tuple[int, str], ...] = ()
    nonfinite: tuple[NonFinite, ...] = ()
    points: int = 0
    width: int = 0
    axis: XAxis = XAxis.STEP
    step: int | None = None  # LOGGING_ORDER: the one step every value was logged at
    sampled: bool = False

    @property
    def charted(self) -> bool:
        """A history worth a chart: logged more than once."""
        return self.points > 1

    @property
    def extent(self) -> tuple[int, int] | None:
        """(first x, last x) over every point, finite or not; None without points."""
        xs = [*self.x[:1], *self.x[-1:], *(m[0] for m in self.marks[:1]), *(m[0] for m in self.marks[-1:])]
        return (min(xs), max(xs)) if xs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "x": list(self.x),
            "y": list(self.values),
            "marks": [list(m) for m in self.marks],
            "nonfinite": [[n.kind, n.count, n.first, n.last] for n in self.nonfinite],
            "points": self.points,
            "width": self.width,
            "axis": self.axis.value,
            "step": self.step,
            "sampled": self.sampled,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Envelope:
        return cls(
            key=str(data["key"]),
            x=tuple(int(v) for v in data["x"]),
            values=tuple(float(v) for v in data["y"]),
            marks=tuple((int(x), str(kind)) for x, kind in data["marks"]),
            nonfinite=tuple(NonFinite(str(k), int(c), int(f), int(la)) for k, c, f, la in data["nonfinite"]),
            points=int(data["points"]),
            width=int(data["width"]),
            axis=XAxis(data["axis"]),
            step=None if data.get("step") is None else int(data["step"]),
            sampled=bool(data.get("sampled", False)),
        )


def build(key: str, points: Iterable[Point], width: int, *, sampled: bool = False) -> Envelope:
    """The envelope of a history given as MLflow's (step, timestamp, value) points, in any order.

    Points are put in step order (then logging time); a history of several points that all share one
    step is put in logging order instead, its x being the n-th value logged.
    """
    _check_width(width)
    rows = list(points)
    count = len(rows)
    if not count:
        return Envelope(key=key, width=width, sampled=sampled)
    steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=count)
    stamps = np.fromiter((r[1] for r in rows), dtype=np.int64, count=count)
    values = _as_float(np.fromiter((r[2] for r in rows), dtype=np.float64, count=count))
    if count > 1 and steps.min() == steps.max():
        order = np.argsort(stamps, kind="stable")
        x = np.arange(count, dtype=np.int64)
        axis, step = XAxis.LOGGING_ORDER, int(steps[0])
    else:
        order = np.lexsort((stamps, steps))
        x = steps[order]
        axis, step = XAxis.STEP, None
    return _envelope(key, x, values[order], width, axis=axis, step=step, sampled=sampled)


def from_series(series: MetricSeries, width: int) -> Envelope:
    """The envelope of a MetricSeries (steps and values, in logging order)."""
    count = min(len(series.steps), len(series.values))
    return build(
        series.key, ((series.steps[i], i, series.values[i]) for i in range(count)), width, sampled=False
    )


def reduce(envelope: Envelope, width: int) -> Envelope:
    """The same envelope in at most `width` buckets (itself when it already has no more)."""
    _check_width(width)
    if envelope.width and envelope.width <= width:
        return envelope
    x = np.asarray(envelope.x, dtype=np.int64)
    y = np.asarray(envelope.values, dtype=np.float64)
    extent = envelope.extent
    if extent is None:
        return replace(envelope, width=width)
    low, high = extent
    keep = _m4(y, _buckets(x, low, high, width))
    marks = _reduce_marks(
        np.asarray([m[0] for m in envelope.marks], dtype=np.int64),
        [m[1] for m in envelope.marks],
        low,
        high,
        width,
    )
    return replace(
        envelope,
        x=tuple(int(v) for v in x[keep]),
        values=tuple(float(v) for v in y[keep]),
        marks=marks,
        width=width,
    )


def _envelope(
    key: str,
    x: np.ndarray,
    values: np.ndarray,
    width: int,
    *,
    axis: XAxis,
    step: int | None,
    sampled: bool,
) -> Envelope:
    low, high = int(x[0]), int(x[-1])
    finite = np.isfinite(values)
    fx, fy = x[finite], values[finite]
    keep = _m4(fy, _buckets(fx, low, high, width))
    kinds = _kinds(values)
    counted = []
    for kind in KINDS:
        where = x[kinds == kind]
        if where.size:
            counted.append(NonFinite(kind, int(where.size), int(where[0]), int(where[-1])))
    other = ~finite
    marks = _reduce_marks(x[other], list(kinds[other]), low, high, width)
    return Envelope(
        key=key,
        x=tuple(int(v) for v in fx[keep]),
        values=tuple(float(v) for v in fy[keep]),
        marks=marks,
        nonfinite=tuple(counted),
        points=int(x.size),
        width=width,
        axis=axis,
        step=step,
        sampled=sampled,
    )


def _check_width(width: int) -> None:
    if width < 1:
        raise ValueError("an envelope needs at least one bucket")


def _as_float(values: np.ndarray) -> np.ndarray:
    """MLflow's stand-ins for ±inf back to ±inf (as bot.metrics.values.as_float, for arrays)."""
    values = values.copy()
    values[values >= MLFLOW_INFINITY] = math.inf
    values[values <= -MLFLOW_INFINITY] = -math.inf
    return values


def _kinds(values: np.ndarray) -> np.ndarray:
    kinds = np.full(values.shape, "", dtype=object)
    kinds[np.isnan(values)] = NAN
    kinds[np.isposinf(values)] = POS_INF
    kinds[np.isneginf(values)] = NEG_INF
    return kinds


def _buckets(x: np.ndarray, low: int, high: int, width: int) -> np.ndarray:
    """Each x's bucket: `width` buckets of equal range between low and high (one when they are equal)."""
    if high <= low or width == 1:
        return np.zeros(x.shape, dtype=np.int64)
    scaled = (x.astype(np.float64) - low) * (width / (high - low))
    return np.clip(scaled.astype(np.int64), 0, width - 1)


def _m4(y: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """Indices (ascending) of each bucket's first, last, minimum and maximum point. `buckets` must be
    non-decreasing (points in x order); ties keep the first point with the extreme value."""
    if not y.size:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], y.size] - 1
    segment = np.repeat(np.arange(starts.size), ends - starts + 1)
    chosen = [starts, ends]
    for extreme in (np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)):
        hits = np.flatnonzero(y == extreme[segment])
        chosen.append(hits[np.searchsorted(hits, starts)])
    return np.unique(np.concatenate(chosen))


def _reduce_marks(
    x: np.ndarray, kinds: Sequence[str], low: int, high: int, width: int
) -> tuple[tuple[int, str], ...]:
    """The first and last non-finite point of each kind in each bucket, as (x, kind), x ascending."""
    if not x.size:
        return ()
    kinds_array = np.asarray(kinds, dtype=object)
    kept: set[tuple[int, str]] = set()
    for kind in KINDS:
        where = x[kinds_array == kind]
        if not where.size:
            continue
        buckets = _buckets(where, low, high, width)
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], where.size] - 1
        kept.update((int(where[i]), kind) for i in np.concatenate([starts, ends]))
    return tuple(sorted(kept, key=lambda mark: (mark[0], KINDS.index(mark[1]))))
