"""Unit tests for bot.metrics: which way each library's metric names improve, roles and dataset indices
read from their keys, which keys share a chart panel and in what order, and MLflow's stored infinities."""

from __future__ import annotations

import math
import sys

import pytest

from bot.metrics.directions import direction_of
from bot.metrics.names import MetricName, Role, panel_groups, parse_key
from bot.metrics.values import as_float, is_finite
from bot.models import Direction, RunSummary
from bot.reviews.card import build_review_card

MAX, MIN, NEUTRAL, UNKNOWN = Direction.MAX, Direction.MIN, Direction.NEUTRAL, Direction.UNKNOWN

# --- directions -------------------------------------------------------------------------------------

DIRECTIONS = {
    # The inversions of issue 12: lower is better.
    "l1": MIN,
    "l2": MIN,
    "valid_0-l2": MIN,
    "training-l2": MIN,
    "train-l2": MIN,
    "valid-l2": MIN,
    "aic": MIN,
    "bic": MIN,
    "ssr": MIN,
    "rank_test_score": MIN,
    "std_test_score": MIN,
    "mean_fit_time": MIN,
    # Higher is better.
    "mean_test_score": MAX,
    "auc": MAX,
    "valid_1-auc": MAX,
    "training-auc": MAX,
    "accuracy": MAX,
    "val_accuracy": MAX,
    "r2_score": MAX,
    "rsquared": MAX,
    # Unknown and bookkeeping.
    "foo_metric": UNKNOWN,
    "epoch": NEUTRAL,
    # xgboost (eval_metric list; MLflow writes `@` as `_at_`)
    "validation_0-logloss": MIN,
    "validation_1-logloss": MIN,
    "train-logloss": MIN,
    "valid-logloss": MIN,
    "eval-auc": MAX,
    "validation_0-rmse": MIN,
    "validation_0-mlogloss": MIN,
    "validation_0-merror": MIN,
    "validation_0-error": MIN,
    "validation_0-error_at_0.6": MIN,
    "validation_0-aucpr": MAX,
    "validation_0-ndcg_at_5": MAX,
    "validation_0-map_at_10": MAX,
    "validation_0-pre_at_3": MAX,
    "validation_0-poisson-nloglik": MIN,
    "validation_0-interval-regression-accuracy": MAX,
    "validation_0-mphe": MIN,
    "stopped_iteration": NEUTRAL,
    "best_iteration": NEUTRAL,
    # LightGBM (metric parameter and aliases)
    "valid_0-rmse": MIN,
    "valid_0-mape": MIN,
    "valid_0-huber": MIN,
    "valid_0-quantile": MIN,
    "valid_0-binary_logloss": MIN,
    "valid_0-binary_error": MIN,
    "valid_0-multi_logloss": MIN,
    "valid_0-auc_mu": MAX,
    "valid_0-average_precision": MAX,
    "valid_0-ndcg@5": MAX,
    "valid_0-map": MAX,
    "valid_0-kullback_leibler": MIN,
    "valid_0-gamma_deviance": MIN,
    # CatBoost (learn / validation pools, CamelCase names, parameters after `:`)
    "learn-Logloss": MIN,
    "validation-AUC": MAX,
    "validation-MultiClass": MIN,
    "validation-CrossEntropy": MIN,
    "validation-NDCG:top=10": MAX,
    "validation-PRAUC": MAX,
    "validation-BrierScore": MIN,
    "validation-HingeLoss": MIN,
    "validation-MedianAbsoluteError": MIN,
    "validation-ERR": MAX,  # expected reciprocal rank, not an error
    "validation-R2": MAX,
    # statsmodels (what MLflow's statsmodels autolog logs, and the information criteria)
    "hqic": MIN,
    "llf": MAX,
    "mse_resid": MIN,
    "rsquared_adj": MAX,
    "f_pvalue": MIN,
    "fvalue": MAX,
    "condition_number": MIN,
    "df_model": NEUTRAL,
    "centered_tss": NEUTRAL,
    "mse_total": NEUTRAL,
    # scikit-learn: metrics, scorers, GridSearchCV's cv_results_, MLflow's sklearn autolog
    "mean_squared_error": MIN,
    "neg_mean_squared_error": MAX,
    "mean_test_neg_log_loss": MAX,  # a scorer: higher is better
    "mean_test_max_error": MAX,  # the max_error scorer is negated
    "rank_test_accuracy": MIN,
    "split0_test_score": MAX,
    "mean_train_score": MAX,
    "std_fit_time": MIN,
    "mean_score_time": MIN,
    "best_cv_score": MAX,
    "training_accuracy_score": MAX,
    "training_log_loss": MIN,
    "training_roc_auc": MAX,
    "training_mean_absolute_error": MIN,
    "accuracy_score_X_test": MAX,
    "LogisticRegression_score_X_test": MAX,
    "brier_score": MIN,
    "brier_score_loss": MIN,
    "davies_bouldin_score": MIN,
    "d2_log_loss_score": MAX,
    "explained_variance": MAX,
    "matthews_corrcoef": MAX,
    # Keras / TensorFlow (MLflow's callback adds `validation_`)
    "loss": MIN,
    "val_loss": MIN,
    "validation_loss": MIN,
    "validation_accuracy": MAX,
    "val_sparse_categorical_accuracy": MAX,
    "val_binary_crossentropy": MIN,
    "val_precision": MAX,
    "val_false_positives": MIN,
    "val_true_positives": MAX,
    "learning_rate": NEUTRAL,
    # TensorBoard style
    "train/loss": MIN,
    "val/loss": MIN,
    "loss/train": MIN,
    "acc_val": MAX,
    # PyTorch Lightning (and torchmetrics names)
    "train_loss_epoch": MIN,
    "val_loss_step": MIN,
    "train_acc_step": MAX,
    "val_auroc": MAX,
    "lr-Adam": NEUTRAL,
    "grad_norm/layer00": NEUTRAL,
    "accuracy/class_1": MAX,
    "log_likelihood": MAX,
    "neg_log_likelihood": MIN,  # a loss, not a negated scorer
    "global_step": NEUTRAL,
    # Hugging Face transformers Trainer
    "eval_loss": MIN,
    "train_loss": MIN,
    "eval_runtime": MIN,
    "train_runtime": MIN,
    "eval_samples_per_second": MAX,
    "eval_steps_per_second": MAX,
    "train_samples_per_second": MAX,
    "grad_norm": NEUTRAL,
    "total_flos": NEUTRAL,
    "eval_wer": MIN,
    "eval_rougeL": MAX,
    "eval_exact_match": MAX,
    # MLflow evaluate (its built-ins' greater_is_better), with versions and aggregations
    "example_count": NEUTRAL,
    "precision_recall_auc": MAX,
    "roc_auc": MAX,
    "f1_score": MAX,
    "log_loss": MIN,
    "max_error": MIN,
    "mean_absolute_percentage_error": MIN,
    "sum_on_target": NEUTRAL,
    "exact_match/v1": MAX,
    "toxicity/v1/mean": MIN,
    "toxicity/v1/ratio": MIN,
    "toxicity/v1/variance": NEUTRAL,
    "latency/p90": MIN,
    "token_count/mean": NEUTRAL,  # MLflow says higher; a longer answer is no better model
    "flesch_kincaid_grade_level/v1/mean": MIN,
    "faithfulness/v1/mean": MAX,
    "precision_at_5/mean": MAX,
    "ndcg_at_3/mean": MAX,
    # Names that merely contain a word do not pass for it.
    "loss_scale": NEUTRAL,
    "images_seen_total": UNKNOWN,
    "val_foo_metric": UNKNOWN,
}


@pytest.mark.parametrize(("key", "expected"), DIRECTIONS.items(), ids=list(DIRECTIONS))
def test_direction_of_library_metric_names(key: str, expected: Direction) -> None:
    assert direction_of(key) is expected


def test_metric_directions_override_everything_and_cover_every_role_of_a_base_name() -> None:
    overrides = {"l2": Direction.MAX, "foo_metric": Direction.MIN, "aic*": Direction.NEUTRAL}
    assert direction_of("valid_0-l2", overrides) is Direction.MAX
    assert direction_of("val_foo_metric", overrides) is Direction.MIN
    assert direction_of("train/foo_metric", overrides) is Direction.MIN
    assert direction_of("aicc", overrides) is Direction.NEUTRAL
    assert direction_of("foo_metric_2", overrides) is Direction.UNKNOWN  # exact base names only
    assert direction_of("train_foo_metric_step", overrides) is Direction.MIN  # Lightning's step copy
    toxicity = {"toxicity": Direction.MAX}
    assert direction_of("toxicity/v1/mean", toxicity) is Direction.MIN  # a statistic is not the metric
    assert direction_of("toxicity/v1/mean", {"toxicity/v1/mean": Direction.MAX}) is Direction.MAX


def test_only_max_and_min_are_judged() -> None:
    assert [d for d in Direction if d.judged] == [Direction.MAX, Direction.MIN]


# --- parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "role", "index", "base"),
    [
        ("validation_0-logloss", Role.VALIDATION, 0, "logloss"),
        ("validation_1-logloss", Role.VALIDATION, 1, "logloss"),
        ("valid_1-auc", Role.VALIDATION, 1, "auc"),
        ("training-auc", Role.TRAIN, None, "auc"),
        ("learn-Logloss", Role.TRAIN, None, "Logloss"),
        ("train/loss", Role.TRAIN, None, "loss"),
        ("loss/train", Role.TRAIN, None, "loss"),
        ("eval_samples_per_second", Role.VALIDATION, None, "samples_per_second"),
        ("test-mape", Role.TEST, None, "mape"),
        ("accuracy_score_X_test", Role.TEST, None, "accuracy_score"),
        ("train_loss_epoch", Role.TRAIN, None, "loss"),  # sits with the validation epoch values
        ("train_loss_step", Role.TRAIN, None, "loss_step"),  # its own panel: another x axis
        ("split3_test_score", Role.TEST, 3, "split_score"),
        ("mean_test_score", Role.TEST, None, "mean_score"),
        ("loss", Role.NONE, None, "loss"),
        ("learning_rate", Role.NONE, None, "learning_rate"),  # a known name is never cut
        ("global_step", Role.NONE, None, "global_step"),
        ("time_per_epoch", Role.NONE, None, "time_per_epoch"),
        ("val_foo_epoch", Role.VALIDATION, None, "foo"),  # Lightning's epoch copy of `val_foo`
        ("train_", Role.NONE, None, "train_"),
    ],
)
def test_parse_key(key: str, role: Role, index: int | None, base: str) -> None:
    name = parse_key(key)
    assert isinstance(name, MetricName)
    assert (name.role, name.index, name.base) == (role, index, base)


# --- panels -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            ["validation_1-logloss", "validation_0-logloss"],
            [("logloss", ("validation_0-logloss", "validation_1-logloss"))],
        ),
        (["valid-logloss", "train-logloss"], [("logloss", ("train-logloss", "valid-logloss"))]),
        (["valid_1-auc", "training-auc"], [("auc", ("training-auc", "valid_1-auc"))]),
        (["valid-l2", "train-l2"], [("l2", ("train-l2", "valid-l2"))]),
        (["val/loss", "train/loss"], [("loss", ("train/loss", "val/loss"))]),
        (["val_loss", "loss"], [("loss", ("loss", "val_loss"))]),
        (["learn-Logloss", "validation-Logloss"], [("Logloss", ("learn-Logloss", "validation-Logloss"))]),
        (["loss", "validation_loss"], [("loss", ("loss", "validation_loss"))]),  # MLflow's Keras callback
        (["eval_loss", "train_loss"], [("loss", ("train_loss", "eval_loss"))]),
        (["val_loss", "train_loss_epoch"], [("loss", ("train_loss_epoch", "val_loss"))]),
        (["loss", "loss_scale"], [("loss", ("loss",)), ("loss_scale", ("loss_scale",))]),  # no pair
        (["train-l2", "l2_root"], [("l2_root", ("l2_root",)), ("train-l2", ("train-l2",))]),
        (
            ["valid_1-l2", "training-l2", "valid_0-l2", "test_l2"],
            [("l2", ("training-l2", "valid_0-l2", "valid_1-l2", "test_l2"))],
        ),
        ([], []),
    ],
)
def test_panel_groups_pair_train_and_validation(
    keys: list[str], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert panel_groups(keys) == expected


def test_panels_named_first_then_pairs_then_the_rest() -> None:
    keys = [
        "alpha",
        "zeta",
        "train/loss",
        "val/loss",
        "accuracy",
        "val_accuracy",
        "beta",
        "train-l2",
        "valid-l2",
    ]
    assert panel_groups(keys) == [
        ("accuracy", ("accuracy", "val_accuracy")),
        ("l2", ("train-l2", "valid-l2")),
        ("loss", ("train/loss", "val/loss")),
        ("alpha", ("alpha",)),
        ("beta", ("beta",)),
        ("zeta", ("zeta",)),
    ]
    # REVIEW_KEY_METRICS then PRIMARY_METRIC: a panel named by one of its keys or by its base comes first.
    assert [title for title, _ in panel_groups(keys, first=["val/loss", "zeta", "l2"])] == [
        "loss",
        "zeta",
        "l2",
        "accuracy",
        "alpha",
        "beta",
    ]
    assert panel_groups(keys) == panel_groups(list(reversed(keys)))


# --- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (sys.float_info.max, math.inf),
        (-sys.float_info.max, -math.inf),
        (math.inf, math.inf),
        (1.7e308, 1.7e308),
        (0.25, 0.25),
    ],
)
def test_as_float_reads_mlflows_stored_infinities(value: float, expected: float) -> None:
    assert as_float(value) == expected


def test_nan_stays_nan_and_is_not_finite() -> None:
    assert math.isnan(as_float(math.nan))
    assert not is_finite(math.nan) and not is_finite(sys.float_info.max) and is_finite(1e300)


def test_the_card_shows_infinities_and_nan_as_what_they_are() -> None:
    summary = RunSummary(
        run_id="a" * 32,
        run_name="diverged",
        experiment_id="1",
        experiment_name="e",
        metrics={"grad_norm": sys.float_info.max, "loss": math.nan, "floor": -sys.float_info.max},
    )
    card = build_review_card(summary, requested_by="U1", key_metrics=[])
    text = str(card.blocks)
    assert "• *grad_norm*: `inf`" in text
    assert "• *loss*: `nan`" in text
    assert "• *floor*: `-inf`" in text
    assert "e+308" not in text
