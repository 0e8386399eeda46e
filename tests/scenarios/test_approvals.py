"""Approvals: buttons and reactions on a card become the review decision, recorded as MLflow tags."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot import tags
from bot.ids import ActionId
from tests import support
from tests.scenarios.helpers import blocks_text, cards_for, post_card, response_texts, run_gate

APPROVE = ActionId.APPROVE.value
CHANGES = ActionId.REQUEST_CHANGES.value


def click(bot, slack, card, action: str, user: str) -> str:
    url = slack.new_response_url()
    reply = bot.block_action(action, "{}", url, message=card, channel=card["channel"], user=user)
    assert reply.status_code == 200
    return url


def react(bot, user: str, card: dict, emoji: str, *, removed: bool = False, item_user: str = "U0BOT") -> None:
    event = support.reaction_event(
        user, emoji, card["channel"], card["ts"], removed=removed, item_user=item_user
    )
    reply = bot.post_signed(support.event_body(event, f"Ev{uuid.uuid4().hex[:12]}"), "application/json")
    assert reply.status_code == 200


def status(runs, run_id: str) -> str:
    return runs.tags(run_id).get("review.status", "")


def votes(runs, run_id: str, kind: str = "approve") -> list[dict]:
    """The run's votes of one kind, as its per-voter tags hold them (bot.tags), with their user ids."""
    found = []
    for key, value in runs.tags(run_id).items():
        if key.startswith(tags.VOTE_PREFIX) and value and json.loads(value)["kind"] == kind:
            found.append({**json.loads(value), "user": key.removeprefix(tags.VOTE_PREFIX)})
    return sorted(found, key=lambda v: v["at"])


def test_posting_the_card_records_the_request(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually)
    tags = eventually(lambda: runs.tags(run_id) if "review.slack_ts" in runs.tags(run_id) else None)
    assert tags["review.status"] == "pending"
    assert tags["review.requested_by"] == support.ANA and tags["review.requested_at"].endswith("Z")
    assert (tags["review.slack_channel"], tags["review.slack_ts"]) == (card["channel"], card["ts"])
    assert tags["review.slack_permalink"].startswith("https://test.slack.com/archives/")
    assert tags["review.approval_count"] == "0" and tags["review.decided_at"] == ""
    assert tags["review.signature"].startswith("ed25519:")  # the request is signed too


def test_approve_button_records_tags_updates_card_and_keeps_the_discussion(
    bot, slack, runs, eventually
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="approve-me")
    version = runs.register("approvals-clf", run_id)
    slack.add_message(
        card["channel"], "AUC looks solid, confusion matrix too.", support.CAROL, thread_ts=card["ts"]
    )

    click(bot, slack, card, APPROVE, support.BO)

    eventually(lambda: status(runs, run_id) == "approved")
    tags = runs.tags(run_id)
    [vote] = votes(runs, run_id)
    assert (vote["user"], vote["name"], vote["via"]) == (support.BO, "Bo Chen", "button")
    assert tags["review.decided_at"].endswith("Z") and votes(runs, run_id, "request_changes") == []
    mv_tags = eventually(  # mirrored right after the run's own tags
        lambda: (
            runs.client.get_model_version("approvals-clf", version).tags["review.slack_permalink"]
            and runs.client.get_model_version("approvals-clf", version).tags
        )
    )
    assert mv_tags["review.status"] == "approved"
    assert mv_tags["review.slack_permalink"] == tags["review.slack_permalink"]
    assert mv_tags["review.decided_at"] == tags["review.decided_at"]

    updated = eventually(
        lambda: [c for c in slack.calls_to("chat.update") if c.args.get("ts") == card["ts"]][-1]
    )
    assert "*Approved* by Bo Chen" in json.dumps(updated.args["blocks"])
    thread = " ".join(m.get("text", "") for m in slack.thread(card["channel"], card["ts"]))
    assert "Bo Chen approved. The review is now *approved*." in thread

    discussion = eventually(lambda: runs.client.download_artifacts(run_id, "review/discussion.md", "/tmp"))
    text = Path(discussion).read_text()
    assert "Carol Diaz" in text and "AUC looks solid" in text and "UTC" in text and "Bo Chen" in text


def test_the_requester_cannot_approve(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, requester=support.ANA)
    url = click(bot, slack, card, APPROVE, support.ANA)
    assert "you requested this review" in eventually(lambda: response_texts(slack, url)[0])
    assert status(runs, run_id) == "pending" and votes(runs, run_id) == []


def test_the_run_author_cannot_approve_matched_by_email(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, user="bo.chen", requester=support.ANA)
    url = click(bot, slack, card, APPROVE, support.BO)
    assert "you trained this run (`bo.chen`)" in eventually(lambda: response_texts(slack, url)[0])
    assert status(runs, run_id) == "pending"


def test_reactions_vote_and_removing_one_withdraws_it(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually)
    react(bot, support.CAROL, card, "white_check_mark")
    eventually(lambda: status(runs, run_id) == "approved")
    assert [v["via"] for v in votes(runs, run_id)] == ["reaction"]

    react(bot, support.CAROL, card, "white_check_mark", removed=True)
    eventually(lambda: status(runs, run_id) == "pending")
    assert votes(runs, run_id) == [] and runs.tags(run_id)["review.decided_at"] == ""

    react(bot, support.CAROL, card, "x")
    eventually(lambda: status(runs, run_id) == "changes_requested")


def test_changing_ones_vote_replaces_it_and_voting_twice_changes_nothing(
    bot, slack, runs, eventually
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually)
    click(bot, slack, card, CHANGES, support.BO)
    eventually(lambda: status(runs, run_id) == "changes_requested")
    assert [v["user"] for v in votes(runs, run_id, "request_changes")] == [support.BO]

    click(bot, slack, card, APPROVE, support.BO)
    eventually(lambda: status(runs, run_id) == "approved")
    assert votes(runs, run_id, "request_changes") == []

    react(bot, support.BO, card, "white_check_mark")  # the same approval again, by emoji
    assert "already approved" in eventually(
        lambda: [
            e["text"] for e in slack.ephemerals if e.get("user") == support.BO and "already" in e["text"]
        ][-1]
    )
    assert len(votes(runs, run_id)) == 1


def test_reactions_on_other_messages_are_ignored(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually)
    human = slack.add_message(card["channel"], "unrelated", support.CAROL)
    react(
        bot,
        support.DAN,
        {"channel": card["channel"], "ts": human["ts"]},
        "white_check_mark",
        item_user=support.CAROL,
    )
    line = slack.add_message(
        card["channel"], "a bot line", "U0BOT", thread_ts=card["ts"]
    )  # ours, but no card
    react(bot, support.DAN, {"channel": card["channel"], "ts": line["ts"]}, "white_check_mark")
    eventually(
        lambda: [c for c in slack.calls_to("conversations.history") if c.args.get("latest") == line["ts"]]
    )
    react(bot, support.DAN, card, "x")  # a real vote afterwards proves the bot was listening
    eventually(lambda: status(runs, run_id) == "changes_requested")
    assert votes(runs, run_id) == [] and not [e for e in slack.ephemerals if e.get("user") == support.DAN]


def test_only_reviewers_count_and_two_approvals_are_required(bots, slack, runs, eventually) -> None:
    bot = bots.get(REVIEWERS=support.BO, REVIEWER_GROUP=support.ML_REVIEWERS_GROUP, REQUIRED_APPROVALS="2")
    run_id, card = post_card(bot, slack, runs, eventually)
    url = click(bot, slack, card, APPROVE, support.CAROL)
    assert "only the model's reviewers vote" in eventually(lambda: response_texts(slack, url)[0])

    click(bot, slack, card, APPROVE, support.BO)
    eventually(lambda: len(votes(runs, run_id)) == 1)
    assert status(runs, run_id) == "pending"
    click(bot, slack, card, APPROVE, support.DAN)  # a member of REVIEWER_GROUP
    eventually(lambda: status(runs, run_id) == "approved")
    assert {v["user"] for v in votes(runs, run_id)} == {support.BO, support.DAN}


def test_racing_votes_on_two_processes_are_all_recorded(bots, slack, runs, eventually) -> None:
    settings = {"REVIEWERS": f"{support.BO},{support.DAN},{support.CAROL}", "REQUIRED_APPROVALS": "3"}
    first, second = bots.get(**settings), bots.get(**settings, BOT_INSTANCE="second")
    cards = [post_card(first, slack, runs, eventually, name=f"race-{i}") for i in range(4)]
    clicks = [
        (bot, card, user)
        for _, card in cards
        for bot, user in ((first, support.BO), (second, support.DAN), (second, support.CAROL))
    ]
    with ThreadPoolExecutor(max_workers=len(clicks)) as pool:
        list(pool.map(lambda c: click(c[0], slack, c[1], APPROVE, c[2]), clicks))
    for run_id, _ in cards:
        eventually(lambda run_id=run_id: status(runs, run_id) == "approved", timeout=60)
        assert {v["user"] for v in votes(runs, run_id)} == {support.BO, support.DAN, support.CAROL}


def test_a_card_unknown_to_this_process_is_recognised_from_its_metadata(
    bots, bot, slack, runs, eventually
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually)
    elsewhere = bots.get(REDIS_URL="")  # its own empty in-process store: it never saw the card posted
    click(elsewhere, slack, card, APPROVE, support.BO)
    eventually(lambda: status(runs, run_id) == "approved")
    lookups = [c for c in slack.calls_to("conversations.history") if c.args.get("latest") == card["ts"]]
    assert lookups and lookups[-1].args.get("include_all_metadata") in (True, "true", "1")


def test_a_vote_mlflow_did_not_take_is_kept_and_recorded_by_a_replica_that_reaches_it(
    bots, bot, slack, runs, eventually
) -> None:
    """The replica that took the click cannot reach MLflow: the voter hears the vote is kept, nothing is
    written then, and another replica's sweeper records it (the click was queued in Redis before the ack)."""
    run_id, card = post_card(bot, slack, runs, eventually)
    before = runs.tags(run_id)
    dead = f"http://127.0.0.1:{support.free_port()}"
    url = click(bots.get(MLFLOW_TRACKING_URI=dead), slack, card, APPROVE, support.BO)
    text = eventually(lambda: response_texts(slack, url)[0])
    assert "not on the record yet" in text and dead in text
    assert runs.tags(run_id) == before
    # (Any replica of this session's Redis may be the one: they differ in settings, so check the vote.)
    eventually(lambda: [v["user"] for v in votes(runs, run_id)] == [support.BO], timeout=60)


def test_a_new_review_of_an_approved_run_shows_its_state(bot, slack, runs, eventually) -> None:
    run_id, card = post_card(bot, slack, runs, eventually)
    click(bot, slack, card, APPROVE, support.BO)
    eventually(lambda: status(runs, run_id) == "approved")
    url = slack.new_response_url()
    bot.command(run_id, url, user=support.DAN)
    again = eventually(lambda: [c for c in cards_for(slack, run_id) if c["ts"] != card["ts"]][0])
    assert "*Approved* by Bo Chen" in blocks_text(again)
    eventually(lambda: runs.tags(run_id).get("review.slack_ts") == again["ts"])
    tags = runs.tags(run_id)
    assert tags["review.status"] == "approved" and tags["review.requested_by"] == support.ANA


def test_gate_passes_approved_and_blocks_everything_else(
    bot, slack, runs, mlflow_server, tmp_path, eventually
) -> None:
    approved, card = post_card(bot, slack, runs, eventually, name="gate-approved")
    runs.register("gate-clf", approved, alias="champion")
    click(bot, slack, card, APPROVE, support.BO)
    eventually(lambda: status(runs, approved) == "approved")
    pending, _ = post_card(bot, slack, runs, eventually, name="gate-pending")
    never = runs.make_run("gate-never")

    ok = run_gate("models:/gate-clf@champion", mlflow_server, tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("approved:") and "Bo Chen" in ok.stdout
    blocked = run_gate(pending, mlflow_server, tmp_path)
    assert blocked.returncode == 1 and "pending" in blocked.stdout and len(blocked.stdout.splitlines()) == 1
    unreviewed = run_gate(f"runs:/{never}/model", mlflow_server, tmp_path)
    assert unreviewed.returncode == 1 and "never put up for review" in unreviewed.stdout


@pytest.mark.parametrize("ref", ["models:/no-such-model/1", "not-a-run"])
def test_gate_errors_exit_2(mlflow_server, tmp_path, ref) -> None:
    result = run_gate(ref, mlflow_server, tmp_path)
    assert (
        result.returncode == 2
        and result.stderr.startswith("review-bot gate: ")
        and "Traceback" not in result.stderr
    )


def test_gate_with_mlflow_unreachable_exits_2(tmp_path) -> None:
    dead = f"http://127.0.0.1:{support.free_port()}"
    result = run_gate(support.new_run_id(), dead, tmp_path)
    assert result.returncode == 2 and dead in result.stderr
