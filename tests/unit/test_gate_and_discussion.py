"""The gate's verdicts and the discussion record, from hand-built review states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.models import ReviewState, ReviewStatus, RunSummary, Via, Vote
from bot.votes.discussion import ThreadMessage, build_discussion_markdown
from bot.votes.gate import gate_verdict

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
BO = Vote(user="U0BO", name="Bo Chen", at=AT, via=Via.BUTTON)
DAN = Vote(user="U0DAN", name="Dan Okafor", at=AT, via=Via.REACTION)


@pytest.mark.parametrize(
    ("state", "approved", "reason"),
    [
        (None, False, "not approved: run r1 was never put up for review (/review r1)"),
        (
            ReviewState(run_id="r1", status=ReviewStatus.APPROVED, approvals=[BO, DAN], decided_at=AT),
            True,
            "approved: run r1 approved by Bo Chen (U0BO), Dan Okafor (U0DAN) at 2026-11-25T09:30:00Z "
            "(signed by review-bot)",
        ),
        (
            ReviewState(run_id="r1", status=ReviewStatus.CHANGES_REQUESTED, change_requests=[DAN]),
            False,
            "not approved: changes requested on run r1 by Dan Okafor",
        ),
        (
            ReviewState(run_id="r1", approvals=[BO]),
            False,
            "not approved: the review of run r1 is pending (1 approval(s) so far)",
        ),
    ],
)
def test_gate_verdicts(state, approved, reason) -> None:
    verdict = gate_verdict("r1", state)
    assert (verdict.approved, verdict.reason) == (approved, reason)
    assert "\n" not in verdict.reason


def test_discussion_markdown_names_votes_and_messages_in_utc() -> None:
    summary = RunSummary(run_id="r1", run_name="gbm", experiment_id="1", experiment_name="fraud")
    state = ReviewState(
        run_id="r1",
        status=ReviewStatus.APPROVED,
        approvals=[BO],
        requested_by="U0ANA",
        requested_at=AT,
        decided_at=AT,
        slack_permalink="https://x.slack.com/archives/C1/p1",
    )
    messages = [ThreadMessage("Carol Diaz", datetime(2026, 11, 25, 10, 0, tzinfo=UTC), "Looks *good*")]
    text = build_discussion_markdown(summary, state, messages)
    assert text.startswith("# Review of gbm\n")
    assert "- Status: **approved** (decided 2026-11-25 09:30 UTC)" in text
    assert "- Approvals: Bo Chen (2026-11-25 09:30 UTC, button)" in text
    assert "- Change requests: none" in text
    assert "- Slack thread: https://x.slack.com/archives/C1/p1" in text
    assert "**Carol Diaz**, 2026-11-25 10:00 UTC:\n\nLooks *good*\n" in text


def test_discussion_without_messages_says_so() -> None:
    summary = RunSummary(run_id="r1", run_name="gbm", experiment_id="1", experiment_name="fraud")
    text = build_discussion_markdown(summary, ReviewState(run_id="r1"), [])
    assert "_No discussion in the thread._" in text and "Slack thread" not in text
