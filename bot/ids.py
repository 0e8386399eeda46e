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


class BlockId(StrEnum):
    HEADER = "review_header"
    STATUS = "review_status"
    ACTIONS = "review_actions"
    NOTE = "review_note"


class MetadataEvent(StrEnum):
    MODEL_REVIEW = "model_review"


# Events API subscriptions the bot handles (keep in step with manifest.yml).
SUBSCRIBED_EVENTS: tuple[str, ...] = ("app_mention", "reaction_added", "reaction_removed")
