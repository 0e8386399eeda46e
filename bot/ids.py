"""Every identifier that Slack sends back to us, in one place.

Action ids, block ids and the message-metadata event type are part of the bot's contract with
Slack (and with manifest.yml): change them only with a migration plan for cards already posted.
"""

from enum import StrEnum

COMMAND = "/review"


class ActionId(StrEnum):
    APPROVE = "review_approve"
    REQUEST_CHANGES = "review_request_changes"
    SCHEDULE = "review_schedule"
    OPEN_MLFLOW = "review_open_mlflow"  # a link button: Slack still sends block_actions for it
    CANCEL_MEETING = "review_cancel_meeting"  # on the meeting's announcement in the thread
    NUDGE_START_REVIEW = "nudge_start_review"  # on a nudge about a deployed, unreviewed model version
    NUDGE_SNOOZE = "nudge_snooze"
    LEADERBOARD_REVIEW = "review_from_leaderboard"  # a leaderboard row's Review button: posts its card


CARD_ACTIONS = (ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.SCHEDULE, ActionId.OPEN_MLFLOW)


class MeetingInput(StrEnum):
    """Inputs of the schedule-meeting modal: read from view_submission, no block_actions of their own."""

    WHEN = "meeting_when"
    DURATION = "meeting_duration"
    INVITEES = "meeting_invitees"
    AGENDA = "meeting_agenda"


class BlockId(StrEnum):
    HEADER = "review_header"
    STATUS = "review_status"
    ACTIONS = "review_actions"
    NOTE = "review_note"


class MeetingBlockId(StrEnum):
    WHEN = "meeting_when_block"
    DURATION = "meeting_duration_block"
    INVITEES = "meeting_invitees_block"
    AGENDA = "meeting_agenda_block"


class NudgeBlockId(StrEnum):
    ACTIONS = "nudge_actions"


class CallbackId(StrEnum):
    SCHEDULE_MEETING = "review_schedule_meeting"


class MetadataEvent(StrEnum):
    MODEL_REVIEW = "model_review"


# Events API subscriptions the bot handles (keep in step with manifest.yml).
SUBSCRIBED_EVENTS: tuple[str, ...] = (
    "app_mention",
    "reaction_added",
    "reaction_removed",
    "link_shared",  # MLflow UI links pasted in a channel: unfurled (bot.unfurls)
    "app_home_opened",  # the Home tab: what waits on the person (bot.home)
)


class UnfurlActionId(StrEnum):
    """The buttons on an unfurled MLflow link (bot.unfurls)."""

    REVIEW = "unfurl_review"  # posts the review card of what the link points at, as `/review` does
    OPEN_CARD = "unfurl_open_card"  # a link button to the review card already posted: Slack opens it


class HomeActionId(StrEnum):
    """The buttons on the App Home tab (bot.home)."""

    APPROVE = "home_approve"  # votes on the card the value names, as the card's own Approve does
    REQUEST_CHANGES = "home_request_changes"
    PREVIOUS_PAGE = "home_previous_page"  # the reviews waiting on you: the page before (older ones)
    NEXT_PAGE = "home_next_page"


HOME_CALLBACK_ID = "review_home"  # the Home tab's view (views.publish)
