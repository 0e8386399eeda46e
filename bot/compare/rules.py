"""The rules of comparing runs: which way a metric improves, deltas, param diffs, the baseline policy.

Pure: no Slack, no MLflow. `bot.mlflow` fetches, `bot.compare.service` orchestrates, builders in
`bot.compare.blocks` format what these functions decide.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.metrics import directions
from bot.metrics.values import as_float, is_finite
from bot.models import Baseline, BaselineReason, Direction, MetricGoal

MIN_COMPARED = 2
MAX_COMPARED = 10

# Which way each metric improves lives in `bot.metrics` (the libraries' documented names, then a few
# word rules); a name it does not know is UNKNOWN: shown, never judged, never ranked by.
_GOAL = re.compile(r"^\s*(?P<key>[^:]+?)\s*(?::\s*(?P<direction>[A-Za-z]+)\s*)?$")
_DIRECTION_WORDS = {"max": Direction.MAX, "min": Direction.MIN, "none": Direction.NEUTRAL}


# --- settings -------------------------------------------------------------------------------------


def parse_direction(text: str) -> Direction:
    try:
        return _DIRECTION_WORDS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"direction must be max, min or none (got {text.strip()!r})") from None


def parse_metric_goal(text: str) -> MetricGoal:
    """`val_auc:max`, `rmse:min` or a bare `val_auc`."""
    match = _GOAL.match(text)
    if not match or not match.group("key"):
        raise ValueError("use a metric name with an optional direction: val_auc:max or rmse:min")
    direction = match.group("direction")
    return MetricGoal(key=match.group("key"), direction=parse_direction(direction) if direction else None)


def parse_metric_directions(text: str) -> dict[str, Direction]:
    """`accuracy:max,*_time:min,epoch:none`: exact names or shell-style patterns."""
    directions: dict[str, Direction] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        goal = parse_metric_goal(item)
        if goal.direction is None:
            raise ValueError(f"{item!r} needs a direction: {item}:max or {item}:min")
        directions[goal.key] = goal.direction
    return directions


# --- directions -----------------------------------------------------------------------------------


def direction_of(key: str, overrides: Mapping[str, Direction] | None = None) -> Direction:
    """Which way `key` improves: METRIC_DIRECTIONS (exact name, then patterns in order, then the base
    name without its role), then the libraries' names (`bot.metrics.directions`); else UNKNOWN."""
    return directions.direction_of(key, overrides)


def goal_direction(goal: MetricGoal, overrides: Mapping[str, Direction] | None = None) -> Direction:
    return goal.direction or direction_of(goal.key, overrides)


def is_better(value: float, other: float, direction: Direction) -> bool:
    """Only MAX and MIN judge: a NEUTRAL or UNKNOWN metric is never better."""
    if direction is Direction.MIN:
        return value < other
    if direction is Direction.MAX:
        return value > other
    return False


def best_first(values: Mapping[str, float], direction: Direction) -> list[str]:
    """Keys of `values` best first (NaN, ±inf and MLflow's stand-ins for them last); a metric that is
    not judged (NEUTRAL, UNKNOWN) keeps the given order: no value of it is "best"."""
    finite = [k for k, v in values.items() if is_finite(v)]
    judged = set(finite)
    rest = [k for k in values if k not in judged]
    if not direction.judged:
        return finite + rest
    return sorted(finite, key=lambda k: values[k], reverse=direction is Direction.MAX) + rest


# --- deltas ---------------------------------------------------------------------------------------


class Verdict(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    SAME = "same"
    UNJUDGED = ""  # a NEUTRAL or UNKNOWN metric, or a value that is not a finite number


@dataclass(frozen=True)
class MetricDelta:
    key: str
    candidate: float
    baseline: float
    direction: Direction

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline

    @property
    def relative(self) -> float | None:
        """The change as a fraction of the baseline; None when the baseline is 0 or not finite."""
        if not math.isfinite(self.baseline) or self.baseline == 0 or not math.isfinite(self.delta):
            return None
        return self.delta / abs(self.baseline)

    @property
    def finite(self) -> bool:
        return math.isfinite(self.candidate) and math.isfinite(self.baseline)

    @property
    def verdict(self) -> Verdict:
        if not self.finite:
            return Verdict.UNJUDGED
        if self.delta == 0:
            return Verdict.SAME
        if not self.direction.judged:
            return Verdict.UNJUDGED
        return Verdict.BETTER if is_better(self.candidate, self.baseline, self.direction) else Verdict.WORSE


def metric_deltas(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float],
    overrides: Mapping[str, Direction] | None = None,
    first: Sequence[str] = (),
) -> list[MetricDelta]:
    """One delta per metric both runs have: `first` (key metrics) in their order, then by name. Values
    are what MLflow was given (its ±1.8e308 stand-ins are ±inf), so a diverged run is not judged."""
    shared = set(candidate) & set(baseline)
    order = [k for k in first if k in shared] + sorted(shared - set(first))
    return [
        MetricDelta(k, as_float(candidate[k]), as_float(baseline[k]), direction_of(k, overrides))
        for k in order
    ]


def format_value(value: float) -> str:
    """A metric value on a card, a table or a leaderboard: 4 significant digits; `inf`, `-inf`, `nan`
    for values that are no finite number, MLflow's stored ±1.7976931348623157e308 included."""
    return f"{as_float(value):.4g}" if isinstance(value, float) else str(value)


def format_delta(delta: float) -> str:
    """`+0.0123`, `-1.5e-05`, `0`: signed, 4 significant digits."""
    return "0" if delta == 0 else f"{delta:+.4g}"


def format_relative(relative: float | None) -> str:
    """`+1.2%`, `-35%`, `+1.2e+03%`; "" when there is no meaningful relative change."""
    if relative is None:
        return ""
    if relative == 0:
        return "0%"
    percent = relative * 100
    return f"{percent:+.2g}%" if abs(percent) < 10 else f"{percent:+.3g}%"


# --- params ---------------------------------------------------------------------------------------


def differing_params(params: Sequence[Mapping[str, str]]) -> list[str]:
    """Names of params whose value is not the same in every run (missing counts as a value), sorted."""
    keys = set().union(*(p.keys() for p in params)) if params else set()
    return sorted(k for k in keys if len({p.get(k) for p in params}) > 1)


def shared_metrics(metrics: Sequence[Mapping[str, float]]) -> list[str]:
    """Metrics every run has, sorted."""
    if not metrics:
        return []
    return sorted(set.intersection(*(set(m) for m in metrics)))


def all_metrics(metrics: Sequence[Mapping[str, float]]) -> list[str]:
    return sorted(set().union(*(m.keys() for m in metrics))) if metrics else []


# --- the baseline ---------------------------------------------------------------------------------


def choose_baseline(run_id: str, candidates: Iterable[Baseline | None]) -> Baseline:
    """The first candidate that is another run, in the order given (requested, deployed, parent,
    best earlier). `candidates` may be a lazy generator: lookups after the chosen one never run."""
    for candidate in candidates:
        if candidate is not None and candidate.run_id and candidate.run_id != run_id:
            return candidate
    return Baseline(reason=BaselineReason.NONE)


def deployed_alias(
    aliases: Mapping[str, str], deployment_aliases: Sequence[str], own_versions: Iterable[str]
) -> tuple[str, str] | None:
    """(alias, version) of the first deployment alias, in configured order, on another version."""
    own = set(own_versions)
    for alias in deployment_aliases:
        version = aliases.get(alias)
        if version is not None and version not in own:
            return alias, version
    return None


def label_runs(count: int) -> list[str]:
    """Column labels for compared runs: A, B, C…"""
    return [chr(ord("A") + i) for i in range(count)]


def ordered(keys: Iterable[str], first: Sequence[str]) -> list[str]:
    keys = list(keys)
    head = [k for k in first if k in keys]
    return head + [k for k in keys if k not in set(head)]
