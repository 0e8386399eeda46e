"""Ephemeral replies to the person who asked: acknowledgements, advice after failures."""

from __future__ import annotations

from bot.blocks.mrkdwn import escape
from bot.ids import COMMAND
from bot.models import RunRef

ACK_POSTING = ":mag: Looking up {what} in MLflow. The review card will appear in {where}."
ACK_SCHEDULING = ":calendar: Scheduling the review meeting…"
ACK_AGENDA = ":clipboard: Looking up the reviews still pending…"
ACK_COMPARING = ":mag: Comparing {n} runs; the comparison will appear in this channel."
ACK_LEADERBOARD = ":mag: Looking up the leaderboard; it will appear in this channel."
ACK_DUPLICATE = ":repeat: Already on it: that request arrived twice, so it is handled once."
POSTED = ":white_check_mark: Review card posted in {where}: {permalink}"
UNEXPECTED = (
    ":boom: Something went wrong on review-bot's side (error id `{error_id}`). Nothing more was done. "
    "Try again; if it happens again, give the error id to whoever runs the bot."
)
REQUEST_NOT_RECORDED = (
    ":warning: The card is posted, but MLflow did not take the review's tags, so votes on it cannot be "
    "recorded yet. Run the command again once MLflow answers."
)
THREAD_PART_FAILED = (
    ":warning: The card is posted, but part of its thread could not be ({part}: Slack said `{code}`). "
    "The card itself is fine."
)

SLACK_ADVICE = {
    "channel_not_found": (
        ":no_entry: I can't find the review channel {channel}. Ask whoever runs review-bot to check "
        "`REVIEW_CHANNEL` (a channel id such as `C0123ABCD`), or that the channel was not deleted."
    ),
    "not_in_channel": (
        ":wave: I'm not a member of {channel}, so I can't post the review there. "
        "Invite me with `/invite @review-bot` in that channel, then run `" + COMMAND + "` again."
    ),
    "is_archived": (
        ":file_cabinet: {channel} is archived. Unarchive it or point `REVIEW_CHANNEL` at another channel."
    ),
    "invalid_blocks": (
        ":bug: Slack rejected the card's layout (`invalid_blocks`). Nothing was posted. This is a review-bot "
        "bug and it has been logged; please report it with the run id."
    ),
    "msg_too_long": (
        ":bug: Slack rejected the card as too long (`msg_too_long`). Nothing was posted. "
        "This is a review-bot bug and it has been logged; please report it with the run id."
    ),
    "ratelimited": (
        ":hourglass: Slack is rate-limiting review-bot right now. Nothing was posted; try again in a minute."
    ),
}
SLACK_DEFAULT_ADVICE = (
    ":no_entry: Slack refused to post the review in {channel} (`{code}`). Nothing was posted."
)


def channel_mention(channel: str | None) -> str:
    return f"<#{channel}>" if channel else "this channel"


def build_ack_text(ref: RunRef, channel: str) -> str:
    # A model name or alias is the person's own text (url-decoded), so it is escaped like any other.
    return ACK_POSTING.format(what=escape(ref.describe()), where=channel_mention(channel))


def build_slack_advice(code: str, channel: str) -> str:
    template = SLACK_ADVICE.get(code, SLACK_DEFAULT_ADVICE)
    return template.format(channel=channel_mention(channel), code=code)
