"""Session data for scenario tests that need runs made by the libraries' own autolog."""

from __future__ import annotations

import pytest

from tests.autolog_runs import AutologRuns, log_autolog_runs


@pytest.fixture(scope="session")
def autolog_runs(mlflow_server: str) -> AutologRuns:
    """xgboost, LightGBM, GridSearchCV, statsmodels and (replayed) Keras autolog runs, and the edge cases
    of tests/autolog_runs.py, logged once into the session's MLflow server (about a minute at most)."""
    return log_autolog_runs(mlflow_server)
