"""The best earlier baseline by PRIMARY_METRIC, against the fake MLflow: never picked by a metric whose
direction is unknown (the card says why), picked the right way for libraries' lower-is-better names,
and never a run whose value is MLflow's stored infinity."""

from __future__ import annotations

import sys

from bot.compare.baseline import BaselineFinder
from bot.compare.baseline_line import NO_BASELINE_UNRANKED, build_baseline_line
from bot.compare.rules import parse_metric_goal
from bot.models import BaselineReason, Direction
from tests.inprocess.fakes import FakeMlflow


def _finder(fake: FakeMlflow, primary: str, directions: dict[str, Direction] | None = None) -> BaselineFinder:
    return BaselineFinder(
        fake,  # type: ignore[arg-type]  # the fake plays Runs, Registry and Experiments
        fake,  # type: ignore[arg-type]
        fake,  # type: ignore[arg-type]
        primary_metric=parse_metric_goal(primary),
        metric_directions=directions or {},
        deployment_aliases=[],
    )


def test_no_best_earlier_run_by_a_metric_of_unknown_direction_and_the_card_says_why() -> None:
    fake = FakeMlflow()
    fake.add_run("first", metrics={"foo_metric": 0.9})
    fake.add_run("second", metrics={"foo_metric": 0.1})
    candidate = fake.run_summary(fake.add_run("candidate", metrics={"foo_metric": 0.5}))

    chosen = _finder(fake, "foo_metric").choose(candidate)
    assert (chosen.reason, chosen.run_id, chosen.metric, chosen.unranked) == (
        BaselineReason.NONE,
        "",
        "foo_metric",
        True,
    )
    assert build_baseline_line(chosen) == NO_BASELINE_UNRANKED.format(metric="foo_metric")
    # Told which way, by PRIMARY_METRIC or METRIC_DIRECTIONS, it picks the best one.
    assert _finder(fake, "foo_metric:min").choose(candidate).run_name == "second"
    told = _finder(fake, "foo_metric", {"foo_metric": Direction.MAX}).choose(candidate)
    assert (told.reason, told.run_name, told.unranked) == (BaselineReason.BEST_EARLIER, "first", False)


def test_best_earlier_by_a_libraries_lower_is_better_name_skipping_stored_infinities() -> None:
    fake = FakeMlflow()
    fake.add_run("diverged", metrics={"valid-l2": -sys.float_info.max, "aic": -sys.float_info.max})
    fake.add_run("good", metrics={"valid-l2": 0.2, "aic": 90.0})
    fake.add_run("worse", metrics={"valid-l2": 0.9, "aic": 120.0})
    candidate = fake.run_summary(fake.add_run("candidate", metrics={"valid-l2": 0.5, "aic": 100.0}))
    for primary in ("valid-l2", "aic"):
        chosen = _finder(fake, primary).choose(candidate)
        assert (chosen.reason, chosen.run_name) == (BaselineReason.BEST_EARLIER, "good"), primary
