"""The Home tab of one person: a `home` view (views.publish). Pure builders.

Within Slack's 100 blocks however much waits: the reviews waiting on the person are shown a page at a
time (two blocks each, with Approve and Request changes), every other list is capped with "…and N
more". Everything from MLflow is escaped; every entry links to its review card.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.commands import USAGE
from bot.deployments import PRODUCTION_STAGE, DeployedVersion
from bot.home.rules import RECENT, WAITING_PER_PAGE, HomeEntry, HomeView
from bot.ids import COMMAND, HOME_CALLBACK_ID, HomeActionId
from bot.meetings.blocks import format_age, meeting_time, mention, mentions
from bot.models import ReviewStatus
from bot.nudges.blocks import review_status_text
from bot.reviews.card import APPROVE_LABEL, REQUEST_CHANGES_LABEL
from bot.slack import limits
from bot.slack.mrkdwn import escape, link, split_mrkdwn, truncate
from bot.slack.values import CardValue, PageValue, encode

HOME_MAX_BLOCKS = 100  # Slack's limit for a Home tab (a message has 50)
NAME_CHARS = 80
EXPERIMENT_CHARS = 60
LIST_MAX = 10  # entries per list other than the waiting reviews (which have pages)
VOTERS_NAMED = 3
NOTICE_CHARS = 600

HEADER = "Model reviews"
UPDATED = "What waits on you in review-bot · updated {when}"
PROBLEM = ":warning: {problem}"
NOTICES_TITLE = ":speech_balloon: *About your vote on this tab*"
NOTICE_LINE = "{when}: {text}"

WELCOME = (
    ":wave: *Nothing here is yours yet.* review-bot puts MLflow runs, models and prompts up for review "
    f"in Slack. Type `{COMMAND} <run>` in a channel the bot is in: the review card goes to the review "
    "channel, reviewers approve or request changes on it, and the decision is recorded in MLflow. What "
    "waits on your vote, the reviews you asked for and your review meetings show up on this tab."
)
HOW_TO_START = USAGE  # the same text as `/review help`, so this tab and the parser cannot drift apart

WAITING_TITLE = ":inbox_tray: *Waiting on your vote* ({n}), oldest first"
NOTHING_WAITING = ":white_check_mark: *Nothing waits on your vote.*"
WAITING_LINE = "{name}{experiment}\nRequested by {requester} {age} ago · {votes}"
NO_CARD = "\n_Its card is not known to the bot: vote with `/review` on it again._"
APPROVALS = "{n}/{required} approvals"
CHANGE_REQUESTS = ", {n} change request(s)"
PAGE_NOTE = "Showing {first}–{last} of {total}, oldest first · …and {more} more"
NEWER_LABEL = "Newer {n} ›"
OLDER_LABEL = "‹ Older"
NAME_SEPARATOR = " · "

REQUESTED_TITLE = ":outbox_tray: *Reviews you requested* ({n})"
MEETINGS_TITLE = ":calendar: *Your review meetings* ({n})"
DEPLOYED_TITLE = ":rotating_light: *Deployed without an approved review* ({n})"
DECISIONS_TITLE = ":ballot_box_with_check: *Recent decisions* (last {days} days) ({n})"
LINE = "• {what}: {state}"
MEETING_LINE = "• {when} ({minutes} min): {what}"
DEPLOYED_LINE = "• {model} v{version} {markers}: {status}{card}"
DEPLOYED_CARD = " ({card})"
CARD_LABEL = "card"
PROMPT_WORD = "Prompt "
DEPLOYED_ERROR = ":warning: The model registry could not be checked ({error}); this list is tried again soon."
UNCHECKED = ":warning: Could not be checked (MLflow did not answer): {models}"
MORE = "_…and {n} more._"

STATE_PENDING = "pending for {age} ({votes})"
STATE_APPROVED = "approved by {who} {when}"
STATE_CHANGES = "changes requested by {who} {when}"
STATE_DECIDED_BY_NOBODY = "decided {when}"
NOBODY = "nobody yet"
AND_MORE_VOTERS = " and {n} more"
FOOTER = f"`{COMMAND} help` lists everything the bot does. This tab updates itself as reviews change."


def _text(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, limits.SECTION_TEXT))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_text(text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[_text(text)])


def _name(entry: HomeEntry) -> str:
    """The review's name, linked to its card (else to the run in MLflow; else bold, inert)."""
    name = truncate(entry.name, NAME_CHARS)
    url = entry.card_url or entry.run_url
    return link(url, name) if url else f"*{escape(name)}*"


def _who(users: list[str]) -> str:
    shown = mentions(users[:VOTERS_NAMED]) or NOBODY
    return shown + (AND_MORE_VOTERS.format(n=len(users) - VOTERS_NAMED) if len(users) > VOTERS_NAMED else "")


def _votes(entry: HomeEntry, required: int) -> str:
    text = APPROVALS.format(n=len(entry.approvals), required=required)
    if entry.change_requests:
        text += CHANGE_REQUESTS.format(n=len(entry.change_requests))
    return text


def _state(entry: HomeEntry, view: HomeView) -> str:
    """How a review stands, in a few words."""
    if entry.status is ReviewStatus.PENDING:
        age = format_age(entry.requested_at, view.now) if entry.requested_at else "an unknown time"
        return STATE_PENDING.format(age=age, votes=_votes(entry, view.required_approvals))
    when = meeting_time(entry.decided_at) if entry.decided_at else ""
    if entry.status is ReviewStatus.APPROVED:
        return STATE_APPROVED.format(who=_who(entry.approvals), when=when).strip()
    return STATE_CHANGES.format(who=_who(entry.change_requests), when=when).strip()


def _listing(title: str, lines: list[str], total: int) -> list[Block]:
    """A titled list, capped at LIST_MAX with "…and N more", in as few sections as fit."""
    text = "\n".join(
        [title, *lines[:LIST_MAX]] + ([MORE.format(n=total - LIST_MAX)] if total > LIST_MAX else [])
    )
    return [DividerBlock(), *(_section(chunk) for chunk in split_mrkdwn(text, limits.SECTION_BUDGET))]


# --- the parts ---------------------------------------------------------------------------------------


def _notices(view: HomeView) -> list[Block]:
    if not view.notices:
        return []
    lines = [
        NOTICE_LINE.format(when=meeting_time(n.at), text=truncate(n.text, NOTICE_CHARS)) for n in view.notices
    ]
    return [_section("\n".join([NOTICES_TITLE, *lines]))]


def _waiting_entry(entry: HomeEntry, view: HomeView) -> list[Block]:
    experiment = (
        NAME_SEPARATOR + escape(truncate(entry.experiment, EXPERIMENT_CHARS)) if entry.experiment else ""
    )
    age = format_age(entry.requested_at, view.now) if entry.requested_at else "an unknown time"
    text = WAITING_LINE.format(
        name=_name(entry),
        experiment=experiment,
        requester=mention(entry.requested_by) if entry.requested_by else NOBODY,
        age=age,
        votes=_votes(entry, view.required_approvals),
    )
    if not (entry.channel and entry.ts):
        return [_section(text + NO_CARD)]
    value = encode(CardValue(run_id=entry.run_id, channel=entry.channel, ts=entry.ts))
    buttons = [
        ButtonElement(text=APPROVE_LABEL, action_id=HomeActionId.APPROVE, value=value, style="primary"),
        ButtonElement(
            text=REQUEST_CHANGES_LABEL, action_id=HomeActionId.REQUEST_CHANGES, value=value, style="danger"
        ),
    ]
    return [_section(text), ActionsBlock(elements=buttons)]


def _pager(view: HomeView) -> list[Block]:
    if view.pages <= 1:
        return []
    first = view.page * WAITING_PER_PAGE + 1
    last = first + len(view.waiting) - 1
    blocks: list[Block] = [
        _context(
            PAGE_NOTE.format(first=first, last=last, total=view.waiting_total, more=view.waiting_total - last)
        )
    ]
    buttons = []
    if view.page > 0:
        buttons.append(
            ButtonElement(
                text=OLDER_LABEL,
                action_id=HomeActionId.PREVIOUS_PAGE,
                value=encode(PageValue(page=view.page - 1)),
            )
        )
    if view.page < view.pages - 1:
        newer = min(WAITING_PER_PAGE, view.waiting_total - last)
        buttons.append(
            ButtonElement(
                text=NEWER_LABEL.format(n=newer),
                action_id=HomeActionId.NEXT_PAGE,
                value=encode(PageValue(page=view.page + 1)),
            )
        )
    return [*blocks, ActionsBlock(elements=buttons)]


def _waiting(view: HomeView) -> list[Block]:
    if not view.waiting_total:
        return [] if view.first_time else [_section(NOTHING_WAITING)]
    blocks: list[Block] = [_section(WAITING_TITLE.format(n=view.waiting_total))]
    for entry in view.waiting:
        blocks += _waiting_entry(entry, view)
    return blocks + _pager(view)


def _requested(view: HomeView) -> list[Block]:
    if not view.requested:
        return []
    lines = [LINE.format(what=_name(e), state=_state(e, view)) for e in view.requested]
    return _listing(REQUESTED_TITLE.format(n=len(view.requested)), lines, len(view.requested))


def _meetings(view: HomeView) -> list[Block]:
    if not view.meetings:
        return []
    lines = [
        MEETING_LINE.format(when=meeting_time(e.meeting_at), minutes=e.meeting_minutes, what=_name(e))
        for e in view.meetings
        if e.meeting_at
    ]
    return _listing(MEETINGS_TITLE.format(n=len(view.meetings)), lines, len(view.meetings))


def _markers(markers: list[str]) -> str:
    return ", ".join(m if m == PRODUCTION_STAGE else f"@{escape(m)}" for m in markers)


def _deployed_line(version: DeployedVersion, view: HomeView) -> str:
    name = truncate(version.name, NAME_CHARS)
    model = link(version.version_url, name) if version.version_url else f"*{escape(name)}*"
    permalink = version.review.slack_permalink if version.review else ""
    return DEPLOYED_LINE.format(
        model=(PROMPT_WORD if version.prompt else "") + model,
        version=escape(version.version),
        markers=_markers(version.markers),
        status=review_status_text(version, view.now),
        card=DEPLOYED_CARD.format(card=link(permalink, CARD_LABEL)) if permalink else "",
    )


def _deployments(view: HomeView) -> list[Block]:
    found = view.deployments
    blocks: list[Block] = []
    if found.versions:
        lines = [_deployed_line(v, view) for v in found.versions]
        blocks += _listing(DEPLOYED_TITLE.format(n=len(found.versions)), lines, len(found.versions))
    problems = []
    if found.error:
        problems.append(DEPLOYED_ERROR.format(error=escape(truncate(found.error, 300))))
    if found.unchecked:
        models = ", ".join(f"*{escape(truncate(m, NAME_CHARS))}*" for m in found.unchecked[:LIST_MAX])
        problems.append(UNCHECKED.format(models=models))
    if problems:
        blocks.append(_context("\n".join(problems)))
    return blocks


def _decisions(view: HomeView) -> list[Block]:
    if not view.decisions:
        return []
    lines = [LINE.format(what=_name(e), state=_state(e, view)) for e in view.decisions]
    title = DECISIONS_TITLE.format(days=RECENT.days, n=len(view.decisions))
    return _listing(title, lines, len(view.decisions))


def build_home(view: HomeView) -> dict[str, Any]:
    """The person's Home tab: a `home` view for views.publish, within HOME_MAX_BLOCKS."""
    blocks: list[Block] = [HeaderBlock(text=HEADER), _context(UPDATED.format(when=meeting_time(view.now)))]
    if view.problem:
        blocks.append(_section(PROBLEM.format(problem=view.problem)))
    blocks += _notices(view)
    if view.first_time:
        blocks += [_section(WELCOME), _section(HOW_TO_START)]
    blocks += _waiting(view)
    blocks += _requested(view)
    blocks += _meetings(view)
    blocks += _deployments(view)
    blocks += _decisions(view)
    blocks += [DividerBlock(), _context(FOOTER)]
    rendered = [b.to_dict() for b in blocks]
    if len(rendered) > HOME_MAX_BLOCKS:  # the caps above keep far below; never let Slack refuse the tab
        rendered = [*rendered[: HOME_MAX_BLOCKS - 1], _context(FOOTER).to_dict()]
    return {"type": "home", "callback_id": HOME_CALLBACK_ID, "blocks": rendered}
