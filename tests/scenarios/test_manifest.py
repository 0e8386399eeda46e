"""manifest.yml and the code stay in step: what is declared is handled, what is handled is declared,
and the bot scopes are exactly those the Web API methods it calls need."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from bot.ids import CARD_ACTIONS, COMMAND, SUBSCRIBED_EVENTS, ActionId
from tests import support
from tests.scenarios.helpers import cards_for, response_texts

MANIFEST = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())

# Slack's documented scope for each Web API method the bot may call (None: no scope needed).
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.getPermalink": set(),
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    # public and private review channels
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    # the email is how a run's mlflow.user is matched to a Slack user
    "users.info": {"users:read", "users:read.email"},
    "usergroups.users.list": {"usergroups:read"},
    "conversations.open": {"im:write"},  # a DM with each invitee, for the .ics file
    "views.open": set(),
    "views.publish": set(),  # the Home tab
    "chat.unfurl": {"links:write"},
    "apps.connections.open": set(),  # app-level token (connections:write), not a bot scope
}


def test_declared_commands_are_the_handled_ones(bot, response_url) -> None:
    declared = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert declared == {COMMAND}
    for command in declared:
        reply = bot.command("help", response_url, user=support.CAROL)
        assert reply.status_code == 200, command


def test_an_undeclared_command_is_not_handled(bot, response_url) -> None:
    body = urlencode(
        {
            "command": "/not-ours",
            "text": "x",
            "user_id": support.CAROL,
            "channel_id": support.DEV_CHANNEL,
            "response_url": response_url,
        }
    )
    reply = bot.post_signed(body, "application/x-www-form-urlencoded")
    assert reply.status_code == 404  # so a 200 above really means "handled"


def test_every_action_id_is_handled_and_interactivity_is_on(
    bot, slack, runs, response_url, eventually
) -> None:
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    run_id = runs.make_run("manifest")
    bot.command(run_id, response_url)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    on_card = {e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert on_card == {a.value for a in CARD_ACTIONS}
    for action in ActionId:
        reply = bot.block_action(
            action.value,
            "{}",
            slack.new_response_url(),
            message=card,
            channel=card["channel"],
            user=support.CAROL,
        )
        assert reply.status_code == 200, action
    unknown = bot.block_action(
        "not_ours", "{}", slack.new_response_url(), message=card, channel=card["channel"]
    )
    assert unknown.status_code == 404


EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "reaction_added": "reactions:read",
    "reaction_removed": "reactions:read",
    "link_shared": "links:read",
    "app_home_opened": "",  # no scope: the Home tab's event
}


def test_declared_events_are_the_subscribed_ones() -> None:
    declared = set(MANIFEST.get("settings", {}).get("event_subscriptions", {}).get("bot_events", []))
    assert declared == set(SUBSCRIBED_EVENTS)


def methods_the_code_calls() -> set[str]:
    """Web API methods named in bot/ and handlers/ (`client.chat_postMessage(` -> chat.postMessage)."""
    root = Path(__file__).parents[2]
    files = [p for d in ("bot", "handlers") for p in (root / d).rglob("*.py") if p.name != "demo.py"]
    source = "\n".join(p.read_text() for p in files)  # demo.py builds an MLflow store, not Slack calls
    methods = set()
    for name in set(re.findall(r"(?<![_\w])client\.([a-z]+_[A-Za-z0-9_]+)\(", source)):
        if name == "files_upload_v2":  # slack_sdk's helper for the two-step upload
            methods |= {"files.getUploadURLExternal", "files.completeUploadExternal"}
        else:
            methods.add(name.replace("_", "."))
    return methods


def test_bot_scopes_are_exactly_what_the_code_needs(bot, slack, runs, response_url, eventually) -> None:
    in_code = methods_the_code_calls()
    unknown = in_code - set(METHOD_SCOPES)
    assert not unknown, f"add these methods' scopes to METHOD_SCOPES: {unknown}"
    needed = (
        set().union(*(METHOD_SCOPES[m] for m in in_code))
        | {"commands"}
        | {EVENT_SCOPES[e] for e in SUBSCRIBED_EVENTS if EVENT_SCOPES[e]}
    )
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed
    # ...and the reading of the code is complete: whatever the bot called in this session is in it.
    run_id = runs.make_run("scopes", histories={"loss": [1.0, 0.5, 0.2]})
    bot.command(run_id, response_url)
    eventually(lambda: [t for t in response_texts(slack, response_url) if "Review card posted" in t])
    card = cards_for(slack, run_id)[0]
    eventually(lambda: [f for f in slack.files.values() if f.thread_ts == card["ts"] and f.completed])
    called = {c.method for c in slack.calls if c.token == support.BOT_TOKEN}
    assert called - {"auth.test"} <= in_code  # auth.test is bolt's own start-up call
    assert {"chat.postMessage", "files.completeUploadExternal"} <= called


@pytest.mark.parametrize("key", ["socket_mode_enabled", "token_rotation_enabled"])
def test_settings_switches_are_explicit(key) -> None:
    assert MANIFEST["settings"][key] is False
