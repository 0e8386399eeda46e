"""Unit tests for bot.signature: what the bot signs, and what the gate accepts as signed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import signature, tags
from bot.models import ReviewState, ReviewStatus, Via, Vote
from bot.votes.gate import gate_verdict
from tests import support

RUN_ID = "0123456789abcdef0123456789abcdef"
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
BO = Vote(user="U0BO", name="Bo Chen", at=AT, via=Via.BUTTON)
APPROVED = ReviewState(
    run_id=RUN_ID,
    status=ReviewStatus.APPROVED,
    approvals=[BO],
    requested_by="U0ANA",
    decided_at=AT,
    last_click={"U0BO": AT},
    covers=["fraud-clf/3"],
    slack_channel="C0REVIEW",
    slack_ts="1.1",
)
SIGNER = signature.Signer(signature.private_key(support.SIGNING_KEY))
GATE = signature.verifier_for([support.PUBLIC_KEY])


def signed(state: ReviewState = APPROVED, extra: dict[str, str] | None = None) -> dict[str, str]:
    run_tags = {**tags.review_tags(state), **(extra or {})}
    return {**run_tags, tags.SIGNATURE: SIGNER.sign(RUN_ID, run_tags)}


def test_a_decision_the_bot_signed_passes_the_gate() -> None:
    state = GATE.review(RUN_ID, signed())
    assert state == APPROVED
    verdict = gate_verdict(RUN_ID, state)
    assert verdict.approved and "Bo Chen (U0BO)" in verdict.reason


def test_status_approved_set_by_hand_is_not_approved() -> None:
    """What the run's author can do with the MLflow client: no card, no vote, no signature."""
    state = GATE.review(RUN_ID, {tags.STATUS: "approved"})
    verdict = gate_verdict(RUN_ID, state)
    assert not verdict.approved
    assert verdict.reason == f"not approved: the decision is not signed by review-bot (run {RUN_ID})"


def test_hand_written_votes_are_not_approved() -> None:
    forged = {
        **tags.review_tags(APPROVED),
        tags.APPROVALS: '[{"user":"U0ANA","name":"ana","at":"2026-01-01"}]',
    }
    assert not gate_verdict(RUN_ID, GATE.review(RUN_ID, forged)).approved


@pytest.mark.parametrize(
    "key",
    [
        tags.STATUS,
        tags.DECIDED_AT,
        tags.REQUESTED_BY,
        tags.MODEL_VERSIONS,
        tags.APPROVAL_COUNT,
        tags.vote_key("U0BO"),
    ],
)
def test_one_changed_character_in_a_signed_tag_is_not_approved(key: str) -> None:
    run_tags = signed()
    value = run_tags[key]
    if "Bo Chen" in value:  # inside the vote's JSON, so it still reads
        run_tags[key] = value.replace("Bo Chen", "Bo Chem")
    else:
        run_tags[key] = value[:-1] + ("x" if value[-1:] != "x" else "y") if value else "x"
    verdict = gate_verdict(RUN_ID, GATE.review(RUN_ID, run_tags))
    assert not verdict.approved and "changed after it was signed" in verdict.reason


def test_a_vote_tag_added_after_signing_is_not_approved() -> None:
    run_tags = {**signed(), tags.vote_key("U0EVE"): tags.review_tags(APPROVED)[tags.vote_key("U0BO")]}
    assert not gate_verdict(RUN_ID, GATE.review(RUN_ID, run_tags)).approved


def test_tags_outside_the_decision_may_change() -> None:
    """The card's place in Slack, the baseline and the meeting are not the decision."""
    run_tags = signed()
    run_tags |= {tags.SLACK_TS: "9.9", tags.MEETING_AT: "2026-12-01T10:00:00Z", tags.BASELINE: "{}"}
    assert gate_verdict(RUN_ID, GATE.review(RUN_ID, run_tags)).approved


def test_a_signature_copied_from_another_run_is_not_approved() -> None:
    run_tags = signed()
    assert not gate_verdict("f" * 32, GATE.review("f" * 32, run_tags)).approved


def test_a_key_the_gate_does_not_trust_is_named() -> None:
    other = signature.Signer(signature.private_key(support.OTHER_SIGNING_KEY))
    run_tags = tags.review_tags(APPROVED)
    run_tags[tags.SIGNATURE] = other.sign(RUN_ID, run_tags)
    verdict = gate_verdict(RUN_ID, GATE.review(RUN_ID, run_tags))
    assert not verdict.approved and other.key_id in verdict.reason and "REVIEW_PUBLIC_KEYS" in verdict.reason


def test_rotation_old_and_new_keys_both_verify() -> None:
    new = signature.Signer(signature.private_key(support.OTHER_SIGNING_KEY))
    both = signature.verifier_for([support.PUBLIC_KEY, signature.public_text(new.public)])
    for signer in (SIGNER, new):
        run_tags = tags.review_tags(APPROVED)
        run_tags[tags.SIGNATURE] = signer.sign(RUN_ID, run_tags)
        assert gate_verdict(RUN_ID, both.review(RUN_ID, run_tags)).approved


@pytest.mark.parametrize(
    "value", ["", "ed25519", "rsa:abc:def", "ed25519:kid:", f"ed25519:{SIGNER.key_id}:!!!"]
)
def test_a_malformed_signature_is_not_approved(value: str) -> None:
    run_tags = {**tags.review_tags(APPROVED), tags.SIGNATURE: value}
    assert not gate_verdict(RUN_ID, GATE.review(RUN_ID, run_tags)).approved


def test_a_version_the_decision_does_not_cover_is_not_approved() -> None:
    state = GATE.review(RUN_ID, signed())
    assert gate_verdict(RUN_ID, state, "fraud-clf/3").approved
    verdict = gate_verdict(RUN_ID, state, "fraud-clf/4")
    assert not verdict.approved and "fraud-clf/4" in verdict.reason and "fraud-clf/3" in verdict.reason


def test_signing_is_deterministic_and_ignores_unsigned_tags() -> None:
    run_tags = tags.review_tags(APPROVED)
    assert SIGNER.sign(RUN_ID, run_tags) == SIGNER.sign(RUN_ID, {**run_tags, tags.SLACK_TS: "2.2", "x": "y"})


@pytest.mark.parametrize("text", ["", "abc", "AAAA", support.SIGNING_KEY + "AAAA"])
def test_a_bad_key_setting_says_how_to_make_one(text: str) -> None:
    with pytest.raises(signature.BadKey, match="review-bot keys generate"):
        signature.private_key(text)


def test_generate_makes_a_pair_that_works() -> None:
    pair = signature.generate()
    signer = signature.Signer(signature.private_key(pair.private))
    run_tags = tags.review_tags(APPROVED)
    run_tags[tags.SIGNATURE] = signer.sign(RUN_ID, run_tags)
    assert signature.verifier_for([pair.public]).problem(RUN_ID, run_tags) is None
    assert pair.private != pair.public


def test_a_broken_vote_tag_on_a_record_that_is_not_signed_blocks_nothing() -> None:
    run_tags = {**tags.review_tags(APPROVED), tags.vote_key("U0EVE"): "{"}
    state = GATE.review(RUN_ID, run_tags)
    assert state is not None and state.untrusted and state.approvals == []
