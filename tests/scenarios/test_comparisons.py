"""Comparisons through the served bot: the baseline on the card and its thread, `/review compare`,
`/review leaderboard` and its Review buttons. Signed commands in; Slack calls and MLflow tags out."""

from __future__ import annotations

import csv
import io
import json
import math
import time
import uuid
from typing import Any

import pytest

from bot.commands import COMPARE_COUNT
from bot.compare.baseline_line import BASELINE_FIELD, NO_BASELINE_NO_PRIMARY
from bot.compare.blocks import DELTAS_TEXT
from bot.compare.leaderboard import NO_DIRECTION, REVIEW_BUTTON
from bot.ids import ActionId
from bot.tags import BASELINE as BASELINE_TAG
from tests import support
from tests.scenarios.helpers import blocks_text, cards_for, response_texts, uploads_in_thread

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 30


@pytest.fixture(scope="module")
def ranked_bot(bots) -> support.BotProcess:
    """A team that ranks its runs by validation AUC."""
    return bots.get(PRIMARY_METRIC="val_auc:max")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _history(start: float, step: float) -> list[float]:
    return [start + i * step for i in range(STEPS)]


def _baseline_field(card: dict[str, Any]) -> str:
    fields = [f["text"] for f in card["blocks"][1]["fields"]]
    (found,) = [f for f in fields if f.startswith(f"*{BASELINE_FIELD}*")]
    return found


def _review(bot, slack, eventually, text: str, run_id: str, user: str = support.ANA) -> dict[str, Any]:
    url = slack.new_response_url()
    bot.command(text, url, user=user)
    eventually(
        lambda: [t for t in response_texts(slack, url) if "Review card posted" in t], what="card posted"
    )
    return cards_for(slack, run_id)[-1]


def _posted(slack, channel: str, marker: str) -> list[dict[str, Any]]:
    """Top-level messages in `channel` whose text names `marker` (a unique run or experiment name)."""
    return [
        m
        for m in list(slack.messages.get(channel, []))
        if marker in m.get("text", "") and not m.get("thread_ts")
    ] + [
        m
        for m in list(slack.messages.get(channel, []))
        if marker in m.get("text", "") and m.get("thread_ts") == m["ts"]
    ]


# --- the baseline on every card ----------------------------------------------------------------------


def test_card_compares_with_the_deployed_champion_and_keeps_it_after_a_vote(
    bot, slack, runs, eventually
) -> None:
    experiment = _unique("champion-exp")
    model = _unique("fraud-clf")
    champion = runs.make_run(
        "logreg-champion",
        experiment=experiment,
        params={"model": "logreg", "C": "1.0"},
        metrics={"val_auc": 0.90},
        histories={"val_loss": _history(0.6, -0.01)},
    )
    candidate = runs.make_run(
        "gbm-candidate",
        experiment=experiment,
        params={"model": "gbm", "C": "1.0", "depth": "3"},
        metrics={"val_auc": 0.95},
        histories={"val_loss": _history(0.5, -0.01)},
    )
    version = runs.register(model, champion, alias="champion")
    runs.register(model, candidate, alias="challenger")

    card = _review(bot, slack, eventually, candidate, candidate)

    field = _baseline_field(card)
    assert f"vs champion {model} v{version}, the version it would replace" in field
    assert f"/runs/{champion}|logreg-champion>" in field
    thread = eventually(
        lambda: [m for m in slack.thread(card["channel"], card["ts"]) if m.get("text") == DELTAS_TEXT]
    )
    deltas = blocks_text(thread[0])
    assert "val_auc   0.95      0.9       +0.05   +5.6%   better" in json.loads(deltas)[1]["text"]["text"]
    assert "val_loss" in deltas and "better" in deltas
    params = json.loads(deltas)[1]["text"]["text"].split("*Params that differ* (2)")[1]
    assert "depth" in params and "model" in params and "C " not in params  # the diff only
    overlay = eventually(
        lambda: [
            f
            for f in uploads_in_thread(slack, card["channel"], card["ts"])
            if f.filename == "vs-baseline.png"
        ]
    )
    assert overlay[0].content.startswith(PNG_MAGIC)
    tag = json.loads(runs.tags(candidate)[BASELINE_TAG])
    assert (tag["run_id"], tag["reason"], tag["alias"], tag["version"]) == (
        champion,
        "deployed",
        "champion",
        version,
    )

    # A vote rebuilds the card from MLflow: the baseline is still named.
    bot.block_action(
        ActionId.APPROVE.value, "{}", slack.new_response_url(), message=card, channel=card["channel"]
    )
    eventually(lambda: runs.tags(candidate).get("review.status") == "approved")
    updated = eventually(lambda: [c for c in slack.calls_to("chat.update") if c.args.get("ts") == card["ts"]])
    assert "vs champion" in json.dumps(updated[-1].args["blocks"])


def test_parent_run_is_the_baseline_when_nothing_is_deployed(bot, slack, runs, eventually) -> None:
    experiment = _unique("parent-exp")
    parent = runs.make_run("sweep-parent", experiment=experiment, metrics={"val_auc": 0.8})
    child = runs.make_run(
        "sweep-child", experiment=experiment, metrics={"val_auc": 0.85}, tags={"mlflow.parentRunId": parent}
    )
    card = _review(bot, slack, eventually, child, child)
    assert "vs parent run <" in _baseline_field(card) and f"/runs/{parent}|sweep-parent>" in _baseline_field(
        card
    )


def test_best_earlier_run_by_the_primary_metric(ranked_bot, slack, runs, eventually) -> None:
    experiment = _unique("earlier-exp")
    runs.make_run("early-weak", experiment=experiment, metrics={"val_auc": 0.70})
    time.sleep(0.01)
    best = runs.make_run("early-best", experiment=experiment, metrics={"val_auc": 0.90})
    time.sleep(0.01)
    runs.make_run("early-no-auc", experiment=experiment, metrics={"rmse": 0.1})
    time.sleep(0.01)
    candidate = runs.make_run("candidate", experiment=experiment, metrics={"val_auc": 0.85})
    time.sleep(0.01)
    runs.make_run("later-better", experiment=experiment, metrics={"val_auc": 0.99})  # not earlier: never it

    card = _review(ranked_bot, slack, eventually, candidate, candidate)
    field = _baseline_field(card)
    assert f"/runs/{best}|early-best>, the best earlier run by `val_auc`" in field
    thread = eventually(
        lambda: [m for m in slack.thread(card["channel"], card["ts"]) if m.get("text") == DELTAS_TEXT]
    )
    assert "0 better, 1 worse" in blocks_text(thread[0])


def test_requested_baseline_wins(ranked_bot, slack, runs, eventually) -> None:
    experiment = _unique("requested-exp")
    parent = runs.make_run("parent", experiment=experiment, metrics={"val_auc": 0.8})
    mine = runs.make_run("my-pick", experiment=experiment, metrics={"val_auc": 0.7})
    candidate = runs.make_run(
        "candidate", experiment=experiment, metrics={"val_auc": 0.85}, tags={"mlflow.parentRunId": parent}
    )
    card = _review(ranked_bot, slack, eventually, f"{candidate} --baseline runs:/{mine}/model", candidate)
    assert f"/runs/{mine}|my-pick>, chosen with `--baseline`" in _baseline_field(card)


def test_no_baseline_is_said_on_the_card(bot, slack, runs, eventually) -> None:
    lonely = runs.make_run("lonely", experiment=_unique("lonely-exp"), metrics={"val_auc": 0.8})
    card = _review(bot, slack, eventually, lonely, lonely)
    assert _baseline_field(card) == f"*{BASELINE_FIELD}*\n{NO_BASELINE_NO_PRIMARY}"
    time.sleep(0.5)
    assert not [m for m in slack.thread(card["channel"], card["ts"]) if m.get("text") == DELTAS_TEXT]


@pytest.mark.parametrize("which", ["unknown", "itself", "deleted"])
def test_a_bad_baseline_is_explained_and_nothing_posted(bot, slack, runs, eventually, which) -> None:
    candidate = runs.make_run("bad-baseline", metrics={"val_auc": 0.8})
    baseline = {"unknown": support.new_run_id(), "itself": candidate}.get(which) or runs.make_run("gone")
    if which == "deleted":
        runs.client.delete_run(baseline)
    url = slack.new_response_url()
    bot.command(f"{candidate} --baseline {baseline}", url, user=support.CAROL)
    text = eventually(lambda: response_texts(slack, url)[0])
    expected = {
        "unknown": f"The baseline you gave could not be used: :mag: MLflow has no run `{baseline}`",
        "itself": "is the run under review itself; a baseline must be another run",
        "deleted": f"The baseline you gave could not be used: :wastebasket: Run `{baseline}` was deleted",
    }[which]
    assert expected in text
    assert not cards_for(slack, candidate)


# --- /review compare ---------------------------------------------------------------------------------


def _compare(bot, slack, eventually, run_ids: list[str], marker: str) -> tuple[dict[str, Any], str]:
    url = slack.new_response_url()
    reply = bot.command("compare " + " ".join(run_ids), url)
    assert (
        reply.json()["text"]
        == f":mag: Comparing {len(run_ids)} runs; the comparison will appear in this channel."
    )
    message = eventually(lambda: _posted(slack, support.DEV_CHANNEL, marker)[0], what="the comparison")
    return message, url


def test_compare_three_runs_table_and_charts(bot, slack, runs, eventually) -> None:
    experiment = _unique("compare-exp")
    marker = _unique("cmp")
    ids = [
        runs.make_run(
            f"{marker}-{i}",
            experiment=experiment,
            params={"lr": "0.1", "depth": str(3 + i)},
            metrics={"val_auc": 0.9 + i / 100},
            histories={"val_loss": _history(0.5 + i / 10, -0.01)},
        )
        for i in range(3)
    ]
    message, _ = _compare(bot, slack, eventually, ids, marker)
    text = blocks_text(message)
    assert message["blocks"][0]["text"]["text"] == "Comparing 3 runs"
    assert "*Best per metric*" in text and "*val_auc* (higher is better): *C* `0.92`" in text
    assert "*val_loss* (lower is better): *A* `0.21`" in text
    assert "param depth" in text and "param lr" not in text  # only the params that differ
    assert "experiments (" not in text  # one experiment: nothing to warn about
    uploads = eventually(
        lambda: (
            len(uploads_in_thread(slack, support.DEV_CHANNEL, message["ts"])) >= 2
            and uploads_in_thread(slack, support.DEV_CHANNEL, message["ts"])
        )
    )
    assert {f.filename for f in uploads} == {"final-metrics.png", "metric-histories.png"}
    assert all(f.content.startswith(PNG_MAGIC) for f in uploads)


def test_compare_ten_wide_runs_puts_the_table_in_the_thread(bot, slack, runs, eventually) -> None:
    marker = _unique("wide")
    ids = [
        runs.make_run(
            f"{marker}-{i}",
            experiment=_unique("wide-exp") if i == 9 else "review-bot-tests",
            params={f"param_{p:02d}": str(p * i) for p in range(30)},
            metrics={f"metric_{m:02d}": m * 1.2345 + i / 7 for m in range(40)},
        )
        for i in range(10)
    ]
    message, _ = _compare(bot, slack, eventually, ids, marker)
    text = blocks_text(message)
    assert "too wide for a message: it is in the thread as a PNG and a CSV file" in text
    assert "These runs come from 2 experiments" in text  # allowed, and said
    files = eventually(
        lambda: (
            {"comparison-table.png", "comparison.csv"}
            <= {f.filename for f in uploads_in_thread(slack, support.DEV_CHANNEL, message["ts"])}
            and {f.filename: f for f in uploads_in_thread(slack, support.DEV_CHANNEL, message["ts"])}
        )
    )
    assert files["comparison-table.png"].content.startswith(PNG_MAGIC)
    rows = list(csv.reader(io.StringIO(files["comparison.csv"].content.decode())))
    assert rows[0] == ["", *"ABCDEFGHIJ"]
    assert rows[1] == ["metric_00", *(f"{i / 7:.4g}" for i in range(10))]
    assert len(rows) == 1 + 40 + 29  # every metric, and the params that differ (param_00 is 0 everywhere)


@pytest.mark.parametrize("count", [1, 11])
def test_compare_needs_two_to_ten_runs(bot, slack, count) -> None:
    url = slack.new_response_url()
    reply = bot.command("compare " + " ".join(support.new_run_id() for _ in range(count)), url)
    assert reply.json() == {"response_type": "ephemeral", "text": COMPARE_COUNT.format(n=count)}


def test_compare_with_an_unknown_run_posts_nothing(bot, slack, runs, eventually) -> None:
    known = runs.make_run(_unique("known"))
    missing = support.new_run_id()
    before = len(slack.calls_to("chat.postMessage"))
    url = slack.new_response_url()
    bot.command(f"compare {known} {missing}", url)
    text = eventually(lambda: response_texts(slack, url)[0])
    assert f"MLflow has no run `{missing}`" in text
    assert [c for c in slack.calls_to("chat.postMessage")[before:] if "Comparing" in json.dumps(c.args)] == []


# --- /review leaderboard ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leaderboard_experiment(runs) -> tuple[str, dict[str, str]]:
    name = _unique("leaderboard exp")  # a name with a space
    ids = {
        f"lb-{auc}": runs.make_run(
            f"lb-{auc}",
            experiment=name,
            params={"depth": str(auc // 10), "seed": "1"},
            metrics={"val_auc": auc / 100, "rmse": 1 - auc / 100},
        )
        for auc in (80, 95, 90, 85)
    }
    runs.make_run("lb-without-auc", experiment=name, metrics={"other": 1.0})
    # Diverged: MLflow stores +inf as 1.8e308, which sorts first by `val_auc DESC`; it must not rank.
    runs.make_run("lb-diverged", experiment=name, metrics={"val_auc": math.inf})
    return name, ids


def test_leaderboard_ranks_by_the_primary_metric_and_a_button_posts_the_card(
    ranked_bot, slack, eventually, leaderboard_experiment
) -> None:
    name, ids = leaderboard_experiment
    url = slack.new_response_url()
    ranked_bot.command(f'leaderboard "{name}" 3', url)
    board = eventually(lambda: _posted(slack, support.DEV_CHANNEL, f"Leaderboard of {name}")[0])
    rows = [b for b in board["blocks"] if b.get("accessory")]
    assert [json.loads(r["accessory"]["value"])["run_id"] for r in rows] == [
        ids["lb-95"],
        ids["lb-90"],
        ids["lb-85"],
    ]
    assert rows[0]["text"]["text"].startswith(f"*1.* <{ranked_bot.env['MLFLOW_TRACKING_URI']}/#/experiments/")
    assert "`val_auc` *0.95* · depth=`9`" in rows[0]["text"]["text"]
    assert rows[0]["accessory"]["text"]["text"] == REVIEW_BUTTON
    assert "higher is better" in blocks_text(board)

    click = slack.new_response_url()
    reply = ranked_bot.block_action(
        ActionId.LEADERBOARD_REVIEW.value,
        rows[1]["accessory"]["value"],
        click,
        message=board,
        channel=support.DEV_CHANNEL,
        user=support.BO,
    )
    assert reply.status_code == 200
    card = eventually(lambda: cards_for(slack, ids["lb-90"])[0], what="the card from the button")
    assert card["channel"] == support.REVIEW_CHANNEL
    assert f"<@{support.BO}>" in blocks_text(card)
    eventually(lambda: [t for t in response_texts(slack, click) if "Review card posted" in t])


def test_leaderboard_by_a_named_metric_lower_is_better(
    bot, slack, eventually, leaderboard_experiment
) -> None:
    name, ids = leaderboard_experiment
    bot.command(f'leaderboard "{name}" rmse', slack.new_response_url())
    board = eventually(lambda: _posted(slack, support.DEV_CHANNEL, f"Leaderboard of {name} by rmse")[0])
    rows = [json.loads(b["accessory"]["value"])["run_id"] for b in board["blocks"] if b.get("accessory")]
    assert rows == [ids["lb-95"], ids["lb-90"], ids["lb-85"], ids["lb-80"]]
    assert "lower is better" in blocks_text(board)


def test_leaderboard_by_a_metric_of_unknown_direction_asks_which_way_and_posts_nothing(
    bot, slack, eventually, leaderboard_experiment
) -> None:
    name, ids = leaderboard_experiment
    url = slack.new_response_url()
    bot.command(f'leaderboard "{name}" other', url, user=support.CAROL)
    text = eventually(lambda: response_texts(slack, url)[0])
    assert text == NO_DIRECTION.format(name=f'"{name}"', metric="other")
    response = [r for r in slack.responses if r.get("_url") == url][0]
    assert response.get("response_type") == "ephemeral"
    # The answer to the question, the same way: ranked as told, lowest first.
    bot.command(f'leaderboard "{name}" val_auc:min', slack.new_response_url())
    board = eventually(
        lambda: [
            b
            for b in _posted(slack, support.DEV_CHANNEL, f"Leaderboard of {name} by val_auc")
            if "lower is better" in blocks_text(b)
        ][0]
    )
    rows = [json.loads(b["accessory"]["value"])["run_id"] for b in board["blocks"] if b.get("accessory")]
    assert rows == [ids["lb-80"], ids["lb-85"], ids["lb-90"], ids["lb-95"]]
    assert not _posted(slack, support.DEV_CHANNEL, f"Leaderboard of {name} by other")


def test_leaderboard_by_experiment_id_without_quotes(bot, slack, runs, eventually) -> None:
    name = _unique("plain")
    runs.make_run("only", experiment=name, metrics={"acc": 0.5})
    experiment_id = runs.experiment(name)
    bot.command(f"leaderboard {experiment_id} acc 5", slack.new_response_url())
    assert eventually(lambda: _posted(slack, support.DEV_CHANNEL, f"Leaderboard of {name} by acc"))


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("no-such-experiment-{u}", "MLflow has no experiment named or numbered `no-such-experiment-{u}`"),
        (
            '"{exp}" no_such_metric',
            "No run in `{exp}` logged `no_such_metric`. Metrics logged there: `other`, `rmse`, `val_auc`.",
        ),
        ('"{exp}"', "Which metric? `PRIMARY_METRIC` is not set"),
        ('"{empty}"', "has no runs yet"),
    ],
    ids=["unknown-experiment", "unknown-metric", "no-metric", "no-runs"],
)
def test_leaderboard_bad_input_is_explained_only_to_the_asker(
    bot, slack, runs, eventually, leaderboard_experiment, words, expected
) -> None:
    name, _ = leaderboard_experiment
    empty = _unique("empty")
    runs.experiment(empty)
    u = uuid.uuid4().hex[:6]
    url = slack.new_response_url()
    bot.command("leaderboard " + words.format(exp=name, empty=empty, u=u), url, user=support.CAROL)
    text = eventually(lambda: response_texts(slack, url)[0])
    assert expected.format(exp=name, u=u) in text
    response = [r for r in slack.responses if r.get("_url") == url][0]
    assert response.get("response_type") == "ephemeral"
    assert not _posted(slack, support.DEV_CHANNEL, f"Leaderboard of {empty}")
