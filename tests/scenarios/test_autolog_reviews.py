"""Issue 12's "Done when", on runs made by the libraries' own autolog (tests/autolog_runs.py) in the
session's MLflow server: which way each metric improves, train/validation pairs in one panel, a
one-step spike in 100,000 steps, runs that diverged, CJK and emoji names, and the params a card puts
first against a baseline.

Comparisons and cards go through the served bot (signed `/review` commands in, the Slack test server's
calls out); what only the chart can show (its panels, its reduced data, its pixels) is read in-process
from the bot's own ReviewPreparer and chart code against the same real server.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import warnings
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

import app
from bot import charts
from bot import envelope as envelopes
from bot.commands import parse_ref
from bot.compare.blocks import DELTAS_TEXT
from bot.config import Settings
from bot.models import MetricSeries
from bot.reviews.card import DIFFERS_MARK, PARAMS_DIFFER_TITLE
from bot.reviews.prepare import ReviewPreparer
from bot.reviews.thread import CHART_TITLE, NO_HISTORY
from bot.slack.outbox import FileUpload
from tests import support
from tests.autolog_runs import (
    LIGHTNING_KEY_METRICS,
    LONG_LEVEL,
    LONG_METRIC,
    LONG_NOISE,
    LONG_STEPS,
    SPIKE_STEP,
    SPIKE_VALUE,
    UNICODE_METRIC,
    UNICODE_RUN_NAME,
    UNKNOWN_METRIC,
    AutologRuns,
)
from tests.scenarios.helpers import cards_for, response_texts, uploads_in_thread

LOWER = "lower"
HIGHER = "higher"
NOT_JUDGED = "not judged"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# What the issue names, as the real autolog runs log them: (candidate, baseline) -> {metric: direction}.
DIRECTIONS: dict[tuple[str, str], dict[str, str]] = {
    ("lightgbm/sklearn-a", "lightgbm/sklearn-b"): {
        "l1": LOWER,
        "l2": LOWER,
        "valid_0-l1": LOWER,
        "valid_0-l2": LOWER,
        "training-l1": LOWER,
        "training-l2": LOWER,
    },
    ("lightgbm/regression-a", "lightgbm/regression-b"): {
        "train-l1": LOWER,
        "train-l2": LOWER,
        "valid-l1": LOWER,
        "valid-l2": LOWER,
    },
    ("lightgbm/binary-a", "lightgbm/binary-b"): {
        "training-auc": HIGHER,
        "valid_1-auc": HIGHER,
        "training-binary_logloss": LOWER,
        "valid_1-binary_logloss": LOWER,
    },
    ("xgboost/train-deep", "xgboost/train-shallow"): {
        "train-logloss": LOWER,
        "valid-logloss": LOWER,
        "train-error": LOWER,
        "valid-error": LOWER,
        "train-auc": HIGHER,
        "valid-auc": HIGHER,
    },
    ("xgboost/sklearn-tuned", "xgboost/sklearn-baseline"): {
        "validation_0-logloss": LOWER,
        "validation_1-logloss": LOWER,
    },
    ("statsmodels/ols-full", "statsmodels/ols-small"): {
        "aic": LOWER,
        "bic": LOWER,
        "ssr": LOWER,
        "rsquared": HIGHER,
        "rsquared_adj": HIGHER,
        UNKNOWN_METRIC: NOT_JUDGED,
    },
    ("statsmodels/arima-011", "statsmodels/arima-210"): {"aic": LOWER, "bic": LOWER, "llf": HIGHER},
    ("sklearn/grid-best", "sklearn/grid-worst"): {
        "rank_test_score": LOWER,
        "std_test_score": LOWER,
        "mean_fit_time": LOWER,
        "mean_score_time": LOWER,
        "mean_test_score": HIGHER,
    },
}

# Train and validation of one metric, as each library names them: each set must share one panel.
PAIRS: list[tuple[str, set[str]]] = [
    ("xgboost/sklearn-tuned", {"validation_0-logloss", "validation_1-logloss"}),
    ("xgboost/train-deep", {"train-logloss", "valid-logloss"}),
    ("xgboost/train-deep", {"train-auc", "valid-auc"}),
    ("lightgbm/binary-a", {"training-auc", "valid_1-auc"}),
    ("lightgbm/binary-a", {"training-binary_logloss", "valid_1-binary_logloss"}),
    ("lightgbm/regression-a", {"train-l2", "valid-l2"}),
    ("lightgbm/sklearn-a", {"training-l2", "valid_0-l2"}),
    ("lightning/many-metrics", {"train/loss", "val/loss"}),
    ("keras/dense", {"loss", "val_loss"}),
]


# --- helpers ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def preparer(mlflow_server: str) -> ReviewPreparer:
    """The bot's own ReviewPreparer, as `review-bot preview` builds it, on the session's server."""
    settings = Settings(mlflow_tracking_uri=mlflow_server)
    return app.create_preparer(settings, app.create_mlflow(settings))


def _review(bot, slack, eventually, text: str, run_id: str) -> dict[str, Any]:  # noqa: ANN001
    url = slack.new_response_url()
    bot.command(text, url, user=support.ANA)
    eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t], what="card")
    return cards_for(slack, run_id)[-1]


def _metric_chart_in_thread(slack, eventually, card: dict[str, Any]):  # noqa: ANN001, ANN202
    """The metric chart uploaded in the card's thread, once it is there."""
    return eventually(
        lambda: [
            f
            for f in uploads_in_thread(slack, card["channel"], card["ts"])
            if f.filename == "metric-history.png"
        ],
        what="the metric chart",
    )[0]


def _section_texts(message: dict[str, Any]) -> list[str]:
    texts = []
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"].get("text", ""))
        texts += [f.get("text", "") for f in block.get("fields") or []]
    return texts


def _verdicts(messages: list[dict[str, Any]]) -> dict[str, str]:
    """{metric: better | worse | same | not judged} from the thread's "Compared with the baseline" table."""
    text = "\n".join(t for m in messages for t in _section_texts(m))
    verdicts: dict[str, str] = {}
    for table in re.findall(r"```\n(.*?)\n```", text, re.DOTALL):
        header, *rows = table.splitlines()
        if not header.startswith("metric"):
            continue  # the params table
        for row in rows:
            words = row.split()
            verdicts[words[0]] = words[-1] if words[-1] in ("better", "worse", "same") else NOT_JUDGED
    return verdicts


def _expected(candidate: float, baseline: float, direction: str) -> str:
    if direction == NOT_JUDGED:
        return NOT_JUDGED
    if candidate == baseline:
        return "same"
    better = candidate < baseline if direction == LOWER else candidate > baseline
    return "better" if better else "worse"


def _histories(preparer: ReviewPreparer, autolog: AutologRuns, label: str) -> list[Any]:
    run_id = autolog.id(label)
    keys = preparer.runs.run_summary(run_id).metrics
    return preparer.histories.envelopes([run_id], keys, width=charts.HISTORY_WIDTH_PX)[run_id]


def _reduced(item: MetricSeries | envelopes.Envelope) -> envelopes.Envelope:
    """What the chart draws of a history: its envelope at the history chart's width."""
    if isinstance(item, envelopes.Envelope):
        return envelopes.reduce(item, charts.HISTORY_WIDTH_PX)
    return envelopes.from_series(item, charts.HISTORY_WIDTH_PX)


def _pixels(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")[..., :3]


def _colour_mask(pixels: np.ndarray, colour: str, tolerance: float = 0.12) -> np.ndarray:
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.all(np.abs(pixels - rgb) < tolerance, axis=-1)


def _chart_upload(preparer: ReviewPreparer, run_id: str) -> FileUpload:
    prepared = preparer.card(parse_ref(run_id), "U0TEST")
    item = next(iter(preparer.thread(prepared)))
    assert isinstance(item, FileUpload), f"the thread starts with {item!r}, not the metric chart"
    return item


# --- (a) directions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", list(DIRECTIONS), ids=[c for c, _ in DIRECTIONS])
def test_better_and_worse_follow_each_librarys_metric_direction(
    bot, slack, runs, eventually, autolog_runs, pair
) -> None:
    candidate, baseline = pair
    card = _review(
        bot,
        slack,
        eventually,
        f"{autolog_runs.id(candidate)} --baseline {autolog_runs.id(baseline)}",
        autolog_runs.id(candidate),
    )
    thread = eventually(
        lambda: [m for m in slack.thread(card["channel"], card["ts"]) if m.get("text") == DELTAS_TEXT],
        what="the comparison with the baseline",
    )
    verdicts = _verdicts(thread)
    mine = runs.client.get_run(autolog_runs.id(candidate)).data.metrics
    theirs = runs.client.get_run(autolog_runs.id(baseline)).data.metrics
    expected, seen = {}, {}
    for key, direction in DIRECTIONS[pair].items():
        assert mine[key] != theirs[key], f"{key} is equal in both runs: the data cannot tell directions"
        expected[key] = _expected(mine[key], theirs[key], direction)
        seen[key] = verdicts.get(key, "missing from the table")
    assert seen == expected


def test_leaderboard_by_lightgbm_valid_l2_ranks_the_lowest_first(
    bot, slack, eventually, autolog_runs
) -> None:
    experiment = "autolog-lightgbm"
    bot.command(f"leaderboard {experiment} valid-l2", slack.new_response_url())
    board = eventually(
        lambda: [
            m
            for m in list(slack.messages.get(support.DEV_CHANNEL, []))
            if f"Leaderboard of {experiment} by valid-l2" in m.get("text", "")
        ][-1],
        what="the leaderboard",
    )
    ranked = [json.loads(b["accessory"]["value"])["run_id"] for b in board["blocks"] if b.get("accessory")]
    assert ranked == [autolog_runs.id("lightgbm/regression-a"), autolog_runs.id("lightgbm/regression-b")]
    assert "lower is better" in json.dumps(board["blocks"])


# --- (b) pairs in one panel ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "pair"), PAIRS, ids=[f"{label}:{'+'.join(sorted(p))}" for label, p in PAIRS]
)
def test_train_and_validation_share_a_panel(preparer, autolog_runs, label, pair) -> None:
    chart = charts.render_metric_history(_histories(preparer, autolog_runs, label))
    assert chart.png is not None
    holding = [panel for panel in chart.panels if pair & set(panel)]
    assert len(holding) == 1 and pair <= set(holding[0]), f"{sorted(pair)} drawn in {holding}"


def test_key_metrics_come_first_and_are_never_left_out_for_lack_of_room(preparer, autolog_runs) -> None:
    histories = _histories(preparer, autolog_runs, "lightning/many-metrics")
    chart = charts.render_metric_history(histories, first=LIGHTNING_KEY_METRICS)
    assert chart.panels[0] == LIGHTNING_KEY_METRICS
    assert not set(LIGHTNING_KEY_METRICS) & set(chart.omitted)
    assert chart.omitted, "the run has more metric groups than panels: something must be left out"


def test_lightning_pair_is_charted_in_the_thread_with_the_teams_key_metrics(
    bots, slack, eventually, autolog_runs
) -> None:
    bot = bots.get(REVIEW_KEY_METRICS=",".join(LIGHTNING_KEY_METRICS))
    run_id = autolog_runs.id("lightning/many-metrics")
    card = _review(bot, slack, eventually, run_id, run_id)
    chart = eventually(
        lambda: [
            m
            for m in slack.thread(card["channel"], card["ts"])
            if any(f.get("name") == "metric-history.png" for f in m.get("files") or [])
        ],
        what="the metric chart",
    )[0]
    assert "Not charted for lack of room" in chart["text"]  # 18 groups, 12 panels
    assert "train/loss" not in chart["text"] and "val/loss" not in chart["text"]


def test_keras_validation_metrics_logged_at_step_0_are_not_a_vertical_line(preparer, autolog_runs) -> None:
    """Keras' callback logs `validation_*` at step 0 after every epoch (tests/data/README.md)."""
    histories = {h.key: h for h in _histories(preparer, autolog_runs, "keras/dense")}
    raw = histories["validation_loss"]
    if isinstance(raw, MetricSeries):
        assert raw.steps == [0] * 5  # as logged
    drawn = _reduced(raw)
    assert len(set(drawn.x)) == 5, f"validation_loss drawn at x={drawn.x}"


# --- (c) a one-step spike in 100,000 steps ------------------------------------------------------------


def test_spike_of_one_step_survives_the_reduction_of_the_real_history(preparer, autolog_runs) -> None:
    run_id = autolog_runs.id("edge/long-spike")
    (history,) = preparer.histories.envelopes([run_id], [LONG_METRIC], width=charts.HISTORY_WIDTH_PX)[run_id]
    drawn = _reduced(history)
    assert max(drawn.values) == SPIKE_VALUE
    assert drawn.x[drawn.values.index(SPIKE_VALUE)] == SPIKE_STEP
    assert min(drawn.values) >= LONG_LEVEL - LONG_NOISE
    assert max(drawn.x) == LONG_STEPS - 1


def test_spike_of_one_step_is_drawn_in_the_thread_chart(preparer, autolog_runs) -> None:
    upload = _chart_upload(preparer, autolog_runs.id("edge/long-spike"))
    line = _colour_mask(_pixels(upload.files[0].content), charts.LINE_COLOURS[0])
    rows, cols = np.nonzero(line)
    top, bottom = rows.min(), rows.max()
    assert bottom - top >= 100, f"the line spans {bottom - top} px: nothing reaches far above ~2.0"
    columns = np.unique(cols)
    upper = np.unique(cols[rows < (top + bottom) / 2])
    # Values ~2.0 with one step at 25 on a 0..25 axis: one thin needle in the upper half, the rest flat.
    assert 1 <= len(upper) <= 0.02 * len(columns), f"{len(upper)} of {len(columns)} columns in the upper half"
    where = (upper.mean() - columns.min()) / (columns.max() - columns.min())
    assert abs(where - SPIKE_STEP / LONG_STEPS) < 0.02


# --- (d) runs that diverged ---------------------------------------------------------------------------


def test_diverged_run_is_charted_and_its_card_says_inf(bot, slack, eventually, autolog_runs) -> None:
    run_id = autolog_runs.id("edge/diverged")
    card = _review(bot, slack, eventually, run_id, run_id)
    upload = _metric_chart_in_thread(slack, eventually, card)
    assert upload.content.startswith(PNG_MAGIC)
    thread_text = json.dumps(slack.thread(card["channel"], card["ts"]), ensure_ascii=False)
    assert NO_HISTORY not in thread_text and "more than one step" not in thread_text
    grad_norm = [line for text in _section_texts(card) for line in text.splitlines() if "grad_norm" in line]
    assert grad_norm and "inf" in grad_norm[0] and "e+308" not in grad_norm[0], grad_norm
    assert "e+308" not in json.dumps(card["blocks"])


@pytest.mark.parametrize("label", ["edge/diverged", "edge/only-inf"])
def test_nonfinite_histories_keep_their_panels_and_finite_lines(preparer, autolog_runs, label) -> None:
    histories = _histories(preparer, autolog_runs, label)
    chart = charts.render_metric_history(histories)
    assert chart.png is not None
    charted = {key for panel in chart.panels for key in panel}
    expected = {"loss", "grad_norm", "log_likelihood"} if label == "edge/diverged" else {"loss"}
    assert expected <= charted
    assert expected <= set(chart.nonfinite)
    line = _colour_mask(_pixels(chart.png), charts.LINE_COLOURS[0])
    assert line.sum() > 200, "the finite part of each history is drawn"
    upload = _chart_upload(preparer, autolog_runs.id(label))
    assert upload.files[0].content.startswith(PNG_MAGIC)


# --- (e) CJK and emoji --------------------------------------------------------------------------------


def _renamed(item: MetricSeries | envelopes.Envelope, key: str) -> MetricSeries | envelopes.Envelope:
    if isinstance(item, envelopes.Envelope):
        return dataclasses.replace(item, key=key)
    return MetricSeries(key=key, steps=item.steps, values=item.values)


def _render_quietly(series: list[Any], title: str) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart = charts.render_metric_history(series, title=title)
    assert chart.png is not None
    return _pixels(chart.png), [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_cjk_and_emoji_names_are_drawn_not_boxes(preparer, autolog_runs) -> None:
    """A glyph no font has is drawn as its Unicode block's box (matplotlib's last resort), so two names
    that differ only in characters of one block the fonts lack render identically; with the glyphs,
    they differ. 🚀 and 🚗 are both in Transport and Map Symbols; the CJK ones all in CJK Unified
    Ideographs."""
    histories = _histories(preparer, autolog_runs, "unicode/cjk-emoji")
    (series,) = [h for h in histories if h.key == UNICODE_METRIC]
    assert series.values, "the CJK metric has a history on the server"
    title = CHART_TITLE.format(run=UNICODE_RUN_NAME)
    as_logged, missing = _render_quietly([series], title)
    assert missing == []
    again, _ = _render_quietly([series], title)
    assert np.array_equal(as_logged, again), "the same chart renders to the same pixels"
    other_cjk, missing = _render_quietly([series], CHART_TITLE.format(run="機械-学習 🚀"))
    assert missing == [] and not np.array_equal(as_logged, other_cjk), "CJK in the title"
    other_emoji, missing = _render_quietly([series], CHART_TITLE.format(run="模型-評価 🚗"))
    assert missing == [] and not np.array_equal(as_logged, other_emoji), "the emoji in the title"
    other_metric, missing = _render_quietly([_renamed(series, "誤差")], title)
    assert missing == [] and not np.array_equal(as_logged, other_metric), "CJK in the panel title"


def test_cjk_run_is_charted_in_the_thread_without_missing_glyphs(
    bot, slack, eventually, autolog_runs
) -> None:
    run_id = autolog_runs.id("unicode/cjk-emoji")
    before = len(bot.log())
    card = _review(bot, slack, eventually, run_id, run_id)
    assert UNICODE_RUN_NAME in json.dumps(card["blocks"], ensure_ascii=False)
    upload = _metric_chart_in_thread(slack, eventually, card)
    assert upload.title == CHART_TITLE.format(run=UNICODE_RUN_NAME)
    assert "missing from font" not in bot.log()[before:]


# --- (f) the params a reviewer wants, first -----------------------------------------------------------


def test_xgboost_card_puts_the_params_that_differ_from_the_baseline_first(
    bot, slack, runs, eventually, autolog_runs
) -> None:
    candidate, baseline = (
        autolog_runs.id("xgboost/sklearn-tuned"),
        autolog_runs.id("xgboost/sklearn-baseline"),
    )
    mine, theirs = (runs.client.get_run(r).data.params for r in (candidate, baseline))
    differing = {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}
    assert differing == {"learning_rate", "max_depth"}, "the runs differ in the two params the test sets"
    assert len(mine) > 12, "more params than the card shows: the order matters"
    _review(bot, slack, eventually, f"{candidate} --baseline {baseline}", candidate)

    def params_section() -> list[str]:
        texts = [
            t for t in _section_texts(cards_for(slack, candidate)[-1]) if t.startswith(PARAMS_DIFFER_TITLE)
        ]
        return texts[0].splitlines()[1:] if texts else []

    lines = eventually(params_section, what="the card's params, marked against its baseline")
    marked = [line for line in lines if DIFFERS_MARK in line]
    assert len(marked) == 2 and lines[:2] == marked, lines
    assert {re.search(r"(\w+) = ", line).group(1) for line in marked} == differing
    assert any("max_depth = `4`" in line for line in marked) and any("`2`" in line for line in marked)
