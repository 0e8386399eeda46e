"""The card goes out as soon as the run is read, and is completed in place: the registry, the baseline and
the baseline's params are read after it. What people see last is the complete card; a read that fails
leaves a correct card without that part, and a note in the thread, never an error instead of the card."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import tags
from bot.ids import BlockId
from bot.models import ReviewState, ReviewStatus, Via, Vote, VoteKind
from bot.reviews.card import APPROVED_STATUS, BASELINE_PENDING, DIFFERS_MARK, PARAMS_DIFFER_TITLE
from bot.reviews.prepare import BASELINE_NOT_READ, MLFLOW_SILENT, REGISTRY_NOT_READ, UNEXPECTED_WHY
from bot.reviews.replies import POSTED, REQUEST_NOT_RECORDED
from bot.services import Services
from bot.slack.advice import channel_mention
from tests import support
from tests.inprocess.fakes import FIRST_START, FakeMlflow
from tests.inprocess.harness import Told, is_unexpected, run_ref, thread_texts, updates_of
from tests.scenarios.helpers import cards_for
from tests.slack_api_server import SlackTestServer

MODEL = "fraud-clf"
PRIMARY = {"primary_metric": "val_auc:max"}  # so the best earlier run is the baseline
CANDIDATE_PARAMS = {"max_depth": "6", "eta": "0.3", "seed": "7", "booster": "None", "gamma": "None"}
BASELINE_PARAMS = {"max_depth": "4", "eta": "0.3", "seed": "7", "booster": "None", "gamma": "None"}


@pytest.fixture
def publish(slack: SlackTestServer) -> Callable[[Services, str, Told], dict[str, Any]]:
    def post(services: Services, run_id: str, told: Told) -> dict[str, Any]:
        ts = services.publisher.publish(
            run_ref(run_id), requested_by=support.ANA, origin_channel=support.DEV_CHANNEL, notify=told
        )
        assert ts is not None, told
        [card] = [c for c in cards_for(slack, run_id) if c["ts"] == ts]
        return card

    return post


def _posted(slack: SlackTestServer, card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's blocks as chat.postMessage sent them."""
    [call] = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.response.get("ts") == card["ts"]]
    return call.args["blocks"]


def _posted_reply(permalink: str) -> str:
    return POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=permalink)


def _fields(blocks: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in blocks[1]["fields"]]


def _params_text(blocks: list[dict[str, Any]]) -> str:
    [params] = [b for b in blocks if b.get("text", {}).get("text", "").startswith("*Params*")]
    return params["text"]["text"]


def _status(blocks: list[dict[str, Any]]) -> str:
    [status] = [b for b in blocks if b.get("block_id") == BlockId.STATUS]
    return status["elements"][0]["text"]


def _candidate_and_baseline(fake: FakeMlflow) -> tuple[str, str]:
    """An earlier run, the best by val_auc, and the candidate after it with max_depth changed."""
    baseline = fake.add_run(
        "gbm-shallow", metrics={"val_auc": 0.88}, params=BASELINE_PARAMS, started=FIRST_START
    )
    candidate = fake.add_run(
        "gbm-deep",
        metrics={"val_auc": 0.91},
        params=CANDIDATE_PARAMS,
        started=FIRST_START + timedelta(days=1),
    )
    fake.register(MODEL, candidate)
    return candidate, baseline


def test_the_card_is_posted_after_one_run_read_and_completed_in_place(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
) -> None:
    services = make_services(**PRIMARY)
    candidate, _ = _candidate_and_baseline(fake_mlflow)
    told = Told()

    card = publish(services, candidate, told)

    # Posted before the registry and the baseline were read: neither is on it, params unmarked.
    first = _posted(slack, card)
    assert not any(f.startswith("*Registered models*") for f in _fields(first))
    assert _fields(first)[-1] == f"*Baseline*\n{BASELINE_PENDING}"
    assert DIFFERS_MARK not in _params_text(first)
    # Then completed in place: the model version, the baseline, and what differs from it first.
    [update] = updates_of(slack, card)
    fields = _fields(update["blocks"])
    assert f"*Registered models*\n{MODEL} v1" in fields
    assert any(f.startswith("*Baseline*\nvs <") and "gbm-shallow" in f for f in fields)
    assert _params_text(update["blocks"]).split("\n")[:3] == [
        PARAMS_DIFFER_TITLE,
        f"• {DIFFERS_MARK} max_depth = `6` ← `4`",
        "• eta = `0.3`",
    ]
    # Slack holds the complete card; the request is on record, covering the version, with the baseline.
    assert card["blocks"] == update["blocks"]
    review = fake_mlflow.review(candidate)
    assert review is not None and review.covers == [f"{MODEL}/1"] and review.slack_ts == card["ts"]
    assert tags.baseline_from_tags(fake_mlflow.tags_of(candidate)).run_name == "gbm-shallow"
    assert told == [
        POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=review.slack_permalink)
    ]
    # One run read before the card; the registry read once.
    assert fake_mlflow.calls.index("run_summary") < fake_mlflow.calls.index("model_versions_of")
    assert fake_mlflow.calls.count("model_versions_of") == 1


def test_a_vote_keeps_the_baseline_line_and_the_params_that_differ_first(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
) -> None:
    services = make_services(**PRIMARY)
    candidate, _ = _candidate_and_baseline(fake_mlflow)
    card = publish(services, candidate, Told())
    [completed] = updates_of(slack, card)

    services.votes.vote(card["channel"], card["ts"], support.BO, VoteKind.APPROVE, Via.BUTTON, Told())

    assert fake_mlflow.review(candidate).status is ReviewStatus.APPROVED
    voted = updates_of(slack, card)[-1]["blocks"]
    assert _fields(voted) == _fields(completed["blocks"])  # the baseline and the model version stay
    assert _params_text(voted) == _params_text(completed["blocks"])
    assert _status(voted) != _status(completed["blocks"]) and "Approved" in _status(voted)


def test_a_registry_that_cannot_be_read_leaves_a_card_without_versions_and_a_note(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
) -> None:
    services = make_services(**PRIMARY)
    candidate, _ = _candidate_and_baseline(fake_mlflow)
    fake_mlflow.fail_calls = {"model_versions_of"}
    told = Told()

    card = publish(services, candidate, told)

    blocks = updates_of(slack, card)[-1]["blocks"]
    assert not any(f.startswith("*Registered models*") for f in _fields(blocks))
    assert any(f.startswith("*Baseline*\nvs <") for f in _fields(blocks))  # the rest is there
    assert thread_texts(slack, card)[0] == REGISTRY_NOT_READ.format(
        why=MLFLOW_SILENT.format(uri=fake_mlflow.tracking_uri)
    )
    review = fake_mlflow.review(candidate)
    assert review is not None and review.slack_ts == card["ts"] and review.covers == []
    assert told == [
        POSTED.format(where=channel_mention(support.REVIEW_CHANNEL), permalink=review.slack_permalink)
    ]


def test_a_baseline_that_cannot_be_looked_up_leaves_a_card_without_it_and_a_note(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
) -> None:
    services = make_services(**PRIMARY)
    candidate, baseline = _candidate_and_baseline(fake_mlflow)
    publish(services, candidate, Told())  # an earlier request, with its baseline in the run's tags
    assert tags.baseline_from_tags(fake_mlflow.tags_of(candidate)).run_id == baseline
    fake_mlflow.fail_calls = {"best_finished_runs"}
    told = Told()

    card = publish(services, candidate, told)

    blocks = updates_of(slack, card)[-1]["blocks"]
    assert not any(f.startswith("*Baseline*") for f in _fields(blocks))
    assert f"*Registered models*\n{MODEL} v1" in _fields(blocks)
    assert DIFFERS_MARK not in _params_text(blocks)
    texts = thread_texts(slack, card)
    assert texts[0] == BASELINE_NOT_READ.format(why=MLFLOW_SILENT.format(uri=fake_mlflow.tracking_uri))
    # The earlier baseline is cleared, so a vote's update does not bring it back.
    assert tags.baseline_from_tags(fake_mlflow.tags_of(candidate)) is None
    services.votes.vote(card["channel"], card["ts"], support.BO, VoteKind.APPROVE, Via.BUTTON, Told())
    assert not any(f.startswith("*Baseline*") for f in _fields(updates_of(slack, card)[-1]["blocks"]))
    assert not any(is_unexpected(t) for t in told)


def test_a_baseline_run_that_cannot_be_read_is_no_baseline(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
) -> None:
    services = make_services(**PRIMARY)
    candidate, _ = _candidate_and_baseline(fake_mlflow)
    fake_mlflow.fail_calls = {"compared_summaries"}

    card = publish(services, candidate, Told())

    blocks = updates_of(slack, card)[-1]["blocks"]
    assert not any(f.startswith("*Baseline*") for f in _fields(blocks))
    assert thread_texts(slack, card)[0].startswith(BASELINE_NOT_READ.split("{why}")[0])
    assert tags.baseline_from_tags(fake_mlflow.tags_of(candidate)) is None


def test_a_failure_nobody_planned_in_a_read_after_the_card_is_a_note_with_its_id(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = make_services(**PRIMARY)
    candidate, _ = _candidate_and_baseline(fake_mlflow)
    fake_mlflow.crash_calls = {"model_versions_of"}
    told = Told()

    with caplog.at_level(logging.ERROR):
        card = publish(services, candidate, told)

    note = thread_texts(slack, card)[0]
    before, after = REGISTRY_NOT_READ.split("{why}")
    assert note.startswith(before) and note.endswith(after)
    why = note[len(before) : len(note) - len(after)]
    error_id = why.removeprefix(UNEXPECTED_WHY.split("{error_id}")[0])
    assert len(error_id) == 8 and any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert fake_mlflow.review(candidate) is not None  # the request is on record
    assert not any(is_unexpected(t) for t in told)
    assert "*Baseline*" in json.dumps(updates_of(slack, card)[-1]["blocks"][1])


def test_a_card_without_baseline_or_versions_is_updated_once_with_none_found(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    publish: Callable[..., dict[str, Any]],
) -> None:
    """Without PRIMARY_METRIC or versions, the complete card only adds its Baseline field ("none")."""
    services = make_services()
    run_id = fake_mlflow.add_run("lonely", metrics={"val_auc": 0.9}, params={"a": "1"})

    card = publish(services, run_id, Told())

    [update] = updates_of(slack, card)
    posted = _fields(_posted(slack, card))
    assert posted[-1] == f"*Baseline*\n{BASELINE_PENDING}"
    assert _fields(update["blocks"])[:-1] == posted[:-1]
    assert _fields(update["blocks"])[-1].startswith("*Baseline*\n_none")


def test_a_request_that_cannot_be_recorded_leaves_the_card_showing_a_vote_recorded_meanwhile(
    make_services: Callable[..., Services],
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
) -> None:
    """Between the card's first read and the request's write another worker records a vote (and updates
    the card); then this write fails. The completed card must show the run's review as it is now, not as
    it was first read, or the vote would vanish from the card until the next update."""
    services = make_services()
    run_id = fake_mlflow.add_run("gbm-voted", metrics={"val_auc": 0.9}, params=CANDIDATE_PARAMS)
    read_tags = fake_mlflow.run_tags

    def vote_lands_then_writes_fail(run: str) -> dict[str, str]:
        if not fake_mlflow.writes_down:
            vote = Vote(user=support.BO, name="bo", at=datetime.now(tz=UTC), via=Via.BUTTON)
            fake_mlflow.record_review(
                ReviewState(run_id=run, status=ReviewStatus.APPROVED, approvals=[vote]), read_tags(run), []
            )
            fake_mlflow.writes_down = True
        return read_tags(run)

    fake_mlflow.run_tags = vote_lands_then_writes_fail  # type: ignore[method-assign]
    told = Told()
    ts = services.publisher.publish(
        run_ref(run_id), requested_by=support.ANA, origin_channel=support.DEV_CHANNEL, notify=told
    )

    assert ts is not None
    assert REQUEST_NOT_RECORDED in told
    [card] = [c for c in cards_for(slack, run_id) if c["ts"] == ts]
    # shown as recorded: approved by the voter (the card shows voters by name)
    assert _status(card["blocks"]).startswith(f"{APPROVED_STATUS} by bo ")
