"""What rides in a button's value or a modal's private_metadata, typed.

Builders write these with `encode`; the request middleware reads the value of the clicked button
once with `parse_value` (by its action id) and hands the handler a typed object, so no handler parses
JSON. Fields have defaults because cards posted by an older bot carry fewer of them; a value that is
not JSON, or not an object, reads as the model's defaults (and the handler treats that as "no subject").
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.ids import ActionId, HomeActionId, UnfurlActionId


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RunValue(_Value):
    """A button about one run: the card's buttons, a meeting's Cancel, a leaderboard row's Review."""

    run_id: str = ""
    experiment_id: str = ""


class VersionValue(_Value):
    """A nudge's buttons: the registered model version (or prompt version) it is about."""

    model: str = ""  # the model's name, or the prompt's
    version: str = ""
    prompt: bool = False


class RefValue(_Value):
    """An unfurled link's Review button: what to review, as a reference `bot.commands.parse_ref` reads
    (a run id, `models:/m-…`, `models:/name/3`, `prompts:/name/2`)."""

    ref: str = ""


class CardValue(_Value):
    """A Home tab entry's vote buttons: the card voted on (its channel and ts, what a click on the card
    itself names), and its run (for the logs)."""

    run_id: str = ""
    channel: str = ""
    ts: str = ""


class PageValue(_Value):
    """The Home tab's page buttons: which page of the reviews waiting on the person to show."""

    page: int = 0


ButtonValue = RunValue | VersionValue | RefValue | CardValue | PageValue

VALUE_TYPES: dict[str, type[ButtonValue]] = {
    ActionId.APPROVE: RunValue,
    ActionId.REQUEST_CHANGES: RunValue,
    ActionId.SCHEDULE: RunValue,
    ActionId.OPEN_MLFLOW: RunValue,
    ActionId.CANCEL_MEETING: RunValue,
    ActionId.LEADERBOARD_REVIEW: RunValue,
    ActionId.NUDGE_START_REVIEW: VersionValue,
    ActionId.NUDGE_SNOOZE: VersionValue,
    UnfurlActionId.REVIEW: RefValue,
    HomeActionId.APPROVE: CardValue,
    HomeActionId.REQUEST_CHANGES: CardValue,
    HomeActionId.PREVIOUS_PAGE: PageValue,
    HomeActionId.NEXT_PAGE: PageValue,
}


def encode(value: ButtonValue) -> str:
    """Compact JSON, leaving out empty fields."""
    return json.dumps(value.model_dump(exclude_defaults=True), separators=(",", ":"))


def run_value(run_id: str, experiment_id: str = "") -> str:
    return encode(RunValue(run_id=run_id, experiment_id=experiment_id))


def parse_value(action_id: str, raw: str | None) -> ButtonValue | None:
    """The typed value of a clicked button; None for an action id that carries none of ours."""
    kind = VALUE_TYPES.get(action_id)
    if kind is None:
        return None
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        data = {}
    try:
        return kind.model_validate(data if isinstance(data, dict) else {})
    except ValidationError:
        return kind()
