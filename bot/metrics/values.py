"""Metric values as MLflow gives them back. Pure."""

from __future__ import annotations

import math
import sys

# MLflow's SQL stores cannot hold ±inf, so `log_metric` saves them as ±sys.float_info.max and gives
# that number back (sqlite and PostgreSQL alike). No real metric is 1.8e308; it is an infinity.
MLFLOW_INFINITY = sys.float_info.max


def as_float(value: float) -> float:
    """The value MLflow was given: its ±1.7976931348623157e308 stand-ins become ±inf; NaN stays NaN."""
    number = float(value)
    if number >= MLFLOW_INFINITY:
        return math.inf
    if number <= -MLFLOW_INFINITY:
        return -math.inf
    return number


def is_finite(value: float) -> bool:
    """A real number: not NaN, not ±inf, not MLflow's stand-in for them."""
    return math.isfinite(as_float(value))
