"""Unit tests for tests/slack_api_server.py: the fake Slack must enforce Slack's rules so tests can fail."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from tests import slack_api_server as sas
from tests.slack_api_server import SlackTestServer

CHANNEL = "C0REVIEW"


@pytest.fixture(scope="module")
def server() -> Iterator[SlackTestServer]:
    srv = SlackTestServer().start()
    srv.add_channel(CHANNEL, "model-review")
    srv.add_channel("C0OUTSIDE", "elsewhere", is_member=False)
    srv.add_user("U0ALICE", "alice", real_name="Alice Liddell", email="alice@example.com", tz="Europe/Paris")
    yield srv
    srv.stop()


@pytest.fixture()
def slack(server: SlackTestServer) -> Iterator[SlackTestServer]:
    server.reset()
    yield server


@pytest.fixture()
def client(slack: SlackTestServer) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


def error_of(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


def post_raw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": "Approve"},
        "action_id": "approve",
        **overrides,
    }


# ------------------------------------------------------------------------------------------------ auth


def test_auth_test_shape(client: WebClient, slack: SlackTestServer) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == "U0BOT"
    assert resp["team_id"] == "T0TEST"
    assert resp["bot_id"] == "B0BOT"
    assert resp["url"].startswith("https://")
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    call = slack.calls_to("auth.test")[0]
    assert call.token == "xoxb-test-token"
    assert call.ok


@pytest.mark.parametrize(
    ("token", "error"),
    [(None, "not_authed"), ("xoxb-wrong", "invalid_auth"), ("xapp-test-token", "not_allowed_token_type")],
)
def test_bot_method_token_checks(slack: SlackTestServer, token: str | None, error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=token, base_url=slack.api_url).chat_postMessage(channel=CHANNEL, text="hi")
    assert error_of(excinfo) == error
    assert slack.messages[CHANNEL] == []
    assert slack.calls_to("chat.postMessage")[0].error == error


def test_form_token_field_is_accepted(slack: SlackTestServer) -> None:
    status, _, body = post_raw(
        slack.api_url + "auth.test",
        b"token=xoxb-test-token",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    assert json.loads(body)["ok"] is True


def test_token_inside_json_body_is_ignored(slack: SlackTestServer) -> None:
    _, _, body = post_raw(
        slack.api_url + "auth.test",
        json.dumps({"token": "xoxb-test-token"}).encode(),
        {"Content-Type": "application/json"},
    )
    assert json.loads(body) == {"ok": False, "error": "not_authed"}


def test_app_token_only_for_connections_open(slack: SlackTestServer) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=slack.bot_token, base_url=slack.api_url).apps_connections_open(
            app_token=slack.bot_token
        )
    assert error_of(excinfo) == "not_allowed_token_type"
    url = WebClient(base_url=slack.api_url).apps_connections_open(app_token=slack.app_token)["url"]
    assert url.startswith("ws://127.0.0.1:")
    assert "/link/?ticket=" in url


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.sendTelepathically")
    assert error_of(excinfo) == "unknown_method"


# ------------------------------------------------------------------------------------------------ chat


def test_post_message_unknown_channel_and_non_member(client: WebClient, slack: SlackTestServer) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0NOPE", text="hi")
    assert error_of(excinfo) == "channel_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0OUTSIDE", text="hi")
    assert error_of(excinfo) == "not_in_channel"
    assert slack.messages["C0OUTSIDE"] == []


def test_post_message_requires_text_or_blocks(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="")
    assert error_of(excinfo) == "no_text"


def test_post_message_stores_and_answers_like_slack(client: WebClient, slack: SlackTestServer) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="one", blocks=[section("*one*")])
    second = client.chat_postMessage(channel="#model-review", text="two")
    assert first["channel"] == second["channel"] == CHANNEL
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["bot_id"] == "B0BOT"
    assert first["message"]["user"] == "U0BOT"
    assert first["message"]["blocks"] == [section("*one*")]
    stored = slack.messages[CHANNEL]
    assert [m["text"] for m in stored] == ["one", "two"]
    assert stored[0]["ts"] == first["ts"]
    assert stored[0]["blocks"] == [section("*one*")]
    call = slack.wait_for("chat.postMessage", lambda c: c.args.get("text") == "two")[0]
    assert call.args["channel"] == "#model-review"


def test_post_message_to_user_opens_dm(client: WebClient, slack: SlackTestServer) -> None:
    resp = client.chat_postMessage(channel="U0ALICE", text="psst")
    assert resp["channel"].startswith("D")
    assert slack.messages[resp["channel"]][0]["text"] == "psst"


def test_thread_replies(client: WebClient, slack: SlackTestServer) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="parent")
    reply = client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert reply["message"]["parent_user_id"] == "U0BOT"
    assert [m["text"] for m in slack.thread(CHANNEL, parent["ts"])] == ["reply"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="orphan", thread_ts="1111111111.000100")
    assert error_of(excinfo) == "thread_not_found"
    replies = client.conversations_replies(channel=CHANNEL, ts=parent["ts"])["messages"]
    assert [m["text"] for m in replies] == ["parent", "reply"]
    assert replies[0]["reply_count"] == 1


def test_message_text_limit(client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="x" * sas.MESSAGE_TEXT_MAX)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="x" * (sas.MESSAGE_TEXT_MAX + 1))
    assert error_of(excinfo) == "msg_too_long"


# ------------------------------------------------------------------------------------------------ Block Kit

OVER_LIMIT_BLOCKS: dict[str, list[dict[str, Any]]] = {
    "too_many_blocks": [section("b")] * (sas.MESSAGE_BLOCKS_MAX + 1),
    "unknown_type": [{"type": "carousel"}],
    "block_not_object": ["section"],  # type: ignore[list-item]
    "long_block_id": [section("a", block_id="b" * (sas.BLOCK_ID_MAX + 1))],
    "duplicate_block_id": [section("a", block_id="same"), section("b", block_id="same")],
    "section_text": [section("x" * (sas.SECTION_TEXT_MAX + 1))],
    "section_empty_text": [section("")],
    "section_without_text_or_fields": [{"type": "section"}],
    "section_too_many_fields": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * (sas.SECTION_FIELDS_MAX + 1)}
    ],
    "section_long_field": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * (sas.SECTION_FIELD_TEXT_MAX + 1)}]}
    ],
    "bad_text_type": [{"type": "section", "text": {"type": "markdown", "text": "hi"}}],
    "header_long": [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * (sas.HEADER_TEXT_MAX + 1)}}
    ],
    "header_mrkdwn": [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
    "context_too_many": [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * (sas.CONTEXT_ELEMENTS_MAX + 1)}
    ],
    "actions_too_many": [
        {
            "type": "actions",
            "elements": [button(action_id=f"a{i}") for i in range(sas.ACTIONS_ELEMENTS_MAX + 1)],
        }
    ],
    "button_text": [
        {
            "type": "actions",
            "elements": [button(text={"type": "plain_text", "text": "t" * (sas.BUTTON_TEXT_MAX + 1)})],
        }
    ],
    "button_value": [{"type": "actions", "elements": [button(value="v" * (sas.BUTTON_VALUE_MAX + 1))]}],
    "button_action_id": [{"type": "actions", "elements": [button(action_id="a" * (sas.ACTION_ID_MAX + 1))]}],
    "button_url": [{"type": "actions", "elements": [button(url="https://x/" + "u" * sas.BUTTON_URL_MAX)]}],
    "duplicate_action_id": [{"type": "actions", "elements": [button(), button()]}],
    "image_url": [
        {"type": "image", "image_url": "https://x/" + "i" * sas.IMAGE_URL_MAX, "alt_text": "chart"}
    ],
    "image_alt_text": [
        {"type": "image", "image_url": "https://x/c.png", "alt_text": "a" * (sas.IMAGE_ALT_TEXT_MAX + 1)}
    ],
    "image_missing_alt_text": [{"type": "image", "image_url": "https://x/c.png"}],
    "markdown_long": [{"type": "markdown", "text": "m" * (sas.MARKDOWN_BLOCK_TEXT_MAX + 1)}],
}


@pytest.mark.parametrize("case", sorted(OVER_LIMIT_BLOCKS))
def test_block_kit_limits_are_enforced(client: WebClient, slack: SlackTestServer, case: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=OVER_LIMIT_BLOCKS[case])
    assert error_of(excinfo) == "invalid_blocks"
    messages = excinfo.value.response["response_metadata"]["messages"]
    assert messages
    assert all(m.startswith("[ERROR] ") and "[json-pointer:/blocks" in m for m in messages)
    assert slack.messages[CHANNEL] == []


def test_blocks_at_the_limits_are_accepted(client: WebClient, slack: SlackTestServer) -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * sas.HEADER_TEXT_MAX}},
        section("s" * sas.SECTION_TEXT_MAX, block_id="b" * sas.BLOCK_ID_MAX),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * sas.SECTION_FIELD_TEXT_MAX}] * 10},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * sas.CONTEXT_ELEMENTS_MAX},
        {
            "type": "actions",
            "elements": [
                button(
                    action_id=f"a{i}",
                    value="v" * sas.BUTTON_VALUE_MAX,
                    text={"type": "plain_text", "text": "t" * sas.BUTTON_TEXT_MAX},
                    style="primary",
                )
                for i in range(sas.ACTIONS_ELEMENTS_MAX)
            ],
        },
        {"type": "image", "image_url": "https://x/c.png", "alt_text": "a" * sas.IMAGE_ALT_TEXT_MAX},
        {"type": "markdown", "text": "m" * sas.MARKDOWN_BLOCK_TEXT_MAX},
        {
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "r"}]}],
        },
    ]
    blocks += [section(f"filler {i}") for i in range(sas.MESSAGE_BLOCKS_MAX - len(blocks))]
    resp = client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks)
    assert len(slack.messages[CHANNEL][0]["blocks"]) == sas.MESSAGE_BLOCKS_MAX
    assert resp["message"]["blocks"] == blocks


def test_blocks_as_form_encoded_json_string(slack: SlackTestServer) -> None:
    body = f"channel={CHANNEL}&blocks=" + urllib.request.quote(json.dumps([section("form")]))
    status, _, raw = post_raw(
        slack.api_url + "chat.postMessage",
        body.encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {slack.bot_token}"},
    )
    assert status == 200
    assert json.loads(raw)["ok"] is True
    assert slack.calls_to("chat.postMessage")[0].args["blocks"] == [section("form")]


def test_metadata_shape_enforced(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="m", metadata={"event_type": "review"})  # type: ignore[arg-type]
    assert error_of(excinfo) == "invalid_metadata_format"


def test_update_message(client: WebClient, slack: SlackTestServer) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="before")
    updated = client.chat_update(channel=CHANNEL, ts=posted["ts"], text="after", blocks=[section("after")])
    assert updated["ts"] == posted["ts"]
    assert updated["text"] == "after"
    assert slack.messages[CHANNEL][0]["blocks"] == [section("after")]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert error_of(excinfo) == "message_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x", blocks=[section("")])
    assert error_of(excinfo) == "invalid_blocks"
    human = slack.add_message(CHANNEL, "mine", user="U0ALICE")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=CHANNEL, ts=human["ts"], text="x")
    assert error_of(excinfo) == "cant_update_message"


def test_post_ephemeral(client: WebClient, slack: SlackTestServer) -> None:
    resp = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert slack.ephemerals[0]["ts"] == resp["message_ts"]
    assert slack.ephemerals[0]["user"] == "U0ALICE"
    assert slack.messages[CHANNEL] == []
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="x", blocks=[{"type": "nope"}])
    assert error_of(excinfo) == "invalid_blocks"


def test_permalink(client: WebClient) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="link me")
    resp = client.chat_getPermalink(channel=CHANNEL, message_ts=posted["ts"])
    assert resp["channel"] == CHANNEL
    assert resp["permalink"] == f"https://test.slack.com/archives/{CHANNEL}/p{posted['ts'].replace('.', '')}"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_getPermalink(channel=CHANNEL, message_ts="1767225600.999999")
    assert error_of(excinfo) == "message_not_found"


def test_history_with_metadata(client: WebClient, slack: SlackTestServer) -> None:
    metadata = {"event_type": "review_card", "event_payload": {"run_id": "abc123"}}
    first = client.chat_postMessage(channel=CHANNEL, text="card", metadata=metadata)
    client.chat_postMessage(channel=CHANNEL, text="in thread", thread_ts=first["ts"])
    last = client.chat_postMessage(channel=CHANNEL, text="later")

    plain = client.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in plain["messages"]] == ["later", "card"]  # newest first, replies excluded
    assert plain["has_more"] is False
    assert all("metadata" not in m for m in plain["messages"])

    with_meta = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert with_meta["messages"][1]["metadata"] == metadata

    limited = client.conversations_history(channel=CHANNEL, limit=1)
    assert [m["ts"] for m in limited["messages"]] == [last["ts"]]
    assert limited["has_more"] is True
    exclusive = client.conversations_history(channel=CHANNEL, latest=last["ts"])
    assert [m["text"] for m in exclusive["messages"]] == ["card"]
    inclusive = client.conversations_history(channel=CHANNEL, oldest=last["ts"], inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["later"]


def test_users_info(client: WebClient) -> None:
    user = client.users_info(user="U0ALICE")["user"]
    assert user["real_name"] == "Alice Liddell"
    assert user["profile"]["email"] == "alice@example.com"
    assert user["tz"] == "Europe/Paris"
    assert user["tz_offset"] in (3600, 7200)
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U0NOBODY")
    assert error_of(excinfo) == "user_not_found"


def test_views_open(client: WebClient, slack: SlackTestServer) -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Reject run"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Why"},
                "element": {"type": "plain_text_input"},
            }
        ],
    }
    resp = client.views_open(trigger_id="123.456.abc", view=view)
    assert resp["view"]["id"].startswith("V")
    assert slack.views[0]["blocks"] == view["blocks"]
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(
            trigger_id="123.456.abc", view={**view, "title": {"type": "plain_text", "text": "t" * 25}}
        )
    assert error_of(excinfo) == "invalid_arguments"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id="123.456.abc", view={k: v for k, v in view.items() if k != "submit"})
    assert error_of(excinfo) == "invalid_arguments"
    trigger = slack.new_trigger_id()
    client.views_open(trigger_id=trigger, view=view)
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger, view=view)
    assert error_of(excinfo) == "exchanged_trigger_id"


# ------------------------------------------------------------------------------------------------ faults


def test_ratelimited_answers_429_with_retry_after(slack: SlackTestServer) -> None:
    slack.fail_next("chat.postMessage", retry_after=7)
    status, headers, body = post_raw(
        slack.api_url + "chat.postMessage",
        json.dumps({"channel": CHANNEL, "text": "hi"}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {slack.bot_token}"},
    )
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert json.loads(body) == {"ok": False, "error": "ratelimited"}
    assert slack.messages[CHANNEL] == []


def test_rate_limit_retry_handler_retries_through(slack: SlackTestServer) -> None:
    client = WebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.fail_next("chat.postMessage", retry_after=0)
    resp = client.chat_postMessage(channel=CHANNEL, text="eventually")
    assert resp["ok"] is True
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["eventually"]


def test_without_retry_handler_ratelimit_raises(client: WebClient, slack: SlackTestServer) -> None:
    slack.fail_next("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert excinfo.value.response.status_code == 429
    assert error_of(excinfo) == "ratelimited"


def test_fail_next_other_error_and_delay(client: WebClient, slack: SlackTestServer) -> None:
    slack.fail_next("users.info", error="fatal_error")
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U0ALICE")
    assert excinfo.value.response.status_code == 200
    assert error_of(excinfo) == "fatal_error"
    assert client.users_info(user="U0ALICE")["ok"] is True  # only the next one failed
    slack.delay("auth.test", 0.3)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.3


def test_wait_for_times_out_listing_calls(client: WebClient, slack: SlackTestServer) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test x1"):
        slack.wait_for("chat.postMessage", timeout=0.1)


def test_wait_for_sees_calls_from_other_threads(client: WebClient, slack: SlackTestServer) -> None:
    threading.Timer(0.1, lambda: client.chat_postMessage(channel=CHANNEL, text="later")).start()
    calls = slack.wait_for("chat.postMessage", lambda c: c.ok, timeout=5)
    assert calls[0].args["text"] == "later"


# ------------------------------------------------------------------------------------------------ files


def test_files_upload_v2_round_trip_into_thread(client: WebClient, slack: SlackTestServer) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="review card")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    resp = client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent["ts"],
        content=png,
        filename="roc.png",
        title="ROC curve",
        initial_comment="charts",
    )
    file_id = resp["file"]["id"]
    assert resp["files"][0]["title"] == "ROC curve"
    assert resp["files"][0]["name"] == "roc.png"
    record = slack.files[file_id]
    assert record.content == png
    assert record.completed is True
    assert record.channel == CHANNEL
    assert record.thread_ts == parent["ts"]
    thread = slack.thread(CHANNEL, parent["ts"])
    assert [m["text"] for m in thread] == ["charts"]
    assert thread[0]["files"][0]["id"] == file_id
    methods = [c.method for c in slack.calls]
    assert methods == ["chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"]
    assert slack.calls_to("files.completeUploadExternal")[0].args["files"] == [
        {"id": file_id, "title": "ROC curve"}
    ]


def test_complete_upload_rejects_unknown_and_unuploaded_files(
    client: WebClient, slack: SlackTestServer
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}], channel_id=CHANNEL)
    assert error_of(excinfo) == "file_not_found"
    pending = client.files_getUploadURLExternal(filename="a.txt", length=3)
    with pytest.raises(SlackApiError) as excinfo:
        client.files_completeUploadExternal(
            files=[{"id": pending["file_id"], "title": "a"}], channel_id=CHANNEL
        )
    assert error_of(excinfo) == "file_not_found"
    assert pending["upload_url"].startswith(slack.base_url + "/upload/")


def test_upload_length_mismatch_is_caught(client: WebClient, slack: SlackTestServer) -> None:
    pending = client.files_getUploadURLExternal(filename="a.txt", length=10)
    status, _, body = post_raw(pending["upload_url"], b"abc", {})
    assert (status, body) == (200, b"OK - 3")
    assert slack.files[pending["file_id"]].valid is False
    with pytest.raises(SlackApiError) as excinfo:
        client.files_completeUploadExternal(
            files=[{"id": pending["file_id"], "title": "a"}], channel_id=CHANNEL
        )
    assert error_of(excinfo) == "file_not_found"
    assert slack.messages[CHANNEL] == []


def test_upload_into_non_member_channel(client: WebClient, slack: SlackTestServer) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.files_upload_v2(channel="C0OUTSIDE", content=b"x", filename="x.txt")
    assert error_of(excinfo) == "not_in_channel"


def test_multipart_upload(client: WebClient, slack: SlackTestServer) -> None:
    pending = client.files_getUploadURLExternal(filename="a.bin", length=4)
    boundary = "XyZ"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"\x00\r\n\x01"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, _ = post_raw(
        pending["upload_url"], body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 200
    assert slack.files[pending["file_id"]].content == b"\x00\r\n\x01"
    assert slack.files[pending["file_id"]].valid is True


# ---------------------------------------------------------------------------------------------- response_url


def test_response_url(slack: SlackTestServer) -> None:
    url = slack.new_response_url()
    webhook = WebhookClient(url)
    assert webhook.send(text="done", replace_original=True).status_code == 200
    got = slack.wait_for_response(lambda r: r.get("text") == "done", timeout=2)
    assert got["_url"] == url
    assert got["replace_original"] is True
    bad = webhook.send(text="x", blocks=[section("x" * (sas.SECTION_TEXT_MAX + 1))])
    assert bad.status_code == 400
    assert len(slack.responses) == 1
    assert WebhookClient(slack.base_url + "/response/not-issued").send(text="x").status_code == 404
    with pytest.raises(AssertionError):
        slack.wait_for_response(lambda r: r.get("text") == "never", timeout=0.1)


# ------------------------------------------------------------------------------------------------ socket mode


def test_socket_mode_ack_round_trip(slack: SlackTestServer) -> None:
    received: list[SocketModeRequest] = []

    def on_request(client: SocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "ack"})
        )

    web_client = WebClient(base_url=slack.api_url)
    client = SocketModeClient(app_token=slack.app_token, web_client=web_client, ping_interval=1)
    client.socket_mode_request_listeners.append(on_request)
    try:
        client.connect()
        socket_mode = slack.socket_mode
        assert socket_mode is not None
        socket_mode.wait_connected(timeout=5)
        assert slack.calls_to("apps.connections.open")[0].token == slack.app_token

        payload = {"type": "block_actions", "actions": [{"action_id": "approve", "value": "run-1"}]}
        envelope_id = socket_mode.send_envelope("interactive", payload, accepts_response_payload=True)
        ack = socket_mode.wait_for_ack(envelope_id, timeout=5)
        assert ack == {"envelope_id": envelope_id, "payload": {"text": "ack"}}
        assert received[0].type == "interactive"
        assert received[0].payload == payload

        deadline = time.monotonic() + 5
        while client.current_session is not None and client.current_session.last_ping_pong_time is None:
            assert time.monotonic() < deadline, "the client never got a pong back"
            time.sleep(0.05)
        assert client.is_connected()
        with pytest.raises(AssertionError):
            socket_mode.wait_for_ack("never-sent", timeout=0.1)
    finally:
        # SocketModeClient.close() joins its polling threads (~3 s); let it finish in the background.
        threading.Thread(target=client.close, daemon=True).start()


def test_socket_mode_rejects_unknown_ticket(slack: SlackTestServer) -> None:
    socket_mode = slack.start_socket_mode()
    bad_url = socket_mode.url.split("?")[0].replace("ws://", "http://") + "?ticket=forged"
    request = urllib.request.Request(
        bad_url,
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=5)
    assert excinfo.value.code == 401


def test_reset_keeps_workspace_but_forgets_state(server: SlackTestServer) -> None:
    client = WebClient(token=server.bot_token, base_url=server.api_url)
    messages = server.messages
    client.chat_postMessage(channel=CHANNEL, text="before reset")
    server.fail_next("auth.test", error="fatal_error")
    server.reset()
    assert server.calls == []
    assert messages is server.messages
    assert server.messages[CHANNEL] == []
    assert client.auth_test()["ok"] is True  # the injected fault is gone
    assert client.users_info(user="U0ALICE")["user"]["name"] == "alice"
    assert client.chat_postMessage(channel=CHANNEL, text="after")["ok"] is True


# ------------------------------------------------------------------------------------ views.publish (Home)


def _home(blocks: int = 1, **extra: Any) -> dict[str, Any]:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    return {"type": "home", "blocks": [section] * blocks, **extra}


def test_home_views_publish_keeps_each_users_tab_and_its_id(
    client: WebClient, slack: SlackTestServer
) -> None:
    first = client.views_publish(user_id="U0ALICE", view=_home(1, callback_id="home"))["view"]
    again = client.views_publish(user_id="U0ALICE", view=_home(100))["view"]
    assert first["type"] == again["type"] == "home"
    assert again["id"] == first["id"] and again["hash"] != first["hash"]
    assert (
        len(slack.home_views["U0ALICE"]["blocks"]) == 100 and slack.home_views["U0ALICE"]["callback_id"] == ""
    )


def test_home_views_publish_refuses_what_slack_refuses(client: WebClient, slack: SlackTestServer) -> None:
    refused = {
        "more than 100 blocks": ({"user_id": "U0ALICE", "view": _home(101)}, "invalid_arguments"),
        "a modal": ({"user_id": "U0ALICE", "view": {**_home(), "type": "modal"}}, "invalid_arguments"),
        "an unknown user": ({"user_id": "U0NOBODY", "view": _home()}, "user_not_found"),
        "a long external_id": (
            {"user_id": "U0ALICE", "view": _home(external_id="x" * 256)},
            "invalid_arguments",
        ),
        "a bad block": (
            {"user_id": "U0ALICE", "view": {"type": "home", "blocks": [{"type": "section"}]}},
            "invalid_arguments",
        ),
    }
    for what, (args, error) in refused.items():
        with pytest.raises(SlackApiError) as excinfo:
            client.views_publish(**args)
        assert error_of(excinfo) == error, what
    assert slack.home_views == {}


def test_home_views_publish_refuses_a_view_over_250_kb(client: WebClient, slack: SlackTestServer) -> None:
    big = {"type": "section", "text": {"type": "mrkdwn", "text": "é" * 1_500}}  # 3 kB each in UTF-8
    with pytest.raises(SlackApiError) as excinfo:
        client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [big] * 90})
    assert error_of(excinfo) == "view_too_large"
    client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [big] * 80})  # 240 kB: fine
    assert len(slack.home_views["U0ALICE"]["blocks"]) == 80


def test_home_views_publish_hash_and_external_id(client: WebClient, slack: SlackTestServer) -> None:
    slack.add_user("U0HOMEBOB", "bob")
    published = client.views_publish(user_id="U0ALICE", view=_home(external_id="alice-home"))["view"]
    client.views_publish(user_id="U0ALICE", view=_home(2), hash=published["hash"])  # the current one: fine
    with pytest.raises(SlackApiError) as excinfo:
        client.views_publish(user_id="U0ALICE", view=_home(3), hash=published["hash"])  # replaced since
    assert error_of(excinfo) == "hash_conflict"
    client.views_publish(user_id="U0ALICE", view=_home(external_id="alice-home"))  # its own: fine
    with pytest.raises(SlackApiError) as excinfo:
        client.views_publish(user_id="U0HOMEBOB", view=_home(external_id="alice-home"))
    assert error_of(excinfo) == "duplicate_external_id"
    assert "U0HOMEBOB" not in slack.home_views


def test_home_views_publish_rate_limited_records_nothing(client: WebClient, slack: SlackTestServer) -> None:
    slack.fail_next("views.publish", retry_after=3)
    with pytest.raises(SlackApiError) as excinfo:
        client.views_publish(user_id="U0ALICE", view=_home())
    assert excinfo.value.response.status_code == 429 and excinfo.value.response.headers["Retry-After"] == "3"
    assert slack.home_views == {}
    client.views_publish(user_id="U0ALICE", view=_home())
    assert len(slack.home_views["U0ALICE"]["blocks"]) == 1


# --- chat.unfurl (bot.unfurls) ---------------------------------------------------------------------


UNFURL_URL = "https://mlflow.example.com/#/experiments/1?searchFilter=a&orderByKey=b"
UNFURL_BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Experiment*"}}]


@pytest.fixture()
def unfurl_domains(slack: SlackTestServer) -> Iterator[None]:
    slack.unfurl_domains = {"mlflow.example.com"}
    yield
    slack.unfurl_domains = set()


def test_unfurl_server_by_channel_and_ts_of_a_message_with_the_link(
    client: WebClient, slack: SlackTestServer, unfurl_domains: None
) -> None:
    # Slack keeps the message's `&` as `&amp;`; the link_shared event's URL has a plain `&`
    message = slack.add_message(CHANNEL, f"look <{UNFURL_URL.replace('&', '&amp;')}>", "U0ALICE")
    client.chat_unfurl(channel=CHANNEL, ts=message["ts"], unfurls={UNFURL_URL: {"blocks": UNFURL_BLOCKS}})
    assert slack.unfurls == [
        {
            "channel": CHANNEL,
            "ts": message["ts"],
            "unfurl_id": None,
            "source": None,
            "unfurls": {UNFURL_URL: {"blocks": UNFURL_BLOCKS}},
        }
    ]


def test_unfurl_server_by_unfurl_id_and_source(
    client: WebClient, slack: SlackTestServer, unfurl_domains: None
) -> None:
    client.chat_unfurl(unfurl_id="U-1", source="composer", unfurls={UNFURL_URL: {"blocks": UNFURL_BLOCKS}})
    assert [(u["unfurl_id"], u["source"]) for u in slack.unfurls] == [("U-1", "composer")]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_unfurl(unfurl_id="U-2", unfurls={UNFURL_URL: {"blocks": UNFURL_BLOCKS}})
    assert error_of(excinfo) == "invalid_source"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_unfurl(
            unfurl_id="U-3", source="elsewhere", unfurls={UNFURL_URL: {"blocks": UNFURL_BLOCKS}}
        )
    assert error_of(excinfo) == "invalid_source"
    assert len(slack.unfurls) == 1


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ({}, "missing_channel"),
        ({"ts": "1.000001"}, "missing_channel"),
        ({"channel": CHANNEL}, "missing_ts"),
        ({"channel": "C0NOWHERE", "ts": "1.000001"}, "cannot_find_channel"),
        ({"channel": CHANNEL, "ts": "9.999999"}, "cannot_find_message"),
    ],
)
def test_unfurl_server_refuses_an_address_slack_would_refuse(
    client: WebClient, slack: SlackTestServer, unfurl_domains: None, address: dict, error: str
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_unfurl(unfurls={UNFURL_URL: {"blocks": UNFURL_BLOCKS}}, **address)
    assert error_of(excinfo) == error
    assert slack.unfurls == []


def test_unfurl_server_refuses_urls_off_the_domains_or_not_in_the_message(
    client: WebClient, slack: SlackTestServer, unfurl_domains: None
) -> None:
    message = slack.add_message(CHANNEL, f"see {UNFURL_URL}", "U0ALICE")
    elsewhere = "https://evil.example.com/#/experiments/1"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_unfurl(channel=CHANNEL, ts=message["ts"], unfurls={elsewhere: {"blocks": UNFURL_BLOCKS}})
    assert error_of(excinfo) == "cannot_unfurl_url"
    other = "https://mlflow.example.com/#/experiments/2"  # on the domain, not in the message
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_unfurl(channel=CHANNEL, ts=message["ts"], unfurls={other: {"blocks": UNFURL_BLOCKS}})
    assert error_of(excinfo) == "cannot_unfurl_message"
    sub = "https://eu.mlflow.example.com/#/experiments/3"  # a subdomain of an unfurl domain is one too
    client.chat_unfurl(
        unfurl_id="U-9", source="conversations_history", unfurls={sub: {"blocks": UNFURL_BLOCKS}}
    )
    assert [list(u["unfurls"]) for u in slack.unfurls] == [[sub]]


def test_unfurl_server_validates_the_unfurls(
    client: WebClient, slack: SlackTestServer, unfurl_domains: None
) -> None:
    def unfurl(unfurls: Any) -> str:
        with pytest.raises(SlackApiError) as excinfo:
            client.api_call(
                "chat.unfurl", json={"unfurl_id": "U-1", "source": "composer", "unfurls": unfurls}
            )
        return error_of(excinfo)

    assert unfurl({}) == "missing_unfurls"
    assert unfurl("not json") == "invalid_unfurls_format"
    assert unfurl({UNFURL_URL: "text"}) == "invalid_unfurls_format"
    assert unfurl({UNFURL_URL: {}}) == "invalid_unfurls_format"  # neither blocks nor text
    assert unfurl({UNFURL_URL: {"blocks": [{"type": "section"}]}}) == "invalid_unfurls_format"
    too_many = [{"type": "divider"}] * 51
    assert unfurl({UNFURL_URL: {"blocks": too_many}}) == "invalid_unfurls_format"
    assert slack.unfurls == []
