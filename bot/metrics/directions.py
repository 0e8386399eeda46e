"""Which way a metric key improves: METRIC_DIRECTIONS, then the libraries' documented names, then a
few word rules that hold across libraries; otherwise UNKNOWN (never judged, never ranked by). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase

from bot.metrics.names import MetricName, parse_key
from bot.metrics.table import known_direction
from bot.models import Direction

# scikit-learn's convention, documented for its metrics and scorers: `*_score` is to maximise;
# `*_error`, `*_loss`, `*_deviance` to minimise; scorers negate errors as `neg_*` (higher is better).
NEGATED_PREFIX = "neg_"
HIGHER_LAST_WORDS = frozenset({"score"})
LOWER_LAST_WORDS = frozenset({"error", "errors", "err", "loss", "deviance"})
# Anywhere in the name: a loss or an error (`loss_total`, CatBoost's `HingeLoss`, `trainloss`).
LOWER_ENDINGS = ("loss", "error", "errors")
# Time spent: runtimes, latencies, `epoch_time`, `inference_latency_ms`, `msec_per_image`.
TIME_WORDS = frozenset(
    {"time", "latency", "runtime", "duration", "seconds", "secs", "sec", "ms", "msec", "millis", "minutes"}
)
# Throughput: `samples_per_second`, `images_per_sec`, `tokens_per_s`.
_PER_SECOND = re.compile(r"(?:^|[^a-z0-9])per[^a-z0-9]?(?:second|seconds|sec|s)$")
HIGHER_WORDS = frozenset(
    {"accuracy", "acc", "auc", "auroc", "f1", "precision", "recall", "iou", "dice", "bleu", "rouge", "ndcg"}
    | {"mrr", "r2", "kappa", "mcc", "psnr", "ssim", "throughput"}
)
NEUTRAL_WORDS = frozenset(
    {"epoch", "epochs", "step", "steps", "iteration", "iterations", "iter", "lr", "learning", "momentum"}
    | {"batch", "count"}
)
_WORDS = re.compile(r"[^a-z0-9]+")
# `ndcg_at_5`, `error_at_0.6` (MLflow's spelling of xgboost's `@`), `ndcg@5`, `map@10-`,
# CatBoost's parameters `NDCG:top=10;type=Base`.
_AT_K = re.compile(r"(?:_at_|@)(?:\d+(?:\.\d+)?|k)-?$", re.IGNORECASE)
_PARAMS = re.compile(r":.*$")


def direction_of(key: str, overrides: Mapping[str, Direction] | None = None) -> Direction:
    """Which way `key` improves: METRIC_DIRECTIONS (the key exactly, then patterns in order, then its
    base name exactly: `foo:max` covers `val_foo` and `valid_1-foo`), then `direction_of_name`."""
    overrides = overrides or {}
    if key in overrides:
        return overrides[key]
    for pattern, direction in overrides.items():
        if fnmatchcase(key, pattern):
            return direction
    name = parse_key(key)
    # A statistic of a metric (`std_test_score`, `toxicity/v1/variance`) does not take the metric's own.
    for named in (name.base,) if name.stat else (name.base, name.measure):
        if named in overrides:
            return overrides[named]
    return direction_of_name(name)


def direction_of_name(name: MetricName) -> Direction:
    whole = known_direction(name.key)
    if whole is not None:
        return whole
    if name.cv_score:
        # scikit-learn scorers are all higher-is-better; rank 1 is the best; a smaller spread across
        # folds is the steadier model.
        return Direction.MAX if name.stat in ("mean", "split") else Direction.MIN
    if name.stat == "variance":  # MLflow evaluate's spread of per-row scores: not better or worse
        return Direction.NEUTRAL
    return measure_direction(name.measure)


def measure_direction(measure: str) -> Direction:
    """The direction of a measure without role or statistic: the table, then the word rules."""
    for candidate in _spellings(measure):
        known = known_direction(candidate)
        if known is not None:
            return known
    lowered = _PARAMS.sub("", measure).lower().rstrip("-")
    if lowered.startswith(NEGATED_PREFIX):
        return Direction.MAX
    if _PER_SECOND.search(lowered):
        return Direction.MAX
    words = [w for w in _WORDS.split(lowered) if w]
    if not words:
        return Direction.UNKNOWN
    if words[-1] in HIGHER_LAST_WORDS:
        return Direction.MAX
    if words[-1] in LOWER_LAST_WORDS or any(w.endswith(LOWER_ENDINGS) for w in words):
        return Direction.MIN
    if TIME_WORDS.intersection(words):
        return Direction.MIN
    if HIGHER_WORDS.intersection(words):
        return Direction.MAX
    if NEUTRAL_WORDS.intersection(words):
        return Direction.NEUTRAL
    return Direction.UNKNOWN


def _spellings(measure: str) -> list[str]:
    """`NDCG:top=10` -> NDCG; `ndcg_at_5` -> ndcg; `map@10-` -> map; `ndcg-` -> ndcg."""
    spellings = [measure]
    plain = _PARAMS.sub("", measure)
    plain = _AT_K.sub("", plain)
    plain = plain.rstrip("-")
    if plain and plain != measure:
        spellings.append(plain)
    return spellings
