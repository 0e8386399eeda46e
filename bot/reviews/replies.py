"""Ephemeral replies to the person who asked: acknowledgements, advice after failures."""

from __future__ import annotations

from bot.models import RunRef
from bot.slack.advice import channel_mention
from bot.slack.mrkdwn import escape

ACK_POSTING = ":mag: Looking up {what} in MLflow. The review card will appear in {where}."
ACK_SCHEDULING = ":calendar: Scheduling the review meeting…"
ACK_AGENDA = ":clipboard: Looking up the reviews still pending…"
ACK_COMPARING = ":mag: Comparing {n} runs; the comparison will appear in this channel."
ACK_LEADERBOARD = ":mag: Looking up the leaderboard; it will appear in this channel."
ACK_DUPLICATE = ":repeat: Already on it: that request arrived twice, so it is handled once."
POSTED = ":white_check_mark: Review card posted in {where}: {permalink}"
REQUEST_NOT_RECORDED = (
    ":warning: The card is posted, but MLflow did not take the review's tags, so votes on it cannot be "
    "recorded yet. Run the command again once MLflow answers."
)
REQUEST_REFUSED = "The card is posted, but votes on it cannot be recorded: {why}"
THREAD_PART_FAILED = (
    ":warning: The card is posted, but part of its thread could not be ({part}: Slack said `{code}`). "
    "The card itself is fine."
)


def build_ack_text(ref: RunRef, channel: str) -> str:
    # A model name or alias is the person's own text (url-decoded), so it is escaped like any other.
    return ACK_POSTING.format(what=escape(ref.describe()), where=channel_mention(channel))
