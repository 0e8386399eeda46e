"""The Home tab in-process: signed app_home_opened events and Home clicks through the bolt App of
app.py, over a FakeMlflow; views.publish at the Slack test server. When it publishes (debounced, only
for people who opened it), what it reads (once per change), and what a Home vote does."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.home.blocks import WELCOME
from bot.home.service import MLFLOW_DOWN, STALE_BUTTON
from bot.ids import HomeActionId
from bot.models import ReviewStatus, Via, VoteKind
from bot.slack.values import PageValue
from bot.votes.rules import OWN_MODEL_REQUESTER
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import InProcessBot, Told, post_card, updates_of
from tests.scenarios.test_home import (
    home_action_body,
    home_buttons,
    home_opened_event,
    home_text,
    publishes_to,
)
from tests.slack_api_server import SlackTestServer

ANA, BO, CAROL, DAN = support.ANA, support.BO, support.CAROL, support.DAN


@pytest.fixture
def home_bot(make_bot: Callable[..., InProcessBot]) -> Callable[..., InProcessBot]:
    """A bot whose Home debounce is one second (three in production), so the tests wait less."""

    def make(**overrides: object) -> InProcessBot:
        bot = make_bot(**overrides)
        bot.services.home.debounce_seconds = 1
        return bot

    return make


def open_home(bot: InProcessBot, user: str) -> None:
    assert bot.event(home_opened_event(user)).status_code == 200


def click(bot: InProcessBot, user: str, action: str, value: dict) -> None:
    assert bot.post_signed(home_action_body(user, action, json.dumps(value)), support.FORM).status_code == 200


def under_review(fake_mlflow: FakeMlflow, bot: InProcessBot, slack: SlackTestServer, name: str = "candidate"):  # noqa: ANN201
    run_id = fake_mlflow.add_run(name, user="someone.else")
    return run_id, post_card(bot.services, slack, run_id, requested_by=ANA)


def test_opening_the_home_publishes_it_and_a_newcomer_is_told_how_to_start(
    home_bot, slack, eventually
) -> None:
    bot = home_bot(reviewers=[BO])
    open_home(bot, DAN)
    eventually(lambda: WELCOME in home_text(slack, DAN))
    assert len(publishes_to(slack, DAN)) == 1


def test_a_home_vote_is_recorded_like_a_click_on_the_card(home_bot, slack, fake_mlflow, eventually) -> None:
    bot = home_bot(reviewers=[BO])
    run_id, card = under_review(fake_mlflow, bot, slack)
    open_home(bot, BO)
    [approve] = eventually(lambda: home_buttons(slack, BO, HomeActionId.APPROVE))
    assert approve["value"] == {"run_id": run_id, "channel": card["channel"], "ts": card["ts"]}

    click(bot, BO, HomeActionId.APPROVE, approve["value"])

    eventually(lambda: fake_mlflow.review(run_id).status is ReviewStatus.APPROVED)
    [vote] = fake_mlflow.review(run_id).approvals
    assert (vote.user, vote.via) == (BO, Via.BUTTON)
    eventually(lambda: [u for u in updates_of(slack, card) if "*Approved*" in json.dumps(u["blocks"])])
    eventually(lambda: home_buttons(slack, BO, HomeActionId.APPROVE) == [])  # nothing waits on BO now
    assert "candidate" in home_text(slack, BO)  # ...and it is among the recent decisions
    assert slack.ephemerals == []  # a Home vote that counted is answered by the tab itself
    assert publishes_to(slack, ANA) == []  # the requester never opened her Home: nothing published


def test_a_vote_on_the_card_refreshes_the_requesters_home_without_reopening(
    home_bot, slack, fake_mlflow, eventually
) -> None:
    bot = home_bot()
    run_id, card = under_review(fake_mlflow, bot, slack)
    open_home(bot, ANA)
    eventually(lambda: "pending for" in home_text(slack, ANA))
    bot.services.votes.vote(card["channel"], card["ts"], CAROL, VoteKind.APPROVE, Via.BUTTON, Told())
    eventually(lambda: "approved by <@U0CAROL>" in home_text(slack, ANA))
    assert len(publishes_to(slack, ANA)) == 2


def test_a_refused_home_vote_is_answered_on_the_voters_tab(home_bot, slack, fake_mlflow, eventually) -> None:
    bot = home_bot()
    run_id, card = under_review(fake_mlflow, bot, slack)
    click(bot, ANA, HomeActionId.APPROVE, {"run_id": run_id, "channel": card["channel"], "ts": card["ts"]})
    eventually(lambda: OWN_MODEL_REQUESTER.split(":", 2)[-1].strip()[:40] in home_text(slack, ANA))
    assert fake_mlflow.review(run_id).status is ReviewStatus.PENDING
    assert fake_mlflow.review(run_id).approvals == [] and slack.ephemerals == []


def test_a_button_naming_no_card_records_nothing_and_says_so(
    home_bot, slack, fake_mlflow, eventually
) -> None:
    bot = home_bot()
    run_id, _ = under_review(fake_mlflow, bot, slack)
    click(bot, BO, HomeActionId.APPROVE, {})
    eventually(lambda: STALE_BUTTON.split(";")[0][12:] in home_text(slack, BO))
    bot.finish()
    assert fake_mlflow.review(run_id).approvals == []


def test_changes_publish_only_for_people_who_opened_their_home(home_bot, slack, eventually) -> None:
    bot = home_bot()
    open_home(bot, ANA)
    eventually(lambda: publishes_to(slack, ANA))
    bot.services.home.changed([ANA, DAN])
    eventually(lambda: len(publishes_to(slack, ANA)) == 2)
    bot.finish()
    assert publishes_to(slack, DAN) == []


def test_a_burst_of_changes_is_one_publish_now_and_one_after(home_bot, slack, eventually) -> None:
    bot = home_bot()
    open_home(bot, ANA)
    eventually(lambda: publishes_to(slack, ANA))
    for _ in range(30):
        bot.services.home.changed([ANA])
    eventually(lambda: len(publishes_to(slack, ANA)) >= 2)
    bot.finish()  # every drain done
    calls = publishes_to(slack, ANA)
    assert 2 <= len(calls) <= 3  # the open, then the burst coalesced (one more if it straddled a slot)
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # at most one publish per debounce (1 s here)


def test_the_reviews_are_read_once_per_change_and_the_scan_once(
    home_bot, slack, fake_mlflow, eventually
) -> None:
    bot = home_bot()
    under_review(fake_mlflow, bot, slack)
    fake_mlflow.calls.clear()
    for user in (ANA, BO, CAROL):  # one after the other (at once, each might read before any cached)
        open_home(bot, user)
        eventually(lambda user=user: publishes_to(slack, user))
    bot.finish()
    assert fake_mlflow.calls.count("search_reviews") == 2 + 1  # pending, decided (once for three); the scan
    assert fake_mlflow.calls.count("deployment_candidates") == 1  # the nudges' scan, cached for everyone


def test_the_board_is_read_again_after_a_change(home_bot, slack, fake_mlflow, eventually) -> None:
    bot = home_bot()
    open_home(bot, ANA)
    eventually(lambda: publishes_to(slack, ANA))
    before = fake_mlflow.calls.count("search_reviews")
    open_home(bot, ANA)  # within OPENED_FRESH_SECONDS and no change: the cached board
    eventually(lambda: len(publishes_to(slack, ANA)) == 2)
    assert fake_mlflow.calls.count("search_reviews") == before
    under_review(fake_mlflow, bot, slack, "new-one")  # a card is a change: ANA's tab shows it unasked
    eventually(lambda: "new-one" in home_text(slack, ANA))
    assert fake_mlflow.calls.count("search_reviews") == before + 2


def test_mlflow_down_is_said_on_the_tab(home_bot, slack, fake_mlflow, eventually) -> None:
    bot = home_bot()
    fake_mlflow.down = True
    open_home(bot, BO)
    eventually(lambda: MLFLOW_DOWN.format(uri=fake_mlflow.tracking_uri) in home_text(slack, BO))
    assert WELCOME not in home_text(slack, BO)


def test_a_publish_slack_refuses_loses_nothing(home_bot, slack, fake_mlflow, eventually) -> None:
    bot = home_bot()
    open_home(bot, ANA)
    eventually(lambda: publishes_to(slack, ANA))
    slack.fail_next("views.publish")  # a 429 (this tier's client does not retry; the served bot's does)
    under_review(fake_mlflow, bot, slack, "missed")
    eventually(lambda: [c for c in publishes_to(slack, ANA) if c.status == 429])
    assert "missed" not in home_text(slack, ANA)
    open_home(bot, ANA)  # the next open (or change of hers) publishes everything
    eventually(lambda: "missed" in home_text(slack, ANA))


def test_every_home_button_is_handled(home_bot, slack) -> None:
    bot = home_bot()
    for action in HomeActionId:
        assert bot.post_signed(home_action_body(BO, action.value, "{}"), support.FORM).status_code == 200, (
            action
        )
    assert bot.post_signed(home_action_body(BO, "home_not_ours", "{}"), support.FORM).status_code == 404


def test_request_changes_and_the_page_buttons(home_bot, slack, fake_mlflow, eventually) -> None:
    bot = home_bot()
    runs = [under_review(fake_mlflow, bot, slack, f"run-{i:02d}") for i in range(17)]
    open_home(bot, BO)
    eventually(lambda: len(home_buttons(slack, BO, HomeActionId.APPROVE)) == 15)
    [newer] = home_buttons(slack, BO, HomeActionId.NEXT_PAGE)
    click(bot, BO, HomeActionId.NEXT_PAGE, newer["value"])
    eventually(lambda: home_buttons(slack, BO, HomeActionId.PREVIOUS_PAGE))
    [changes, _] = home_buttons(slack, BO, HomeActionId.REQUEST_CHANGES)  # runs 15 and 16: page 2
    assert changes["value"]["run_id"] == runs[15][0]
    click(bot, BO, HomeActionId.REQUEST_CHANGES, changes["value"])
    eventually(lambda: fake_mlflow.review(runs[15][0]).status is ReviewStatus.CHANGES_REQUESTED)
    eventually(
        lambda: (
            [b["value"]["run_id"] for b in home_buttons(slack, BO, HomeActionId.REQUEST_CHANGES)]
            == [runs[16][0]]
        )
    )
    open_home(bot, BO)  # an open starts at the first page again
    eventually(lambda: len(home_buttons(slack, BO, HomeActionId.APPROVE)) == 15)
    click(bot, BO, HomeActionId.NEXT_PAGE, newer["value"])
    [older] = eventually(lambda: home_buttons(slack, BO, HomeActionId.PREVIOUS_PAGE))
    assert PageValue.model_validate(older["value"]) == PageValue(page=0)  # defaults are left out
    click(bot, BO, HomeActionId.PREVIOUS_PAGE, older["value"])
    eventually(lambda: len(home_buttons(slack, BO, HomeActionId.APPROVE)) == 15)
