"""The deployment gate's verdict on a run's recorded review. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import ReviewState, ReviewStatus


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str  # one line, for a CI log


def gate_verdict(run_id: str, state: ReviewState | None) -> Verdict:
    if state is None:
        return Verdict(False, f"not approved: run {run_id} was never put up for review (/review {run_id})")
    if state.status is ReviewStatus.APPROVED:
        names = ", ".join(v.name for v in state.approvals)
        when = state.decided_at.isoformat().replace("+00:00", "Z") if state.decided_at else "unknown time"
        return Verdict(True, f"approved: run {run_id} approved by {names} at {when}")
    if state.status is ReviewStatus.CHANGES_REQUESTED:
        names = ", ".join(v.name for v in state.change_requests)
        return Verdict(False, f"not approved: changes requested on run {run_id} by {names}")
    return Verdict(
        False,
        f"not approved: the review of run {run_id} is pending ({len(state.approvals)} approval(s) so far)",
    )
