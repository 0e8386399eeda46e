"""Which child of a sweep is the best, by which metric, and which params the sweep varies. Pure.

The metric: PRIMARY_METRIC when the children log it and its direction is known; else the sweep's own
score, scikit-learn's `mean_test_score` (higher is better) or `rank_test_score` (1 is the best). A metric
whose direction is not known names no best: a sweep summary must not invert what "best" means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.compare.rules import best_first, differing_params, goal_direction
from bot.metrics.values import is_finite
from bot.models import Direction, MetricGoal, Sweep, SweepBest

# scikit-learn's *SearchCV (and its MLflow autolog) log these on each child run.
SWEEP_SCORE = "mean_test_score"  # the mean cross-validated score: scorers are higher-is-better
SWEEP_RANK = "rank_test_score"  # its rank among the candidates: 1 is the best
JUDGED = (Direction.MAX, Direction.MIN)
BEST_PARAMS = 8  # of the params the sweep varies, how many the card shows with the best child
BEST_PARAM_CHARS = 100


@dataclass(frozen=True)
class SweepChild:
    run_id: str
    run_name: str
    run_url: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepRanking:
    """A sweep's children as read, and the best first by `metric` (those with a finite value of it)."""

    children: list[SweepChild]
    total: int  # how many were counted (`children` may be fewer: what was read)
    more: bool  # the count stopped at its cap
    metric: str  # "" when the children log no metric that could decide
    direction: Direction | None  # None when `metric` has no known direction: no best is named
    ranked: list[SweepChild]
    varied: list[str]  # params whose value differs between children, sorted

    @property
    def best(self) -> SweepChild | None:
        return self.ranked[0] if self.ranked else None


def _logged(children: Sequence[SweepChild], key: str) -> bool:
    return any(is_finite(c.metrics.get(key, math.nan)) for c in children)


def sweep_metric(
    children: Sequence[SweepChild],
    primary: MetricGoal | None,
    overrides: Mapping[str, Direction] | None = None,
) -> tuple[str, Direction | None]:
    """(metric, direction) that decides the best child; direction None: not known, name no best;
    ("", None) when the children log none of the candidates."""
    if primary is not None and _logged(children, primary.key):
        direction = goal_direction(primary, overrides)
        return primary.key, direction if direction in JUDGED else None
    if _logged(children, SWEEP_SCORE):
        return SWEEP_SCORE, Direction.MAX
    if _logged(children, SWEEP_RANK):
        return SWEEP_RANK, Direction.MIN
    return "", None


def rank_children(
    children: Sequence[SweepChild],
    *,
    total: int | None = None,
    more: bool = False,
    primary: MetricGoal | None = None,
    overrides: Mapping[str, Direction] | None = None,
) -> SweepRanking:
    """The children best first by the sweep's metric; ties (rank_test_score can tie) by name, then id."""
    metric, direction = sweep_metric(children, primary, overrides)
    ranked: list[SweepChild] = []
    if metric and direction is not None:
        # Ties keep the order by name, then id: best_first sorts stably. A child that diverged (NaN, or
        # MLflow's ±1.8e308 for ±inf) has no rank.
        by_name = {c.run_id: c for c in sorted(children, key=lambda c: (c.run_name, c.run_id))}
        values = {
            run_id: c.metrics[metric]
            for run_id, c in by_name.items()
            if is_finite(c.metrics.get(metric, math.nan))
        }
        ranked = [by_name[run_id] for run_id in best_first(values, direction)]
    return SweepRanking(
        children=list(children),
        total=len(children) if total is None else total,
        more=more,
        metric=metric,
        direction=direction,
        ranked=ranked,
        varied=differing_params([c.params for c in children]) if len(children) > 1 else [],
    )


def sweep_summary(ranking: SweepRanking) -> Sweep:
    """What the parent's card shows: how many children, and the best one with the params it was given
    (of those the sweep varies: the first BEST_PARAMS, values cut at BEST_PARAM_CHARS; the card says how
    many more there are). Bounded, as it is kept in a run tag."""
    best = ranking.best
    if best is None:
        return Sweep(children=ranking.total, more=ranking.more, metric=ranking.metric)
    params = {k: best.params[k][:BEST_PARAM_CHARS] for k in ranking.varied[:BEST_PARAMS] if k in best.params}
    return Sweep(
        children=ranking.total,
        more=ranking.more,
        metric=ranking.metric,
        varied=len(ranking.varied),
        best=SweepBest(
            run_id=best.run_id,
            run_name=best.run_name,
            run_url=best.run_url,
            value=best.metrics[ranking.metric],
            params=params,
        ),
    )


def sibling_for(run_id: str, ranking: SweepRanking) -> tuple[SweepChild, bool] | None:
    """The sibling a child run compares with: the best one, or the second best (True) when the run is
    the best itself; None when the sweep names no best other than the run."""
    others = [c for c in ranking.ranked if c.run_id != run_id]
    if not others:
        return None
    is_best = bool(ranking.ranked) and ranking.ranked[0].run_id == run_id
    return others[0], is_best
