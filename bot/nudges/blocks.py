"""Nudges about deployed models without an approved review, and the scheduled digest. Pure builders.

A nudge names the model, version and alias, the run's review status and age, with Start review and
Snooze buttons; the digest groups what one registry scan found by model, oldest first, capped.
"""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.deployments import PRODUCTION_STAGE, DeployedVersion
from bot.ids import ActionId, NudgeBlockId
from bot.meetings.blocks import format_age, meeting_time, mention, mentions, request_order, run_link
from bot.models import ReviewStatus, RunSummary, SubjectKind
from bot.nudges.rules import Scan
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, link, truncate
from bot.slack.values import VersionValue, encode
from bot.subjects import subject_kind

NAME_CHARS = 120
DIGEST_MAX_VERSIONS = 15
DIGEST_MAX_PENDING = 10
DM_MAX_REVIEWS = 15

NUDGE_LINE = ":rotating_light: {model} {version} is deployed as {markers} without an approved review."
NUDGE_FALLBACK = "{name} v{version} is deployed as {markers} without an approved review"
RUN_LINE = "*Run:* {run}   *Review:* {status}"
SUBJECT_LINE = "*Reviewed as:* {what}   *Review:* {status}"
SUBJECT_NAMES = {
    SubjectKind.LOGGED_MODEL: "its logged model `{id}` (no run)",
    SubjectKind.MODEL_VERSION: "this version (no run, no logged model)",
    SubjectKind.PROMPT_VERSION: "this prompt version",
}
STATUS_DELETED = "its run was deleted in MLflow, so the review it had no longer counts"
PROMPT_WORD = "Prompt"
START_LABEL = "Start review"
SNOOZE_LABEL = "Snooze a week"
SNOOZE_CONFIRM_TITLE = "Snooze this nudge?"
SNOOZE_CONFIRM_TEXT = "No nudges about {name} v{version} for 7 days. The version stays unreviewed."
SNOOZE_CONFIRM_YES = "Snooze"
SNOOZE_CONFIRM_NO = "Keep"
STARTED_LINE = ":mag: Review started by {user}: {card}."
STARTED_CARD = "the card"
SNOOZED_LINE = ":zzz: Snoozed by {user} until {until}."

STATUS_NEVER = "never reviewed"
STATUS_NEVER_AGED = "never reviewed, the run is {age} old"
STATUS_TEXT = {
    ReviewStatus.PENDING: "pending for {age}",
    ReviewStatus.CHANGES_REQUESTED: "changes requested {age} ago",
    ReviewStatus.APPROVED: "approved",
}

DIGEST_HEADER = "Model review digest"
DIGEST_FALLBACK = "Model review digest: {unreviewed} deployed without approval, {overdue} reviews overdue"
DEPLOYED_TITLE = ":rotating_light: *Deployed without an approved review* ({n})"
OVERDUE_TITLE = ":hourglass: *Reviews pending longer than {days} working days* ({n})"
OVERDUE_LINE = "• {run}: pending for {age}, waiting on {who}"
WAITING_ON_ANYONE = "any reviewer"
MORE = "_…and {n} more._"
UNCHECKED_TITLE = (
    ":warning: *Could not be checked* (MLflow did not answer; the next digest tries again): {models}"
)
REGISTRY_ERROR = (
    ":warning: *The model registry could not be read*, so no deployment was checked: {error}. "
    "The next digest tries again."
)
SNOOZED_NOTE = "{n} snoozed deployment(s) not shown."
DM_TITLE = ":wave: *Reviews waiting on you* ({n}), oldest first:"
DM_LINE = "• {run}: pending for {age}{card}"
DM_FALLBACK = "{n} model review(s) are waiting on you"


def version_value(name: str, version: str, *, prompt: bool = False) -> str:
    """What the nudge's buttons carry: the model (or prompt) version, for the handler to act on."""
    return encode(VersionValue(model=name, version=version, prompt=prompt))


def review_status_text(version: DeployedVersion, now: datetime) -> str:
    review = version.review
    if version.deleted:
        return STATUS_DELETED
    if review is None:
        return (
            STATUS_NEVER_AGED.format(age=format_age(version.run_started, now))
            if version.run_started
            else STATUS_NEVER
        )
    since = review.decided_at if review.status is ReviewStatus.CHANGES_REQUESTED else review.requested_at
    return STATUS_TEXT[review.status].format(age=format_age(since, now) if since else "an unknown time")


def _markers(markers: list[str]) -> str:
    return ", ".join(m if m == PRODUCTION_STAGE else f"@{m}" for m in markers)


def _model(version: DeployedVersion) -> str:
    name = truncate(version.name, NAME_CHARS)
    shown = link(version.version_url, name) if version.version_url else f"*{escape(name)}*"
    return f"{PROMPT_WORD} {shown}" if version.prompt else shown


def _review_line(version: DeployedVersion, now: datetime) -> str:
    """Where the version's review lives and how it stands."""
    kind = subject_kind(version.subject) if version.subject else SubjectKind.RUN
    if kind is SubjectKind.RUN:
        return RUN_LINE.format(run=_run(version), status=review_status_text(version, now))
    what = SUBJECT_NAMES[kind].format(id=escape(version.subject))
    return SUBJECT_LINE.format(what=what, status=review_status_text(version, now))


def _run(version: DeployedVersion) -> str:
    name = truncate(version.run_name or version.run_id, NAME_CHARS)
    return link(version.run_url, name) if version.run_url else f"`{escape(name)}`"


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, limits.SECTION_TEXT)))


def build_nudge(version: DeployedVersion, markers: list[str], now: datetime) -> SlackMessage:
    """One deployed version without an approved review, with Start review and Snooze."""
    blocks: list[Any] = [
        _section(
            NUDGE_LINE.format(
                model=_model(version), version=f"v{escape(version.version)}", markers=_markers(markers)
            )
        )
    ]
    value = version_value(version.name, version.version, prompt=version.prompt)
    blocks.append(_section(_review_line(version, now)))
    buttons = [
        ButtonElement(text=START_LABEL, action_id=ActionId.NUDGE_START_REVIEW, value=value, style="primary")
    ]
    buttons.append(
        ButtonElement(
            text=SNOOZE_LABEL,
            action_id=ActionId.NUDGE_SNOOZE,
            value=value,
            confirm=ConfirmObject(
                title=SNOOZE_CONFIRM_TITLE,
                text=SNOOZE_CONFIRM_TEXT.format(name=escape(version.name), version=version.version),
                confirm=SNOOZE_CONFIRM_YES,
                deny=SNOOZE_CONFIRM_NO,
            ),
        )
    )
    blocks.append(ActionsBlock(block_id=NudgeBlockId.ACTIONS, elements=buttons))
    return SlackMessage(
        text=NUDGE_FALLBACK.format(name=version.name, version=version.version, markers=_markers(markers)),
        blocks=[b.to_dict() for b in blocks],
    )


def started_line(user: str, card_permalink: str) -> str:
    card = link(card_permalink, STARTED_CARD) if card_permalink else STARTED_CARD
    return STARTED_LINE.format(user=mention(user), card=card)


def snoozed_line(user: str, until: datetime) -> str:
    return SNOOZED_LINE.format(user=mention(user), until=meeting_time(until))


def build_nudge_outcome(text: str, blocks: list[dict[str, Any]], line: str) -> SlackMessage:
    """The nudge after someone acted on it: its buttons give way to a line saying who did what."""
    kept = [b for b in blocks if b.get("block_id") != NudgeBlockId.ACTIONS]
    done = ContextBlock(elements=[MarkdownTextObject(text=truncate(line, limits.SECTION_TEXT))])
    return SlackMessage(text=text, blocks=[*kept[: limits.MAX_BLOCKS - 1], done.to_dict()])


def build_digest(scan: Scan, now: datetime, pending_max_days: int) -> SlackMessage | None:
    """One message for the review channel; None when there is nothing to say."""
    if scan.empty:
        return None
    blocks: list[Any] = [HeaderBlock(text=DIGEST_HEADER)]
    if scan.registry_error:
        blocks.append(_section(REGISTRY_ERROR.format(error=escape(scan.registry_error))))
    if scan.unreviewed:
        blocks.append(_section(DEPLOYED_TITLE.format(n=len(scan.unreviewed))))
        blocks += _deployed_sections(scan.unreviewed, now)
    if scan.overdue:
        blocks.append(_section(OVERDUE_TITLE.format(days=pending_max_days, n=len(scan.overdue))))
        blocks += _overdue_sections(scan, now)
    if scan.unchecked:
        models = ", ".join(f"*{escape(truncate(m, NAME_CHARS))}*" for m in scan.unchecked)
        blocks.append(_section(UNCHECKED_TITLE.format(models=models)))
    if scan.snoozed:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=SNOOZED_NOTE.format(n=scan.snoozed))]))
    return SlackMessage(
        text=DIGEST_FALLBACK.format(unreviewed=len(scan.unreviewed), overdue=len(scan.overdue)),
        blocks=[b.to_dict() for b in blocks],
    )


def _oldest_first(version: DeployedVersion) -> tuple[bool, datetime | None, str, int]:
    # Never reviewed comes first (it has waited since it was deployed); then by request time.
    since = version.since
    return (since is not None, since, version.name, int(version.version) if version.version.isdigit() else 0)


def _deployed_sections(unreviewed: list[DeployedVersion], now: datetime) -> list[SectionBlock]:
    """One section per model, the model whose oldest version waits longest first; capped in total."""
    by_model = {
        name: sorted(group, key=_oldest_first)
        for name, group in groupby(sorted(unreviewed, key=lambda v: v.name), key=lambda v: v.name)
    }
    order = sorted(by_model.values(), key=lambda versions: _oldest_first(versions[0]))
    sections, shown = [], 0
    for versions in order:
        room = DIGEST_MAX_VERSIONS - shown
        if room <= 0:
            break
        lines = [
            f"• v{escape(v.version)} {_markers(v.markers)}: {review_status_text(v, now)}"
            + (f", run {_run(v)}" if v.run_id and not v.deleted else "")
            for v in versions[:room]
        ]
        shown += len(lines)
        sections.append(_section(f"{_model(versions[0])}\n" + "\n".join(lines)))
    if len(unreviewed) > shown:
        sections.append(_section(MORE.format(n=len(unreviewed) - shown)))
    return sections


def _overdue_sections(scan: Scan, now: datetime) -> list[SectionBlock]:
    waiting: dict[str, list[str]] = {}
    for user, reviews in scan.waiting_on.items():
        for summary in reviews:
            waiting.setdefault(summary.run_id, []).append(user)
    ordered = sorted(scan.overdue, key=request_order)
    lines = [
        OVERDUE_LINE.format(
            run=run_link(s, NAME_CHARS),
            age=format_age(s.review.requested_at, now) if s.review and s.review.requested_at else "?",
            who=mentions(sorted(waiting[s.run_id])) if s.run_id in waiting else WAITING_ON_ANYONE,
        )
        for s in ordered[:DIGEST_MAX_PENDING]
    ]
    if len(ordered) > DIGEST_MAX_PENDING:
        lines.append(MORE.format(n=len(ordered) - DIGEST_MAX_PENDING))
    return [_section("\n".join(lines))]


def build_reviewer_dm(reviews: list[RunSummary], now: datetime) -> SlackMessage:
    """The reviews that wait on one reviewer, oldest first, each with its card."""
    ordered = sorted(reviews, key=request_order)
    lines = [DM_TITLE.format(n=len(ordered))]
    for summary in ordered[:DM_MAX_REVIEWS]:
        review = summary.review
        card = f" ({link(review.slack_permalink, 'card')})" if review and review.slack_permalink else ""
        age = format_age(review.requested_at, now) if review and review.requested_at else "?"
        lines.append(DM_LINE.format(run=run_link(summary, NAME_CHARS), age=age, card=card))
    if len(ordered) > DM_MAX_REVIEWS:
        lines.append(MORE.format(n=len(ordered) - DM_MAX_REVIEWS))
    return SlackMessage(
        text=DM_FALLBACK.format(n=len(ordered)), blocks=[_section("\n".join(lines)).to_dict()]
    )
