"""Unit tests for bot.slack.dedupe: which requests are the same request again."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack.dedupe import ACTION_TTL, COMMAND_TTL, EVENT_TTL, dedupe_key


def _command(text: str = "abc", user: str = "U1", channel: str = "C1", team: str = "T1") -> dict[str, Any]:
    return {
        "command": "/review",
        "text": text,
        "user_id": user,
        "channel_id": channel,
        "team_id": team,
        "trigger_id": "different-every-time",
    }


def _action(action_id: str = "review_approve", user: str = "U1", ts: str = "1.1") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "container": {"type": "message", "message_ts": ts},
        "actions": [{"action_id": action_id, "value": "{}", "action_ts": "9.9"}],
    }


def test_event_retries_share_a_key() -> None:
    first = dedupe_key({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}})
    retry = dedupe_key(
        {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "x": 1}}
    )
    assert first == retry == ("dedupe:event:Ev1", EVENT_TTL)
    assert dedupe_key({"type": "event_callback", "event_id": "Ev2"}) != first


def test_same_command_twice_is_one_request() -> None:
    key = dedupe_key(_command())
    assert key is not None
    assert key == dedupe_key(_command())
    assert key[1] == COMMAND_TTL
    assert key[0].startswith("dedupe:command:T1:U1:C1:/review:")


@pytest.mark.parametrize("text", ["  abc", "abc  ", "abc\n", "\tabc"])
def test_command_text_whitespace_is_normalised(text: str) -> None:
    assert dedupe_key(_command(text)) == dedupe_key(_command("abc"))


def test_inner_whitespace_is_normalised_too() -> None:
    assert dedupe_key(_command("a   b")) == dedupe_key(_command("a b"))
    assert dedupe_key(_command("a b")) != dedupe_key(_command("ab"))


@pytest.mark.parametrize(
    "other",
    [_command("abd"), _command(user="U2"), _command(channel="C2"), _command(team="T2"), _command("")],
)
def test_different_commands_have_different_keys(other: dict[str, Any]) -> None:
    assert dedupe_key(other) != dedupe_key(_command())


def test_double_click_is_one_action() -> None:
    key = dedupe_key(_action())
    assert key == dedupe_key(_action())
    assert key == ("dedupe:action:U1:1.1:review_approve", ACTION_TTL)


@pytest.mark.parametrize("other", [_action("review_request_changes"), _action(user="U2"), _action(ts="2.2")])
def test_different_actions_have_different_keys(other: dict[str, Any]) -> None:
    assert dedupe_key(other) != dedupe_key(_action())


def test_action_in_a_view() -> None:
    body = {"type": "block_actions", "user": {"id": "U1"}, "container": {"view_id": "V1"}, "actions": []}
    assert dedupe_key(body) == ("dedupe:action:U1:V1:None", ACTION_TTL)


def test_view_submission() -> None:
    body = {"type": "view_submission", "view": {"id": "V1", "hash": "h1"}}
    assert dedupe_key(body) == ("dedupe:view:V1:h1", EVENT_TTL)
    assert dedupe_key(body) == dedupe_key({**body, "user": {"id": "U1"}})
    assert dedupe_key({"type": "view_submission", "view": {"id": "V1", "hash": "h2"}}) != dedupe_key(body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "url_verification", "challenge": "x"},
        {"type": "event_callback"},
        {"type": "view_closed", "view": {"id": "V1"}},
        {"type": "shortcut", "callback_id": "x"},
        {"command": "/review", "text": "x"},
    ],
)
def test_other_bodies_are_not_deduplicated(body: dict[str, Any]) -> None:
    assert dedupe_key(body) is None


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_help_is_never_deduplicated(text: str) -> None:
    body = {"command": "/review", "user_id": "U1", "channel_id": "C1", "team_id": "T1", "text": text}
    assert dedupe_key(body) is None
