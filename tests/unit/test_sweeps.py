"""Unit tests for bot.sweeps: which child of a sweep is the best and by what, the card line, the thread
listing, the sibling a child is compared with, and the sweep kept in the parent's tags."""

from __future__ import annotations

import math

import pytest

from bot import tags
from bot.compare.baseline_line import build_baseline_line
from bot.models import Baseline, BaselineReason, Direction, MetricGoal, Sweep, SweepBest
from bot.slack import limits
from bot.sweeps.blocks import (
    CHILDREN_LISTED,
    NO_SWEEP_METRIC,
    build_sweep_children,
    build_sweep_line,
    count_text,
)
from bot.sweeps.rules import (
    BEST_PARAMS,
    SWEEP_RANK,
    SWEEP_SCORE,
    SweepChild,
    rank_children,
    sibling_for,
    sweep_metric,
    sweep_summary,
)
from tests.slack_api_server import validate_blocks


def child(name: str, metrics: dict[str, float], **params: str) -> SweepChild:
    return SweepChild(
        run_id=f"id-{name}",
        run_name=name,
        run_url=f"http://mlflow/#/experiments/1/runs/id-{name}",
        metrics=metrics,
        params={"cv": "3", **params},
    )


# A GridSearchCV over C and kernel, as scikit-learn's autolog logs its children.
GRID = [
    child("a", {SWEEP_SCORE: 0.9733, SWEEP_RANK: 2.0, "mean_fit_time": 0.002}, C="10", kernel="rbf"),
    child("b", {SWEEP_SCORE: 0.9933, SWEEP_RANK: 1.0, "mean_fit_time": 0.006}, C="1", kernel="linear"),
    child("c", {SWEEP_SCORE: 0.9667, SWEEP_RANK: 3.0, "mean_fit_time": 0.001}, C="0.1", kernel="linear"),
]


@pytest.mark.parametrize(
    ("children", "primary", "expected"),
    [
        (GRID, None, (SWEEP_SCORE, Direction.MAX)),
        # PRIMARY_METRIC wins when the children log it, its direction from the naming rules or its own
        (GRID, MetricGoal(key="mean_fit_time"), ("mean_fit_time", Direction.MIN)),
        (GRID, MetricGoal(key="mean_fit_time", direction=Direction.MAX), ("mean_fit_time", Direction.MAX)),
        # ...and names no best when nothing says which way it improves
        ([child("a", {"wobble": 1.0})], MetricGoal(key="wobble"), ("wobble", None)),
        ([child("a", {"epoch": 1.0})], MetricGoal(key="epoch"), ("epoch", None)),
        # a PRIMARY_METRIC the children do not log: the sweep's own score
        (GRID, MetricGoal(key="val_auc"), (SWEEP_SCORE, Direction.MAX)),
        ([child("a", {SWEEP_RANK: 1.0})], None, (SWEEP_RANK, Direction.MIN)),
        ([child("a", {SWEEP_SCORE: math.nan, SWEEP_RANK: 1.0})], None, (SWEEP_RANK, Direction.MIN)),
        ([child("a", {"loss": 1.0})], None, ("", None)),
        ([], None, ("", None)),
    ],
)
def test_the_metric_that_decides_the_best_child(
    children: list[SweepChild], primary: MetricGoal | None, expected: tuple[str, Direction | None]
) -> None:
    assert sweep_metric(children, primary) == expected


def test_children_are_ranked_best_first_with_the_params_the_sweep_varies() -> None:
    ranking = rank_children(GRID)
    assert [c.run_name for c in ranking.ranked] == ["b", "a", "c"]
    assert ranking.varied == ["C", "kernel"]  # cv is the same in every child
    assert ranking.total == 3 and not ranking.more
    # lower is better for rank_test_score (1 is the best); ties by name
    by_rank = rank_children(
        [child("z", {SWEEP_RANK: 1.0}), child("y", {SWEEP_RANK: 1.0}), child("x", {SWEEP_RANK: 4.0})]
    )
    assert [c.run_name for c in by_rank.ranked] == ["y", "z", "x"]
    # a child without the metric is listed but not ranked
    partial = rank_children([*GRID, child("d", {"mean_fit_time": 0.1})])
    assert [c.run_name for c in partial.ranked] == ["b", "a", "c"] and len(partial.children) == 4
    # a child that diverged (NaN, or MLflow's 1.8e308 for +inf) is listed but not ranked, never "best"
    diverged = rank_children(
        [*GRID, child("e", {SWEEP_SCORE: 1.7976931348623157e308}), child("f", {SWEEP_SCORE: math.nan})]
    )
    assert [c.run_name for c in diverged.ranked] == ["b", "a", "c"] and len(diverged.children) == 5
    # a metric of unknown direction ranks nothing
    assert (
        rank_children(GRID, primary=MetricGoal(key="mean_fit_time", direction=Direction.UNKNOWN)).ranked == []
    )


def test_sweep_summary_is_what_the_card_keeps() -> None:
    assert sweep_summary(rank_children(GRID, total=3)) == Sweep(
        children=3,
        metric=SWEEP_SCORE,
        varied=2,
        best=SweepBest(
            run_id="id-b",
            run_name="b",
            run_url="http://mlflow/#/experiments/1/runs/id-b",
            value=0.9933,
            params={"C": "1", "kernel": "linear"},
        ),
    )
    wide = [
        child(str(i), {SWEEP_SCORE: i / 100}, **{f"p{j:02}": f"{i}-{j}" * 60 for j in range(12)})
        for i in range(3)
    ]
    summary = sweep_summary(rank_children(wide, total=5000, more=True))
    assert summary.children == 5000 and summary.more and summary.varied == 12
    assert summary.best is not None and list(summary.best.params) == [f"p{j:02}" for j in range(BEST_PARAMS)]
    assert all(len(v) == 100 for v in summary.best.params.values())  # bounded: it goes into a run tag
    assert len(tags.sweep_tags(summary)[tags.SWEEP]) < 5000
    assert sweep_summary(rank_children([child("a", {"loss": 1.0})])) == Sweep(children=1)


def test_the_sweep_survives_the_parents_tags() -> None:
    sweep = sweep_summary(rank_children(GRID))
    assert tags.sweep_from_tags(tags.sweep_tags(sweep)) == sweep
    assert tags.sweep_from_tags({tags.SWEEP: "{not json"}) is None
    assert tags.sweep_from_tags({}) is None


def test_a_child_compares_with_its_best_sibling_or_the_second_best_when_it_is_the_best() -> None:
    ranking = rank_children(GRID)
    assert sibling_for("id-a", ranking) == (GRID[1], False)
    assert sibling_for("id-b", ranking) == (GRID[0], True)
    assert sibling_for("id-b", rank_children([GRID[1]])) is None
    assert sibling_for("id-a", rank_children(GRID, primary=MetricGoal(key="wobble_x"))) == (GRID[1], False)
    assert (
        sibling_for(
            "id-a",
            rank_children(
                [child("a", {"wobble": 1}), child("b", {"wobble": 2})], primary=MetricGoal(key="wobble")
            ),
        )
        is None
    )


@pytest.mark.parametrize(
    ("count", "more", "text"),
    [
        (1, False, "1 child run"),
        (6, False, "6 child runs"),
        (2000, True, "2000+ child runs"),
        (0, False, "0 child runs"),
    ],
)
def test_count_text(count: int, more: bool, text: str) -> None:
    assert count_text(count, more) == text


def test_sweep_line_by_value() -> None:
    line = build_sweep_line(sweep_summary(rank_children(GRID)))
    assert line == (
        ":control_knobs: *Sweep*: 3 child runs; best: <http://mlflow/#/experiments/1/runs/id-b|b> "
        "(`mean_test_score` 0.9933)\nBest's params: C = `1`, kernel = `linear`"
    )
    many = Sweep(
        children=40, more=False, metric="val_auc", varied=11,
        best=SweepBest(run_id="x", run_name="<!channel>", value=0.5, params={"a": "<b>"}),
    )  # fmt: skip
    assert build_sweep_line(many) == (
        ":control_knobs: *Sweep*: 40 child runs; best: `&lt;!channel&gt;` (`val_auc` 0.5)\n"
        "Best's params: a = `&lt;b&gt;` and 10 more (see the thread)"
    )
    assert build_sweep_line(Sweep(children=4)) == (
        f":control_knobs: *Sweep*: 4 child runs; no best named: {NO_SWEEP_METRIC}"
    )
    assert build_sweep_line(Sweep(children=4, metric="wobble")) == (
        ":control_knobs: *Sweep*: 4 child runs; no best named: whether `wobble` is better higher or lower is "
        "not known (set `PRIMARY_METRIC=wobble:max` or `:min`)"
    )


def test_sweep_children_in_the_thread_by_value() -> None:
    message = build_sweep_children(rank_children(GRID))
    assert message.text == "Sweep: 3 child runs"
    assert [b["text"]["text"] for b in message.blocks] == [
        "*Sweep: 3 child runs*",
        "Best first by `mean_test_score`:\n"
        "1. <http://mlflow/#/experiments/1/runs/id-b|b> · `0.9933` · C = `1`, kernel = `linear`\n"
        "2. <http://mlflow/#/experiments/1/runs/id-a|a> · `0.9733` · C = `10`, kernel = `rbf`\n"
        "3. <http://mlflow/#/experiments/1/runs/id-c|c> · `0.9667` · C = `0.1`, kernel = `linear`",
    ]


def test_a_big_sweep_lists_the_top_and_counts_the_rest_within_limits() -> None:
    children = [
        child(f"r{i:03}" * 20, {SWEEP_SCORE: i / 1000}, **{f"p{j}": "v" * 70 + str(i) for j in range(9)})
        for i in range(300)
    ]
    children.append(child("no-score", {"other": 1.0}))
    message = build_sweep_children(rank_children(children, total=2000, more=True))
    body = message.blocks[1]["text"]["text"]
    assert message.blocks[0]["text"]["text"] == "*Sweep: 2000+ child runs*"
    assert body.startswith(f"Best first by `mean_test_score` (the top {CHILDREN_LISTED}):\n1. ")
    assert "r299" in body.split("\n")[1]  # the best one first
    assert len(body) <= limits.SECTION_TEXT
    assert validate_blocks(message.blocks) == []
    unranked = build_sweep_children(rank_children([child("a", {"x": 1.0}), child("b", {"x": 2.0})]))
    assert unranked.blocks[1]["text"]["text"].startswith(f"Not ranked ({NO_SWEEP_METRIC}):\n1. ")


def test_sweep_text_is_escaped() -> None:
    message = build_sweep_children(
        rank_children(
            [child("<!here>", {SWEEP_SCORE: 1.0}, C="<@U1>"), child("b", {SWEEP_SCORE: 0.5}, C="2")]
        )
    )
    text = message.blocks[1]["text"]["text"]
    assert "<!here>" not in text and "<@U1>" not in text and "&lt;!here&gt;" in text


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        (
            BaselineReason.BEST_SIBLING,
            "vs <http://u/s|split-3>, the best sibling in sweep <http://u/p|grid> by `mean_test_score`",
        ),
        (
            BaselineReason.NEXT_BEST_SIBLING,
            "vs <http://u/s|split-3>, the second best in sweep <http://u/p|grid> by `mean_test_score` "
            "(this run is the best)",
        ),
    ],
)
def test_baseline_line_names_the_sibling_and_the_sweep(reason: BaselineReason, line: str) -> None:
    baseline = Baseline(
        reason=reason,
        run_id="s" * 32,
        run_name="split-3",
        run_url="http://u/s",
        metric="mean_test_score",
        parent_name="grid",
        parent_url="http://u/p",
    )
    assert build_baseline_line(baseline) == line
    # kept in the child's review.baseline tag, read back the same
    assert tags.baseline_from_tags(tags.baseline_tags(baseline)) == baseline
