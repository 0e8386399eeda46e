"""The Home tab (STUB: being built)."""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk import WebClient

from bot.config import Settings
from bot.mlflow import MlflowAccess
from bot.reviews.card_index import CardIndex
from bot.slack.outbox import Outbox
from bot.store import Store


class HomeService:
    def __init__(
        self,
        mlflow: MlflowAccess,
        settings: Settings,
        store: Store,
        outbox: Outbox,
        client: WebClient,
        cards: CardIndex,
    ) -> None:
        self.mlflow = mlflow
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.client = client
        self.cards = cards

    def opened(self, user: str) -> None:
        """app_home_opened: publish the person's Home tab (stub)."""

    def changed(self, users: Iterable[str]) -> None:
        """Something on these people's Home tabs changed (a vote, a new card, a meeting) (stub)."""
