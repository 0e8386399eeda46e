"""Unit tests for bot.logged_models.rules: a LoggedModel's metrics by dataset, and comparisons made only
on the same data (dataset digest), by value."""

from __future__ import annotations

import math
import sys

import pytest

from bot.compare.rules import Verdict
from bot.logged_models.rules import (
    DatasetMetrics,
    DifferingDataset,
    compare_by_dataset,
    metrics_by_dataset,
)
from bot.models import Direction, LoggedModelInfo, ModelMetric


def metric(key: str, value: float, dataset: str = "", digest: str = "", step: int = 0) -> ModelMetric:
    return ModelMetric(key=key, value=value, step=step, dataset_name=dataset, dataset_digest=digest)


def model(*metrics: ModelMetric, name: str = "clf") -> LoggedModelInfo:
    return LoggedModelInfo(model_id="m-" + "1" * 32, name=name, metrics=list(metrics))


# --- grouping ---------------------------------------------------------------------------------------


def test_metrics_are_grouped_by_dataset_with_undated_ones_first_and_keys_in_order() -> None:
    groups = metrics_by_dataset(
        [
            metric("recall", 0.7, "val", "d2"),
            metric("accuracy", 0.9, "val", "d2"),
            metric("accuracy", 0.8, "holdout", "d1"),
            metric("latency_s", 1.5),
        ]
    )
    assert groups == [
        DatasetMetrics("", "", {"latency_s": 1.5}),
        DatasetMetrics("holdout", "d1", {"accuracy": 0.8}),
        DatasetMetrics("val", "d2", {"accuracy": 0.9, "recall": 0.7}),
    ]


def test_each_key_keeps_its_value_at_the_latest_step_whatever_the_order_given() -> None:
    groups = metrics_by_dataset(
        [
            metric("loss", 0.2, "val", "d", step=2),
            metric("loss", 0.5, "val", "d", step=0),
            metric("loss", 0.3, "val", "d", step=1),
        ]
    )
    assert groups == [DatasetMetrics("val", "d", {"loss": 0.2})]


def test_of_equal_steps_the_later_given_wins() -> None:
    assert metrics_by_dataset([metric("loss", 0.5), metric("loss", 0.4)]) == [
        DatasetMetrics("", "", {"loss": 0.4})
    ]


def test_the_same_name_with_two_digests_is_two_datasets() -> None:
    groups = metrics_by_dataset([metric("acc", 0.9, "val", "new"), metric("acc", 0.8, "val", "old")])
    assert [(g.name, g.digest, g.metrics) for g in groups] == [
        ("val", "new", {"acc": 0.9}),
        ("val", "old", {"acc": 0.8}),
    ]


def test_no_metrics_no_groups() -> None:
    assert metrics_by_dataset([]) == []


# --- comparing --------------------------------------------------------------------------------------


def test_metrics_are_compared_only_on_the_same_digest() -> None:
    compared = compare_by_dataset(
        model(metric("accuracy", 0.9, "val", "d1"), metric("loss", 0.2, "val", "d1")),
        model(metric("accuracy", 0.8, "val", "d1"), metric("loss", 0.3, "val", "d1")),
    )
    assert [(r.dataset_name, r.dataset_digest, r.key, r.verdict) for r in compared.rows] == [
        ("val", "d1", "accuracy", Verdict.BETTER),
        ("val", "d1", "loss", Verdict.BETTER),
    ]
    first = compared.rows[0].change
    assert (first.candidate, first.baseline) == (0.9, 0.8)
    assert first.delta == pytest.approx(0.1)
    assert compared.differing == [] and compared.only_model == [] and compared.only_baseline == []


def test_a_worse_value_is_worse() -> None:
    compared = compare_by_dataset(
        model(metric("rmse", 2.0, "test", "t")), model(metric("rmse", 1.0, "test", "t"))
    )
    assert [r.verdict for r in compared.rows] == [Verdict.WORSE]


def test_the_same_name_with_another_digest_is_listed_as_differing_never_compared() -> None:
    compared = compare_by_dataset(
        model(metric("accuracy", 0.9, "val", "new")), model(metric("accuracy", 0.5, "val", "old"))
    )
    assert compared.rows == [] and compared.shared == []
    assert compared.differing == [DifferingDataset(name="val", digest="new", baseline_digest="old")]
    assert compared.only_model == [] and compared.only_baseline == []


def test_datasets_only_one_side_has_are_listed_for_that_side() -> None:
    compared = compare_by_dataset(
        model(metric("acc", 0.9, "val", "v"), metric("acc", 0.7, "mine", "m")),
        model(metric("acc", 0.8, "val", "v"), metric("acc", 0.6, "theirs", "t")),
    )
    assert [(s.name, s.digest) for s in compared.shared] == [("val", "v")]
    assert compared.only_model == [DatasetMetrics("mine", "m", {"acc": 0.7})]
    assert compared.only_baseline == [DatasetMetrics("theirs", "t", {"acc": 0.6})]


def test_the_same_digest_under_another_name_is_the_same_data_and_compared() -> None:
    compared = compare_by_dataset(
        model(metric("acc", 0.9, "eval", "same")), model(metric("acc", 0.8, "val", "same"))
    )
    assert [(r.dataset_name, r.dataset_digest, r.key) for r in compared.rows] == [("eval", "same", "acc")]


def test_metrics_one_side_has_on_a_shared_dataset_are_named_not_compared() -> None:
    compared = compare_by_dataset(
        model(metric("acc", 0.9, "val", "v"), metric("f1", 0.5, "val", "v")),
        model(metric("acc", 0.8, "val", "v"), metric("auc", 0.7, "val", "v")),
    )
    [shared] = compared.shared
    assert [r.key for r in shared.rows] == ["acc"]
    assert (shared.only_model, shared.only_baseline) == (["f1"], ["auc"])


def test_metrics_without_a_dataset_are_never_compared() -> None:
    compared = compare_by_dataset(model(metric("acc", 0.9)), model(metric("acc", 0.8)))
    assert compared.rows == [] and compared.shared == []
    assert (compared.undated_model, compared.undated_baseline) == (["acc"], ["acc"])


def test_an_unknown_direction_is_never_judged() -> None:
    compared = compare_by_dataset(
        model(metric("zorbleness", 2.0, "val", "v")), model(metric("zorbleness", 1.0, "val", "v"))
    )
    [row] = compared.rows
    assert row.change.direction is Direction.UNKNOWN
    assert row.verdict is Verdict.UNJUDGED


def test_directions_from_settings_judge_what_the_names_cannot() -> None:
    compared = compare_by_dataset(
        model(metric("zorbleness", 2.0, "val", "v")),
        model(metric("zorbleness", 1.0, "val", "v")),
        {"zorbleness": Direction.MIN},
    )
    assert [r.verdict for r in compared.rows] == [Verdict.WORSE]


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (math.nan, 0.8),
        (0.9, math.nan),
        (math.inf, 0.8),
        (sys.float_info.max, 0.8),  # MLflow's stored +inf
        (0.9, -sys.float_info.max),
    ],
)
def test_a_value_that_is_no_finite_number_is_not_judged(mine: float, theirs: float) -> None:
    compared = compare_by_dataset(
        model(metric("accuracy", mine, "val", "v")), model(metric("accuracy", theirs, "val", "v"))
    )
    [row] = compared.rows
    assert not row.change.finite
    assert row.verdict is Verdict.UNJUDGED


def test_the_latest_step_is_what_is_compared() -> None:
    compared = compare_by_dataset(
        model(metric("loss", 0.9, "val", "v", step=0), metric("loss", 0.1, "val", "v", step=5)),
        model(metric("loss", 0.5, "val", "v")),
    )
    [row] = compared.rows
    assert (row.change.candidate, row.verdict) == (0.1, Verdict.BETTER)
