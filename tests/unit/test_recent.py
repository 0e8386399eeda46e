"""bot.mlflow.runs.Recent: what a card reads from memory instead of MLflow (experiment names, params)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.mlflow import connect
from bot.mlflow.runs import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_kept_for_its_ttl_then_read_again() -> None:
    clock = Clock()
    recent: Recent[str] = Recent(ttl=60, clock=clock)
    assert recent.get("1") is None
    recent.put("1", "fraud")
    clock.now += 60
    assert recent.get("1") == "fraud"
    clock.now += 0.001
    assert recent.get("1") is None
    recent.put("1", "fraud-renamed")  # read again: the newer value, for another ttl
    assert recent.get("1") == "fraud-renamed"


def test_the_oldest_written_is_dropped_past_its_size() -> None:
    recent: Recent[int] = Recent(ttl=60, size=2, clock=Clock())
    recent.put("a", 1)
    recent.put("b", 2)
    recent.put("a", 3)  # written again: now the newest
    recent.put("c", 4)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (3, None, 4)


def test_runs_read_an_experiment_once_and_a_runs_params_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a real (sqlite) store: two summaries of one experiment's runs need one get_experiment, and
    the params of a run read lately need no get_run."""
    for key in ("TIMEOUT", "MAX_RETRIES", "BACKOFF_FACTOR"):  # connect() sets them: restored after
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{key}", raising=False)
    access = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracking = access.mlflow.tracking
    experiment_id = tracking.create_experiment("fraud")
    first, second = (tracking.create_run(experiment_id).info.run_id for _ in range(2))
    tracking.log_param(first, "max_depth", "4")
    asked: list[str] = []
    for name in ("get_experiment", "get_run"):
        real = getattr(tracking, name)
        setattr(tracking, name, lambda *a, real=real, name=name: asked.append(name) or real(*a))

    summaries = [access.runs.run_summary(r, with_model_versions=False) for r in (first, second)]

    assert [s.experiment_name for s in summaries] == ["fraud", "fraud"]
    assert asked == ["get_run", "get_experiment", "get_run"]
    assert access.runs.params_of(first) == {"max_depth": "4"}
    assert asked == ["get_run", "get_experiment", "get_run"]  # the params came from memory
