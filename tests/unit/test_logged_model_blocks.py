"""Unit tests for bot.logged_models.blocks: a LoggedModel's card fields and body, its thread (what the
card cut, the comparison on shared datasets) and a run's list of its models, by value."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from bot.compare.blocks import DIRECTION_HINT, NON_FINITE_HINT, NOT_JUDGED
from bot.logged_models.blocks import (
    ALL_METRICS_TEXT,
    ALL_METRICS_TITLE,
    ALL_PARAMS_TITLE,
    CARD_DATASETS,
    CARD_METRICS_PER_DATASET,
    CARD_PARAMS,
    COMPARED_TEXT,
    COMPARED_TITLE,
    DATASETS_DIFFER,
    DATASETS_MORE,
    METRICS_TITLE,
    MORE_IN_THREAD,
    NO_COMMON_DATASET,
    NO_METRICS,
    NO_PARAMS,
    NOT_REGISTERED,
    NOT_SET,
    OUTSIDE_RUN,
    RUN_MODEL_NO_METRICS,
    RUN_MODELS_MORE,
    RUN_MODELS_SHOWN,
    RUN_MODELS_TITLE,
    UNKNOWN,
    build_logged_model_fields,
    build_logged_model_sections,
    build_logged_model_thread,
    build_run_models_section,
)
from bot.models import Direction, LoggedModelInfo, ModelMetric, ModelVersionRef
from bot.slack import limits
from bot.slack.message import SlackMessage

UI = "https://mlflow.example"
MODEL_ID = "m-" + "a" * 32
BASELINE_ID = "m-" + "b" * 32
RUN_ID = "c" * 32
CREATED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MAX_CARD_BODY_BLOCKS = 8


def metric(key: str, value: float, dataset: str = "", digest: str = "", step: int = 0) -> ModelMetric:
    return ModelMetric(key=key, value=value, step=step, dataset_name=dataset, dataset_digest=digest)


def info(**fields: object) -> LoggedModelInfo:
    values: dict[str, object] = {
        "model_id": MODEL_ID,
        "name": "churn-clf",
        "experiment_id": "7",
        "experiment_name": "churn",
        "source_run_id": RUN_ID,
        "model_type": "sklearn",
        "status": "READY",
        "created": CREATED,
        "params": {"C": "0.5"},
        "metrics": [metric("accuracy", 0.91, "holdout", "d1f3"), metric("latency_s", 0.25)],
        "tags": {"team": "growth"},
        "model_versions": [ModelVersionRef(name="churn", version="3", aliases=["champion"])],
        "url": f"{UI}/#/experiments/7/models/{MODEL_ID}",
    }
    values.update(fields)
    return LoggedModelInfo.model_validate(values)


def section(text: str) -> dict:
    return SectionBlock(text=MarkdownTextObject(text=text)).to_dict()


def texts(blocks: list) -> list[str]:
    return [b.to_dict()["text"]["text"] for b in blocks]


def thread_texts(messages: list[SlackMessage]) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m.blocks]


# --- the fields -------------------------------------------------------------------------------------


def test_fields_link_the_model_its_run_and_its_versions() -> None:
    assert build_logged_model_fields(info()) == [
        ("Model", f"<{UI}/#/experiments/7/models/{MODEL_ID}|churn-clf>\n`{MODEL_ID}`"),
        ("Experiment", "churn"),
        ("Source run", f"<{UI}/#/experiments/7/runs/{RUN_ID}|{RUN_ID}>"),
        ("Type", "sklearn"),
        ("Status", "Ready"),
        ("Created", "<!date^1796117400^{date_short_pretty} {time}|2026-12-01 09:30 UTC>"),
        ("Registered versions", f"<{UI}/#/models/churn/versions/3|churn v3> `@champion`"),
    ]


def test_fields_of_a_model_logged_outside_a_run_without_a_ui() -> None:
    fields = dict(
        build_logged_model_fields(
            info(url="", source_run_id="", model_type="", created=None, model_versions=[], status="")
        )
    )
    assert fields == {
        "Model": f"*churn-clf*\n`{MODEL_ID}`",
        "Experiment": "churn",
        "Source run": OUTSIDE_RUN,
        "Type": NOT_SET,
        "Status": UNKNOWN,
        "Created": UNKNOWN,
        "Registered versions": NOT_REGISTERED,
    }


def test_fields_escape_what_mlflow_holds() -> None:
    fields = dict(
        build_logged_model_fields(
            info(
                url="",
                name="<!channel> clf",
                experiment_name="exp <@U123>",
                model_type="a&b",
                model_versions=[ModelVersionRef(name="m<x>", version="1", aliases=["<!here>"])],
            )
        )
    )
    assert fields["Model"] == f"*&lt;!channel&gt; clf*\n`{MODEL_ID}`"
    assert fields["Experiment"] == "exp &lt;@U123&gt;"
    assert fields["Type"] == "a&amp;b"
    assert fields["Registered versions"] == "m&lt;x&gt; v1 `@&lt;!here&gt;`"


def test_many_versions_are_counted() -> None:
    versions = [ModelVersionRef(name="churn", version=str(v)) for v in range(1, 9)]
    value = dict(build_logged_model_fields(info(url="", model_versions=versions)))["Registered versions"]
    assert value == "churn v1, churn v2, churn v3, churn v4, churn v5 and 3 more"


# --- the body ---------------------------------------------------------------------------------------


def test_sections_list_metrics_by_dataset_then_params_then_tags() -> None:
    blocks = build_logged_model_sections(
        info(
            metrics=[
                metric("accuracy", 0.91, "holdout", "d1f3"),
                metric("loss", 0.4, "holdout", "d1f3", step=0),
                metric("loss", 0.2, "holdout", "d1f3", step=3),
                metric("accuracy", 0.88, "shadow", "e2"),
                metric("latency_s", 0.25),
            ]
        )
    )
    assert [b.to_dict() for b in blocks] == [
        section(f"{METRICS_TITLE}\n*Logged without a dataset*\n• latency_s: `0.25`"),
        section("*holdout* (digest `d1f3`)\n• accuracy: `0.91`\n• loss: `0.2`"),
        section("*shadow* (digest `e2`)\n• accuracy: `0.88`"),
        section("*Params*\n• C = `0.5`"),
        section("*Tags*\n• team = `growth`"),
    ]


def test_a_model_without_metrics_params_or_tags_says_so() -> None:
    assert texts(build_logged_model_sections(info(metrics=[], params={}, tags={}))) == [
        f"{METRICS_TITLE}\n{NO_METRICS}",
        f"*Params*\n{NO_PARAMS}",
    ]


def test_values_are_escaped_and_non_finite_values_shown_as_such() -> None:
    blocks = build_logged_model_sections(
        info(
            metrics=[
                metric("<!channel>", math.nan, "<b>", "<d>"),
                metric("x&y", 1.7976931348623157e308, "<b>", "<d>"),
            ],
            params={"p<": "<@U1>"},
            tags={"t": "a&b"},
        )
    )
    assert texts(blocks) == [
        f"{METRICS_TITLE}\n*&lt;b&gt;* (digest `&lt;d&gt;`)\n• &lt;!channel&gt;: `nan`\n• x&amp;y: `inf`",
        "*Params*\n• p&lt; = `&lt;@U1&gt;`",
        "*Tags*\n• t = `a&amp;b`",
    ]


def test_500_metrics_on_one_dataset_fit_the_card_and_are_counted() -> None:
    metrics = [metric(f"metric_{i:03d}", i / 7, "val", "v") for i in range(500)]
    blocks = build_logged_model_sections(info(metrics=metrics, tags={}))
    body = texts(blocks)
    assert len(blocks) == 2
    assert body[0].splitlines()[:2] == [METRICS_TITLE, "*val* (digest `v`)"]
    assert body[0].count("\n• ") == CARD_METRICS_PER_DATASET
    assert body[0].endswith(MORE_IN_THREAD.format(n=500 - CARD_METRICS_PER_DATASET))


def test_500_metrics_on_50_datasets_stay_within_the_block_budget() -> None:
    metrics = [metric(f"m{i % 10}", i, f"set{i // 10:02d}", f"d{i // 10:02d}") for i in range(500)]
    params = {f"p{i:03d}": "x" * 500 for i in range(40)}
    tags = {f"t{i:03d}": "y" for i in range(40)}
    blocks = build_logged_model_sections(info(metrics=metrics, params=params, tags=tags))
    body = texts(blocks)
    assert len(blocks) <= MAX_CARD_BODY_BLOCKS
    assert all(len(text) <= limits.SECTION_TEXT for text in body)
    hidden = 50 - CARD_DATASETS
    assert DATASETS_MORE.format(n=hidden, metrics=hidden * 10) in body
    assert body[CARD_DATASETS - 1].endswith(MORE_IN_THREAD.format(n=10 - CARD_METRICS_PER_DATASET))
    params_text = next(t for t in body if t.startswith("*Params*"))
    assert params_text.endswith(MORE_IN_THREAD.format(n=40 - CARD_PARAMS))


def test_long_names_leave_fewer_lines_and_count_the_rest() -> None:
    params = {"&" * 240 + f"{i:02d}": "v" for i in range(CARD_PARAMS)}  # each escaped to 1,200 characters
    params_text = next(t for t in texts(build_logged_model_sections(info(params=params))) if "*Params*" in t)
    shown = params_text.count("\n• ")
    assert len(params_text) <= limits.SECTION_TEXT
    assert 0 < shown < CARD_PARAMS
    assert params_text.endswith(MORE_IN_THREAD.format(n=CARD_PARAMS - shown))


# --- the thread -------------------------------------------------------------------------------------


def test_nothing_cut_and_no_baseline_means_no_thread() -> None:
    assert build_logged_model_thread(info(), None, "", {}) == []


def test_the_thread_holds_every_metric_the_card_cut() -> None:
    metrics = [metric(f"metric_{i:03d}", i, f"set{i % 25:02d}", f"d{i % 25:02d}") for i in range(500)]
    messages = build_logged_model_thread(info(metrics=metrics), None, "", {})
    assert all(len(m.blocks) <= limits.MAX_BLOCKS for m in messages)
    assert messages[0].text == ALL_METRICS_TEXT.format(n=500)
    body = thread_texts(messages)
    assert body[0] == ALL_METRICS_TITLE.format(n=500)
    assert all(len(text) <= limits.SECTION_TEXT for text in body)
    joined = "\n".join(body)
    assert all(f"metric_{i:03d} " in joined for i in range(500))
    assert all(f"*set{i:02d}* (digest `d{i:02d}`)" in joined for i in range(25))
    assert ALL_PARAMS_TITLE.format(n=1) not in joined  # params all fit on the card


def test_the_thread_lists_all_params_when_the_card_cut_them() -> None:
    params = {f"p{i:02d}": f"value {i}" for i in range(20)}
    messages = build_logged_model_thread(info(params=params), None, "", {})
    assert thread_texts(messages) == [
        ALL_PARAMS_TITLE.format(n=20),
        "```\n" + "\n".join(["name  value", *(f"p{i:02d}   value {i}" for i in range(20))]) + "\n```",
    ]


def test_the_comparison_is_made_on_shared_datasets_only() -> None:
    model = info(
        metrics=[
            metric("accuracy", 0.91, "holdout", "d1"),
            metric("log_loss", 0.3, "holdout", "d1"),
            metric("accuracy", 0.80, "val", "new"),
            metric("accuracy", 0.70, "mine", "m"),
        ]
    )
    baseline = info(
        model_id=BASELINE_ID,
        name="churn-old",
        metrics=[
            metric("accuracy", 0.89, "holdout", "d1"),
            metric("log_loss", 0.35, "holdout", "d1"),
            metric("accuracy", 0.95, "val", "old"),
        ],
    )
    messages = build_logged_model_thread(model, baseline, "v2 `@champion`", {})
    assert [m.text for m in messages] == [COMPARED_TEXT]
    assert thread_texts(messages) == [
        COMPARED_TITLE.format(baseline="v2 `@champion`"),
        "2 better, 0 worse, 0 unchanged · Compared on 1 dataset both models were measured on (same digest).\n"
        "*holdout* (digest `d1`)\n"
        "```\n"
        "metric    this model  baseline  change  %\n"
        "accuracy  0.91        0.89      +0.02   +2.2%   better\n"
        "log_loss  0.3         0.35      -0.05   -14.3%  better\n"
        "```\n"
        + DATASETS_DIFFER.format(name="val", digest="new", baseline_digest="old")
        + "\n_Only this model has metrics on: `mine` (digest `m`)_",
    ]


def test_no_common_dataset_is_said_plainly() -> None:
    model = info(metrics=[metric("accuracy", 0.9, "holdout", "d1")])
    baseline = info(model_id=BASELINE_ID, name="old", metrics=[metric("accuracy", 0.8, "val", "v")])
    [message] = build_logged_model_thread(model, baseline, "", {})
    assert thread_texts([message]) == [
        COMPARED_TITLE.format(baseline="the deployed model `old`"),
        NO_COMMON_DATASET.format(mine="`holdout` (digest `d1`)", theirs="`val` (digest `v`)"),
    ]


def test_a_baseline_without_any_dataset_is_named_as_such() -> None:
    model = info(metrics=[metric("accuracy", 0.9, "holdout", "d1")])
    baseline = info(model_id=BASELINE_ID, metrics=[metric("accuracy", 0.8)])
    body = "\n".join(thread_texts(build_logged_model_thread(model, baseline, "", {})))
    assert NO_COMMON_DATASET.format(mine="`holdout` (digest `d1`)", theirs="_none_") in body
    assert "_Not compared, logged without a dataset: `accuracy`_" in body


def test_unknown_directions_and_non_finite_values_are_not_judged_and_say_why() -> None:
    model = info(metrics=[metric("zorbleness", 2.0, "val", "v"), metric("accuracy", math.nan, "val", "v")])
    baseline = info(
        model_id=BASELINE_ID,
        metrics=[metric("zorbleness", 1.0, "val", "v"), metric("accuracy", 0.8, "val", "v")],
    )
    body = "\n".join(thread_texts(build_logged_model_thread(model, baseline, "", {})))
    assert "0 better, 0 worse, 0 unchanged, 2 not judged" in body
    assert f"zorbleness  2           1         +1      +100%  {NOT_JUDGED}" in body
    assert f"accuracy    nan         0.8       —              {NOT_JUDGED}" in body
    assert DIRECTION_HINT.format(keys="`zorbleness`", example="zorbleness") in body
    assert NON_FINITE_HINT.format(keys="`accuracy`") in body
    judged = "\n".join(
        thread_texts(build_logged_model_thread(model, baseline, "", {"zorbleness": Direction.MIN}))
    )
    assert "zorbleness  2           1         +1      +100%  worse" in judged
    assert "does not know" not in judged


def test_backticks_from_mlflow_cannot_open_or_close_a_code_block() -> None:
    key = "a`````b<!channel>"
    model = info(metrics=[metric(key, 1.0, "val", "v")])
    baseline = info(model_id=BASELINE_ID, metrics=[metric(key, 0.5, "val", "v")])
    body = "\n".join(thread_texts(build_logged_model_thread(model, baseline, "", {})))
    assert "a``\u200b``\u200b`b&lt;!channel&gt;  1" in body  # the table's cell
    assert "`a'''''b&lt;!channel&gt;`" in body  # the not-judged note's name: backticks as quotes
    assert body.count("```") == 2  # the table's own fences only


# --- a run's card -----------------------------------------------------------------------------------


def test_a_runs_models_are_listed_with_their_versions_and_metrics_by_dataset() -> None:
    models = [
        info(
            metrics=[
                metric("accuracy", 0.91, "holdout", "d1"),
                metric("accuracy", 0.88, "shadow", "d2"),
                metric("latency_s", 0.25),
            ]
        ),
        info(model_id=BASELINE_ID, name="other", url="", model_versions=[], metrics=[]),
    ]
    assert [b.to_dict() for b in build_run_models_section(models)] == [
        section(
            "\n".join(
                [
                    RUN_MODELS_TITLE.format(n=2),
                    f"• <{UI}/#/experiments/7/models/{MODEL_ID}|churn-clf> `{MODEL_ID}` · "
                    f"<{UI}/#/models/churn/versions/3|churn v3> `@champion`",
                    "    no dataset: latency_s `0.25`",
                    "    *holdout*: accuracy `0.91`",
                    "    *shadow*: accuracy `0.88`",
                    f"• *other* `{BASELINE_ID}`",
                    RUN_MODEL_NO_METRICS,
                ]
            )
        )
    ]


def test_a_run_with_many_models_shows_a_few_and_counts_the_rest() -> None:
    metrics = [metric(f"m{i}", i, f"set{i % 6}", f"d{i % 6}") for i in range(60)]
    models = [info(model_id=f"m-{i:032x}", name=f"model-{i}", metrics=metrics) for i in range(7)]
    [block] = texts(build_run_models_section(models))
    assert len(block) <= limits.SECTION_TEXT
    assert block.count("\n• ") == RUN_MODELS_SHOWN
    assert block.endswith(RUN_MODELS_MORE.format(n=7 - RUN_MODELS_SHOWN))
    assert "    +3 more datasets: 30 metrics" in block
    assert "    *set0*: m0 `0`, m12 `12`, m18 `18`, m24 `24` +6 more" in block


def test_a_run_without_models_adds_nothing() -> None:
    assert build_run_models_section([]) == []
