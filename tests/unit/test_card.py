"""Unit tests for bot.reviews.card: the review card, compared by value, and Slack's limits on huge runs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.ids import ActionId, BlockId, MetadataEvent
from bot.models import Baseline, BaselineReason, DatasetInput, ModelVersionRef, RunSummary
from bot.reviews.card import (
    APPROVE_LABEL,
    BASELINE_PENDING,
    CARD_METRICS,
    CARD_PARAMS,
    DIFFERS_MARK,
    NO_NOTE,
    NOTE_CONTINUED,
    OPEN_LABEL,
    PARAM_VALUE_CHARS,
    PARAMS_DIFFER_TITLE,
    PARAMS_FEW_SHARED_TITLE,
    PARAMS_NONE_SHARED_TITLE,
    PARAMS_SAME_TITLE,
    PARAMS_TITLE,
    PENDING_STATUS,
    REQUEST_CHANGES_LABEL,
    SCHEDULE_LABEL,
    build_review_card,
    differing_params,
    format_duration,
    format_time,
    is_default_value,
    order_params,
    ordered_metrics,
    plan_card,
    same_value,
)
from bot.slack import limits

RUN_ID = "0123456789abcdef0123456789abcdef"
RUN_URL = f"http://mlflow:5000/#/experiments/7/runs/{RUN_ID}"
EXPERIMENT_URL = "http://mlflow:5000/#/experiments/7"
START = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
VALUE = json.dumps({"run_id": RUN_ID, "experiment_id": "7"}, separators=(",", ":"))
HOSTILE = "<!channel> <@U999> <https://evil.example|click>"


def _summary(**changes: Any) -> RunSummary:
    base: dict[str, Any] = {
        "run_id": RUN_ID,
        "run_name": "fraud-clf-v2",
        "experiment_id": "7",
        "experiment_name": "fraud",
        "user": "ann",
        "status": "FINISHED",
        "start_time": START,
        "end_time": START + timedelta(minutes=2, seconds=5),
        "source_name": "train.py",
        "git_commit": "abcdef1234567890",
        "metrics": {"auc": 0.91234, "loss": 0.25, "accuracy": 0.875},
        "params": {"lr": "0.01", "depth": "6"},
        "run_url": RUN_URL,
        "experiment_url": EXPERIMENT_URL,
    }
    return RunSummary(**{**base, **changes})


def _card(summary: RunSummary, key_metrics: list[str] | None = None) -> list[dict[str, Any]]:
    return build_review_card(summary, requested_by="U123", key_metrics=key_metrics or []).blocks


def _by_id(blocks: list[dict[str, Any]], block_id: str) -> dict[str, Any]:
    (found,) = [b for b in blocks if b.get("block_id") == block_id]
    return found


def _button(action_id: str, label: str, style: str | None = None, url: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "value": VALUE,
    }
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn string in the blocks (section text, fields, context elements)."""
    texts = []
    for block in blocks:
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        texts += [o["text"] for o in objects if isinstance(o, dict) and o.get("type") == "mrkdwn"]
    return texts


# --- a small run, by value --------------------------------------------------------------------------


def test_small_run_card_blocks_by_value() -> None:
    message = build_review_card(_summary(), requested_by="U123", key_metrics=["loss"])
    blocks = message.blocks
    assert [b["type"] for b in blocks] == [
        "header",
        "section",
        "section",
        "section",
        "divider",
        "section",
        "context",
        "actions",
    ]
    assert blocks[0] == {
        "type": "header",
        "block_id": BlockId.HEADER,
        "text": {"type": "plain_text", "text": "Model review: fraud-clf-v2", "emoji": False},
    }
    assert [f["text"] for f in blocks[1]["fields"]] == [
        f"*Experiment*\n<{EXPERIMENT_URL}|fraud>",
        f"*Run*\n<{RUN_URL}|{RUN_ID}>",
        "*Author*\nann",
        "*Requested by*\n<@U123>",
        "*Run status*\nFinished · <!date^1704164645^{date_short_pretty} {time}|2024-01-02 03:04 UTC> · 2m 5s",
        "*Source*\ntrain.py",
        "*Git commit*\n`abcdef1`",
    ]
    assert all(f["type"] == "mrkdwn" for f in blocks[1]["fields"])
    assert blocks[2] == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Metrics*\n• *loss*: `0.25`\n• *accuracy*: `0.875`\n• *auc*: `0.9123`",
        },
    }
    assert blocks[3] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Params*\n• depth = `6`\n• lr = `0.01`"},
    }
    assert blocks[5] == {
        "type": "section",
        "block_id": BlockId.NOTE,
        "text": {"type": "mrkdwn", "text": NO_NOTE},
    }
    assert blocks[6] == {
        "type": "context",
        "block_id": BlockId.STATUS,
        "elements": [{"type": "mrkdwn", "text": f"{PENDING_STATUS} · 0/1 approvals · requested by <@U123>"}],
    }
    assert blocks[7] == {
        "type": "actions",
        "block_id": BlockId.ACTIONS,
        "elements": [
            _button(ActionId.APPROVE, APPROVE_LABEL, style="primary"),
            _button(ActionId.REQUEST_CHANGES, REQUEST_CHANGES_LABEL, style="danger"),
            _button(ActionId.SCHEDULE, SCHEDULE_LABEL),
            _button(ActionId.OPEN_MLFLOW, OPEN_LABEL, url=RUN_URL),
        ],
    }
    assert message.metadata == {
        "event_type": MetadataEvent.MODEL_REVIEW,
        "event_payload": {"run_id": RUN_ID, "experiment_id": "7"},
    }
    assert message.text == f"Model review requested: fraud-clf-v2 (fraud), run {RUN_ID}"
    assert message.as_kwargs() == {"text": message.text, "blocks": blocks, "metadata": message.metadata}


def test_empty_run_says_so() -> None:
    blocks = _card(_summary(metrics={}, params={}, user="", source_name="", git_commit="", status=""))
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert "*Author*\n_unknown_" in fields
    assert "*Source*\n_not recorded_" in fields
    assert "*Git commit*\n_not recorded_" in fields
    assert fields[4].startswith("*Run status*\nUnknown · ")
    assert blocks[2]["text"]["text"] == "*Metrics*\n_No metrics logged._"
    assert blocks[3]["text"]["text"] == "*Params*\n_No params logged._"


def test_not_started_run() -> None:
    fields = [f["text"] for f in _card(_summary(start_time=None, end_time=None))[1]["fields"]]
    assert fields[4] == "*Run status*\nFinished · not started"


def test_no_run_url_means_no_open_button_and_run_id_in_code() -> None:
    blocks = _card(_summary(run_url="", experiment_url=""))
    actions = _by_id(blocks, BlockId.ACTIONS)["elements"]
    assert [a["action_id"] for a in actions] == [
        ActionId.APPROVE,
        ActionId.REQUEST_CHANGES,
        ActionId.SCHEDULE,
    ]
    assert all("url" not in a for a in actions)
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields[0] == "*Experiment*\nfraud"
    assert fields[1] == f"*Run*\n`{RUN_ID}`"


# --- ordering and formatting ----------------------------------------------------------------------


def test_key_metrics_come_first_in_configured_order_then_the_rest_alphabetically() -> None:
    metrics = {"z": 1.0, "b": 2.0, "loss": 3.0, "auc": 4.0, "a": 5.0}
    assert ordered_metrics(metrics, ["loss", "missing", "auc"]) == ["loss", "auc", "a", "b", "z"]
    assert ordered_metrics(metrics, []) == ["a", "auc", "b", "loss", "z"]
    text = _card(_summary(metrics=metrics), key_metrics=["loss", "missing", "auc"])[2]["text"]["text"]
    assert re.findall(r"• \*(\w+)\*", text) == ["loss", "auc", "a", "b", "z"]


def test_key_metrics_survive_the_card_cap() -> None:
    metrics = {f"m{i:02d}": float(i) for i in range(30)} | {"zz_key": 1.0}
    layout = plan_card(_summary(metrics=metrics), ["zz_key"])
    assert layout.metrics[0] == "zz_key"
    assert len(layout.metrics) == CARD_METRICS


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, ""),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m 0s"),
        (125, "2m 5s"),
        (3600, "1h 0m"),
        (3 * 3600 + 7 * 60 + 5, "3h 7m"),
    ],
)
def test_format_duration(seconds: float | None, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_format_time() -> None:
    assert format_time(None) == "not started"
    assert format_time(START) == "<!date^1704164645^{date_short_pretty} {time}|2024-01-02 03:04 UTC>"


def test_format_time_fallback_is_utc_whatever_the_timezone() -> None:
    paris = START.astimezone(timezone(timedelta(hours=1)))
    assert format_time(paris) == format_time(START)


# --- untrusted text -------------------------------------------------------------------------------


def test_untrusted_text_is_escaped_everywhere_in_mrkdwn() -> None:
    summary = _summary(
        run_name=HOSTILE,
        experiment_name=HOSTILE,
        user=HOSTILE,
        source_name=HOSTILE,
        git_commit="<!here>",
        status="<!channel>",
        metrics={HOSTILE: 1.0},
        params={HOSTILE: HOSTILE},
        note=f"Look {HOSTILE} and [x](javascript:alert(1))",
        datasets=[DatasetInput(name=HOSTILE, digest="<!here>", source_type="<@U1>", context="<!channel>")],
        model_versions=[ModelVersionRef(name=HOSTILE, version="1", aliases=["<!channel>"])],
        run_url="",
        experiment_url="",
    )
    message = build_review_card(summary, requested_by="U123", key_metrics=[])
    texts = _mrkdwn_texts(message.blocks)
    joined = "\n".join(texts)
    assert "&lt;!channel&gt;" in joined
    for text in texts:
        assert "<!channel>" not in text and "<!here>" not in text and "<@U999>" not in text
        assert "<https://evil.example" not in text
        assert "<javascript:" not in text
        assert "<@U1>" not in text
    # Every `<` left in mrkdwn is one the builder wrote: the requester mention or a date.
    for text in texts:
        for opened in re.findall(r"<[^>]*>", text):
            assert opened == "<@U123>" or opened.startswith("<!date^"), opened
    # The header is plain_text: Slack shows it literally, so it carries the raw name.
    assert message.blocks[0]["text"] == {
        "type": "plain_text",
        "text": f"Model review: {HOSTILE}",
        "emoji": False,
    }
    assert "<" not in message.text


# --- datasets and model versions ------------------------------------------------------------------


def test_datasets_section() -> None:
    datasets = [
        DatasetInput(name="train", digest="abc123", source_type="delta", context="training"),
        DatasetInput(name="holdout"),
        *[DatasetInput(name=f"extra{i}") for i in range(5)],
    ]
    blocks = _card(_summary(datasets=datasets))
    assert blocks[4] == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Datasets*\n• train (training, delta, digest abc123)\n• holdout\n"
            "• extra0\n• extra1\n• extra2\n…and 2 more",
        },
    }
    assert blocks[5] == {"type": "divider"}


def test_no_datasets_no_section() -> None:
    assert not [t for t in _mrkdwn_texts(_card(_summary())) if t.startswith("*Datasets*")]


def test_model_versions_with_aliases() -> None:
    versions = [
        ModelVersionRef(name="fraud-clf", version="3", aliases=["champion", "prod"]),
        ModelVersionRef(name="fraud-clf-lite", version="1"),
        *[ModelVersionRef(name=f"m{i}", version=str(i)) for i in range(5)],
    ]
    fields = [f["text"] for f in _card(_summary(model_versions=versions))[1]["fields"]]
    assert fields[-1] == (
        "*Registered models*\nfraud-clf v3 `@champion` `@prod`\nfraud-clf-lite v1\n"
        "m0 v0\nm1 v1\nm2 v2\n…and 2 more"
    )
    assert len(fields) == 8


# --- limits on a huge run -------------------------------------------------------------------------


def _assert_within_limits(message: Any) -> None:
    blocks = message.blocks
    assert len(blocks) <= limits.MAX_BLOCKS
    assert len(message.text) <= limits.MESSAGE_TEXT
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= limits.HEADER_TEXT
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= limits.SECTION_TEXT
            fields = block.get("fields", [])
            assert len(fields) <= limits.SECTION_FIELDS
            assert all(len(f["text"]) <= limits.FIELD_TEXT for f in fields)
        if block["type"] == "actions":
            for button in block["elements"]:
                assert len(button["value"]) <= limits.BUTTON_VALUE
                assert len(button["text"]["text"]) <= limits.BUTTON_TEXT


def _huge_summary(**changes: Any) -> RunSummary:
    return _summary(
        run_name="n" * 200,
        metrics={f"metric_{i:03d}": i / 7 for i in range(300)},
        params={f"param_{i:04d}": f"value {i} " * 20 for i in range(1000)},
        note=(("A paragraph of notes about this run. " * 20 + "\n\n") * 41)[:30_000],
        datasets=[DatasetInput(name="d" * 500, digest="x" * 64) for _ in range(20)],
        model_versions=[
            ModelVersionRef(name="m" * 400, version="1", aliases=["a" * 200] * 3) for _ in range(10)
        ],
        **changes,
    )


def test_huge_run_fits_slack_limits() -> None:
    summary = _huge_summary()
    assert len(summary.note) == 30_000
    message = build_review_card(summary, requested_by="U123", key_metrics=[])
    _assert_within_limits(message)
    blocks = message.blocks
    assert blocks[0]["text"]["text"].endswith("…")
    assert blocks[0]["text"]["text"].startswith("Model review: nnn")
    metrics_text, params_text = blocks[2]["text"]["text"], blocks[3]["text"]["text"]
    assert metrics_text.endswith(f"\n_…and {300 - CARD_METRICS} more in the thread._")
    assert metrics_text.count("\n• ") == CARD_METRICS
    assert params_text.endswith(f"\n_…and {1000 - CARD_PARAMS} more in the thread._")
    assert params_text.count("\n• ") == CARD_PARAMS
    assert _by_id(blocks, BlockId.NOTE)["text"]["text"].endswith("\n" + NOTE_CONTINUED)
    # The actions are still there, in full.
    assert len(_by_id(blocks, BlockId.ACTIONS)["elements"]) == 4


def test_long_names_cut_whole_lines_and_count_them_for_the_thread() -> None:
    # MLflow allows 250-character keys; escaped `<` makes each four times longer on the card.
    metrics = {f"{i:03d}" + "<" * 247: float(i) for i in range(20)}
    params = {f"{i:03d}" + "k" * 247: "v" * 100 for i in range(CARD_PARAMS)}
    summary = _summary(metrics=metrics, params=params)
    layout = plan_card(summary, [])
    blocks = _card(summary)
    metrics_text, params_text = blocks[2]["text"]["text"], blocks[3]["text"]["text"]
    assert len(metrics_text) <= limits.SECTION_TEXT and len(params_text) <= limits.SECTION_TEXT
    assert 0 < len(layout.metrics) < CARD_METRICS
    assert 0 < len(layout.params) < CARD_PARAMS
    assert metrics_text.endswith(f"\n_…and {20 - len(layout.metrics)} more in the thread._")
    assert params_text.endswith(f"\n_…and {CARD_PARAMS - len(layout.params)} more in the thread._")
    # Only whole lines: every shown line closes its code span.
    for line in (metrics_text + "\n" + params_text).split("\n"):
        assert line.count("`") % 2 == 0, line
    assert metrics_text.count("\n• ") == len(layout.metrics)
    assert params_text.count("\n• ") == len(layout.params)


def test_plan_card_note_chunks_fit_a_section() -> None:
    layout = plan_card(_huge_summary(), [])
    assert len(layout.note_chunks) > 1
    assert all(len(chunk) <= limits.SECTION_BUDGET for chunk in layout.note_chunks)
    assert plan_card(_summary(note=""), []).note_chunks == []


def test_short_note_is_rendered_on_the_card() -> None:
    blocks = _card(_summary(note="**Why**: better recall.\n\n- item <!here>"))
    assert _by_id(blocks, BlockId.NOTE)["text"]["text"] == "*Why*: better recall.\n\n• item &lt;!here&gt;"


# --- params: what differs from the baseline first, then what was set, then the defaults ------------

BASELINE = Baseline(reason=BaselineReason.PARENT, run_id="b" * 32, run_name="parent", run_url="")
# What xgboost's autolog logs for an XGBClassifier: every argument, most of them left at None.
AUTOLOG_PARAMS = {
    "booster": "None",
    "colsample_bytree": "None",
    "eval_metric": "logloss",
    "gamma": "None",
    "interaction_constraints": "",
    "learning_rate": "0.2",
    "max_depth": "4",
    "missing": "nan",
    "monotone_constraints": "{}",
    "n_estimators": "40",
    "random_state": "7",
    "reg_alpha": "None",
    "callbacks": "[]",
    "tree_method": "null",
}
AUTOLOG_BASELINE = {**AUTOLOG_PARAMS, "learning_rate": "0.05", "max_depth": "2"}


def _params_text(summary: RunSummary, baseline_params: dict[str, str] | None = None) -> str:
    message = build_review_card(summary, requested_by="U1", key_metrics=[], baseline_params=baseline_params)
    return message.blocks[3]["text"]["text"]


@pytest.mark.parametrize(
    ("value", "default"),
    [
        ("None", True),
        ("none", True),
        ("null", True),
        ("", True),
        ("  ", True),
        ("[]", True),
        ("{}", True),
        ("nan", True),
        ("NaN", True),
        ("0", False),
        ("False", False),
        ("[1]", False),
        ("Nonesuch", False),
    ],
)
def test_what_counts_as_a_default(value: str, default: bool) -> None:
    assert is_default_value(value) is default


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("6", "6", True),
        ("6", "6.0", True),
        ("0.1", "0.10", True),
        ("1e-3", "0.001", True),
        ("None", "", True),
        ("None", "null", True),
        ("True", "true", True),
        ("False", "0", True),
        ("True", "1.0", True),
        ("True", "2", False),
        ("6", "4", False),
        ("gbtree", "dart", False),
        ("None", "0", False),
        ("Adam", "adam", False),  # only booleans are compared without case
        ("nan", "6", False),
    ],
)
def test_same_value(a: str, b: str, same: bool) -> None:
    assert same_value(a, b) is same
    assert same_value(b, a) is same


def test_differing_params_name_the_baseline_value() -> None:
    params = {"max_depth": "6", "lr": "0.1", "seed": "7", "new_set": "x", "new_default": "None"}
    baseline = {"max_depth": "4", "lr": "0.10", "seed": "7", "gone": "1"}
    assert differing_params(params, baseline) == {"max_depth": "4", "new_set": None}


def test_params_are_ordered_differing_then_set_then_defaults() -> None:
    differing = differing_params(AUTOLOG_PARAMS, AUTOLOG_BASELINE)
    assert differing == {"learning_rate": "0.05", "max_depth": "2"}
    assert order_params(AUTOLOG_PARAMS, differing) == [
        "learning_rate",
        "max_depth",
        "eval_metric",
        "n_estimators",
        "random_state",
        "booster",
        "callbacks",
        "colsample_bytree",
        "gamma",
        "interaction_constraints",
        "missing",
        "monotone_constraints",
        "reg_alpha",
        "tree_method",
    ]


def test_card_marks_the_params_that_differ_from_the_baseline_with_its_value() -> None:
    summary = _summary(params=AUTOLOG_PARAMS, baseline=BASELINE)
    lines = _params_text(summary, AUTOLOG_BASELINE).split("\n")
    assert lines[:6] == [
        PARAMS_DIFFER_TITLE,
        f"• {DIFFERS_MARK} learning_rate = `0.2` ← `0.05`",
        f"• {DIFFERS_MARK} max_depth = `4` ← `2`",
        "• eval_metric = `logloss`",
        "• n_estimators = `40`",
        "• random_state = `7`",
    ]
    assert lines[6:] == [
        "• booster = `None`",
        "• callbacks = `[]`",
        "• colsample_bytree = `None`",
        "• gamma = `None`",
        "• interaction_constraints = ``",
        "• missing = `nan`",
        "• monotone_constraints = `{}`",
        f"_…and {len(AUTOLOG_PARAMS) - CARD_PARAMS} more in the thread._",
    ]
    assert PARAMS_DIFFER_TITLE == "*Params* (:small_orange_diamond: differs from the baseline: ← its value)"


def test_a_param_the_baseline_did_not_log_is_marked_as_such() -> None:
    summary = _summary(params={"depth": "6", "dropout": "0.2", "extra": "None"}, baseline=BASELINE)
    assert _params_text(summary, {"depth": "6", "extra": "None"}).split("\n") == [
        PARAMS_DIFFER_TITLE,
        f"• {DIFFERS_MARK} dropout = `0.2` ← _not logged_",
        "• depth = `6`",
        "• extra = `None`",
    ]


def test_a_model_of_another_kind_is_compared_on_the_params_both_logged() -> None:
    # Gradient boosting against a logistic regression: they share random_state and tol only.
    gbm = {
        "learning_rate": "0.1",
        "max_depth": "3",
        "n_estimators": "150",
        "random_state": "39",
        "tol": "1e-4",
    }
    logreg = {"C": "1.0", "penalty": "l2", "max_iter": "100", "random_state": "7", "tol": "0.0001"}
    assert differing_params(gbm, logreg) == {"random_state": "7"}
    lines = _params_text(_summary(params=gbm, baseline=BASELINE), logreg).split("\n")
    assert lines[0] == PARAMS_FEW_SHARED_TITLE.format(shared=2, total=5)
    assert lines[0] == (
        "*Params* (the baseline logged 2 of these 5; :small_orange_diamond: differs from it: ← its value)"
    )
    assert lines[1:] == [
        f"• {DIFFERS_MARK} random_state = `39` ← `7`",
        "• learning_rate = `0.1`",
        "• max_depth = `3`",
        "• n_estimators = `150`",
        "• tol = `1e-4`",
    ]
    same = _params_text(_summary(params=gbm, baseline=BASELINE), {**logreg, "random_state": "39"})
    assert same.split("\n")[0] == "*Params* (the baseline logged 2 of these 5, with the same values)"
    none = _params_text(_summary(params=gbm, baseline=BASELINE), {"C": "1.0"})
    assert none.split("\n")[:2] == [PARAMS_NONE_SHARED_TITLE, "• learning_rate = `0.1`"]
    # Half of the run's params in the baseline is the same kind: a new one counts.
    assert differing_params({"a": "1", "b": "2"}, {"a": "1"}) == {"b": None}
    assert differing_params({"a": "1", "b": "2", "c": "3"}, {"a": "1"}) == {}


def test_without_a_baseline_set_params_come_first_then_defaults() -> None:
    summary = _summary(params=AUTOLOG_PARAMS)
    for baseline_params in (None, AUTOLOG_BASELINE):  # params without a baseline run are not compared
        lines = _params_text(summary, baseline_params).split("\n")
        assert lines[:5] == [
            PARAMS_TITLE,
            "• eval_metric = `logloss`",
            "• learning_rate = `0.2`",
            "• max_depth = `4`",
            "• n_estimators = `40`",
        ]
        assert DIFFERS_MARK not in "\n".join(lines)
    # A baseline that is "none found" has no params to compare with either.
    none_found = _summary(params=AUTOLOG_PARAMS, baseline=Baseline(reason=BaselineReason.NONE))
    assert _params_text(none_found, AUTOLOG_BASELINE).split("\n")[0] == PARAMS_TITLE


def test_same_params_as_the_baseline_say_so() -> None:
    summary = _summary(params={"depth": "6", "lr": "0.1"}, baseline=BASELINE)
    assert _params_text(summary, {"depth": "6.0", "lr": "0.1"}) == (
        f"{PARAMS_SAME_TITLE}\n• depth = `6`\n• lr = `0.1`"
    )
    # A baseline that logged no params at all compares with nothing.
    assert _params_text(summary, {}).split("\n")[0] == PARAMS_TITLE


def test_plan_card_keeps_every_param_in_order_for_the_thread() -> None:
    summary = _summary(params=AUTOLOG_PARAMS, baseline=BASELINE)
    layout = plan_card(summary, [], AUTOLOG_BASELINE)
    assert layout.compared
    assert layout.param_order == order_params(AUTOLOG_PARAMS, layout.differing)
    assert layout.params == layout.param_order[:CARD_PARAMS]
    assert dict(layout.differing) == {"learning_rate": "0.05", "max_depth": "2"}


def test_differing_values_are_escaped_and_cut() -> None:
    summary = _summary(params={"p": "<!channel>"}, baseline=BASELINE)
    text = _params_text(summary, {"p": "<@U1>" + "x" * 200})
    assert "<!channel>" not in text and "<@U1>" not in text
    line = text.split("\n")[1]
    assert line.startswith(f"• {DIFFERS_MARK} p = `&lt;!channel&gt;` ← `&lt;@U1&gt;xx")
    assert line.endswith("…`") and len(line.split(" ← `")[1]) == PARAM_VALUE_CHARS + 1  # and the closing `


def test_a_card_posted_before_its_baseline_is_looked_up_says_so() -> None:
    def baseline_field(summary: RunSummary, completing: bool) -> list[str]:
        blocks = build_review_card(summary, requested_by="U1", key_metrics=[], completing=completing).blocks
        return [f["text"] for f in blocks[1]["fields"] if f["text"].startswith("*Baseline*")]

    assert baseline_field(_summary(), completing=True) == [f"*Baseline*\n{BASELINE_PENDING}"]
    assert baseline_field(_summary(), completing=False) == []
    # A baseline asked for with --baseline is known before the card is posted.
    known = baseline_field(_summary(baseline=BASELINE), completing=True)
    assert known == ["*Baseline*\nvs parent run `parent`"]
