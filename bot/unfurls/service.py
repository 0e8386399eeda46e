"""Unfurling MLflow UI links (STUB: being built)."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.mlflow import MlflowAccess
from bot.reviews.card_index import CardIndex
from bot.reviews.publish import ReviewPublisher
from bot.slack.outbox import Outbox
from bot.store import Store


class UnfurlService:
    def __init__(
        self,
        mlflow: MlflowAccess,
        settings: Settings,
        store: Store,
        outbox: Outbox,
        cards: CardIndex,
        publisher: ReviewPublisher,
    ) -> None:
        self.mlflow = mlflow
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.cards = cards
        self.publisher = publisher

    def unfurl(self, event: dict[str, Any]) -> None:
        """A link_shared event: unfurl the MLflow links in it (stub)."""
