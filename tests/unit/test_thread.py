"""Unit tests for bot.reviews.thread: what did not fit on the card, paged within Slack's limits."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.models import Baseline, BaselineReason, RunSummary
from bot.reviews.card import CARD_PARAMS, plan_card
from bot.reviews.thread import (
    BLOCKS_PER_MESSAGE,
    CHART_COMMENT,
    CHART_NONFINITE,
    CHART_SAMPLED,
    MAX_MESSAGES_PER_PART,
    NOTE_CONTINUED_TITLE,
    PARAMS_DIFFER_NOTE,
    PARAMS_TITLE,
    build_chart_comment,
    build_note_continuation,
    build_overflow,
)
from bot.slack import limits
from bot.slack.message import SlackMessage

RUN_ID = "0123456789abcdef0123456789abcdef"
RUN_URL = f"http://mlflow:5000/#/experiments/1/runs/{RUN_ID}"


def _summary(**changes: Any) -> RunSummary:
    base: dict[str, Any] = {"run_id": RUN_ID, "run_name": "r", "experiment_id": "1", "experiment_name": "e"}
    return RunSummary(**{**base, **changes})


def _section_texts(messages: list[SlackMessage]) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m.blocks]


def _assert_within_limits(messages: list[SlackMessage]) -> None:
    for message in messages:
        assert 0 < len(message.blocks) <= limits.MAX_BLOCKS
        for block in message.blocks:
            assert block["type"] == "section"
            assert block["text"]["type"] == "mrkdwn"
            assert len(block["text"]["text"]) <= limits.SECTION_TEXT


def test_nothing_in_the_thread_when_everything_fits() -> None:
    summary = _summary(metrics={"a": 1.0}, params={"p": "1"}, note="short")
    layout = plan_card(summary, [])
    assert build_overflow(layout, summary) == []
    assert build_note_continuation(layout, summary) == []


def test_overflow_lists_every_param_and_metric_in_one_message_each() -> None:
    params = {f"param_{i:04d}": f"v{i}" for i in range(100)}
    metrics = {f"metric_{i:03d}": i / 4 for i in range(30)}
    summary = _summary(params=params, metrics=metrics)
    messages = build_overflow(plan_card(summary, []), summary)
    _assert_within_limits(messages)
    assert [m.text for m in messages] == ["All metrics (30)", "All params (100)"]
    metric_text, param_text = ("\n".join(b["text"]["text"] for b in m.blocks) for m in messages)
    assert messages[1].blocks[0]["text"]["text"] == PARAMS_TITLE.format(n=100)
    assert re.findall(r"^(param_\d{4}) +v\d+$", param_text, re.MULTILINE) == sorted(params)
    assert re.findall(r"^(metric_\d{3}) +\S+$", metric_text, re.MULTILINE) == sorted(metrics)
    assert "metric_005  1.25" in metric_text


def test_overflow_lists_params_in_the_cards_order_with_the_baselines_values() -> None:
    params = {f"p{i:02d}": "None" for i in range(CARD_PARAMS)} | {"max_depth": "6", "seed": "7", "eta": "0.3"}
    summary = _summary(params=params, baseline=Baseline(reason=BaselineReason.PARENT, run_id="b" * 32))
    layout = plan_card(
        summary, [], {f"p{i:02d}": "None" for i in range(CARD_PARAMS)} | {"max_depth": "4", "seed": "7"}
    )
    (message,) = build_overflow(layout, summary)
    assert message.blocks[0]["text"]["text"] == PARAMS_TITLE.format(n=len(params)) + PARAMS_DIFFER_NOTE
    rows = message.blocks[1]["text"]["text"].removeprefix("```\n").removesuffix("\n```").split("\n")
    defaults = [f"p{i:02d}" for i in range(CARD_PARAMS)]
    assert [r.split()[0] for r in rows] == ["eta", "max_depth", "seed", *defaults]
    assert rows[:3] == [
        "eta        0.3  ← (not logged)",
        "max_depth  6  ← 4",
        "seed       7",
    ]
    # Without a baseline: set params first, the defaults after them, no arrows.
    plain = _summary(params=params)
    (message,) = build_overflow(plan_card(plain, []), plain)
    assert message.blocks[0]["text"]["text"] == PARAMS_TITLE.format(n=len(params))
    text = message.blocks[1]["text"]["text"]
    assert re.findall(r"^(\w+) ", text, re.MULTILINE)[:4] == ["eta", "max_depth", "seed", "p00"]
    assert "←" not in text


def test_overflow_only_for_what_was_cut() -> None:
    summary = _summary(params={f"p{i:02d}": "x" for i in range(CARD_PARAMS + 1)}, metrics={"m": 1.0})
    messages = build_overflow(plan_card(summary, []), summary)
    assert [m.text for m in messages] == [f"All params ({CARD_PARAMS + 1})"]


def test_overflow_for_a_thousand_params_stays_within_limits() -> None:
    params = {f"param_{i:04d}": f"value {i} " * 3 for i in range(1000)}
    summary = _summary(params=params, metrics={f"m{i:03d}": float(i) for i in range(300)}, run_url=RUN_URL)
    messages = build_overflow(plan_card(summary, []), summary)
    _assert_within_limits(messages)
    text = "\n".join(_section_texts(messages))
    assert re.findall(r"^(param_\d{4}) ", text, re.MULTILINE) == sorted(params)
    assert "more parts not shown" not in text


def test_overflow_beyond_the_cap_names_what_it_shows_and_links_to_mlflow() -> None:
    # About 520 characters a row: ~5 rows a section, ~200 sections, more than the cap allows.
    params = {f"param_{i:04d}": "<" * 10 + "v" * 470 for i in range(1000)}
    summary = _summary(params=params, run_url=RUN_URL)
    messages = build_overflow(plan_card(summary, []), summary)
    _assert_within_limits(messages)
    assert len(messages) == MAX_MESSAGES_PER_PART
    texts = _section_texts(messages)
    shown_chunks = len(texts) - 2  # minus the title and the cut note
    assert shown_chunks == MAX_MESSAGES_PER_PART * BLOCKS_PER_MESSAGE
    names = re.findall(r"^(param_\d{4}) ", "\n".join(texts), re.MULTILINE)
    assert 0 < len(names) < len(params)
    assert names == sorted(params)[: len(names)]
    assert "<<" not in "".join(texts)
    suffix = messages[-1].blocks[-1]["text"]["text"]
    match = re.fullmatch(r"_…and (\d+) more parts not shown\. See everything in MLflow: (.+)_", suffix)
    assert match, suffix
    assert match.group(2) == f"<{RUN_URL}|the run's page>"
    # The hidden count is the number of chunks not shown: every row is in a shown or a hidden chunk.
    rows_per_chunk = len(names) / shown_chunks
    assert int(match.group(1)) == pytest.approx((len(params) - len(names)) / rows_per_chunk, abs=2)


def test_cut_note_without_ui_names_the_run() -> None:
    params = {f"param_{i:04d}": "v" * 480 for i in range(1000)}
    summary = _summary(params=params)
    suffix = build_overflow(plan_card(summary, []), summary)[-1].blocks[-1]["text"]["text"]
    assert suffix.endswith(f"See everything in MLflow: run `{RUN_ID}`_")


def test_note_continuation_for_a_huge_note() -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 100 for i in range(400)]
    summary = _summary(note="\n\n".join(paragraphs), run_url=RUN_URL)
    layout = plan_card(summary, [])
    messages = build_note_continuation(layout, summary)
    _assert_within_limits(messages)
    assert messages[0].blocks[0]["text"]["text"] == NOTE_CONTINUED_TITLE
    assert all(m.text == "Notes (continued)" for m in messages)
    texts = _section_texts(messages)
    # The card shows chunk 0; the thread continues from chunk 1, in order.
    assert 1 < len(messages) <= MAX_MESSAGES_PER_PART
    assert texts[1:] == layout.note_chunks[1:]
    assert "See everything in MLflow" not in texts[-1]
    # Every paragraph is on the card or in the thread, once.
    everything = "\n".join([layout.note_chunks[0], *texts[1:]])
    assert re.findall(r"Paragraph (\d+):", everything) == [str(i) for i in range(400)]


def test_note_continuation_is_capped_with_a_link() -> None:
    note = "\n\n".join(f"Paragraph {i}: " + "word " * 560 for i in range(200))
    summary = _summary(note=note, run_url=RUN_URL)
    layout = plan_card(summary, [])
    messages = build_note_continuation(layout, summary)
    _assert_within_limits(messages)
    assert len(messages) == MAX_MESSAGES_PER_PART
    hidden = len(layout.note_chunks) - 1 - MAX_MESSAGES_PER_PART * BLOCKS_PER_MESSAGE
    assert hidden > 0
    assert messages[-1].blocks[-1]["text"]["text"] == (
        f"_…and {hidden} more parts not shown. See everything in MLflow: <{RUN_URL}|the run's page>_"
    )


def test_thread_escapes_untrusted_text() -> None:
    params = {f"<!channel>{i:02d}": "<https://evil.example|click>" for i in range(20)}
    summary = _summary(params=params, note="a\n\n" + "x " * 2000 + "\n\n<!here> and <@U1>")
    layout = plan_card(summary, [])
    text = "\n".join(
        _section_texts([*build_overflow(layout, summary), *build_note_continuation(layout, summary)])
    )
    assert "&lt;!channel&gt;00" in text
    assert "&lt;https://evil.example|click&gt;" in text
    assert "&lt;!here&gt;" in text
    assert "<" not in text


# --- captions ------------------------------------------------------------------------------------


def test_chart_comment() -> None:
    assert build_chart_comment(3, []) == CHART_COMMENT.format(n=3)
    assert build_chart_comment(12, ["loss", "<!channel>"]) == (
        ":chart_with_upwards_trend: Metric history (12 charts)."
        " Not charted for lack of room: `loss`, `&lt;!channel&gt;`."
    )


def test_chart_comment_names_non_finite_and_sampled_metrics() -> None:
    comment = build_chart_comment(2, ["lr"], sampled=["loss"], nonfinite=["grad_norm"])
    assert comment == (
        ":chart_with_upwards_trend: Metric history (2 charts)."
        + CHART_NONFINITE.format(keys="`grad_norm`")
        + CHART_SAMPLED.format(keys="`loss`")
        + " Not charted for lack of room: `lr`."
    )


def test_chart_comment_with_many_omitted_stays_within_a_section() -> None:
    comment = build_chart_comment(12, [f"<metric>{i}" for i in range(500)])
    assert len(comment) <= limits.SECTION_TEXT
    assert comment.endswith("…")
    assert "<" not in comment
    # Never cut inside an entity.
    assert re.search(r"&(?!amp;|lt;|gt;)", comment) is None
