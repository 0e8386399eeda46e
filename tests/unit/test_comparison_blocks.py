"""Unit tests for bot.compare.blocks and bot.compare.baseline_line: the card's baseline, the deltas in the
thread, /review compare and /review leaderboard, compared by value and held to Slack's limits."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import pytest

from bot.compare.baseline_line import BASELINE_FIELD, NO_BASELINE, NO_BASELINE_NO_PRIMARY, build_baseline_line
from bot.compare.blocks import (
    DELTAS_TEXT,
    DIFFERENT_EXPERIMENTS,
    DIRECTION_HINT,
    NO_KNOWN_DIRECTION,
    NO_PARAMS_DIFFER,
    NON_FINITE_HINT,
    TABLE_IN_THREAD,
    build_baseline_comparison,
    build_comparison,
    comparison_table,
    text_table,
)
from bot.compare.leaderboard import REVIEW_BUTTON, build_leaderboard
from bot.ids import ActionId
from bot.models import Baseline, BaselineReason, Direction, RunSummary
from bot.reviews.card import build_review_card
from bot.slack import limits
from bot.slack.message import SlackMessage
from tests.slack_api_server import validate_blocks

UI = "http://mlflow:5000"


def _run(index: int, **changes: Any) -> RunSummary:
    run_id = f"{index:032x}"
    base: dict[str, Any] = {
        "run_id": run_id,
        "run_name": f"run-{index}",
        "experiment_id": "7",
        "experiment_name": "fraud",
        "run_url": f"{UI}/#/experiments/7/runs/{run_id}",
        "experiment_url": f"{UI}/#/experiments/7",
    }
    return RunSummary(**{**base, **changes})


def _texts(message: SlackMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def _assert_valid(message: SlackMessage) -> None:
    assert validate_blocks(message.blocks) == []  # the Slack test server's own Block Kit checks
    assert len(message.blocks) <= limits.MAX_BLOCKS


# --- the card -------------------------------------------------------------------------------------


CHAMPION = Baseline(
    reason=BaselineReason.DEPLOYED,
    run_id="b" * 32,
    run_name="logreg",
    run_url=f"{UI}/#/experiments/7/runs/{'b' * 32}",
    model_name="fraud-clf",
    version="3",
    alias="champion",
)


@pytest.mark.parametrize(
    ("baseline", "line"),
    [
        (CHAMPION, f"vs champion fraud-clf v3, the version it would replace (<{CHAMPION.run_url}|logreg>)"),
        (
            Baseline(reason=BaselineReason.REQUESTED, run_id="c" * 32, run_name="mine"),
            "vs `mine`, chosen with `--baseline`",
        ),
        (Baseline(reason=BaselineReason.PARENT, run_id="c" * 32, run_name="sweep"), "vs parent run `sweep`"),
        (
            Baseline(reason=BaselineReason.BEST_EARLIER, run_id="c" * 32, run_name="r7", metric="val_auc"),
            "vs `r7`, the best earlier run by `val_auc`",
        ),
        (Baseline(reason=BaselineReason.NONE, metric="val_auc"), NO_BASELINE),
        (Baseline(reason=BaselineReason.NONE), NO_BASELINE_NO_PRIMARY),
        (
            Baseline(reason=BaselineReason.NONE, metric="foo_metric", unranked=True),
            "_none: no deployed version or parent run, and no best earlier run: which way `foo_metric` "
            "improves is not known (set `PRIMARY_METRIC=foo_metric:max` or `:min`)_",
        ),
        (
            Baseline(reason=BaselineReason.PARENT, run_id="c" * 32, run_name="<!channel>"),
            "vs parent run `&lt;!channel&gt;`",
        ),
    ],
)
def test_baseline_line_says_which_run_and_why(baseline: Baseline, line: str) -> None:
    assert build_baseline_line(baseline) == line


def test_card_shows_its_baseline_as_a_field_and_only_when_looked_up() -> None:
    with_baseline = build_review_card(_run(1, baseline=CHAMPION), requested_by="U1", key_metrics=[])
    fields = [f["text"] for f in with_baseline.blocks[1]["fields"]]
    assert fields[-1] == f"*{BASELINE_FIELD}*\n{build_baseline_line(CHAMPION)}"
    without = build_review_card(_run(1), requested_by="U1", key_metrics=[])
    assert not any(f["text"].startswith(f"*{BASELINE_FIELD}*") for f in without.blocks[1]["fields"])


# --- deltas in the thread -------------------------------------------------------------------------


def test_baseline_comparison_by_value() -> None:
    candidate = _run(
        1, metrics={"val_auc": 0.95, "val_loss": 0.2, "new": 1.0}, params={"lr": "0.1", "depth": "5"}
    )
    baseline = _run(
        2, metrics={"val_auc": 0.9, "val_loss": 0.25}, params={"lr": "0.1", "depth": "3", "seed": "1"}
    )
    (message,) = build_baseline_comparison(candidate, baseline, CHAMPION, {}, ["val_loss"])
    assert message.text == DELTAS_TEXT
    assert [b["text"]["text"] for b in message.blocks] == [
        f"*Compared with the baseline*: {build_baseline_line(CHAMPION)}",
        "2 better, 0 worse, 0 unchanged\n"
        "```\n"
        "metric    this run  baseline  change  %\n"
        "val_loss  0.2       0.25      -0.05   -20%   better\n"
        "val_auc   0.95      0.9       +0.05   +5.6%  better\n"
        "```\n"
        "_Only in this run: `new`_\n"
        "*Params that differ* (2)\n"
        "```\n"
        "param  this run  baseline\n"
        "depth  5         3\n"
        "seed   —         1\n"
        "```",
    ]


def test_baseline_comparison_says_what_it_did_not_judge_and_why_once() -> None:
    candidate = _run(
        1, metrics={"train-l2": 0.3, "foo_metric": 2.0, "bar_metric": 1.0, "grad_norm": sys.float_info.max}
    )
    baseline = _run(2, metrics={"train-l2": 0.1, "foo_metric": 1.0, "bar_metric": 3.0, "grad_norm": 1.0})
    (message,) = build_baseline_comparison(candidate, baseline, CHAMPION, {})
    assert message.blocks[1]["text"]["text"] == (
        "0 better, 1 worse, 0 unchanged, 3 not judged\n"
        "```\n"
        "metric      this run  baseline  change  %\n"
        "bar_metric  1         3         -2      -66.7%  not judged\n"
        "foo_metric  2         1         +1      +100%   not judged\n"
        "grad_norm   inf       1         —               not judged\n"
        "train-l2    0.3       0.1       +0.2    +200%   worse\n"
        "```\n"
        + DIRECTION_HINT.format(keys="`bar_metric`, `foo_metric`", example="bar_metric")
        + "\n"
        + NON_FINITE_HINT.format(keys="`grad_norm`")
        + "\n*Params that differ* (0)\n"
        + NO_PARAMS_DIFFER
    )
    # METRIC_DIRECTIONS judges them, and the hint goes.
    (told,) = build_baseline_comparison(candidate, baseline, CHAMPION, {"*_metric": Direction.MAX})
    assert "1 better, 2 worse" in _texts(told)
    assert "the bot does not know" not in _texts(told)


def test_best_per_metric_leaves_unknown_directions_out_and_says_so() -> None:
    runs = [
        _run(1, metrics={"valid_0-l2": 0.3, "foo_metric": 5.0, "epoch": 9.0}),
        _run(2, metrics={"valid_0-l2": 0.2, "foo_metric": 1.0, "epoch": 3.0}),
    ]
    built = build_comparison(runs, {})
    sections = [b["text"]["text"] for b in built.message.blocks if b["type"] == "section"]
    assert sections[1] == (
        "*Best per metric*\n• *valid_0-l2* (lower is better): *B* `0.2`\n"
        + DIRECTION_HINT.format(keys="`foo_metric`", example="foo_metric")
    )
    only_unknown = build_comparison([_run(1, metrics={"foo": 1.0}), _run(2, metrics={"foo": 2.0})], {})
    assert DIRECTION_HINT.format(keys="`foo`", example="foo") in _texts(only_unknown.message)
    bookkeeping = build_comparison([_run(1, metrics={"epoch": 1.0}), _run(2, metrics={"epoch": 2.0})], {})
    assert NO_KNOWN_DIRECTION in _texts(bookkeeping.message)


def test_baseline_comparison_says_when_no_param_differs() -> None:
    run = _run(1, metrics={"auc": 0.9}, params={"lr": "0.1"})
    (message,) = build_baseline_comparison(
        run, _run(2, metrics={"auc": 0.9}, params={"lr": "0.1"}), CHAMPION, {}
    )
    assert NO_PARAMS_DIFFER in _texts(message)
    assert "0 better, 0 worse, 1 unchanged" in _texts(message)


def test_baseline_comparison_of_huge_runs_stays_within_limits() -> None:
    metrics = {f"metric_{i:03d}_loss": i / 7 for i in range(300)}
    params = {f"param_{i:04d}": f"value {i} " * 5 for i in range(1000)}
    candidate = _run(1, metrics=metrics, params=params)
    baseline = _run(2, metrics={k: v + 1 for k, v in metrics.items()}, params={k: "x" for k in params})
    messages = build_baseline_comparison(candidate, baseline, CHAMPION, {})
    assert len(messages) == 1  # 300 metrics and 1,000 params take 17 sections of one message
    _assert_valid(messages[0])
    assert all(len(b["text"]["text"]) <= limits.SECTION_TEXT for b in messages[0].blocks)
    text = _texts(messages[0])
    assert "300 better, 0 worse" in text and "metric_299_loss" in text and "param_0999" in text


# --- /review compare --------------------------------------------------------------------------------


def test_comparison_table_by_value() -> None:
    runs = [
        _run(1, metrics={"auc": 0.9, "loss": 0.3, "only_a": 1.0}, params={"lr": "0.1", "depth": "3"}),
        _run(2, metrics={"auc": 0.95, "loss": 0.25}, params={"lr": "0.1", "depth": "5"}),
        _run(3, metrics={"auc": 0.91, "loss": 0.28}, params={"lr": "0.1"}),
    ]
    table = comparison_table(runs, key_metrics=["loss"])
    assert table.header == ["", "A", "B", "C"]
    assert table.rows == [
        ["loss", "0.3", "0.25", "0.28"],
        ["auc", "0.9", "0.95", "0.91"],
        ["param depth", "3", "5", "—"],
    ]
    assert list(csv.reader(io.StringIO(table.csv().decode()))) == [table.header, *table.rows]


def test_small_comparison_shows_the_table_and_the_best_run_per_metric() -> None:
    runs = [
        _run(1, metrics={"auc": 0.9, "loss": 0.3}, params={"depth": "3"}),
        _run(2, metrics={"auc": 0.95, "loss": 0.35}, params={"depth": "5"}),
    ]
    built = build_comparison(runs, {})
    _assert_valid(built.message)
    assert not built.table_in_thread
    sections = [b["text"]["text"] for b in built.message.blocks if b["type"] == "section"]
    assert sections[0] == (
        f"*A* <{runs[0].run_url}|run-1> · <{UI}/#/experiments/7|fraud>\n"
        f"*B* <{runs[1].run_url}|run-2> · <{UI}/#/experiments/7|fraud>"
    )
    assert sections[1] == (
        "*Best per metric*\n• *auc* (higher is better): *B* `0.95`\n• *loss* (lower is better): *A* `0.3`"
    )
    assert sections[3] == text_table(
        ["", "A", "B"], [["auc", "0.9", "0.95"], ["loss", "0.3", "0.35"], ["param depth", "3", "5"]]
    )
    assert DIFFERENT_EXPERIMENTS.split("{")[0] not in _texts(built.message)
    assert built.message.text == "Comparing 2 runs: run-1, run-2"


def test_runs_from_different_experiments_are_compared_and_it_is_said() -> None:
    runs = [
        _run(1, metrics={"auc": 0.9}),
        _run(2, metrics={"auc": 0.8}, experiment_id="8", experiment_name="churn"),
    ]
    built = build_comparison(runs, {})
    context = [b for b in built.message.blocks if b["type"] == "context"]
    assert context[0]["elements"][0]["text"] == DIFFERENT_EXPERIMENTS.format(n=2, names="`fraud`, `churn`")


def test_ten_runs_with_many_metrics_put_the_table_in_the_thread_within_limits() -> None:
    runs = [
        _run(
            i,
            run_name=f"a-rather-long-run-name-{i}" * 3,
            metrics={f"metric_{m:03d}": m * 1.123456 + i for m in range(300)},
            params={f"param_{p:03d}": f"{p}-{i}" for p in range(200)},
        )
        for i in range(10)
    ]
    built = build_comparison(runs, {"*": Direction.MAX})
    _assert_valid(built.message)
    assert built.table_in_thread
    assert TABLE_IN_THREAD.format(metrics=300, params=200, runs=10) in _texts(built.message)
    assert "…and 285 more in the table" in _texts(built.message)
    assert len(built.table.rows) == 500 and len(built.table.header) == 11


# --- /review leaderboard ----------------------------------------------------------------------------


def test_leaderboard_by_value() -> None:
    runs = [
        _run(1, metrics={"val_auc": 0.97}, params={"lr": "0.1", "depth": "5", "seed": "1"}),
        _run(2, metrics={"val_auc": 0.95}, params={"lr": "0.1", "depth": "3", "seed": "1"}),
    ]
    message = build_leaderboard("fraud", f"{UI}/#/experiments/7", "val_auc", Direction.MAX, runs)
    _assert_valid(message)
    assert message.text == "Leaderboard of fraud by val_auc"
    assert message.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Leaderboard: fraud", "emoji": False},
    }
    assert message.blocks[1]["elements"][0]["text"] == (
        f"Top 2 runs by `val_auc`, higher is better · <{UI}/#/experiments/7|fraud>"
    )
    assert message.blocks[2] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"*1.* <{runs[0].run_url}|run-1> · `val_auc` *0.97* · depth=`5`"},
        "accessory": {
            "type": "button",
            "action_id": ActionId.LEADERBOARD_REVIEW,
            "text": {"type": "plain_text", "text": REVIEW_BUTTON, "emoji": True},
            "value": json.dumps({"run_id": runs[0].run_id, "experiment_id": "7"}, separators=(",", ":")),
        },
    }
    assert message.blocks[3]["text"]["text"].startswith(f"*2.* <{runs[1].run_url}|run-2>")


def test_leaderboard_of_twenty_five_hostile_runs_is_valid() -> None:
    runs = [
        _run(
            i,
            run_name="<!channel> " + "x" * 300,
            metrics={"rmse": i / 3},
            params={"p": "<@U1>" * 30 + str(i)},
        )
        for i in range(25)
    ]
    message = build_leaderboard("<!here>", "", "rmse", Direction.MIN, runs)
    _assert_valid(message)
    everything = json.dumps(message.blocks[1:])  # the header is plain text: Slack shows it literally
    assert "<!channel>" not in everything and "<@U1>" not in everything and "<!here>" not in everything
    assert "lower is better" in everything


def test_metric_names_with_backticks_cannot_end_their_code_or_open_a_block() -> None:
    from bot.compare.blocks import name_list

    shown = name_list(["val```loss", "a`b"])
    assert shown == "`val'''loss`, `a'b`"
    assert "```" not in shown
