"""People: one users.info per person, cached; what a failed lookup falls back to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.slack.people import People
from bot.store import MemoryStore
from tests.slack_api_server import SlackTestServer


@pytest.fixture
def slack() -> Iterator[SlackTestServer]:
    server = SlackTestServer().start()
    server.add_user("U1", "ana", "Ana Lopez", "ana.lopez@example.com", "Europe/Madrid")
    yield server
    server.stop()


def test_a_person_is_looked_up_once_and_cached(slack: SlackTestServer) -> None:
    people = People(MemoryStore(), WebClient(token=slack.bot_token, base_url=slack.api_url))
    first, again = people.get("U1"), people.get("U1")
    assert first == again
    assert first.name == "Ana Lopez" and first.tz == "Europe/Madrid"
    assert {"ana.lopez", "ana", "ana lopez"} <= first.handles
    assert len(slack.calls_to("users.info")) == 1


def test_an_unknown_person_is_shown_by_id_in_utc_and_not_cached(slack: SlackTestServer) -> None:
    people = People(MemoryStore(), WebClient(token=slack.bot_token, base_url=slack.api_url))
    ghost = people.get("U404")
    assert (ghost.name, ghost.tz, ghost.handles) == ("U404", "UTC", frozenset())
    people.get("U404")
    assert len(slack.calls_to("users.info")) == 2  # a failure is not remembered: it may work next time
