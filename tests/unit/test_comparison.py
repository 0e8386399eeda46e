"""Unit tests for bot.compare.rules: direction rules, deltas and their formatting, param diffs, the
baseline policy and its tag."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import pytest

from bot.compare.rules import (
    Verdict,
    best_first,
    choose_baseline,
    deployed_alias,
    differing_params,
    direction_of,
    format_delta,
    format_relative,
    format_value,
    metric_deltas,
    parse_metric_directions,
    parse_metric_goal,
    shared_metrics,
)
from bot.models import Baseline, BaselineReason, Direction, MetricGoal
from bot.tags import BASELINE as BASELINE_TAG
from bot.tags import baseline_from_tags, baseline_tags

RUN = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


# --- directions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("val_auc", Direction.MAX),
        ("accuracy", Direction.MAX),
        ("f1_score", Direction.MAX),
        ("r2", Direction.MAX),
        ("loss", Direction.MIN),
        ("val_loss", Direction.MIN),
        ("train/loss", Direction.MIN),
        ("trainloss", Direction.MIN),
        ("training_log_loss", Direction.MIN),
        ("mean_absolute_error", Direction.MIN),
        ("val_error_rate", Direction.MIN),
        ("rmse", Direction.MIN),
        ("val_rmse", Direction.MIN),
        ("MAE", Direction.MIN),
        ("test-mape", Direction.MIN),
        ("perplexity", Direction.MIN),
        ("inference_latency_ms", Direction.MIN),
        ("fit_time", Direction.MIN),
        ("neg_mean_squared_error", Direction.MAX),  # scikit-learn negates errors: higher is better
        ("epoch", Direction.NEUTRAL),
        ("lr", Direction.NEUTRAL),
        ("msec_per_image", Direction.MIN),  # time spent per image
        ("images_per_sec", Direction.MAX),  # throughput
        ("foo_metric", Direction.UNKNOWN),  # no rule knows it: not judged until METRIC_DIRECTIONS says
        ("coverage", Direction.UNKNOWN),
    ],
)
def test_naming_rules(key: str, expected: Direction) -> None:
    assert direction_of(key) is expected


def test_metric_directions_win_exact_names_first_then_patterns_in_order() -> None:
    overrides = {"val_loss": Direction.MAX, "*_ms": Direction.MIN, "msec*": Direction.MIN, "*": Direction.MAX}
    assert direction_of("val_loss", overrides) is Direction.MAX
    assert direction_of("msec_per_image", overrides) is Direction.MIN
    assert direction_of("p99_ms", overrides) is Direction.MIN
    assert direction_of("rmse", overrides) is Direction.MAX  # the catch-all pattern beats the naming rule
    assert direction_of("rmse", {"RMSE": Direction.MAX}) is Direction.MIN  # names are case-sensitive


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("val_auc:max", MetricGoal(key="val_auc", direction=Direction.MAX)),
        (" rmse : MIN ", MetricGoal(key="rmse", direction=Direction.MIN)),
        ("val_auc", MetricGoal(key="val_auc")),
        ("epoch:none", MetricGoal(key="epoch", direction=Direction.NEUTRAL)),
    ],
)
def test_parse_metric_goal(raw: str, expected: MetricGoal) -> None:
    assert parse_metric_goal(raw) == expected


@pytest.mark.parametrize("raw", ["val_auc:up", ":max", "a:b:c"])
def test_parse_metric_goal_refuses(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_metric_goal(raw)


def test_parse_metric_directions() -> None:
    assert parse_metric_directions("accuracy:max, *_time:min,,epoch:none") == {
        "accuracy": Direction.MAX,
        "*_time": Direction.MIN,
        "epoch": Direction.NEUTRAL,
    }
    assert parse_metric_directions("") == {}
    with pytest.raises(ValueError, match="needs a direction"):
        parse_metric_directions("accuracy")


def test_best_first_by_direction_with_nan_last() -> None:
    values = {"A": 0.5, "B": math.nan, "C": 0.9, "D": 0.1}
    assert best_first(values, Direction.MAX) == ["C", "A", "D", "B"]
    assert best_first(values, Direction.MIN) == ["D", "A", "C", "B"]
    assert best_first(values, Direction.NEUTRAL) == ["A", "C", "D", "B"]
    assert best_first(values, Direction.UNKNOWN) == ["A", "C", "D", "B"]  # no value of it is "best"


def test_best_first_puts_mlflows_stored_infinities_last() -> None:
    values = {"diverged": sys.float_info.max, "A": 0.5, "low": -sys.float_info.max, "B": 0.7}
    assert best_first(values, Direction.MAX) == ["B", "A", "diverged", "low"]
    assert best_first(values, Direction.MIN) == ["A", "B", "diverged", "low"]


# --- deltas -----------------------------------------------------------------------------------------


def test_deltas_are_judged_by_each_metrics_direction() -> None:
    candidate = {"val_auc": 0.95, "val_loss": 0.20, "rmse": 3.0, "epoch": 12.0, "only_here": 1.0}
    baseline = {"val_auc": 0.90, "val_loss": 0.25, "rmse": 2.0, "epoch": 10.0, "only_there": 1.0}
    deltas = metric_deltas(candidate, baseline, first=["val_loss"])
    assert [d.key for d in deltas] == ["val_loss", "epoch", "rmse", "val_auc"]
    assert {d.key: d.verdict for d in deltas} == {
        "val_loss": Verdict.BETTER,
        "epoch": Verdict.UNJUDGED,
        "rmse": Verdict.WORSE,
        "val_auc": Verdict.BETTER,
    }
    by_key = {d.key: d for d in deltas}
    assert by_key["val_auc"].delta == pytest.approx(0.05)
    assert by_key["val_auc"].relative == pytest.approx(0.05 / 0.90)
    assert by_key["rmse"].relative == pytest.approx(0.5)


def test_delta_verdict_respects_overrides_same_and_non_numbers() -> None:
    (delta,) = metric_deltas({"rmse": 3.0}, {"rmse": 2.0}, {"rmse": Direction.MAX})
    assert delta.verdict is Verdict.BETTER
    (same,) = metric_deltas({"auc": 0.9}, {"auc": 0.9})
    assert same.verdict is Verdict.SAME and same.relative == 0
    (nan,) = metric_deltas({"auc": math.nan}, {"auc": 0.9})
    assert nan.verdict is Verdict.UNJUDGED and nan.relative is None
    (zero,) = metric_deltas({"loss": 0.5}, {"loss": 0.0})
    assert zero.relative is None and zero.verdict is Verdict.WORSE
    (negative,) = metric_deltas({"score": -1.0}, {"score": -2.0})
    assert negative.relative == pytest.approx(0.5) and negative.verdict is Verdict.BETTER


def test_unknown_directions_and_mlflows_infinities_are_not_judged() -> None:
    candidate = {"foo_metric": 2.0, "train-l2": sys.float_info.max, "aic": 90.0, "grad_norm": 3.0}
    baseline = {"foo_metric": 1.0, "train-l2": 0.3, "aic": 100.0, "grad_norm": 1.0}
    by_key = {d.key: d for d in metric_deltas(candidate, baseline)}
    assert by_key["foo_metric"].direction is Direction.UNKNOWN
    assert by_key["foo_metric"].verdict is Verdict.UNJUDGED
    assert by_key["train-l2"].candidate == math.inf  # what MLflow was given, not 1.8e308
    assert by_key["train-l2"].verdict is Verdict.UNJUDGED and not by_key["train-l2"].finite
    assert by_key["aic"].verdict is Verdict.BETTER  # statsmodels: lower is better
    assert by_key["grad_norm"].verdict is Verdict.UNJUDGED  # bookkeeping
    (same,) = metric_deltas({"foo_metric": 1.0}, {"foo_metric": 1.0})
    assert same.verdict is Verdict.SAME  # unchanged is true whichever way is better


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456, "0.1235"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        (sys.float_info.max, "inf"),
        (-sys.float_info.max, "-inf"),
        (1.7e308, "1.7e+308"),  # a real (if huge) number stays one
        (3, "3"),
    ],
)
def test_format_value_shows_infinities_as_what_they_are(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [(0.0, "0"), (0.012345, "+0.01235"), (-0.5, "-0.5"), (-1.5e-05, "-1.5e-05"), (12345.0, "+1.234e+04")],
)
def test_format_delta(delta: float, text: str) -> None:
    assert format_delta(delta) == text


@pytest.mark.parametrize(
    ("relative", "text"),
    [(None, ""), (0.0, "0%"), (0.0123, "+1.2%"), (-0.35, "-35%"), (0.991, "+99.1%"), (12.0, "+1.2e+03%")],
)
def test_format_relative(relative: float | None, text: str) -> None:
    assert format_relative(relative) == text


# --- params and shared metrics ------------------------------------------------------------------------


def test_param_diff_only_lists_what_differs_and_missing_counts() -> None:
    runs = [
        {"lr": "0.1", "depth": "3", "seed": "1"},
        {"lr": "0.1", "depth": "5", "seed": "1"},
        {"lr": "0.1", "depth": "3"},
    ]
    assert differing_params(runs) == ["depth", "seed"]
    assert differing_params([{"a": "1"}, {"a": "1"}]) == []
    assert differing_params([]) == []


def test_shared_metrics() -> None:
    assert shared_metrics([{"a": 1.0, "b": 2.0}, {"b": 1.0, "a": 0.0, "c": 1.0}]) == ["a", "b"]
    assert shared_metrics([{"a": 1.0}, {"b": 1.0}]) == []


# --- the baseline policy ------------------------------------------------------------------------------


def _baseline(reason: BaselineReason, run_id: str = OTHER) -> Baseline:
    return Baseline(reason=reason, run_id=run_id, run_name=reason.value)


def test_first_candidate_that_is_another_run_wins_and_later_lookups_never_run() -> None:
    looked_up: list[str] = []

    def candidates() -> Iterator[Baseline | None]:
        looked_up.append("requested")
        yield None
        looked_up.append("deployed")
        yield _baseline(BaselineReason.DEPLOYED, RUN)  # the run itself is the champion: skipped
        looked_up.append("parent")
        yield _baseline(BaselineReason.PARENT)
        looked_up.append("best earlier")
        yield _baseline(BaselineReason.BEST_EARLIER)

    chosen = choose_baseline(RUN, candidates())
    assert chosen.reason is BaselineReason.PARENT
    assert looked_up == ["requested", "deployed", "parent"]


def test_requested_wins_over_everything() -> None:
    chosen = choose_baseline(
        RUN, [_baseline(BaselineReason.REQUESTED), _baseline(BaselineReason.DEPLOYED, "d" * 32)]
    )
    assert chosen.reason is BaselineReason.REQUESTED


def test_no_candidate_means_none_never_the_run_itself() -> None:
    chosen = choose_baseline(RUN, [None, _baseline(BaselineReason.BEST_EARLIER, RUN), None])
    assert chosen == Baseline(reason=BaselineReason.NONE)
    assert choose_baseline(RUN, []) == Baseline(reason=BaselineReason.NONE)


@pytest.mark.parametrize(
    ("aliases", "own", "expected"),
    [
        ({"champion": "3", "challenger": "4"}, {"4"}, ("champion", "3")),
        ({"prod": "2", "champion": "3"}, {"4"}, ("champion", "3")),  # configured order, not the registry's
        ({"champion": "4", "production": "2"}, {"4"}, ("production", "2")),  # this run is the champion
        ({"challenger": "5"}, {"4"}, None),
        ({}, set(), None),
    ],
)
def test_deployed_alias(aliases: dict[str, str], own: set[str], expected: tuple[str, str] | None) -> None:
    assert deployed_alias(aliases, ["champion", "production", "prod"], own) == expected


def test_baseline_tag_round_trip_and_bad_values() -> None:
    baseline = Baseline(
        reason=BaselineReason.DEPLOYED,
        run_id=OTHER,
        run_name="logreg",
        model_name="fraud-clf",
        version="3",
        alias="champion",
    )
    tags = baseline_tags(baseline)
    assert list(tags) == [BASELINE_TAG]
    assert baseline_from_tags(tags) == baseline
    assert baseline_from_tags({}) is None
    assert baseline_from_tags({BASELINE_TAG: "not json"}) is None
    assert baseline_from_tags({BASELINE_TAG: '{"reason": "unheard-of"}'}) is None
