"""Unit tests for bot.envelope: min-max (M4) envelopes of metric histories, by value."""

from __future__ import annotations

import math
import random
import sys

import numpy as np
import pytest

from bot import envelope
from bot.envelope import NAN, NEG_INF, POS_INF, Envelope, NonFinite, XAxis
from bot.models import MetricSeries

MLFLOW_INF = sys.float_info.max  # what MLflow's SQL stores give back for +inf
WIDTH = 300


def _points(values: list[float], steps: list[int] | None = None) -> list[tuple[int, int, float]]:
    steps = steps if steps is not None else list(range(len(values)))
    return [(step, 1_000 + i, value) for i, (step, value) in enumerate(zip(steps, values, strict=True))]


def _spiky(count: int = 100_000, at: int = 61_234, spike: float = 25.0) -> list[float]:
    values = [2.0 + 0.03 * math.sin(s / 300) for s in range(count)]
    values[at] = spike
    return values


def _columns(env: Envelope, width: int) -> set[int]:
    """The pixel columns (buckets of equal step range) the kept points fall in."""
    low, high = env.extent or (0, 0)
    return {min(width - 1, int((x - low) * width / (high - low))) for x in env.x}


def test_a_one_step_spike_in_100000_steps_survives() -> None:
    values = _spiky()
    env = envelope.build("loss", _points(values), WIDTH)
    assert max(env.values) == 25.0
    assert env.x[env.values.index(25.0)] == 61_234
    assert min(env.values) == min(values)
    assert env.points == 100_000
    assert not env.sampled and env.axis is XAxis.STEP


def test_first_and_last_points_are_kept() -> None:
    values = _spiky()
    env = envelope.build("loss", _points(values), WIDTH)
    assert (env.x[0], env.values[0]) == (0, values[0])
    assert (env.x[-1], env.values[-1]) == (99_999, values[-1])


def test_at_most_width_buckets_of_at_most_four_points() -> None:
    env = envelope.build("loss", _points(_spiky()), WIDTH)
    assert len(_columns(env, WIDTH)) <= WIDTH
    assert len(env.x) <= 4 * WIDTH
    assert list(env.x) == sorted(env.x)


def test_every_bucket_keeps_its_true_minimum_and_maximum() -> None:
    rng = random.Random(7)
    values = [rng.gauss(0, 1) for _ in range(20_000)]
    env = envelope.build("noise", _points(values), 100)
    array = np.asarray(values)
    for bucket in range(100):
        chunk = array[bucket * 200 : (bucket + 1) * 200]  # 20,000 steps in 100 equal buckets
        kept = [v for x, v in zip(env.x, env.values, strict=True) if bucket * 200 <= x < (bucket + 1) * 200]
        assert max(kept) == chunk.max() and min(kept) == chunk.min()


def test_kept_points_are_real_points() -> None:
    values = _spiky(10_000, 4_321)
    env = envelope.build("loss", _points(values), 50)
    assert all(values[x] == v for x, v in zip(env.x, env.values, strict=True))


def test_a_short_history_is_kept_whole() -> None:
    values = [3.0, 2.0, 2.5, 1.0]
    env = envelope.build("loss", _points(values), WIDTH)
    assert env.values == tuple(values) and env.x == (0, 1, 2, 3)


def test_points_come_in_any_order_and_are_put_in_step_order() -> None:
    points = [(2, 30, 0.5), (0, 10, 1.0), (1, 20, 0.7)]
    env = envelope.build("loss", points, WIDTH)
    assert env.x == (0, 1, 2) and env.values == (1.0, 0.7, 0.5)


def test_reducing_again_keeps_every_extreme() -> None:
    env = envelope.build("loss", _points(_spiky()), WIDTH)
    coarse = envelope.reduce(env, 40)
    assert max(coarse.values) == 25.0 and min(coarse.values) == min(env.values)
    assert len(_columns(coarse, 40)) <= 40 and len(coarse.x) <= 160
    assert coarse.points == env.points and coarse.width == 40
    assert envelope.reduce(env, 2 * WIDTH) is env  # already no wider


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (math.nan, NAN),
        (math.inf, POS_INF),
        (-math.inf, NEG_INF),
        (MLFLOW_INF, POS_INF),
        (-MLFLOW_INF, NEG_INF),
    ],
)
def test_non_finite_values_are_marks_not_points(raw: float, kind: str) -> None:
    values = [1.0, 0.5, raw, raw, 0.25]
    env = envelope.build("grad_norm", _points(values), WIDTH)
    assert env.values == (1.0, 0.5, 0.25) and env.x == (0, 1, 4)
    assert env.marks == ((2, kind), (3, kind))
    assert env.nonfinite == (NonFinite(kind, 2, 2, 3),)
    assert env.points == 5


def test_many_non_finite_values_are_reduced_per_bucket() -> None:
    values = [1.0] * 1_000 + [math.nan] * 99_000
    env = envelope.build("loss", _points(values), 100)
    assert env.nonfinite == (NonFinite(NAN, 99_000, 1_000, 99_999),)
    assert len(env.marks) <= 2 * 100
    assert env.marks[0] == (1_000, NAN) and env.marks[-1] == (99_999, NAN)


def test_a_history_with_no_finite_value_is_still_charted() -> None:
    env = envelope.build("diverged", _points([MLFLOW_INF, MLFLOW_INF, math.nan]), WIDTH)
    assert env.values == () and env.charted
    assert {n.kind: n.count for n in env.nonfinite} == {POS_INF: 2, NAN: 1}
    assert env.extent == (0, 2)


def test_steps_that_never_advance_are_laid_out_in_logging_order() -> None:
    # Keras logs validation_* at step 0 after every epoch.
    points = [(0, 3_000, 0.4), (0, 1_000, 0.9), (0, 2_000, 0.6)]
    env = envelope.build("validation_loss", points, WIDTH)
    assert env.axis is XAxis.LOGGING_ORDER and env.step == 0
    assert env.x == (0, 1, 2) and env.values == (0.9, 0.6, 0.4)


def test_a_single_point_is_not_a_history() -> None:
    env = envelope.build("final_auc", [(5, 1_000, 0.9)], WIDTH)
    assert env.axis is XAxis.STEP and env.x == (5,) and not env.charted
    assert not envelope.build("empty", [], WIDTH).charted


def test_from_series_and_json_round_trip() -> None:
    series = MetricSeries(key="loss", steps=[0, 1, 2, 3], values=[1.0, math.inf, 0.5, math.nan])
    env = envelope.from_series(series, WIDTH)
    assert env.values == (1.0, 0.5) and env.marks == ((1, POS_INF), (3, NAN))
    assert Envelope.from_json(env.to_json()) == env
    sampled = envelope.build("loss", _points([1.0, 2.0]), WIDTH, sampled=True)
    assert Envelope.from_json(sampled.to_json()).sampled


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError):
        envelope.build("loss", _points([1.0, 2.0]), 0)
