"""The deployment gate's verdict on a run's recorded review. Pure.

The review it is given is what bot.signature.Verifier.review read: a record that is not signed by
review-bot, or was changed after signing, arrives as pending with the reason in `untrusted`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import ReviewState, ReviewStatus


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str  # one line, for a CI log


def gate_verdict(run_id: str, state: ReviewState | None, version: str | None = None) -> Verdict:
    """`version` ("name/number"), when the gate was asked about a model version: the signed decision
    must cover it (a version registered from the run after the decision was not reviewed)."""
    if state is None:
        return Verdict(False, f"not approved: run {run_id} was never put up for review (/review {run_id})")
    if state.untrusted:
        return Verdict(False, f"not approved: {state.untrusted} (run {run_id})")
    if state.status is ReviewStatus.APPROVED:
        if version is not None and version not in state.covers:
            return Verdict(
                False,
                f"not approved: model version {version} is not one the approval of run {run_id} covers "
                f"({', '.join(state.covers) or 'none were registered then'}); ask for a review again "
                f"(/review models:/{version}) so reviewers see it",
            )
        names = ", ".join(f"{v.name} ({v.user})" for v in state.approvals)
        when = state.decided_at.isoformat().replace("+00:00", "Z") if state.decided_at else "unknown time"
        return Verdict(True, f"approved: run {run_id} approved by {names} at {when} (signed by review-bot)")
    if state.status is ReviewStatus.CHANGES_REQUESTED:
        names = ", ".join(v.name for v in state.change_requests)
        return Verdict(False, f"not approved: changes requested on run {run_id} by {names}")
    return Verdict(
        False,
        f"not approved: the review of run {run_id} is pending ({len(state.approvals)} approval(s) so far)",
    )
