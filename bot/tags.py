"""Every MLflow tag the bot reads or writes, with its format, in one place.

The `review.*` tags are an external contract: `review-bot gate` reads them in deploy pipelines, the
MLflow UI shows them, and people filter runs by them. Change a name or a format here only with a
migration for runs already reviewed. The `mlflow.*` tags are MLflow's own, read as MLflow writes them.

Pure: no MLflow calls, no clock. Each `*_tags` function writes a value's tags; each `*_from_tags`
reads them back. The review's vote tags are the record a deployment rests on: one the bot cannot read
raises UnreadableRecord (never "no votes", which the next vote would write back); the baseline and the
meeting drop what they cannot read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError

from bot.errors import ReviewBotError
from bot.models import Baseline, Meeting, ReviewState, ReviewStatus, Sweep, Via, Vote

# --- MLflow's own tags, read ------------------------------------------------------------------------

RUN_NAME = "mlflow.runName"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
GIT_COMMIT = "mlflow.source.git.commit"
NOTE = "mlflow.note.content"  # the run's Markdown description
PARENT_RUN = "mlflow.parentRunId"
DATASET_CONTEXT = "mlflow.data.context"  # on a dataset input: "training", "eval", …
PROMPT_MARKER = "mlflow.prompt.is_prompt"  # "true" on a prompt (its registered model) and its versions
LINKED_PROMPTS = "mlflow.linkedPrompts"  # on a run: JSON list of {"name": …, "version": "2"}
AUTHOR = "author"  # a prompt version's tag MLflow's own examples use for who wrote the change
MLFLOW_PREFIX = "mlflow."

# --- the review (on the run) ------------------------------------------------------------------------

PREFIX = "review."  # every tag the bot writes; the registry webhooks of its own writes are ignored by it
STATUS = "review.status"  # pending | approved | changes_requested
# One tag per voter, so no number of voters can push a tag past MLflow's value limit: the voter's
# current vote and the Slack time of the last click applied (later clicks win; older ones are ignored).
# {"kind": "approve" | "request_changes" | "" (none, e.g. withdrawn), "name", "at", "via", "seen"}
VOTE_PREFIX = "review.vote."  # + the voter's Slack user id
APPROVAL_COUNT = "review.approval_count"  # how many approve now (for filtering runs in the UI)
CHANGE_REQUEST_COUNT = "review.change_request_count"
MODEL_VERSIONS = "review.model_versions"  # JSON list of "name/version" the decision covers
SIGNATURE = "review.signature"  # "ed25519:<key id>:<base64>" over the signed tags (bot.votes.signature)
# Before per-voter tags (read only, for runs reviewed by earlier versions; never written again):
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
SWEEP = "review.sweep"  # a sweep's parent: JSON of bot.models.Sweep, without its defaults
# What the signature covers, with every VOTE_PREFIX tag: what the gate relies on. The Slack location,
# the baseline and the meeting are not part of the decision.
SIGNED = (STATUS, DECIDED_AT, REQUESTED_BY, APPROVAL_COUNT, CHANGE_REQUEST_COUNT, MODEL_VERSIONS)
VOTER_NAME_MAX_CHARS = 80

# Tags of a LoggedModel or a prompt version that are bookkeeping, not its author's: MLflow's (`mlflow.*`,
# and `_mlflow_*`, which hold a prompt's template type, model config and response format) and the review.
HIDDEN_PREFIXES = (MLFLOW_PREFIX, "_mlflow", PREFIX)

# --- the review meeting (on the run) ----------------------------------------------------------------

MEETING_AT = "review.meeting_at"  # ISO 8601 UTC, Z; "" when cancelled
MEETING_INVITEES = "review.meeting_invitees"  # Slack user ids, comma-separated
MEETING_DURATION = "review.meeting_duration_min"  # whole minutes
MEETING_AGENDA = "review.meeting_agenda"  # free text, at most AGENDA_MAX_CHARS
MEETING_BY = "review.meeting_scheduled_by"  # Slack user id
MEETING_UID = "review.meeting_uid"  # the calendar event's UID, kept while the meeting moves
MEETING_SEQUENCE = "review.meeting_sequence"  # its SEQUENCE: 0, then one more per move (and the cancel)
MEETING = (
    MEETING_AT,
    MEETING_INVITEES,
    MEETING_DURATION,
    MEETING_AGENDA,
    MEETING_BY,
    MEETING_UID,
    MEETING_SEQUENCE,
)
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


class UnreadableRecord(ReviewBotError):
    """A review tag the bot cannot read: reported, never taken for "no votes" and overwritten."""

    def __init__(self, run_id: str, key: str) -> None:
        super().__init__(f"run {run_id}: tag {key} cannot be read")
        self.run_id = run_id
        self.key = key

    def user_message(self) -> str:
        return UNREADABLE.format(key=self.key, run_id=self.run_id)


UNREADABLE = (
    ":warning: The review record of run `{run_id}` cannot be read: its MLflow tag `{key}` was changed "
    "outside review-bot or cut short. Nothing was changed. Ask an MLflow admin to restore or delete "
    "that tag, then try again."
)


def is_signed(key: str) -> bool:
    return key in SIGNED or key.startswith(VOTE_PREFIX)


def vote_key(user: str) -> str:
    return VOTE_PREFIX + user


def _vote_value(kind: str, vote: Vote | None, seen: datetime | None) -> str:
    body: dict[str, str] = {"kind": kind}
    if vote is not None:
        body |= {"name": vote.name[:VOTER_NAME_MAX_CHARS], "at": iso_utc(vote.at), "via": vote.via.value}
    body["seen"] = iso_utc(seen)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def review_tags(state: ReviewState) -> dict[str, str]:
    """The review's tags as the bot writes them (unsigned: bot.mlflow.records signs what it writes).
    Every voter with a click on record has a tag; a voter without a current vote has kind ""."""
    votes: dict[str, str] = {}
    for kind, items in (("approve", state.approvals), ("request_changes", state.change_requests)):
        for v in items:
            votes[vote_key(v.user)] = _vote_value(kind, v, state.last_click.get(v.user, v.at))
    for user, seen in state.last_click.items():
        votes.setdefault(vote_key(user), _vote_value("", None, seen))
    return {
        STATUS: state.status.value,
        **votes,
        APPROVAL_COUNT: str(len(state.approvals)),
        CHANGE_REQUEST_COUNT: str(len(state.change_requests)),
        MODEL_VERSIONS: json.dumps(sorted(state.covers), separators=(",", ":")),
        REQUESTED_BY: state.requested_by,
        REQUESTED_AT: iso_utc(state.requested_at),
        DECIDED_AT: iso_utc(state.decided_at),
        SLACK_CHANNEL: state.slack_channel,
        SLACK_TS: state.slack_ts,
        SLACK_PERMALINK: state.slack_permalink,
    }


def review_changes(current: Mapping[str, str], state: ReviewState) -> dict[str, str]:
    """The tags to write so that the run's review tags say `state`: only what differs, and "" over
    every vote tag the state does not hold (MLflow cannot delete tags in a batch; "" is no vote)."""
    desired = review_tags(state)
    for key, value in current.items():
        if key.startswith(VOTE_PREFIX) and key not in desired and value != "":
            desired[key] = ""
    return {k: v for k, v in desired.items() if current.get(k) != v}


def _read_vote(run_id: str, key: str, raw: str) -> tuple[str, Vote | None, datetime | None]:
    """(kind, vote, seen) of one per-voter tag; raises UnreadableRecord on anything else."""
    user = key[len(VOTE_PREFIX) :]
    if raw == "":
        return "", None, None
    try:
        body = json.loads(raw)
        kind = body["kind"]
        seen = parse_moment(body.get("seen"))
        if kind == "":
            return "", None, seen
        if kind not in ("approve", "request_changes") or not _SLACK_USER.match(user):
            raise ValueError(kind)
        vote = Vote(
            user=user, name=body.get("name") or user, at=body["at"], via=Via(body.get("via", "button"))
        )
    except (ValueError, TypeError, KeyError, ValidationError):
        raise UnreadableRecord(run_id, key) from None
    return kind, vote, seen


def _legacy_votes(run_id: str, tags: Mapping[str, str], key: str) -> list[Vote]:
    raw = tags.get(key) or "[]"
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        raise UnreadableRecord(run_id, key) from None  # e.g. cut at MLflow's value limit
    if not isinstance(entries, list):
        raise UnreadableRecord(run_id, key)
    found: list[Vote] = []
    for v in entries:
        try:
            user = v["user"]
            found.append(
                Vote(user=user, name=v.get("name", user), at=v["at"], via=Via(v.get("via", "button")))
            )
        except (TypeError, KeyError, AttributeError, ValueError):
            raise UnreadableRecord(run_id, key) from None
    return found


def review_from_tags(
    run_id: str, tags: Mapping[str, str], untrusted: str | None = None
) -> ReviewState | None:
    """The recorded review, or None when the run was never put up for review. `untrusted` is why its
    signature does not hold (None when it does): such a record reads as pending with no votes.
    Raises UnreadableRecord for a vote tag it cannot read."""
    if STATUS not in tags:
        return None
    approvals: list[Vote] = []
    change_requests: list[Vote] = []
    last_click: dict[str, datetime] = {}
    # An untrusted record's votes count for nothing, so they are not read (a broken one cannot block).
    vote_keys = [] if untrusted else sorted(k for k in tags if k.startswith(VOTE_PREFIX))
    for key in vote_keys:
        kind, vote, seen = _read_vote(run_id, key, tags[key])
        user = key[len(VOTE_PREFIX) :]
        if vote is not None:
            (approvals if kind == "approve" else change_requests).append(vote)
        if seen is not None or vote is not None:
            last_click[user] = seen or vote.at  # type: ignore[union-attr]
    if not untrusted and not any(k.startswith(VOTE_PREFIX) for k in tags):  # reviewed before them
        approvals = _legacy_votes(run_id, tags, APPROVALS)
        change_requests = _legacy_votes(run_id, tags, CHANGE_REQUESTS)
    status = (
        ReviewStatus(tags[STATUS])
        if tags[STATUS] in ReviewStatus._value2member_map_
        else ReviewStatus.PENDING
    )
    try:
        covers = [str(c) for c in json.loads(tags.get(MODEL_VERSIONS) or "[]")]
    except (json.JSONDecodeError, TypeError):
        covers = []
    decided_at = parse_moment(tags.get(DECIDED_AT))
    if untrusted:
        approvals, change_requests, last_click = [], [], {}
        status, decided_at, covers = ReviewStatus.PENDING, None, []
    return ReviewState(
        run_id=run_id,
        status=status,
        approvals=sorted(approvals, key=lambda v: (v.at, v.user)),
        change_requests=sorted(change_requests, key=lambda v: (v.at, v.user)),
        requested_by=tags.get(REQUESTED_BY, ""),
        requested_at=parse_moment(tags.get(REQUESTED_AT)),
        decided_at=decided_at,
        slack_channel=tags.get(SLACK_CHANNEL, ""),
        slack_ts=tags.get(SLACK_TS, ""),
        slack_permalink=tags.get(SLACK_PERMALINK, ""),
        last_click=last_click,
        covers=covers,
        untrusted=untrusted or "",
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


def sweep_tags(sweep: Sweep) -> dict[str, str]:
    return {SWEEP: sweep.model_dump_json(exclude_defaults=True)}


def sweep_from_tags(tags: Mapping[str, str]) -> Sweep | None:
    raw = tags.get(SWEEP)
    if not raw:
        return None
    try:
        return Sweep.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None  # as the baseline: the card goes without it


# --- the meeting ------------------------------------------------------------------------------------


def meeting_tags(meeting: Meeting) -> dict[str, str]:
    """The run's review.meeting_* tags for this meeting (the card's channel/ts live in the review's tags)."""
    return {
        MEETING_AT: iso_utc(meeting.at),
        MEETING_INVITEES: ",".join(meeting.invitees),
        MEETING_DURATION: str(meeting.duration_min),
        MEETING_AGENDA: meeting.agenda[:AGENDA_MAX_CHARS],
        MEETING_BY: meeting.scheduled_by,
        MEETING_UID: meeting.uid,
        MEETING_SEQUENCE: str(meeting.sequence),
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
        uid=tags.get(MEETING_UID, ""),
        sequence=_whole(tags.get(MEETING_SEQUENCE)),
    )


def _whole(text: str | None) -> int:
    try:
        return max(int(text or 0), 0)
    except ValueError:
        return 0
