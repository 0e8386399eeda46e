"""Runs that are not finished: what the card and an approval say about them. Pure.

MLflow's run statuses are RUNNING, SCHEDULED, FINISHED, FAILED and KILLED. A review of an unfinished run
is allowed (people review early, or review a failure), but the card says what its numbers are worth, and
so does the reply to whoever approves it; the vote itself still counts.
"""

from __future__ import annotations

RUN_STATE_CAVEATS = {
    "RUNNING": ":warning: This run is still RUNNING: its metrics may still change.",
    "SCHEDULED": ":warning: This run is SCHEDULED and has not started: it has no results yet.",
    "FAILED": ":warning: This run FAILED: its metrics and artifacts may be incomplete.",
    "KILLED": ":warning: This run was KILLED: its metrics and artifacts may be incomplete.",
}
APPROVED_UNFINISHED = "Your approval is recorded. {caveat}"


def build_run_state_caveat(status: str) -> str | None:
    """The card's caveat for an unfinished run; None for a FINISHED one (or a status MLflow never sets)."""
    return RUN_STATE_CAVEATS.get(status.upper())


def build_approval_caveat(status: str) -> str | None:
    """What the person approving an unfinished run is told (ephemerally); None for a finished run."""
    caveat = build_run_state_caveat(status)
    return APPROVED_UNFINISHED.format(caveat=caveat) if caveat else None
