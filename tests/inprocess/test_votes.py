"""VoteService in-process: a vote becomes the run's review.* tags (through bot.tags), the card is
updated in place and the decision goes into the thread; refusals, repeats, withdrawals and MLflow
failures change nothing and tell the voter why."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot import tags
from bot.models import ReviewStatus, Via, VoteKind
from bot.reviews.card import build_review_card
from bot.services import Services
from bot.slack.people import GROUP_UNREADABLE
from bot.votes.rules import (
    NOT_A_REVIEWER,
    OWN_MODEL_AUTHOR,
    OWN_MODEL_REQUESTER,
    SAME_VOTE,
    cast,
    withdraw,
)
from bot.votes.service import DECISION_LINE, KEPT_FOR_LATER, MIRROR_BEHIND
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import (
    KEY_METRICS,
    Told,
    post_card,
    thread_texts,
    unexpected_error_id,
    updates_of,
)
from tests.slack_api_server import SlackTestServer

MODEL = "fraud-clf"


@dataclass(frozen=True)
class UnderReview:
    run_id: str
    card: dict[str, Any]
    services: Services


@pytest.fixture
def put_up(
    make_services: Callable[..., Services], slack: SlackTestServer, fake_mlflow: FakeMlflow
) -> Callable[..., UnderReview]:
    """A run trained by `author`, its card posted at `requester`'s request, by services built with
    `settings`; MLflow's write log and call log, and Slack's call log (the card's post and the update that
    completes it), start empty after it."""

    def put_up_for_review(
        *, author: str = "ana.lopez", requester: str = support.ANA, **settings: object
    ) -> UnderReview:
        services = make_services(**settings)
        run_id = fake_mlflow.add_run("gbm-candidate", user=author, metrics={"val_auc": 0.91})
        fake_mlflow.register(MODEL, run_id)
        card = post_card(services, slack, run_id, requested_by=requester)
        fake_mlflow.writes.clear()
        fake_mlflow.calls.clear()
        slack.calls.clear()
        return UnderReview(run_id, card, services)

    return put_up_for_review


def vote(
    review: UnderReview,
    user: str,
    kind: VoteKind = VoteKind.APPROVE,
    via: Via = Via.BUTTON,
    *,
    withdrawing: bool = False,
    services: Services | None = None,
) -> Told:
    told = Told()
    (services or review.services).votes.vote(
        review.card["channel"], review.card["ts"], user, kind, via, told, withdrawing=withdrawing
    )
    return told


def card_now(fake: FakeMlflow, review: UnderReview) -> list[dict[str, Any]]:
    """The card as MLflow's record says it should look now, as Slack stores blocks."""
    card = build_review_card(
        fake.run_summary(review.run_id), requested_by=support.ANA, key_metrics=KEY_METRICS
    )
    return json.loads(json.dumps(card.blocks))


@pytest.mark.parametrize(
    ("kind", "status"),
    [(VoteKind.APPROVE, ReviewStatus.APPROVED), (VoteKind.REQUEST_CHANGES, ReviewStatus.CHANGES_REQUESTED)],
)
def test_a_vote_is_recorded_in_the_tags_shown_on_the_card_and_told_in_the_thread(
    put_up: Callable[..., UnderReview],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    kind: VoteKind,
    status: ReviewStatus,
) -> None:
    review = put_up()
    slack.add_message(
        review.card["channel"], "Recall is what matters here.", support.CAROL, thread_ts=review.card["ts"]
    )
    before = fake_mlflow.review(review.run_id)
    assert before is not None and before.status is ReviewStatus.PENDING

    told = vote(review, support.BO, kind)

    assert told == []
    after = fake_mlflow.review(review.run_id)
    assert after is not None and after.status is status
    [cast_vote] = after.approvals if kind is VoteKind.APPROVE else after.change_requests
    assert (cast_vote.user, cast_vote.name, cast_vote.via) == (support.BO, "Bo Chen", Via.BUTTON)
    assert after.decided_at == cast_vote.at
    # What the rules say, with the voter's click time on record and the model version it covers.
    assert after == cast(before, cast_vote, kind, 1).state.model_copy(
        update={"last_click": {support.BO: cast_vote.at}, "covers": [f"{MODEL}/1"]}
    )
    # The registry mirror follows the run's own tags.
    written = tags.review_tags(after)
    assert fake_mlflow.version_tags(MODEL, "1") == {k: written[k] for k in tags.MODEL_VERSION_MIRROR}
    # Slack shows what MLflow now says: the card in place, the decision in the thread.
    assert [u["blocks"] for u in updates_of(slack, review.card)] == [card_now(fake_mlflow, review)]
    line = cast(before, cast_vote, kind, 1).line
    assert thread_texts(slack, review.card)[-1] == DECISION_LINE.format(line=line)
    # An approval keeps the discussion with the run; a change request does not (yet).
    discussions = fake_mlflow.writes_of("log_discussion")
    if kind is VoteKind.APPROVE:
        [discussion] = discussions
        assert discussion.target == review.run_id
        assert "Recall is what matters here." in next(iter(discussion.values.values()))
    else:
        assert discussions == []


def test_a_card_the_store_forgot_is_found_by_its_metadata(
    put_up: Callable[..., UnderReview],
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
) -> None:
    review = put_up()
    restarted = make_services()  # a fresh MemoryStore: another replica, or after a restart

    assert vote(review, support.BO, services=restarted) == []

    assert fake_mlflow.review(review.run_id).status is ReviewStatus.APPROVED
    [lookup] = [
        c for c in slack.calls_to("conversations.history") if c.args.get("latest") == review.card["ts"]
    ]
    assert lookup.ok and lookup.args.get("include_all_metadata") in (True, "1", "true")


REFUSALS = {
    "not a reviewer": (
        {"reviewers": [support.DAN]},
        "ana.lopez",
        support.BO,
        NOT_A_REVIEWER.format(who=f"<@{support.DAN}>"),
    ),
    "not in the reviewer group": (
        {"reviewer_group": support.ML_REVIEWERS_GROUP},
        "ana.lopez",
        support.BO,
        NOT_A_REVIEWER.format(who=f"<!subteam^{support.ML_REVIEWERS_GROUP}>"),
    ),
    "the requester": ({}, "ana.lopez", support.ANA, OWN_MODEL_REQUESTER),
    # Bo's email is bo.chen@example.com: users.info gives the handle `bo.chen`, the run's mlflow.user.
    "the author, by users.info handle": (
        {},
        "bo.chen",
        support.BO,
        OWN_MODEL_AUTHOR.format(author="bo.chen"),
    ),
    "a reviewer group Slack will not list": (
        {"reviewer_group": "S0GONE"},
        "ana.lopez",
        support.DAN,
        GROUP_UNREADABLE.format(code="no_such_subteam"),
    ),
}


@pytest.mark.parametrize(("settings", "author", "voter", "refusal"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_vote_that_does_not_count_changes_nothing_and_says_why(
    put_up: Callable[..., UnderReview],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    settings: dict[str, object],
    author: str,
    voter: str,
    refusal: str,
) -> None:
    review = put_up(author=author, requester=support.ANA, **settings)
    before = fake_mlflow.review(review.run_id)

    assert vote(review, voter) == [refusal]

    assert fake_mlflow.writes == []
    assert fake_mlflow.review(review.run_id) == before
    assert updates_of(slack, review.card) == []
    # Who the voter is (their name, the handles matched against mlflow.user) comes from users.info.
    assert voter in [c.args.get("user") for c in slack.calls_to("users.info")]


def test_a_reviewer_of_the_group_votes(put_up: Callable[..., UnderReview], fake_mlflow: FakeMlflow) -> None:
    review = put_up(reviewer_group=support.ML_REVIEWERS_GROUP)
    assert vote(review, support.DAN) == []
    assert [v.user for v in fake_mlflow.review(review.run_id).approvals] == [support.DAN]


@pytest.mark.parametrize(
    ("kind", "did"), [(VoteKind.APPROVE, "approved"), (VoteKind.REQUEST_CHANGES, "requested changes on")]
)
def test_the_same_vote_twice_counts_once(
    put_up: Callable[..., UnderReview],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    kind: VoteKind,
    did: str,
) -> None:
    review = put_up(required_approvals=2)
    assert vote(review, support.BO, kind) == []
    recorded = fake_mlflow.review(review.run_id)
    fake_mlflow.writes.clear()

    assert vote(review, support.BO, kind, Via.REACTION) == [SAME_VOTE.format(did=did)]

    # Only the time of Bo's last click moves (so an older click arriving late cannot undo this one).
    [write] = fake_mlflow.writes
    assert set(write.values) == {tags.vote_key(support.BO), tags.SIGNATURE}
    again = fake_mlflow.review(review.run_id)
    assert again.last_click[support.BO] > recorded.last_click[support.BO]
    assert again.model_copy(update={"last_click": recorded.last_click}) == recorded
    assert len(updates_of(slack, review.card)) == 1
    assert thread_texts(slack, review.card)[-1].startswith(DECISION_LINE.format(line=""))


def test_removing_a_reaction_withdraws_the_vote(
    put_up: Callable[..., UnderReview], fake_mlflow: FakeMlflow, slack: SlackTestServer
) -> None:
    review = put_up()
    assert vote(review, support.CAROL, via=Via.REACTION) == []
    approved = fake_mlflow.review(review.run_id)
    assert approved.status is ReviewStatus.APPROVED and [v.via for v in approved.approvals] == [Via.REACTION]

    assert vote(review, support.CAROL, via=Via.REACTION, withdrawing=True) == []

    withdrawn = fake_mlflow.review(review.run_id)
    assert withdrawn.status is ReviewStatus.PENDING
    assert withdrawn.approvals == [] and withdrawn.decided_at is None
    assert tags.review_tags(withdrawn)[tags.DECIDED_AT] == ""
    line = withdraw(approved, support.CAROL, "Carol Diaz", VoteKind.APPROVE, approved.decided_at, 1).line
    assert thread_texts(slack, review.card)[-1] == DECISION_LINE.format(line=line)
    assert updates_of(slack, review.card)[-1]["blocks"] == card_now(fake_mlflow, review)


def test_withdrawing_a_vote_never_cast_is_silent_and_changes_nothing(
    put_up: Callable[..., UnderReview], fake_mlflow: FakeMlflow, slack: SlackTestServer
) -> None:
    review = put_up()
    before = fake_mlflow.review(review.run_id)

    told = vote(review, support.DAN, VoteKind.REQUEST_CHANGES, Via.REACTION, withdrawing=True)

    assert told == []
    # Nothing counts differently; only the click's time is kept, so an older "add" arriving late is stale.
    [write] = fake_mlflow.writes
    assert set(write.values) == {tags.vote_key(support.DAN), tags.SIGNATURE}
    after = fake_mlflow.review(review.run_id)
    assert after.model_copy(update={"last_click": {}}) == before and support.DAN in after.last_click


@pytest.mark.parametrize("outage", ["down", "writes_down"])
def test_mlflow_down_the_vote_is_not_recorded_and_the_voter_hears_it(
    put_up: Callable[..., UnderReview], fake_mlflow: FakeMlflow, slack: SlackTestServer, outage: str
) -> None:
    review = put_up()
    before = fake_mlflow.review(review.run_id)
    thread = thread_texts(slack, review.card)
    setattr(fake_mlflow, outage, True)

    assert vote(review, support.BO) == [KEPT_FOR_LATER.format(uri=fake_mlflow.tracking_uri)]

    setattr(fake_mlflow, outage, False)
    assert fake_mlflow.writes == []
    assert fake_mlflow.review(review.run_id) == before
    assert updates_of(slack, review.card) == []
    assert thread_texts(slack, review.card) == thread
    # The vote was kept: once MLflow answers, the next pass over the card's queue records it.
    review.services.votes.process(review.card["channel"], review.card["ts"])
    assert [v.user for v in fake_mlflow.review(review.run_id).approvals] == [support.BO]
    assert [u["blocks"] for u in updates_of(slack, review.card)] == [card_now(fake_mlflow, review)]


def _person_says(slack: SlackTestServer, client: Any) -> str:
    return slack.add_message(support.REVIEW_CHANNEL, "lgtm", support.CAROL)["ts"]


def _bot_says(slack: SlackTestServer, client: Any) -> str:
    return client.chat_postMessage(channel=support.REVIEW_CHANNEL, text="not a card")["ts"]


def _nobody_said(slack: SlackTestServer, client: Any) -> str:
    return "1767225600.999900"


@pytest.mark.parametrize("message", [_person_says, _bot_says, _nobody_said])
def test_a_vote_on_a_message_that_is_not_a_card_does_nothing(
    services: Services,
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    slack_client: Any,
    message: Callable[..., str],
) -> None:
    ts = message(slack, slack_client)
    posted = len(slack.calls_to("chat.postMessage"))
    told = Told()

    services.votes.vote(support.REVIEW_CHANNEL, ts, support.BO, VoteKind.APPROVE, Via.REACTION, told)

    assert told == []
    assert fake_mlflow.calls == [] and fake_mlflow.writes == []
    assert slack.calls_to("chat.update") == [] and slack.calls_to("users.info") == []
    assert len(slack.calls_to("chat.postMessage")) == posted


def test_a_vote_the_run_recorded_is_shown_even_when_its_registry_mirror_fails(
    put_up: Callable[..., UnderReview], fake_mlflow: FakeMlflow, slack: SlackTestServer
) -> None:
    review = put_up()  # the run has a registered model version, so the review is mirrored onto it
    fake_mlflow.fail_calls = {"set_model_version_tag"}

    told = vote(review, support.BO)

    # The run's tags took the vote: it counts (`review-bot gate` reads them), and voting again is refused.
    assert fake_mlflow.review(review.run_id).status is ReviewStatus.APPROVED
    # So the voter must not be told it was not recorded, and the card must show it.
    assert not any("not recorded" in t for t in told)
    assert told == [MIRROR_BEHIND.format(versions=f"`{MODEL}` v1")]
    assert [u["blocks"] for u in updates_of(slack, review.card)] == [card_now(fake_mlflow, review)]
    # The mirror is retried until it lands.
    fake_mlflow.fail_calls = set()
    review.services.votes._retry_mirrors()
    assert fake_mlflow.version_tags(MODEL, "1")[tags.STATUS] == ReviewStatus.APPROVED.value


def test_a_failure_nobody_planned_is_logged_with_the_id_the_voter_is_told(
    put_up: Callable[..., UnderReview],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    review = put_up()
    fake_mlflow.crash_calls = {"run_summary"}

    with caplog.at_level(logging.ERROR):
        [reply] = vote(review, support.BO)

    error_id = unexpected_error_id(reply)
    assert error_id and any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert fake_mlflow.writes == [] and updates_of(slack, review.card) == []


def test_a_vote_on_an_older_card_moves_the_runs_newest_card_too(
    put_up: Callable[..., UnderReview], fake_mlflow: FakeMlflow, slack: SlackTestServer
) -> None:
    review = put_up()
    newer = post_card(review.services, slack, review.run_id, requested_by=support.DAN)
    assert fake_mlflow.review(review.run_id).slack_ts == newer["ts"]
    slack.calls.clear()  # the newer card's post and the update that completed it

    assert vote(review, support.BO) == []  # on the older card

    assert fake_mlflow.review(review.run_id).status is ReviewStatus.APPROVED
    assert [u["blocks"] for u in updates_of(slack, review.card)] == [card_now(fake_mlflow, review)]
    assert [u["blocks"] for u in updates_of(slack, newer)] == [card_now(fake_mlflow, review)]
