"""The deployment gate's verdict on a recorded review. Pure.

The review it is given is what bot.signature.Verifier.review read: a record that is not signed by
review-bot, or was changed after signing, arrives as pending with the reason in `untrusted`. What is
judged is a subject (bot.subjects): a run, a LoggedModel without a run, a model version without either,
or a prompt version. One rule for all of them, shared with the nudges and the digest
(bot.nudges.rules.needs_nudge): only a signed approval of a subject that still exists counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import ReviewState, ReviewStatus
from bot.subjects import plain_name

DELETED = (
    "not approved: {what} was deleted in MLflow, so its review no longer counts (restore it, or review "
    "what replaced it)"
)


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str  # one line, for a CI log


def gate_verdict(
    subject: str, state: ReviewState | None, version: str | None = None, *, deleted: bool = False
) -> Verdict:
    """`version` ("name/number"), when the gate was asked about a model version: the signed decision
    must cover it (a version registered from the run after the decision was not reviewed). `deleted`:
    the subject was deleted in MLflow (its tags may still say approved)."""
    what = plain_name(subject)
    if deleted:
        return Verdict(False, DELETED.format(what=what))
    if state is None:
        return Verdict(False, f"not approved: {what} was never put up for review (/review {_ref(subject)})")
    if state.untrusted:
        return Verdict(False, f"not approved: {state.untrusted} ({what})")
    if state.status is ReviewStatus.APPROVED:
        if version is not None and version not in state.covers:
            return Verdict(
                False,
                f"not approved: model version {version} is not one the approval of {what} covers "
                f"({', '.join(state.covers) or 'none were registered then'}); ask for a review again "
                f"(/review models:/{version}) so reviewers see it",
            )
        names = ", ".join(f"{v.name} ({v.user})" for v in state.approvals)
        when = state.decided_at.isoformat().replace("+00:00", "Z") if state.decided_at else "unknown time"
        return Verdict(True, f"approved: {what} approved by {names} at {when} (signed by review-bot)")
    if state.status is ReviewStatus.CHANGES_REQUESTED:
        names = ", ".join(v.name for v in state.change_requests)
        return Verdict(False, f"not approved: changes requested on {what} by {names}")
    return Verdict(
        False,
        f"not approved: the review of {what} is pending ({len(state.approvals)} approval(s) so far)",
    )


def _ref(subject: str) -> str:
    """What to type after /review to ask for it: the subject id is one (m-… as models:/m-…)."""
    return f"models:/{subject}" if subject.startswith("m-") else subject
