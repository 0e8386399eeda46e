"""The bolt App of app.create_app, fed signed Slack requests in-process (app.dispatch): what each
/review acks, the middleware's duplicate and signature checks, and the buttons' handlers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pytest

from bot.commands import USAGE, parse_command
from bot.errors import BadReference
from bot.ids import ActionId
from bot.meetings.blocks import build_schedule_modal
from bot.models import RefKind, ReviewStatus, RunRef, Via
from bot.reviews.replies import (
    ACK_AGENDA,
    ACK_COMPARING,
    ACK_DUPLICATE,
    ACK_LEADERBOARD,
    ACK_SCHEDULING,
    build_ack_text,
)
from bot.tags import DEFAULT_DURATION_MIN
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import InProcessBot, is_unexpected, post_card
from tests.scenarios.helpers import cards_for, response_texts
from tests.slack_api_server import SlackTestServer

RUN_A = "0123456789abcdef0123456789abcdef"
RUN_B = "fedcba9876543210fedcba9876543210"


def bad_reference(text: str) -> str:
    """What the parser says about text that names no run (the ack must say exactly that)."""
    with pytest.raises(BadReference) as raised:
        parse_command(text)
    return raised.value.user_message()


ACKS = {
    "help": ("help", USAGE, False),
    "nothing": ("", USAGE, False),
    "compare": (f"compare {RUN_A} {RUN_B}", ACK_COMPARING.format(n=2), True),
    "leaderboard": ("leaderboard fraud-detection val_auc 5", ACK_LEADERBOARD, True),
    "schedule": (f"schedule {RUN_A} tomorrow 3pm", ACK_SCHEDULING, True),
    "agenda": ("agenda", ACK_AGENDA, True),
    "bad reference": ("not-a-run", bad_reference("not-a-run"), False),
    # Typed in #ml-dev, the card goes to the review channel, and the ack says so.
    "run": (
        RUN_A,
        build_ack_text(RunRef(kind=RefKind.RUN, raw=RUN_A, run_id=RUN_A), support.REVIEW_CHANNEL),
        True,
    ),
}


@pytest.mark.parametrize(("text", "ack", "has_work"), ACKS.values(), ids=ACKS.keys())
def test_each_review_form_acks_with_its_own_text(
    bot: InProcessBot, slack: SlackTestServer, text: str, ack: str, has_work: bool
) -> None:
    url = slack.new_response_url()

    answer = bot.command(text, url, channel=support.DEV_CHANNEL)

    assert answer.status_code == 200
    assert answer.json() == {"text": ack, "response_type": "ephemeral"}
    bot.finish()
    # The lazy work follows only what was understood and has work (here: unknown runs, no experiment,
    # an empty agenda: one reply each); help and refusals were said in full in the ack.
    replies = response_texts(slack, url)
    assert len(replies) == (1 if has_work else 0), replies
    assert not any(is_unexpected(r) for r in replies)


@pytest.mark.parametrize("later", [0, 13, 240])
def test_a_replayed_signed_command_is_acted_on_once(
    bot: InProcessBot, fake_mlflow: FakeMlflow, slack: SlackTestServer, later: int
) -> None:
    """A captured request sent again inside Slack's 5-minute signature window: refused, by signature."""
    run_id = fake_mlflow.add_run()
    body = support.command_body(run_id, slack.new_response_url())
    signed_at = int(time.time()) - later  # as if replayed `later` seconds after it was captured

    first = bot.post_signed(body, support.FORM, timestamp=signed_at)
    again = bot.post_signed(body, support.FORM, timestamp=signed_at)

    ref = RunRef(kind=RefKind.RUN, raw=run_id, run_id=run_id)
    assert first.json() == {"text": build_ack_text(ref, support.REVIEW_CHANNEL), "response_type": "ephemeral"}
    assert (again.status_code, again.json()) == (200, {"response_type": "ephemeral", "text": ACK_DUPLICATE})
    bot.finish()
    assert len(cards_for(slack, run_id)) == 1


def test_the_same_command_typed_twice_is_two_requests(
    bot: InProcessBot, fake_mlflow: FakeMlflow, slack: SlackTestServer
) -> None:
    """Two deliveries (two trigger ids, two signatures) of the same text: both acted on."""
    run_id = fake_mlflow.add_run()
    url = slack.new_response_url()
    assert bot.command(run_id, url).json()["text"] != ACK_DUPLICATE
    assert bot.command(run_id, url).json()["text"] != ACK_DUPLICATE
    bot.finish()
    assert len(cards_for(slack, run_id)) == 2


BAD_SIGNATURES = {
    "another secret": {"secret": "not-the-signing-secret"},
    "no signature": {"signed": False},
    "a replayed request": {"timestamp": int(time.time()) - 3600},
}


@pytest.mark.parametrize("signing", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_a_request_not_signed_by_slack_gets_401_and_does_nothing(
    bot: InProcessBot, fake_mlflow: FakeMlflow, slack: SlackTestServer, signing: dict[str, object]
) -> None:
    run_id = fake_mlflow.add_run()
    url = slack.new_response_url()

    answer = bot.command(run_id, url, **signing)

    assert answer.status_code == 401
    bot.finish()
    assert response_texts(slack, url) == []
    assert fake_mlflow.calls == [] and slack.calls_to("chat.postMessage") == []


def _button_value(card: dict, action: ActionId) -> str:
    return next(
        e["value"]
        for b in card["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == action
    )


@pytest.mark.parametrize(
    "value",
    [lambda card: _button_value(card, ActionId.APPROVE), lambda card: "not json", lambda card: ""],
    ids=["the card's JSON value", "a value that is not JSON", "no value"],
)
def test_an_approve_click_records_the_vote_whatever_its_value(
    bot: InProcessBot,
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    eventually: Callable[..., object],
    caplog: pytest.LogCaptureFixture,
    value: Callable[[dict], str],
) -> None:
    run_id = fake_mlflow.add_run()
    card = post_card(bot.services, slack, run_id)
    url = slack.new_response_url()

    with caplog.at_level(logging.ERROR):
        answer = bot.block_action(
            ActionId.APPROVE, value(card), url, message=card, channel=card["channel"], user=support.BO
        )
        assert (answer.status_code, answer.text) == (200, "")
        eventually(lambda: fake_mlflow.review(run_id).status is ReviewStatus.APPROVED, what="the approval")
        bot.finish()

    assert [v.user for v in fake_mlflow.review(run_id).approvals] == [support.BO]
    assert response_texts(slack, url) == []  # nothing to tell: no refusal, no failure
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_schedule_click_opens_the_modal_named_from_the_cards_header(
    make_bot: Callable[..., InProcessBot],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    eventually: Callable[..., object],
) -> None:
    bot = make_bot(reviewers=[support.DAN, support.CAROL])
    run_id = fake_mlflow.add_run("gbm-candidate")
    card = post_card(bot.services, slack, run_id)
    value = _button_value(card, ActionId.SCHEDULE)
    assert "gbm-candidate" not in value  # MLflow text stays out of button values

    bot.block_action(
        ActionId.SCHEDULE, value, slack.new_response_url(), message=card, channel=card["channel"]
    )

    [opened] = eventually(lambda: slack.calls_to("views.open"), what="views.open")
    expected = build_schedule_modal(
        run_id, "gbm-candidate", [support.CAROL, support.DAN], None, DEFAULT_DURATION_MIN
    )
    assert opened.ok and opened.args["view"] == json.loads(json.dumps(expected))


def test_the_schedule_click_on_a_card_whose_value_still_names_the_run_trusts_only_the_header(
    bot: InProcessBot, fake_mlflow: FakeMlflow, slack: SlackTestServer, eventually: Callable[..., object]
) -> None:
    run_id = fake_mlflow.add_run("logreg-baseline")
    card = post_card(bot.services, slack, run_id)
    # Cards posted by the bot before the name left the values carry one; anyone could have set it.
    value = json.dumps({"run_id": run_id, "experiment_id": "1", "run_name": "<!channel> renamed"})

    bot.block_action(
        ActionId.SCHEDULE, value, slack.new_response_url(), message=card, channel=card["channel"]
    )

    [opened] = eventually(lambda: slack.calls_to("views.open"), what="views.open")
    expected = build_schedule_modal(run_id, "logreg-baseline", [], None, DEFAULT_DURATION_MIN)
    assert opened.ok and opened.args["view"] == json.loads(json.dumps(expected))


@pytest.mark.parametrize("action", [ActionId.NUDGE_START_REVIEW, ActionId.NUDGE_SNOOZE])
@pytest.mark.parametrize("value", ["{}", '{"model": "fraud-clf"}', '{"version": "3"}', "not json"])
def test_a_nudge_button_naming_no_version_does_nothing(
    bot: InProcessBot,
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    slack_client: object,
    action: ActionId,
    value: str,
) -> None:
    nudge = slack_client.chat_postMessage(channel=support.REVIEW_CHANNEL, text="fraud-clf v3 is live")[
        "message"
    ]
    posted = len(slack.calls_to("chat.postMessage"))
    url = slack.new_response_url()

    answer = bot.block_action(action, value, url, message=nudge, channel=support.REVIEW_CHANNEL)

    assert answer.status_code == 200
    bot.finish()
    assert fake_mlflow.calls == [] and fake_mlflow.writes == []
    assert response_texts(slack, url) == []
    assert len(slack.calls_to("chat.postMessage")) == posted


def test_a_reaction_on_a_card_is_a_vote_and_on_another_message_is_not(
    bot: InProcessBot, fake_mlflow: FakeMlflow, slack: SlackTestServer, eventually: Callable[..., object]
) -> None:
    run_id = fake_mlflow.add_run()
    card = post_card(bot.services, slack, run_id)
    approve = bot.services.settings.approve_emoji

    # A reaction on a message somebody else wrote is never a vote, whatever its ts.
    bot.event(support.reaction_event(support.DAN, approve, card["channel"], card["ts"], item_user=support.BO))
    bot.event(support.reaction_event(support.CAROL, approve, card["channel"], card["ts"]))

    eventually(lambda: fake_mlflow.review(run_id).status is ReviewStatus.APPROVED, what="the approval")
    bot.finish()
    assert [(v.user, v.via) for v in fake_mlflow.review(run_id).approvals] == [(support.CAROL, Via.REACTION)]
