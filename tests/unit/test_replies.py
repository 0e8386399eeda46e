"""Unit tests for bot.reviews.replies: acknowledgements and advice after Slack refuses a post."""

from __future__ import annotations

import pytest

from bot.commands import parse_ref
from bot.errors import BadReference
from bot.models import RefKind, RunRef
from bot.reviews.replies import build_ack_text
from bot.slack.advice import SLACK_ADVICE, SLACK_DEFAULT_ADVICE, build_slack_advice, channel_mention

RUN_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("channel_not_found", SLACK_ADVICE["channel_not_found"].format(channel="<#C0REVIEW>")),
        ("not_in_channel", SLACK_ADVICE["not_in_channel"].format(channel="<#C0REVIEW>")),
        ("invalid_blocks", SLACK_ADVICE["invalid_blocks"]),
        ("weird_new_error", SLACK_DEFAULT_ADVICE.format(channel="<#C0REVIEW>", code="weird_new_error")),
    ],
)
def test_slack_advice(code: str, expected: str) -> None:
    assert build_slack_advice(code, "C0REVIEW") == expected


def test_slack_advice_says_what_to_do() -> None:
    assert "I can't find the review channel <#C0REVIEW>" in build_slack_advice(
        "channel_not_found", "C0REVIEW"
    )
    assert "`REVIEW_CHANNEL`" in build_slack_advice("channel_not_found", "C0REVIEW")
    not_in = build_slack_advice("not_in_channel", "C0REVIEW")
    assert "I'm not a member of <#C0REVIEW>" in not_in
    assert "`/invite @review-bot`" in not_in and "`/review`" in not_in
    assert "(`invalid_blocks`)" in build_slack_advice("invalid_blocks", "C0REVIEW")
    assert build_slack_advice("weird_new_error", "C0REVIEW") == (
        ":no_entry: Slack refused to post the review in <#C0REVIEW> (`weird_new_error`). Nothing was posted."
    )


def test_channel_mention() -> None:
    assert channel_mention("C1") == "<#C1>"
    assert channel_mention(None) == "this channel"
    assert channel_mention("") == "this channel"


def test_ack_text_for_each_kind_of_reference() -> None:
    run = RunRef(kind=RefKind.RUN, raw=RUN_ID, run_id=RUN_ID)
    assert build_ack_text(run, "C1") == (
        f":mag: Looking up run `{RUN_ID}` in MLflow. The review card will appear in <#C1>."
    )
    version = parse_ref("models:/fraud-clf/3")
    assert build_ack_text(version, "C1") == (
        ":mag: Looking up model `fraud-clf` version 3 in MLflow. The review card will appear in <#C1>."
    )
    alias = parse_ref("models:/fraud-clf@champion")
    assert "model `fraud-clf` alias @champion" in build_ack_text(alias, "")
    assert build_ack_text(alias, "").endswith("will appear in this channel.")


def test_ack_text_escapes_a_model_name_even_if_parsing_let_it_through() -> None:
    ref = RunRef(kind=RefKind.MODEL_VERSION, raw="x", model_name="<!channel>", version="3")
    text = build_ack_text(ref, "C1")
    assert "model `&lt;!channel&gt;` version 3" in text
    assert "<!channel>" not in text


def test_a_decoded_model_name_that_could_mention_is_refused() -> None:
    with pytest.raises(BadReference, match="characters no registered model or prompt name uses"):
        parse_ref("models:/%3C!channel%3E/3")
