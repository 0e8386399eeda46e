"""The baseline of a sweep's child (bot.compare.baseline with bot.sweeps) and a parent's card, in-process:
the real BaselineFinder and ReviewPublisher over FakeMlflow."""

from __future__ import annotations

import json

from bot import tags
from bot.compare.baseline import BaselineFinder
from bot.models import BaselineReason, Direction, MetricGoal
from bot.services import Services
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import Told, run_ref
from tests.scenarios.helpers import cards_for
from tests.slack_api_server import SlackTestServer


def finder(fake: FakeMlflow, primary: MetricGoal | None = None) -> BaselineFinder:
    return BaselineFinder(
        fake,  # type: ignore[arg-type]
        fake,  # type: ignore[arg-type]
        fake,  # type: ignore[arg-type]
        primary_metric=primary,
        metric_directions={},
        deployment_aliases=[],
    )


def grid(fake: FakeMlflow) -> tuple[str, list[str]]:
    """A GridSearchCV-like parent (no metric shared with its children) and three children, best first."""
    parent = fake.add_run("grid", metrics={"best_cv_score": 0.99}, params={"best_C": "1"})
    scores = {"c-best": (0.99, 1, "1"), "c-mid": (0.97, 2, "10"), "c-worst": (0.91, 3, "0.01")}
    children = [
        fake.add_run(
            name,
            parent=parent,
            metrics={"mean_test_score": score, "rank_test_score": float(rank)},
            params={"C": c, "max_iter": "100"},
        )
        for name, (score, rank, c) in scores.items()
    ]
    return parent, children


def test_a_child_compares_with_its_best_sibling_and_the_best_with_the_second(fake_mlflow: FakeMlflow) -> None:
    parent, (best, mid, worst) = grid(fake_mlflow)
    chosen = finder(fake_mlflow).choose(fake_mlflow.run_summary(worst))
    assert (chosen.reason, chosen.run_id, chosen.run_name) == (BaselineReason.BEST_SIBLING, best, "c-best")
    assert (chosen.metric, chosen.parent_name) == ("mean_test_score", "grid")
    assert chosen.parent_url.endswith(f"/runs/{parent}")
    chosen = finder(fake_mlflow).choose(fake_mlflow.run_summary(best))
    assert (chosen.reason, chosen.run_id) == (BaselineReason.NEXT_BEST_SIBLING, mid)


def test_the_parent_is_a_baseline_only_when_it_shares_a_metric(fake_mlflow: FakeMlflow) -> None:
    # No sibling has a metric that could decide: the parent, if it logs what the child logs.
    shared = fake_mlflow.add_run("optuna", metrics={"val_loss": 0.3})
    trial = fake_mlflow.add_run("trial-1", parent=shared, metrics={"val_loss": 0.4})
    fake_mlflow.add_run("trial-2", parent=shared, metrics={"val_loss": 0.5})
    chosen = finder(fake_mlflow).choose(fake_mlflow.run_summary(trial))
    assert (chosen.reason, chosen.run_id) == (BaselineReason.PARENT, shared)
    # With PRIMARY_METRIC=val_loss the siblings are ranked (lower is better): trial-1 is the best itself.
    chosen = finder(fake_mlflow, MetricGoal(key="val_loss", direction=Direction.MIN)).choose(
        fake_mlflow.run_summary(trial)
    )
    assert (chosen.reason, chosen.run_name) == (BaselineReason.NEXT_BEST_SIBLING, "trial-2")
    # A parent sharing nothing with a lone child is no baseline.
    apart = fake_mlflow.add_run("apart", metrics={"best_cv_score": 1.0})
    lone = fake_mlflow.add_run("lone", parent=apart, metrics={"wobble": 1.0})
    assert finder(fake_mlflow).choose(fake_mlflow.run_summary(lone)).reason is BaselineReason.NONE


def test_a_parents_card_and_tags_carry_its_sweep(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer
) -> None:
    parent, (best, _, _) = grid(fake_mlflow)
    told = Told()
    ts = services.publisher.publish(
        run_ref(parent), requested_by="U0ANA", origin_channel="C0DEV", notify=told
    )
    assert ts is not None, told
    [card] = [c for c in cards_for(slack, parent) if c["ts"] == ts]
    text = json.dumps(card["blocks"])
    assert "*Sweep*: 3 child runs; best: " in text and "c-best" in text and "(`mean_test_score` 0.99)" in text
    assert "Best's params: C = `1`" in text
    sweep = json.loads(fake_mlflow.tags_of(parent)[tags.SWEEP])
    assert sweep["best"]["run_id"] == best and sweep["children"] == 3
    listing = [m for m in slack.thread(card["channel"], ts) if m.get("text") == "Sweep: 3 child runs"]
    assert len(listing) == 1
