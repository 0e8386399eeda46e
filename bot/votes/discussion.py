"""The review's discussion as Markdown, kept with the run as `review/discussion.md`. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.models import ReviewState, RunSummary, Vote


@dataclass(frozen=True)
class ThreadMessage:
    author: str  # a display name, resolved from the Slack user id
    at: datetime
    text: str


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _votes(votes: Sequence[Vote]) -> str:
    return ", ".join(f"{v.name} ({_utc(v.at)}, {v.via.value})" for v in votes) or "none"


def build_discussion_markdown(
    summary: RunSummary, state: ReviewState, messages: Sequence[ThreadMessage]
) -> str:
    lines = [
        f"# Review of {summary.run_name}",
        "",
        f"- Run: `{summary.run_id}` in experiment {summary.experiment_name}",
        f"- Status: **{state.status.value}** (decided {_utc(state.decided_at)})",
        f"- Requested by: {state.requested_by or '—'} at {_utc(state.requested_at)}",
        f"- Approvals: {_votes(state.approvals)}",
        f"- Change requests: {_votes(state.change_requests)}",
    ]
    if state.slack_permalink:
        lines.append(f"- Slack thread: {state.slack_permalink}")
    lines += ["", "## Discussion", ""]
    if not messages:
        lines.append("_No discussion in the thread._")
    for message in messages:
        lines += [f"**{message.author}**, {_utc(message.at)}:", "", message.text.strip() or "_(no text)_", ""]
    return "\n".join(lines).rstrip() + "\n"
