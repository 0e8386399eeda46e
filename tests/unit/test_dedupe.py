"""Unit tests for bot.slack.dedupe: a delivery is known by Slack's identity of it, never by what a
person did."""

from __future__ import annotations

from typing import Any

from bot.slack.dedupe import EVENT_TTL, INTERACTION_TTL, REPLAY_TTL, dedupe_keys, delivery_id


def _command(trigger: str = "T.1") -> dict[str, Any]:
    return {"command": "/review", "text": "abc", "user_id": "U1", "channel_id": "C1", "trigger_id": trigger}


def _action(trigger: str = "T.2", action_ts: str = "9.9") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "trigger_id": trigger,
        "user": {"id": "U1"},
        "container": {"type": "message", "message_ts": "1.1"},
        "actions": [{"action_id": "review_approve", "value": "{}", "action_ts": action_ts}],
    }


def test_event_retries_share_a_key_whatever_their_signature() -> None:
    first = dedupe_keys({"type": "event_callback", "event_id": "Ev1"}, "v0=aaa")
    retry = dedupe_keys({"type": "event_callback", "event_id": "Ev1", "x": 1}, "v0=bbb")
    assert ("dedupe:event:Ev1", EVENT_TTL) in first and ("dedupe:event:Ev1", EVENT_TTL) in retry
    assert dedupe_keys({"type": "event_callback", "event_id": "Ev2"}, None) == [
        ("dedupe:event:Ev2", EVENT_TTL)
    ]


def test_a_replayed_request_shares_its_signature_key_for_longer_than_slacks_window() -> None:
    keys = dedupe_keys(_command(), "v0=abc")
    assert ("dedupe:signature:v0=abc", REPLAY_TTL) in keys
    assert REPLAY_TTL > 5 * 60  # bolt accepts a timestamp up to five minutes old


def test_the_same_command_typed_twice_is_two_deliveries() -> None:
    assert dedupe_keys(_command("T.1"), "v0=1") != dedupe_keys(_command("T.9"), "v0=2")
    assert not set(dedupe_keys(_command("T.1"), "v0=1")) & set(dedupe_keys(_command("T.9"), "v0=2"))


def test_clicks_are_deliveries_of_their_own_even_on_the_same_button() -> None:
    """Approve, Request changes, Approve on one card: three deliveries, all acted on."""
    first, second = dedupe_keys(_action("T.a", "1.0"), "v0=a"), dedupe_keys(_action("T.b", "2.5"), "v0=b")
    assert not set(first) & set(second)
    assert ("dedupe:trigger:T.a", INTERACTION_TTL) in first


def test_socket_mode_redelivery_is_known_by_its_trigger() -> None:
    """No signature in Socket Mode: a redelivered envelope carries the same trigger_id."""
    assert (
        dedupe_keys(_action("T.x"), None)
        == dedupe_keys(_action("T.x"), None)
        == [("dedupe:trigger:T.x", INTERACTION_TTL)]
    )


def test_a_view_submission_resubmitted_after_a_field_error_is_a_new_delivery() -> None:
    view = {"type": "view_submission", "view": {"id": "V1", "hash": "h1"}}
    first = dedupe_keys({**view, "trigger_id": "T.first"}, "v0=1")
    corrected = dedupe_keys({**view, "trigger_id": "T.second"}, "v0=2")
    assert not set(first) & set(corrected)


def test_delivery_id_names_the_event_or_the_trigger() -> None:
    assert delivery_id({"type": "event_callback", "event_id": "Ev9", "trigger_id": "x"}) == "event:Ev9"
    assert delivery_id(_action("T.7")) == "trigger:T.7"
    assert delivery_id({"type": "url_verification"}) is None
    assert dedupe_keys({"type": "url_verification"}, None) == []
