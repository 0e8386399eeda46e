"""Metric keys as libraries log them: the role (train, validation, test), the dataset index, the
metric itself, and which keys belong on one chart panel. Pure.

The conventions read here (separators `-`, `_`, `/`, `.`):
- xgboost: `validation_0-logloss`, `validation_1-logloss`, `train-logloss`, `eval-auc`, and MLflow's
  `@` -> `_at_` (`validation_0-ndcg_at_5`, `error_at_0.6`);
- LightGBM: `training-auc`, `valid_0-l2`, `valid_1-auc`, `train-l2`, `valid-l2`;
- CatBoost: `learn-Logloss`, `validation-AUC`, metric parameters after `:` (`NDCG:top=10`);
- Keras: `loss`/`val_loss`, `val_accuracy`; MLflow's Keras callback: `validation_loss`;
- TensorBoard style: `train/loss`, `val/loss`, `loss/train`, `acc_val`;
- Hugging Face transformers: `eval_loss`, `train_loss`, `eval_runtime`, `eval_samples_per_second`;
- PyTorch Lightning: `train_loss_step`, `train_loss_epoch`, `val_loss` (an `_epoch` value sits with
  the other set's epoch values; `_step` values have their own panel);
- scikit-learn's `cv_results_` (GridSearchCV children): `mean_test_score`, `std_test_score`,
  `rank_test_score`, `split0_test_score`, `mean_train_<scorer>`, `mean_fit_time`;
- MLflow's sklearn autolog: `training_accuracy_score`, `accuracy_score_X_test`;
- MLflow's evaluate: `toxicity/v1/mean`, `latency/p90`, `exact_match/v1`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.metrics.table import known_direction


class Role(StrEnum):
    TRAIN = "train"
    NONE = ""
    VALIDATION = "val"
    TEST = "test"


# The words a role is written with, in the order they sit inside a panel (train first, test last).
ROLE_LABELS: dict[str, Role] = {
    "train": Role.TRAIN,
    "training": Role.TRAIN,
    "learn": Role.TRAIN,  # CatBoost
    "": Role.NONE,
    "val": Role.VALIDATION,
    "valid": Role.VALIDATION,
    "validation": Role.VALIDATION,
    "eval": Role.VALIDATION,
    "dev": Role.VALIDATION,
    "test": Role.TEST,
}
ROLE_ORDER = (Role.TRAIN, Role.NONE, Role.VALIDATION, Role.TEST)
_LABEL_ORDER = tuple(ROLE_LABELS)

_ROLE = "training|train|learn|validation|valid|val|eval|dev|test"
_SUFFIX_ROLE = "training|train|validation|valid|val|eval|dev|test"
# `validation_0-logloss`, `valid_1-auc`, `train/loss`, `eval_runtime`
_PREFIX = re.compile(rf"^(?P<label>{_ROLE})(?:[_-]?(?P<index>\d+))?[-_/.](?P<rest>.+)$", re.IGNORECASE)
# `loss/train`, `acc_val`, `accuracy_score_X_test` (MLflow names post-training metrics after the
# dataset's variable: `X_test`, `X_val`)
_SUFFIX = re.compile(
    rf"^(?P<rest>.+?)(?:[-_.]x)?[-_/.](?P<label>{_SUFFIX_ROLE})(?:[_-]?(?P<index>\d+))?$", re.IGNORECASE
)
# scikit-learn's cv_results_ score columns: higher is better for every scorer, rank 1 is the best.
_CV_SCORE = re.compile(r"^(?P<stat>mean|std|rank|split(?P<index>\d+))_(?P<label>train|test)_(?P<rest>.+)$")
_CV_TIME = re.compile(r"^(?P<stat>mean|std)_(?P<rest>fit_time|score_time)$")
# PyTorch Lightning's on_step / on_epoch copies of one logged value.
_LIGHTNING = re.compile(r"^(?P<rest>.+)_(?P<agg>step|epoch)$")
# MLflow evaluate: `<metric>/<version>/<aggregation>`, `<metric>/<aggregation>`, `<metric>/<version>`
EVALUATE_AGGREGATIONS = frozenset(
    {"mean", "median", "variance", "min", "max", "sum", "ratio", "p90", "p95", "p99"}
)
_VERSION = re.compile(r"^v\d+$")
_LOSSY_END = re.compile(r"(loss|error|acc|accuracy)$", re.IGNORECASE)


@dataclass(frozen=True)
class MetricName:
    """What a metric key says about itself.

    `base` is what a chart panel is about (the key without its role and dataset index: the keys of one
    base share a panel); `measure` is what is measured, to look up its direction (the base without a
    statistic or aggregation); `stat` is cv_results_' mean/std/rank/split or MLflow evaluate's
    aggregation; `cv_score` marks a scikit-learn scorer's column (its values: higher is better).
    """

    key: str
    base: str
    measure: str
    role: Role = Role.NONE
    label: str = ""  # the role as written: "validation", "valid", "training", "learn", "eval"…
    index: int | None = None  # validation_0 -> 0, valid_1 -> 1, split3_test_score -> 3
    stat: str = ""
    cv_score: bool = False


def parse_key(key: str) -> MetricName:
    """`valid_1-auc` -> role validation, index 1, base `auc`; a name the direction table knows whole
    (`learning_rate`, `mean_squared_error`) is never cut."""
    if known_direction(key) is not None:
        return MetricName(key=key, base=key, measure=key)
    if match := _CV_SCORE.match(key):
        stat = "split" if match.group("index") else match.group("stat")
        rest = match.group("rest")
        return MetricName(
            key=key,
            base=f"{stat}_{rest}",
            measure=rest,
            role=ROLE_LABELS[match.group("label")],
            label=match.group("label"),
            index=_index(match.group("index")),
            stat=stat,
            cv_score=True,
        )
    if match := _CV_TIME.match(key):
        return MetricName(key=key, base=key, measure=match.group("rest"), stat=match.group("stat"))
    role, label, index, rest = Role.NONE, "", None, key
    match = _PREFIX.match(key) or _SUFFIX.match(key)
    if match:
        label = match.group("label")
        role, index, rest = ROLE_LABELS[label.lower()], _index(match.group("index")), match.group("rest")
    base, measure, stat = _base_and_measure(rest, role is not Role.NONE)
    return MetricName(key=key, base=base, measure=measure, role=role, label=label, index=index, stat=stat)


def _index(text: str | None) -> int | None:
    return int(text) if text else None


def _base_and_measure(rest: str, had_role: bool) -> tuple[str, str, str]:
    """(panel base, measure, aggregation) of a key without its role."""
    parts = rest.split("/")
    if len(parts) > 1 and (_VERSION.match(parts[1]) or parts[-1].lower() in EVALUATE_AGGREGATIONS):
        stat = parts[-1].lower() if parts[-1].lower() in EVALUATE_AGGREGATIONS else ""
        return rest, parts[0], stat
    if len(parts) > 1 and known_direction(parts[0]) is not None:  # `grad_norm/layer00`, `accuracy/class_1`
        return rest, parts[0], ""
    match = _LIGHTNING.match(rest)
    # Lightning's copies are of what was logged as `train_<metric>` / `val_<metric>`, or of a known metric.
    if match and (had_role or _is_metric(match.group("rest"))):
        measure = match.group("rest")
        # An epoch value is what the other sets log once per epoch too: `train_loss_epoch` + `val_loss`.
        return (measure if match.group("agg") == "epoch" else rest), measure, ""
    return rest, rest, ""


def _is_metric(name: str) -> bool:
    """Whether `name` is a metric on its own, so `_step`/`_epoch` after it is Lightning's, not part of
    the name (`global_step`, `time_per_epoch` keep theirs)."""
    direction = known_direction(name)
    return (direction is not None and direction.judged) or bool(_LOSSY_END.search(name))


# --- panels -----------------------------------------------------------------------------------------


def _order_in_panel(name: MetricName) -> tuple[int, int, int, str]:
    label = name.label.lower()
    return (
        ROLE_ORDER.index(name.role),
        _LABEL_ORDER.index(label) if label in _LABEL_ORDER else len(_LABEL_ORDER),
        -1 if name.index is None else name.index,
        name.key,
    )


def panel_groups(keys: Iterable[str], first: Sequence[str] = ()) -> list[tuple[str, tuple[str, ...]]]:
    """[(panel title, keys in the panel)]: one panel per base metric across roles and dataset indices,
    train first, then the bare name, validation sets in index order, then test.

    Panels named in `first` (by one of their keys or their base; the caller passes REVIEW_KEY_METRICS
    then PRIMARY_METRIC) come first in that order, then panels of more than one key, then the rest;
    alphabetically within each. The title is the base for a panel of several keys, else the key.
    """
    by_base: dict[str, list[MetricName]] = {}
    for key in sorted(set(keys)):
        name = parse_key(key)
        by_base.setdefault(name.base, []).append(name)
    rank: dict[str, int] = {}
    for position, named in enumerate(first):
        rank.setdefault(named, position)
    ordered: list[tuple[tuple[int, int, str, str], str, tuple[str, ...]]] = []
    for base, members in by_base.items():
        members.sort(key=_order_in_panel)
        panel = tuple(m.key for m in members)
        title = base if len(panel) > 1 else panel[0]
        named = [rank[n] for n in (base, *panel) if n in rank]
        # Named first (in the order named), then pairs, then single keys; alphabetically within.
        group = 0 if named else 1 if len(panel) > 1 else 2
        order = (group, min(named, default=0), title.casefold(), title)
        ordered.append((order, title, panel))
    ordered.sort()
    return [(title, panel) for _, title, panel in ordered]
