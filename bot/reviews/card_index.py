"""Which Slack messages are review cards: a cache in the store, and the card's own metadata in Slack
when the cache does not know (a restart, another replica, an expired entry)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.ids import MetadataEvent
from bot.store import Store

CARD_TTL = 30 * 24 * 3600


@dataclass(frozen=True)
class CardRef:
    run_id: str
    experiment_id: str


class CardIndex:
    def __init__(self, store: Store, client: WebClient) -> None:
        self.store = store
        self.client = client

    @staticmethod
    def _key(channel: str, ts: str) -> str:
        return f"card:{channel}:{ts}"

    def remember(self, channel: str, ts: str, card: CardRef) -> None:
        self.store.put_json(
            self._key(channel, ts), {"run_id": card.run_id, "experiment_id": card.experiment_id}, CARD_TTL
        )

    def find(self, channel: str, ts: str) -> CardRef | None:
        cached = self.store.get_json(self._key(channel, ts))
        if cached is not None:
            return CardRef(run_id=cached["run_id"], experiment_id=cached["experiment_id"])
        response = self.client.conversations_history(
            channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1, include_all_metadata=True
        )
        message = next((m for m in response.get("messages", []) if m.get("ts") == ts), None)
        metadata = (message or {}).get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") != MetadataEvent.MODEL_REVIEW.value or not payload.get("run_id"):
            return None
        card = CardRef(run_id=str(payload["run_id"]), experiment_id=str(payload.get("experiment_id", "")))
        self.remember(channel, ts, card)
        return card
