"""The App Home tab through the served bot: signed app_home_opened events and Home button clicks in,
views.publish (and the vote's tags in MLflow, the card's update) out.

The session's MLflow holds the pending reviews of every other scenario test, and they all wait on this
module's reviewer too: the reviews these tests look for are dated before the session (their requests
re-signed with the test bot's key, as the bot would have written them), so they come first, oldest
first, and counts are taken relative to what the tab said before."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from mlflow.entities import RunTag

from bot import tags
from bot.home.blocks import WELCOME
from bot.ids import HOME_CALLBACK_ID, HomeActionId
from bot.models import ReviewState
from tests import support
from tests.mlflow_runs import RunFactory
from tests.scenarios.helpers import cards_for, response_texts

REVIEWER = "U0HOMEREV"  # people of this module only: nobody else's test votes for them or opens their Home
REQUESTER = "U0HOMEREQ"
NEWCOMER = "U0HOMENEW"
MANY = 300


# --- what Slack sends and shows (shared with tests/inprocess/test_home.py) ----------------------------


def home_opened_event(user: str) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home",
            "event_ts": f"{time.time():.6f}"}  # fmt: skip


def home_action_body(user: str, action_id: str, value: str) -> str:
    """A click on a button of the person's Home tab, as Slack posts it: a view container, no channel,
    no message and no response_url."""
    payload = {
        "type": "block_actions",
        "team": {"id": support.TEAM_ID, "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": support.TEAM_ID},
        "api_app_id": "A0TEST",
        "token": "deprecated-verification-token",
        "container": {"type": "view", "view_id": "V0HOME"},
        "trigger_id": f"{uuid.uuid4().int % 10**12}.abc",
        "view": {"id": "V0HOME", "type": "home", "callback_id": HOME_CALLBACK_ID, "blocks": []},
        "actions": [
            {
                "action_id": action_id,
                "block_id": "home",
                "text": {"type": "plain_text", "text": action_id},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def home_text(slack, user: str) -> str:  # noqa: ANN001
    return json.dumps(slack.home_views[user]["blocks"], ensure_ascii=False)


def home_buttons(slack, user: str, action_id: str) -> list[dict[str, Any]]:  # noqa: ANN001
    """The buttons of one kind on the person's tab as last published, top to bottom, values parsed."""
    return [
        {**element, "value": json.loads(element["value"])}
        for block in slack.home_views[user]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    ]


def publishes_to(slack, user: str) -> list[Any]:  # noqa: ANN001
    return [c for c in slack.calls_to("views.publish") if c.args.get("user_id") == user]


# --- this module's stack ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home_runs(runs: RunFactory) -> RunFactory:
    return runs


@pytest.fixture(scope="module")
def home_bot(bots, slack) -> support.BotProcess:  # noqa: ANN001
    for user, name in ((REVIEWER, "home.reviewer"), (REQUESTER, "home.requester"), (NEWCOMER, "home.new")):
        slack.add_user(user, name, name.replace(".", " ").title(), f"{name}@example.com", "UTC")
    return bots.get(REVIEWERS=REVIEWER)


def open_home(bot, user: str) -> None:  # noqa: ANN001
    reply = bot.post_signed(support.event_body(home_opened_event(user), f"Ev{uuid.uuid4().hex[:12]}"),
                            "application/json")  # fmt: skip
    assert reply.status_code == 200


def click_home(bot, user: str, action_id: str, value: dict[str, Any]) -> None:  # noqa: ANN001
    reply = bot.post_signed(home_action_body(user, action_id, json.dumps(value)), support.FORM)
    assert reply.status_code == 200


def post_review(bot, slack, runs: RunFactory, eventually, name: str, requester: str = REQUESTER):  # noqa: ANN001, ANN201
    run_id = runs.make_run(name, user="someone.else")
    url = slack.new_response_url()
    bot.command(run_id, url, user=requester)
    eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t])
    return run_id, cards_for(slack, run_id)[-1]


def backdate(runs: RunFactory, run_id: str, requested_at: datetime) -> None:
    """The run's review as if requested at `requested_at` (its card, requester and votes kept), signed as
    the bot signs its records."""
    current = runs.tags(run_id)
    state = ReviewState(
        run_id=run_id,
        requested_by=current[tags.REQUESTED_BY],
        requested_at=requested_at,
        slack_channel=current[tags.SLACK_CHANNEL],
        slack_ts=current[tags.SLACK_TS],
        slack_permalink=current[tags.SLACK_PERMALINK],
    )
    values = support.signed_review_tags(state, current)
    runs.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in values.items()])


def pending_by_hand(runs: RunFactory, count: int, requested: datetime, experiment: str) -> list[str]:
    """Pending reviews recorded straight into MLflow (signed as the bot signs them), oldest first: `count`
    runs without posting `count` cards."""
    run_ids = []
    for i in range(count):
        run_id = runs.client.create_run(runs.experiment(experiment), run_name=f"bulk-{i:03d}").info.run_id
        state = ReviewState(
            run_id=run_id,
            requested_by=REQUESTER,
            requested_at=requested + timedelta(minutes=i),
            slack_channel=support.REVIEW_CHANNEL,
            slack_ts=f"1700000000.{i:06d}",
            slack_permalink=f"https://test.slack.com/archives/{support.REVIEW_CHANNEL}/p1700000000{i:06d}",
        )
        values = support.signed_review_tags(state)
        runs.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in values.items()])
        run_ids.append(run_id)
    return run_ids


# --- the tests (in this order: each adds to what the module's MLflow holds) --------------------------


def test_a_first_time_user_sees_how_to_start(home_bot, slack, eventually) -> None:
    open_home(home_bot, NEWCOMER)
    home = eventually(lambda: slack.home_views[NEWCOMER])
    assert home["type"] == "home" and home["callback_id"] == HOME_CALLBACK_ID
    assert WELCOME in home_text(slack, NEWCOMER) and "/review <run>" in home_text(slack, NEWCOMER)
    assert len(home["blocks"]) <= 100


def test_a_reviewer_sees_what_waits_oldest_first_and_approves_from_the_home(
    home_bot, slack, home_runs, eventually
) -> None:
    first, first_card = post_review(home_bot, slack, home_runs, eventually, "home-first")
    second, _ = post_review(home_bot, slack, home_runs, eventually, "home-second")
    backdate(home_runs, first, datetime(2019, 6, 1, tzinfo=UTC))
    backdate(home_runs, second, datetime(2019, 1, 1, tzinfo=UTC))  # posted second, requested first
    open_home(home_bot, REQUESTER)  # the requester has opened the Home: theirs is kept up to date
    eventually(lambda: "home-first" in home_text(slack, REQUESTER))
    open_home(home_bot, REVIEWER)
    approves = eventually(lambda: home_buttons(slack, REVIEWER, HomeActionId.APPROVE))
    assert [b["value"]["run_id"] for b in approves][:2] == [second, first]  # oldest request first
    assert approves[1]["value"] == {"run_id": first, "channel": first_card["channel"], "ts": first_card["ts"]}
    permalink = home_runs.tags(first)[tags.SLACK_PERMALINK]
    assert f"<{permalink}|home-first>" in home_text(slack, REVIEWER)  # the entry links to its card

    requester_publishes = len(publishes_to(slack, REQUESTER))
    click_home(home_bot, REVIEWER, HomeActionId.APPROVE, approves[1]["value"])

    eventually(
        lambda: home_runs.tags(first).get(tags.STATUS) == "approved", what="the vote on the run's tags"
    )
    vote = json.loads(home_runs.tags(first)[tags.VOTE_PREFIX + REVIEWER])
    assert (vote["kind"], vote["via"]) == ("approve", "button")
    eventually(
        lambda: [
            c
            for c in slack.calls_to("chat.update")
            if c.args.get("ts") == first_card["ts"] and "*Approved*" in json.dumps(c.args.get("blocks"))
        ],
        what="the card updated",
    )
    # The reviewer's tab no longer offers it; the requester's tab shows the decision without reopening.
    # (other tests' pending reviews in the session's MLflow may follow: they were requested later)
    eventually(
        lambda: (
            [b["value"]["run_id"] for b in home_buttons(slack, REVIEWER, HomeActionId.APPROVE)][:1]
            == [second]
            and first
            not in [b["value"]["run_id"] for b in home_buttons(slack, REVIEWER, HomeActionId.APPROVE)]
        )
    )
    eventually(lambda: len(publishes_to(slack, REQUESTER)) > requester_publishes)
    eventually(lambda: "home-first>: approved by <@U0HOMEREV>" in home_text(slack, REQUESTER))
    assert "home-second>: pending for" in home_text(slack, REQUESTER)


def test_a_refused_home_vote_is_answered_on_the_tab(home_bot, slack, home_runs, eventually) -> None:
    run_id, card = post_review(home_bot, slack, home_runs, eventually, "home-own", requester=REVIEWER)
    open_home(home_bot, REVIEWER)
    eventually(lambda: "home-own" in home_text(slack, REVIEWER))
    # A stale tab (or a hand-made click) approving one's own request: refused, said on the tab.
    click_home(
        home_bot,
        REVIEWER,
        HomeActionId.APPROVE,
        {"run_id": run_id, "channel": card["channel"], "ts": card["ts"]},
    )
    eventually(lambda: "you requested this review" in home_text(slack, REVIEWER))
    assert home_runs.tags(run_id)[tags.STATUS] == "pending"


def test_a_meeting_shows_with_a_date_token(home_bot, slack, home_runs, eventually) -> None:
    run_id, _ = post_review(home_bot, slack, home_runs, eventually, "home-meeting")
    at = (datetime.now(tz=UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    url = slack.new_response_url()
    home_bot.command(f"schedule {run_id} {at:%Y-%m-%d %H:%M}", url, user=REQUESTER)
    eventually(lambda: home_runs.tags(run_id).get(tags.MEETING_AT))
    token = f"<!date^{int(at.timestamp())}^"
    # The requester's tab (opened in an earlier test) is refreshed by the scheduling itself.
    eventually(lambda: token in home_text(slack, REQUESTER) and "home-meeting" in home_text(slack, REQUESTER))
    # ...and the reviewer's, an invitee (the reviewers and the one who scheduled it are invited).
    eventually(lambda: token in home_text(slack, REVIEWER))


def test_300_pending_reviews_render_within_100_blocks(home_bot, slack, home_runs, eventually) -> None:
    """The 300 reviews are deleted afterwards (their experiment), so later modules' digests and agendas
    sharing this MLflow do not list them."""
    try:
        total_before = _waiting_total(slack)
        assert total_before >= 1  # from the tests above
        bulk = pending_by_hand(home_runs, MANY, datetime(2018, 1, 1, tzinfo=UTC), "home-bulk")
        # A new card is a change for every reviewer: their tab is re-published without their opening it.
        post_review(home_bot, slack, home_runs, eventually, "home-bulk-trigger")
        total = total_before + MANY + 1
        eventually(lambda: _waiting_total(slack) == total, what=f"{total} waiting")
        home = slack.home_views[REVIEWER]
        assert len(home["blocks"]) <= 100
        approves = home_buttons(slack, REVIEWER, HomeActionId.APPROVE)
        assert [b["value"]["run_id"] for b in approves] == bulk[:15]  # the oldest (2018) first
        assert f"Showing 1–15 of {total}, oldest first · …and {total - 15} more" in home_text(slack, REVIEWER)

        [newer] = home_buttons(slack, REVIEWER, HomeActionId.NEXT_PAGE)
        assert newer["value"] == {"page": 1}
        click_home(home_bot, REVIEWER, HomeActionId.NEXT_PAGE, newer["value"])
        eventually(
            lambda: (
                [b["value"]["run_id"] for b in home_buttons(slack, REVIEWER, HomeActionId.APPROVE)]
                == bulk[15:30]
            )
        )
        assert len(slack.home_views[REVIEWER]["blocks"]) <= 100
        assert f"Showing 16–30 of {total}" in home_text(slack, REVIEWER)
    finally:
        bulk_experiment = home_runs.client.get_experiment_by_name("home-bulk")
        if bulk_experiment is not None:
            home_runs.client.delete_experiment(bulk_experiment.experiment_id)


def _waiting_total(slack) -> int:  # noqa: ANN001
    text = home_text(slack, REVIEWER) if REVIEWER in slack.home_views else ""
    marker = "*Waiting on your vote* ("
    return int(text.split(marker)[1].split(")")[0]) if marker in text else 0


def test_a_refused_publish_loses_nothing(home_bot, slack, home_runs, eventually) -> None:
    run_id, card = post_review(home_bot, slack, home_runs, eventually, "home-429")
    eventually(lambda: "home-429" in home_text(slack, REQUESTER))
    # Slack refuses the requester's next publishes, past the client's Retry-After retries.
    slack.fail_next(
        "views.publish", times=4, retry_after=0, when=lambda args: args.get("user_id") == REQUESTER
    )
    approve = {"run_id": run_id, "channel": card["channel"], "ts": card["ts"]}
    click_home(home_bot, REVIEWER, HomeActionId.APPROVE, approve)
    eventually(lambda: home_runs.tags(run_id).get(tags.STATUS) == "approved")
    refused = eventually(lambda: [c for c in publishes_to(slack, REQUESTER) if c.status == 429][3:])
    assert refused and "home-429>: pending" in home_text(slack, REQUESTER)  # the tab missed the change
    # The next change (another review posted) publishes the requester's tab with everything.
    post_review(home_bot, slack, home_runs, eventually, "home-after-429")
    eventually(
        lambda: (
            "home-429>: approved by" in home_text(slack, REQUESTER)
            and "home-after-429" in home_text(slack, REQUESTER)
        )
    )
