"""Every MLflow tag the bot reads or writes, with its format, in one place.

The `review.*` tags are an external contract: `review-bot gate` reads them in deploy pipelines, the
MLflow UI shows them, and people filter runs by them. Change a name or a format here only with a
migration for runs already reviewed. The `mlflow.*` tags are MLflow's own, read as MLflow writes them.

Pure: no MLflow calls, no clock. Each `*_tags` function writes a value's tags; each `*_from_tags`
reads them back and never raises on a hand-edited value (it drops what it cannot read).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError

from bot.models import Baseline, Meeting, ReviewState, ReviewStatus, Via, Vote

# --- MLflow's own tags, read ------------------------------------------------------------------------

RUN_NAME = "mlflow.runName"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
GIT_COMMIT = "mlflow.source.git.commit"
NOTE = "mlflow.note.content"  # the run's Markdown description
PARENT_RUN = "mlflow.parentRunId"
DATASET_CONTEXT = "mlflow.data.context"  # on a dataset input: "training", "eval", …

# --- the review (on the run) ------------------------------------------------------------------------

PREFIX = "review."  # every tag the bot writes; the registry webhooks of its own writes are ignored by it
STATUS = "review.status"  # pending | approved | changes_requested
APPROVALS = "review.approvals"  # JSON list of {"user", "name", "at" (ISO 8601 UTC, Z), "via"}
CHANGE_REQUESTS = "review.change_requests"  # same format as APPROVALS
REQUESTED_BY = "review.requested_by"  # Slack user id
REQUESTED_AT = "review.requested_at"  # ISO 8601 UTC, Z
DECIDED_AT = "review.decided_at"  # ISO 8601 UTC, Z; "" while pending
SLACK_CHANNEL = "review.slack_channel"  # the card's channel id
SLACK_TS = "review.slack_ts"  # the card's message ts
SLACK_PERMALINK = "review.slack_permalink"
# Mirrored onto every registered model version whose source is the run, for the registry page.
MODEL_VERSION_MIRROR = (STATUS, DECIDED_AT, SLACK_PERMALINK)
BASELINE = "review.baseline"  # JSON of bot.models.Baseline, without its defaults

# --- the review meeting (on the run) ----------------------------------------------------------------

MEETING_AT = "review.meeting_at"  # ISO 8601 UTC, Z; "" when cancelled
MEETING_INVITEES = "review.meeting_invitees"  # Slack user ids, comma-separated
MEETING_DURATION = "review.meeting_duration_min"  # whole minutes
MEETING_AGENDA = "review.meeting_agenda"  # free text, at most AGENDA_MAX_CHARS
MEETING_BY = "review.meeting_scheduled_by"  # Slack user id
MEETING = (MEETING_AT, MEETING_INVITEES, MEETING_DURATION, MEETING_AGENDA, MEETING_BY)
# Which meeting (its MEETING_AT value) the reminder and the start were already sent for.
MEETING_REMINDED = "review.meeting_reminded"
MEETING_STARTED = "review.meeting_started"
AGENDA_MAX_CHARS = 2000  # the modal's agenda input allows this much; MLflow tag values are bounded
DEFAULT_DURATION_MIN = 30

# --- nudges (on a model version) --------------------------------------------------------------------

SNOOZED_UNTIL = "review.snoozed_until"  # ISO 8601 UTC, Z: no nudge about this version before then

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")


# --- moments ----------------------------------------------------------------------------------------


def iso_utc(moment: datetime | None) -> str:
    """ISO 8601 in UTC with a Z; a naive moment is taken to be UTC already."""
    if moment is None:
        return ""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def parse_moment(text: str | None) -> datetime | None:
    """A timestamp tag, or None when it is missing or was edited into something unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the review -------------------------------------------------------------------------------------


def review_tags(state: ReviewState) -> dict[str, str]:
    def votes(items: list[Vote]) -> str:
        return json.dumps(
            [{"user": v.user, "name": v.name, "at": iso_utc(v.at), "via": v.via.value} for v in items],
            separators=(",", ":"),
        )

    return {
        STATUS: state.status.value,
        APPROVALS: votes(state.approvals),
        CHANGE_REQUESTS: votes(state.change_requests),
        REQUESTED_BY: state.requested_by,
        REQUESTED_AT: iso_utc(state.requested_at),
        DECIDED_AT: iso_utc(state.decided_at),
        SLACK_CHANNEL: state.slack_channel,
        SLACK_TS: state.slack_ts,
        SLACK_PERMALINK: state.slack_permalink,
    }


def review_from_tags(run_id: str, tags: Mapping[str, str]) -> ReviewState | None:
    """The recorded review, or None when the run was never put up for review."""
    if STATUS not in tags:
        return None

    def votes(key: str) -> list[Vote]:
        try:
            raw = json.loads(tags.get(key) or "[]")
        except json.JSONDecodeError:
            return []
        if not isinstance(raw, list):  # e.g. "null" or "{}" after a hand edit
            return []
        found: list[Vote] = []
        for v in raw:
            try:
                user = v["user"]
                found.append(
                    Vote(user=user, name=v.get("name", user), at=v["at"], via=Via(v.get("via", "button")))
                )
            except (TypeError, KeyError, AttributeError, ValueError):  # one broken entry drops only itself
                continue
        return found

    return ReviewState(
        run_id=run_id,
        status=ReviewStatus(tags[STATUS])
        if tags[STATUS] in ReviewStatus._value2member_map_
        else ReviewStatus.PENDING,
        approvals=votes(APPROVALS),
        change_requests=votes(CHANGE_REQUESTS),
        requested_by=tags.get(REQUESTED_BY, ""),
        requested_at=parse_moment(tags.get(REQUESTED_AT)),
        decided_at=parse_moment(tags.get(DECIDED_AT)),
        slack_channel=tags.get(SLACK_CHANNEL, ""),
        slack_ts=tags.get(SLACK_TS, ""),
        slack_permalink=tags.get(SLACK_PERMALINK, ""),
    )


# --- the baseline -----------------------------------------------------------------------------------


def baseline_tags(baseline: Baseline) -> dict[str, str]:
    return {BASELINE: baseline.model_dump_json(exclude_defaults=True)}


def baseline_from_tags(tags: Mapping[str, str]) -> Baseline | None:
    raw = tags.get(BASELINE)
    if not raw:
        return None
    try:
        return Baseline.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None  # written by hand or by a newer bot: the card goes without it


# --- the meeting ------------------------------------------------------------------------------------


def meeting_tags(meeting: Meeting) -> dict[str, str]:
    """The run's review.meeting_* tags for this meeting (the card's channel/ts live in the review's tags)."""
    return {
        MEETING_AT: iso_utc(meeting.at),
        MEETING_INVITEES: ",".join(meeting.invitees),
        MEETING_DURATION: str(meeting.duration_min),
        MEETING_AGENDA: meeting.agenda[:AGENDA_MAX_CHARS],
        MEETING_BY: meeting.scheduled_by,
    }


def cleared_meeting_tags() -> dict[str, str]:
    """What a cancelled meeting leaves: every meeting tag empty (MLflow keeps tags; empty means none)."""
    return dict.fromkeys(MEETING, "")


def meeting_from_tags(run_id: str, tags: Mapping[str, str]) -> Meeting | None:
    """The scheduled meeting, or None when there is none (or its time was hand-edited into nonsense)."""
    at = parse_moment(tags.get(MEETING_AT, ""))
    if at is None:
        return None
    try:
        duration = int(tags.get(MEETING_DURATION) or DEFAULT_DURATION_MIN)
    except ValueError:
        duration = DEFAULT_DURATION_MIN
    # Tags can be edited by anyone with MLflow access: keep only what looks like a Slack user id, so a
    # hand-edited value can never turn into `<!channel>` when mentioned.
    invitees = [u.strip() for u in tags.get(MEETING_INVITEES, "").split(",")]
    return Meeting(
        run_id=run_id,
        at=at,
        duration_min=duration if duration > 0 else DEFAULT_DURATION_MIN,
        invitees=[u for u in invitees if _SLACK_USER.match(u)],
        agenda=tags.get(MEETING_AGENDA, ""),
        scheduled_by=tags.get(MEETING_BY, ""),
        channel=tags.get(SLACK_CHANNEL, ""),
        ts=tags.get(SLACK_TS, ""),
    )
