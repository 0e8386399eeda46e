"""ReviewPublisher in-process (with the real ReviewPreparer and BaselineFinder): the card goes to the
review channel and the request to the run's review.* tags; whatever fails is told to the requester."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot import tags
from bot.ids import BlockId, MetadataEvent
from bot.models import Baseline, BaselineReason, ReviewState, ReviewStatus, Via, Vote, VoteKind
from bot.reviews.card import HEADER_PREFIX, build_status_line
from bot.reviews.replies import POSTED, REQUEST_NOT_RECORDED, THREAD_PART_FAILED
from bot.reviews.thread import NO_HISTORY
from bot.services import Services
from bot.slack.advice import SLACK_ADVICE, SLACK_DEFAULT_ADVICE, channel_mention
from bot.slack.outbox import THREAD_CUT_SHORT
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import Told, run_ref, thread_texts, unexpected_error_id
from tests.scenarios.helpers import cards_for, png_bytes
from tests.slack_api_server import SlackTestServer

MODEL = "fraud-clf"


def publish(services: Services, run_id: str, told: Told, requested_by: str = support.ANA) -> str | None:
    return services.publisher.publish(
        run_ref(run_id), requested_by=requested_by, origin_channel=support.DEV_CHANNEL, notify=told
    )


def permalink_of(slack: SlackTestServer, ts: str) -> str:
    [call] = [c for c in slack.calls_to("chat.getPermalink") if c.args.get("message_ts") == ts]
    return call.response["permalink"]


def test_publish_posts_the_card_and_records_the_request_in_the_tags(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run(
        "gbm-candidate", metrics={"val_auc": 0.91, "val_loss": 0.3}, params={"lr": "0.1"}
    )
    fake_mlflow.register(MODEL, run_id)

    ts = publish(services, run_id, told)

    [card] = cards_for(slack, run_id)
    assert (card["channel"], card["ts"]) == (support.REVIEW_CHANNEL, ts)
    assert card["metadata"] == {
        "event_type": MetadataEvent.MODEL_REVIEW.value,
        "event_payload": {"run_id": run_id, "experiment_id": "1"},
    }
    header = card["blocks"][0]
    assert (header["block_id"], header["text"]["text"]) == (BlockId.HEADER, HEADER_PREFIX + "gbm-candidate")
    permalink = permalink_of(slack, ts)
    review = fake_mlflow.review(run_id)
    assert review is not None and review.requested_at is not None
    assert review == ReviewState(
        run_id=run_id,
        status=ReviewStatus.PENDING,
        requested_by=support.ANA,
        requested_at=review.requested_at,
        slack_channel=support.REVIEW_CHANNEL,
        slack_ts=ts,
        slack_permalink=permalink,
        covers=[f"{MODEL}/1"],
    )
    written = tags.review_tags(review)
    assert fake_mlflow.version_tags(MODEL, "1") == {k: written[k] for k in tags.MODEL_VERSION_MIRROR}
    # Looked for a baseline and found none (no deployed model, no parent, no PRIMARY_METRIC): kept so.
    assert tags.baseline_from_tags(fake_mlflow.tags_of(run_id)) == Baseline(reason=BaselineReason.NONE)
    assert told == [POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=permalink)]
    assert thread_texts(slack, card) == [NO_HISTORY]  # one value per metric: no history to chart


def test_mlflow_down_nothing_is_posted_and_the_requester_hears_why(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run()
    fake_mlflow.down = True

    assert publish(services, run_id, told) is None

    assert told == [fake_mlflow.unavailable().user_message()]
    assert slack.calls_to("chat.postMessage") == []
    assert fake_mlflow.writes == []


def test_mlflow_refusing_the_tags_the_card_stands_and_the_requester_hears_it(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run()
    fake_mlflow.writes_down = True

    ts = publish(services, run_id, told)

    assert [c["ts"] for c in cards_for(slack, run_id)] == [ts]
    permalink = permalink_of(slack, ts)
    assert told[:2] == [
        REQUEST_NOT_RECORDED,
        POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=permalink),
    ]
    assert fake_mlflow.writes == [] and fake_mlflow.review(run_id) is None


SLACK_REFUSALS = [
    # (Slack's error code, the review channel, whether the test server is told to refuse, the advice)
    ("channel_not_found", "C0GONE", False, SLACK_ADVICE["channel_not_found"]),
    ("not_in_channel", support.NOBOT_CHANNEL, False, SLACK_ADVICE["not_in_channel"]),
    ("is_archived", support.REVIEW_CHANNEL, True, SLACK_ADVICE["is_archived"]),
    ("restricted_action", support.REVIEW_CHANNEL, True, SLACK_DEFAULT_ADVICE),  # no advice of its own
]


@pytest.mark.parametrize(
    ("code", "channel", "inject", "advice"), SLACK_REFUSALS, ids=[r[0] for r in SLACK_REFUSALS]
)
def test_slack_refusing_the_card_the_requester_hears_the_advice_and_nothing_is_recorded(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    told: Told,
    code: str,
    channel: str,
    inject: bool,
    advice: str,
) -> None:
    services = make_services(review_channel=channel)
    run_id = fake_mlflow.add_run()
    if inject:
        slack.fail_next("chat.postMessage", code)

    assert publish(services, run_id, told) is None

    assert [c.error for c in slack.calls_to("chat.postMessage")] == [code]
    assert told == [advice.format(channel=channel_mention(channel), code=code)]
    assert fake_mlflow.writes == [] and fake_mlflow.review(run_id) is None
    assert cards_for(slack, run_id) == []


@pytest.mark.parametrize(
    ("method", "part"),
    [("chat.postMessage", "message"), ("files.getUploadURLExternal", "plots")],
)
def test_a_thread_part_slack_refuses_is_told_and_the_rest_still_go(
    services: Services,
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    told: Told,
    method: str,
    part: str,
) -> None:
    params = {f"param_{i:02d}": str(i) for i in range(30)}  # more than the card shows: an overflow part
    run_id = fake_mlflow.add_run(params=params, images={"plots/roc.png": png_bytes()})
    slack.fail_next(
        method, "msg_too_long", when=lambda args: method != "chat.postMessage" or "thread_ts" in args
    )

    ts = publish(services, run_id, told)

    [card] = cards_for(slack, run_id)
    assert card["ts"] == ts and fake_mlflow.review(run_id).slack_ts == ts
    assert told == [
        POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=permalink_of(slack, ts)),
        THREAD_PART_FAILED.format(part=part, code="msg_too_long"),
    ]
    posted = thread_texts(slack, card)
    assert (NO_HISTORY in posted) == (part != "message")
    assert (
        len(posted) >= 2
    )  # the parts after the refused one went: the plots or the chart's note, the overflow


def test_a_run_already_under_review_keeps_its_votes_when_posted_again(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run()
    asked = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    carol = Vote(
        user=support.CAROL, name="Carol Diaz", at=datetime(2026, 2, 2, 11, 0, tzinfo=UTC), via=Via.REACTION
    )
    earlier = ReviewState(
        run_id=run_id,
        status=ReviewStatus.CHANGES_REQUESTED,
        change_requests=[carol],
        requested_by=support.BO,
        requested_at=asked,
        decided_at=carol.at,
        slack_channel=support.DEV_CHANNEL,
        slack_ts="1767225600.000100",
        slack_permalink="https://test.slack.com/archives/C0DEV/p1767225600000100",
    )
    earlier = earlier.model_copy(update={"last_click": {support.CAROL: carol.at}})
    fake_mlflow.set_run_tags(run_id, support.signed_review_tags(earlier))

    ts = publish(services, run_id, told, requested_by=support.ANA)

    now = fake_mlflow.review(run_id)
    assert now == earlier.model_copy(
        update={
            "slack_channel": support.REVIEW_CHANNEL,
            "slack_ts": ts,
            "slack_permalink": permalink_of(slack, ts),
        }
    )
    [card] = cards_for(slack, run_id)
    [status] = [b for b in card["blocks"] if b.get("block_id") == BlockId.STATUS]
    # The card says who first asked, and the change request still standing.
    assert status["elements"][0]["text"] == build_status_line(now, support.BO, 1)


def test_a_request_the_run_recorded_is_not_reported_lost_when_its_registry_mirror_fails(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run()
    fake_mlflow.register(MODEL, run_id)
    fake_mlflow.fail_calls = {"set_model_version_tag"}

    ts = publish(services, run_id, told)

    # The request is in the run's tags: votes on this card are recorded.
    assert fake_mlflow.review(run_id).slack_ts == ts
    assert REQUEST_NOT_RECORDED not in told
    # The registry copy is retried until it lands.
    fake_mlflow.fail_calls = set()
    services.votes._retry_mirrors()
    assert (
        fake_mlflow.version_tags(MODEL, "1")[tags.SLACK_PERMALINK]
        == fake_mlflow.review(run_id).slack_permalink
    )


def test_mlflow_failing_mid_thread_does_not_say_nothing_was_posted(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run(histories={"loss": [1.0, 0.5, 0.25]})
    fake_mlflow.fail_calls = {"envelopes"}  # the thread's first part, the metric history chart

    ts = publish(services, run_id, told)

    assert [c["ts"] for c in cards_for(slack, run_id)] == [ts] and fake_mlflow.review(run_id).slack_ts == ts
    assert (
        POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=permalink_of(slack, ts))
        in told
    )
    assert fake_mlflow.unavailable().user_message() not in told  # it says "Nothing was posted."
    assert THREAD_CUT_SHORT.format(uri=fake_mlflow.tracking_uri, what=f"run {run_id}") in told


def test_a_failure_nobody_planned_is_logged_with_the_id_the_requester_is_told(
    services: Services,
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    told: Told,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_id = fake_mlflow.add_run()
    fake_mlflow.crash_calls = {"run_summary"}

    with caplog.at_level(logging.ERROR):
        assert publish(services, run_id, told) is None

    [reply] = told
    error_id = unexpected_error_id(reply)
    assert error_id and any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert slack.calls_to("chat.postMessage") == [] and fake_mlflow.writes == []


def test_a_vote_that_reaches_the_card_before_its_request_is_recorded_is_kept(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told, monkeypatch
) -> None:
    """The card is posted before its review tags are written: a quick reviewer's vote lands in between."""
    run_id = fake_mlflow.add_run(user="someone-else")
    real_record = services.publisher._record_request

    def vote_first(prepared, posted, requested_by, channel, ts, permalink, notify) -> None:  # noqa: ANN001
        services.votes.vote(channel, ts, support.BO, VoteKind.APPROVE, Via.BUTTON, Told())
        real_record(prepared, posted, requested_by, channel, ts, permalink, notify)

    monkeypatch.setattr(services.publisher, "_record_request", vote_first)
    ts = publish(services, run_id, told)

    review = fake_mlflow.review(run_id)
    assert review is not None and not review.untrusted
    assert [v.user for v in review.approvals] == [support.BO] and review.status is ReviewStatus.APPROVED
    assert (review.slack_ts, review.requested_by) == (ts, support.ANA)
    assert REQUEST_NOT_RECORDED not in told
    # The card people see last is the complete one (its baseline field), and it shows the vote.
    [*_, last] = [c.args for c in slack.calls_to("chat.update") if c.ok and c.args["ts"] == ts]
    [status_block] = [b for b in last["blocks"] if b.get("block_id") == BlockId.STATUS]
    status = status_block["elements"][0]["text"]
    assert status == build_status_line(review, support.ANA, 1)
    assert "*Baseline*" in json.dumps(last["blocks"][1])
