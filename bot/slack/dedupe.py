"""Which incoming Slack requests are a delivery the bot has seen already. Pure.

By Slack's own identity of a delivery, never by what a person did: a person who clicks Approve, then
Request changes, then Approve again made three deliveries, and all three count (bot.votes applies them
in order). What is the same delivery again:

- a request with the same signature: a replay of a captured request. Slack signs the timestamp with the
  body and bolt refuses timestamps older than five minutes, so remembering signatures a little longer
  than that refuses every replay;
- an event with the same `event_id`: Slack's retries of an event it thinks went unanswered;
- an interaction (slash command, button, modal submission) with the same `trigger_id`: Slack's
  redelivery of one interaction (Socket Mode redelivers envelopes that were not acknowledged).
"""

from __future__ import annotations

from typing import Any

REPLAY_TTL = 6 * 60  # bolt's signature check allows five minutes of clock skew either way
EVENT_TTL = 3600  # Slack retries an event up to 3 times within about an hour at most
INTERACTION_TTL = 30 * 60  # a trigger_id is good for 3 seconds; its payload's response_url for 30 min


def delivery_id(body: dict[str, Any]) -> str | None:
    """Slack's identity of this delivery: the event id, or the interaction's trigger id."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("trigger_id"):
        return f"trigger:{body['trigger_id']}"
    return None


def dedupe_keys(body: dict[str, Any], signature: str | None) -> list[tuple[str, int]]:
    """Keys (with TTLs) that a later delivery of the same request would share; the request is new only
    if it can claim every one."""
    keys: list[tuple[str, int]] = []
    if signature:
        keys.append((f"dedupe:signature:{signature}", REPLAY_TTL))
    delivery = delivery_id(body)
    if delivery is not None:
        keys.append((f"dedupe:{delivery}", EVENT_TTL if delivery.startswith("event:") else INTERACTION_TTL))
    return keys
