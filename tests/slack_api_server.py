"""A local stand-in for slack.com, for the review-bot test suite.

``SlackTestServer`` is a real HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, a free port,
a daemon thread) that answers the Slack Web API the way slack.com does, so the bot under test can use an
unmodified ``slack_sdk.WebClient(base_url=server.api_url)`` and talk to it over HTTP.  It records every
call (``server.calls``), keeps the resulting state (messages, threads, files, views, ephemerals, response
URL posts) and *enforces Slack's rules*: token checks, channel membership, thread existence, Block Kit
limits, metadata shape, the three-step ``files_upload_v2`` flow.  A test that breaks one of those rules
fails here just as it would against Slack.

It also serves:

* ``/response/<uuid>`` -- response URLs (what bolt's ``respond()`` posts to), see ``new_response_url``;
* ``/upload/<file_id>`` -- the upload URLs handed out by ``files.getUploadURLExternal``;
* Socket Mode, through ``SocketModeTestServer`` (a ``websockets`` sync server) whose URL is returned
  by ``apps.connections.open``.

Faults can be injected with ``fail_next`` (including HTTP 429 with ``Retry-After``) and ``delay``.

Typical use::

    server = SlackTestServer().start()
    server.add_channel("C0REVIEW", "model-review")
    client = WebClient(token=server.bot_token, base_url=server.api_url)
    client.chat_postMessage(channel="C0REVIEW", text="hi")
    server.wait_for("chat.postMessage")
    server.stop()
"""

from __future__ import annotations

import bisect
import contextlib
import email.parser
import email.policy
import json
import threading
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

# ---------------------------------------------------------------------------------------------------------
# Limits Slack enforces (https://docs.slack.dev/reference/block-kit/...)

MESSAGE_TEXT_MAX = 40_000
MESSAGE_BLOCKS_MAX = 50
MODAL_BLOCKS_MAX = 100
BLOCK_ID_MAX = 255
ACTION_ID_MAX = 255
SECTION_TEXT_MAX = 3_000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2_000
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2_000
BUTTON_URL_MAX = 3_000
IMAGE_URL_MAX = 3_000
IMAGE_ALT_TEXT_MAX = 2_000
IMAGE_TITLE_MAX = 2_000
MARKDOWN_BLOCK_TEXT_MAX = 12_000
INPUT_LABEL_MAX = 2_000
INPUT_HINT_MAX = 2_000
PLACEHOLDER_MAX = 150
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
SELECT_OPTIONS_MAX = 100
CHECKBOX_RADIO_OPTIONS_MAX = 10
OVERFLOW_OPTIONS_MAX = 5
MODAL_TITLE_MAX = 24
MODAL_BUTTON_TEXT_MAX = 24
CALLBACK_ID_MAX = 255
PRIVATE_METADATA_MAX = 3_000
CONVERSATIONS_HISTORY_LIMIT_MAX = 999
RESPONSE_URL_MAX_USES = 5
TRIGGER_ID_TTL_SECONDS = 3.0
SOCKET_MODE_CLOSE_TIMEOUT = 0.25  # the sdk's built-in client never echoes a close frame

KNOWN_BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "divider",
        "context",
        "actions",
        "image",
        "rich_text",
        "markdown",
        "input",
        "file",
        "video",
    }
)
TEXT_OBJECT_TYPES = frozenset({"plain_text", "mrkdwn"})
BUTTON_STYLES = frozenset({"primary", "danger"})
SELECT_ELEMENT_TYPES = frozenset({"static_select", "multi_static_select"})
CHECKBOX_RADIO_TYPES = frozenset({"checkboxes", "radio_buttons"})

# Arguments Slack documents as JSON-encoded strings when sent as form fields.
JSON_ARGS = frozenset({"blocks", "attachments", "metadata", "files", "view"})

# Methods that accept an app-level (xapp-) token; every other method implemented here needs the bot token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

FIRST_TS_SECONDS = 1_767_225_600  # 2026-01-01T00:00:00Z
TS_STEP_MICROS = 100
PERMALINK_BASE = "https://test.slack.com/archives"
WORKSPACE_URL = "https://test.slack.com/"


# ---------------------------------------------------------------------------------------------------------
# Records


@dataclass
class Call:
    """One Web API call the server received (including ones it rejected)."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    token: str
    at: float
    response: dict[str, Any] = field(default_factory=dict)
    status: int = 200

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.ok else self.response.get("error")


@dataclass
class FileRecord:
    """A file created by ``files.getUploadURLExternal``; ``completed`` once ``completeUploadExternal`` ran."""

    id: str
    filename: str
    title: str
    content: bytes
    channel: str | None
    thread_ts: str | None
    completed: bool
    declared_length: int = 0
    uploaded: bool = False
    valid: bool = True
    alt_txt: str | None = None
    snippet_type: str | None = None
    message_ts: str | None = None


@dataclass
class Channel:
    id: str
    name: str
    is_member: bool = True
    is_im: bool = False
    user: str | None = None


class SlackApiError(Exception):
    """Raised inside method handlers to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, messages: Iterable[str] = (), status: int = 200) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)
        self.status = status

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["errors"] = [m.removeprefix("[ERROR] ") for m in self.messages]
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass
class _Fault:
    error: str
    retry_after: int
    when: Callable[[dict[str, Any]], bool] | None = None  # only calls whose args match


# ---------------------------------------------------------------------------------------------------------
# Block Kit validation


class _BlockValidator:
    """Collects Slack-style error strings (``... [json-pointer:/blocks/0/text/text]``)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def max_len(self, pointer: str, value: Any, limit: int, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif len(value) > limit:
            self.fail(pointer, f"must be at most {limit} characters (got {len(value)})")

    def text_object(
        self, pointer: str, obj: Any, limit: int, *, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(obj, dict):
            self.fail(pointer, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in TEXT_OBJECT_TYPES:
            self.fail(f"{pointer}/type", f"text object type must be plain_text or mrkdwn (got {kind!r})")
        elif plain_only and kind != "plain_text":
            self.fail(f"{pointer}/type", f"must be plain_text (got {kind!r})")
        text = obj.get("text")
        if not isinstance(text, str):
            self.fail(f"{pointer}/text", "missing required field")
        elif not text:
            self.fail(f"{pointer}/text", "must be more than 0 characters")
        elif len(text) > limit:
            self.fail(f"{pointer}/text", f"must be at most {limit} characters (got {len(text)})")

    def blocks(self, blocks: Any, max_blocks: int, root: str = "/blocks") -> None:
        if not isinstance(blocks, list):
            self.fail(root, "must be an array of blocks")
            return
        if len(blocks) > max_blocks:
            self.fail(root, f"no more than {max_blocks} items allowed (got {len(blocks)})")
        seen_ids: set[str] = set()
        for index, block in enumerate(blocks):
            pointer = f"{root}/{index}"
            if not isinstance(block, dict):
                self.fail(pointer, "block must be an object")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.max_len(f"{pointer}/block_id", block_id, BLOCK_ID_MAX)
                if isinstance(block_id, str):
                    if block_id in seen_ids:
                        self.fail(f"{pointer}/block_id", f"duplicate block_id {block_id!r}")
                    seen_ids.add(block_id)
            self.block(pointer, block)

    def block(self, pointer: str, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES:
            self.fail(f"{pointer}/type", f"unknown block type {kind!r}")
            return
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                self.fail(pointer, "section must have text or fields")
            if text is not None:
                self.text_object(f"{pointer}/text", text, SECTION_TEXT_MAX)
            if fields is not None:
                if not isinstance(fields, list):
                    self.fail(f"{pointer}/fields", "must be an array")
                else:
                    if len(fields) > SECTION_FIELDS_MAX:
                        self.fail(
                            f"{pointer}/fields",
                            f"no more than {SECTION_FIELDS_MAX} items allowed (got {len(fields)})",
                        )
                    for i, item in enumerate(fields):
                        self.text_object(f"{pointer}/fields/{i}", item, SECTION_FIELD_TEXT_MAX)
            if block.get("accessory") is not None:
                self.element(f"{pointer}/accessory", block["accessory"])
        elif kind == "header":
            self.text_object(f"{pointer}/text", block.get("text"), HEADER_TEXT_MAX, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.fail(f"{pointer}/elements", "must provide at least 1 item")
                return
            if len(elements) > CONTEXT_ELEMENTS_MAX:
                self.fail(
                    f"{pointer}/elements",
                    f"no more than {CONTEXT_ELEMENTS_MAX} items allowed (got {len(elements)})",
                )
            for i, element in enumerate(elements):
                sub = f"{pointer}/elements/{i}"
                if isinstance(element, dict) and element.get("type") == "image":
                    self.image_element(sub, element)
                else:
                    self.text_object(sub, element, SECTION_TEXT_MAX)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.fail(f"{pointer}/elements", "must provide at least 1 item")
                return
            if len(elements) > ACTIONS_ELEMENTS_MAX:
                self.fail(
                    f"{pointer}/elements",
                    f"no more than {ACTIONS_ELEMENTS_MAX} items allowed (got {len(elements)})",
                )
            action_ids: set[str] = set()
            for i, element in enumerate(elements):
                self.element(f"{pointer}/elements/{i}", element)
                action_id = element.get("action_id") if isinstance(element, dict) else None
                if isinstance(action_id, str):
                    if action_id in action_ids:
                        self.fail(f"{pointer}/elements/{i}/action_id", f"duplicate action_id {action_id!r}")
                    action_ids.add(action_id)
        elif kind == "image":
            if block.get("image_url") is None and block.get("slack_file") is None:
                self.fail(f"{pointer}/image_url", "missing required field")
            self.max_len(f"{pointer}/image_url", block.get("image_url"), IMAGE_URL_MAX)
            self.max_len(f"{pointer}/alt_text", block.get("alt_text"), IMAGE_ALT_TEXT_MAX, required=True)
            if block.get("title") is not None:
                self.text_object(f"{pointer}/title", block["title"], IMAGE_TITLE_MAX, plain_only=True)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                self.fail(f"{pointer}/text", "missing required field")
            else:
                self.max_len(f"{pointer}/text", text, MARKDOWN_BLOCK_TEXT_MAX)
        elif kind == "rich_text":
            if not isinstance(block.get("elements"), list):
                self.fail(f"{pointer}/elements", "missing required field")
        elif kind == "input":
            self.text_object(f"{pointer}/label", block.get("label"), INPUT_LABEL_MAX, plain_only=True)
            if block.get("hint") is not None:
                self.text_object(f"{pointer}/hint", block["hint"], INPUT_HINT_MAX, plain_only=True)
            if block.get("element") is None:
                self.fail(f"{pointer}/element", "missing required field")
            else:
                self.element(f"{pointer}/element", block["element"])
        elif kind == "file":
            for key in ("external_id", "source"):
                if not isinstance(block.get(key), str):
                    self.fail(f"{pointer}/{key}", "missing required field")
        elif kind == "video":
            for key in ("alt_text", "thumbnail_url", "video_url"):
                if not isinstance(block.get(key), str):
                    self.fail(f"{pointer}/{key}", "missing required field")
            self.text_object(f"{pointer}/title", block.get("title"), IMAGE_TITLE_MAX, plain_only=True)

    def image_element(self, pointer: str, element: dict[str, Any]) -> None:
        if element.get("image_url") is None and element.get("slack_file") is None:
            self.fail(f"{pointer}/image_url", "missing required field")
        self.max_len(f"{pointer}/image_url", element.get("image_url"), IMAGE_URL_MAX)
        self.max_len(f"{pointer}/alt_text", element.get("alt_text"), IMAGE_ALT_TEXT_MAX, required=True)

    def element(self, pointer: str, element: Any) -> None:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            self.fail(pointer, "element must be an object with a type")
            return
        kind = element["type"]
        self.max_len(f"{pointer}/action_id", element.get("action_id"), ACTION_ID_MAX)
        if element.get("placeholder") is not None:
            self.text_object(
                f"{pointer}/placeholder", element["placeholder"], PLACEHOLDER_MAX, plain_only=True
            )
        if kind == "button":
            self.text_object(f"{pointer}/text", element.get("text"), BUTTON_TEXT_MAX, plain_only=True)
            self.max_len(f"{pointer}/value", element.get("value"), BUTTON_VALUE_MAX)
            self.max_len(f"{pointer}/url", element.get("url"), BUTTON_URL_MAX)
            style = element.get("style")
            if style is not None and style not in BUTTON_STYLES:
                self.fail(f"{pointer}/style", f"must be one of primary, danger (got {style!r})")
        elif kind == "image":
            self.image_element(pointer, element)
        elif kind in SELECT_ELEMENT_TYPES:
            if element.get("options") is None and element.get("option_groups") is None:
                self.fail(f"{pointer}/options", "missing required field")
            self.options(f"{pointer}/options", element.get("options"), SELECT_OPTIONS_MAX)
        elif kind in CHECKBOX_RADIO_TYPES:
            if element.get("options") is None:
                self.fail(f"{pointer}/options", "missing required field")
            self.options(f"{pointer}/options", element.get("options"), CHECKBOX_RADIO_OPTIONS_MAX)
        elif kind == "overflow":
            if element.get("options") is None:
                self.fail(f"{pointer}/options", "missing required field")
            self.options(f"{pointer}/options", element.get("options"), OVERFLOW_OPTIONS_MAX)

    def options(self, pointer: str, options: Any, limit: int) -> None:
        if options is None:
            return
        if not isinstance(options, list):
            self.fail(pointer, "must be an array")
            return
        if len(options) > limit:
            self.fail(pointer, f"no more than {limit} items allowed (got {len(options)})")
        for i, option in enumerate(options):
            if not isinstance(option, dict):
                self.fail(f"{pointer}/{i}", "option must be an object")
                continue
            self.text_object(f"{pointer}/{i}/text", option.get("text"), OPTION_TEXT_MAX)
            self.max_len(f"{pointer}/{i}/value", option.get("value"), OPTION_VALUE_MAX)


def validate_blocks(blocks: Any, max_blocks: int = MESSAGE_BLOCKS_MAX) -> list[str]:
    """Slack-style ``[ERROR] ...`` messages for everything wrong with ``blocks`` (empty when valid)."""
    validator = _BlockValidator()
    validator.blocks(blocks, max_blocks)
    return validator.errors


def validate_view(view: Any) -> list[str]:
    """Errors for a modal view (``views.open``), in the same format as ``validate_blocks``."""
    validator = _BlockValidator()
    if not isinstance(view, dict):
        validator.fail("/view", "must be an object")
        return validator.errors
    if view.get("type") not in {"modal", "home"}:
        validator.fail("/view/type", f"must be modal or home (got {view.get('type')!r})")
    is_modal = view.get("type") == "modal"
    if is_modal:
        validator.text_object("/view/title", view.get("title"), MODAL_TITLE_MAX, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                validator.text_object(f"/view/{key}", view[key], MODAL_BUTTON_TEXT_MAX, plain_only=True)
    if "blocks" not in view:
        validator.fail("/view/blocks", "missing required field")
    else:
        validator.blocks(view["blocks"], MODAL_BLOCKS_MAX, root="/view/blocks")
        blocks = view["blocks"] if isinstance(view["blocks"], list) else []
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if is_modal and has_input and view.get("submit") is None:
            validator.fail("/view/submit", "submit is required when a modal has input blocks")
    validator.max_len("/view/callback_id", view.get("callback_id"), CALLBACK_ID_MAX)
    validator.max_len("/view/private_metadata", view.get("private_metadata"), PRIVATE_METADATA_MAX)
    return validator.errors


def _metadata_error(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        return "metadata must be an object"
    if not isinstance(metadata.get("event_type"), str) or not metadata["event_type"]:
        return "metadata.event_type must be a non-empty string"
    if not isinstance(metadata.get("event_payload"), dict):
        return "metadata.event_payload must be an object"
    return None


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _ts_key(ts: str) -> Decimal:
    try:
        return Decimal(ts)
    except (InvalidOperation, TypeError, ValueError):
        return Decimal(-1)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(zoneinfo.ZoneInfo(tz)).utcoffset()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    """(field name, filename, raw bytes) for every part of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: list[tuple[str, str | None, bytes]] = []
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        parts.append((str(name or ""), str(filename) if filename else None, payload))
    return parts


def _strip_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# ---------------------------------------------------------------------------------------------------------
# The Web API server


class SlackTestServer:
    """A Slack Web API (plus response URLs, upload URLs, Socket Mode) served over real HTTP on 127.0.0.1."""

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_name = "Test Team"
        self.bot_user_id = bot_user_id
        self.bot_id = "B" + bot_user_id[1:]
        self.bot_name = "review-bot"
        self.app_id = "A0TEST"

        self._lock = threading.RLock()
        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.usergroups: dict[str, dict[str, Any]] = {}
        self.files: dict[str, FileRecord] = {}
        self.views: list[dict[str, Any]] = []
        # views.publish: each user's Home tab as last published, and every unfurl made (chat.unfurl)
        self.home_views: dict[str, dict[str, Any]] = {}
        self.unfurls: list[dict[str, Any]] = []
        # the domains the app may unfurl (its manifest's unfurl_domains); chat.unfurl refuses others
        self.unfurl_domains: set[str] = set()
        self.responses: list[dict[str, Any]] = []
        self.rejected_responses: list[dict[str, Any]] = []
        self._response_urls: dict[str, int] = {}
        self._trigger_ids: dict[str, float | None] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._ts_counter = 0
        self._id_counter = 0

        self.socket_mode: SocketModeTestServer | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.api_url = ""

        self.add_user(bot_user_id, self.bot_name, real_name="Review Bot")
        self.users[bot_user_id]["is_bot"] = True

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> SlackTestServer:
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"slack": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        port = httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.base_url}/api/"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget calls, messages, files, views, responses and injected faults; keep channels and users."""
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self.messages.update({channel_id: [] for channel_id in self.channels})
            self.ephemerals.clear()
            self.files.clear()
            self.views.clear()
            self.home_views.clear()
            self.unfurls.clear()
            self.responses.clear()
            self.rejected_responses.clear()
            self._response_urls = dict.fromkeys(self._response_urls, 0)
            self._trigger_ids.clear()
            self._faults.clear()
            self._delays.clear()
        if self.socket_mode is not None:
            self.socket_mode.reset()

    # -- workspace setup -------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, is_member: bool = True) -> None:
        with self._lock:
            self.channels[channel_id] = Channel(id=channel_id, name=name.lstrip("#"), is_member=is_member)
            self.messages.setdefault(channel_id, [])

    def add_user(
        self, user_id: str, name: str, real_name: str = "", email: str = "", tz: str = "UTC"
    ) -> None:
        with self._lock:
            self.users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "deleted": False,
                "real_name": real_name or name,
                "tz": tz,
                "tz_label": tz,
                "tz_offset": _tz_offset(tz),
                "is_bot": False,
                "is_admin": False,
                "profile": {
                    "email": email,
                    "real_name": real_name or name,
                    "real_name_normalized": real_name or name,
                    "display_name": name,
                    "display_name_normalized": name,
                    "team": self.team_id,
                },
            }

    def add_message(
        self,
        channel: str,
        text: str,
        user: str,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Seed a message as if a human (``user``) had posted it; returns the stored message."""
        with self._lock:
            if channel not in self.channels:
                raise KeyError(f"unknown channel {channel!r}; add_channel() first")
            message = self._new_message(
                channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata, user=user
            )
            message.pop("bot_id")
            message.pop("app_id")
            return message

    def new_trigger_id(self) -> str:
        """A trigger_id that, like Slack's, expires after 3 s and can be exchanged only once."""
        trigger_id = f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"
        with self._lock:
            self._trigger_ids[trigger_id] = time.monotonic() + TRIGGER_ID_TTL_SECONDS
        return trigger_id

    # -- inspection ------------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 15.0,
        count: int = 1,
    ) -> list[Call]:
        """Wait until ``count`` calls to ``method`` match ``predicate``; returns all matching calls."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [c for c in self.calls_to(method) if predicate is None or predicate(c)]
            if len(matching) >= count:
                return matching
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} call(s) to {method}"
                    f"{' matching the predicate' if predicate else ''} (got {len(matching)}); "
                    f"calls seen: {self._summary()}"
                )
            time.sleep(0.02)

    def _summary(self) -> str:
        with self._lock:
            calls = list(self.calls)
        if not calls:
            return "none"
        counts: dict[str, int] = {}
        for c in calls:
            label = c.method if c.ok else f"{c.method}({c.error})"
            counts[label] = counts.get(label, 0) + 1
        return ", ".join(f"{label} x{n}" for label, n in counts.items())

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies in a thread, oldest first (without the parent)."""
        with self._lock:
            return [
                m
                for m in self.messages.get(channel, [])
                if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
            ]

    # -- response URLs ---------------------------------------------------------------------------------

    def new_response_url(self) -> str:
        key = str(uuid.uuid4())
        with self._lock:
            self._response_urls[key] = 0
        return f"{self.base_url}/response/{key}"

    def wait_for_response(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [r for r in self.responses if predicate is None or predicate(r)]
                seen = len(self.responses)
                rejected = [r.get("_error") for r in self.rejected_responses]
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for a response_url post"
                    f"{' matching the predicate' if predicate else ''}; {seen} accepted post(s) seen, "
                    f"rejected: {rejected or 'none'}"
                )
            time.sleep(0.02)

    # -- fault injection -------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        times: int = 1,
        retry_after: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` (whose args satisfy `when`, if given) with `error`."""
        with self._lock:
            self._faults.setdefault(method, []).extend(_Fault(error, retry_after, when) for _ in range(times))

    def delay(self, method: str, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    # -- socket mode -----------------------------------------------------------------------------------

    def start_socket_mode(self) -> SocketModeTestServer:
        with self._lock:
            if self.socket_mode is None:
                self.socket_mode = SocketModeTestServer(app_id=self.app_id).start()
            return self.socket_mode

    # -- internals: ids --------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        with self._lock:
            self._ts_counter += 1
            micros = FIRST_TS_SECONDS * 1_000_000 + self._ts_counter * TS_STEP_MICROS
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._id_counter += 1
            return f"{prefix}0{self._id_counter:08d}"

    # -- internals: HTTP dispatch ----------------------------------------------------------------------

    def handle_api(
        self, method: str, args: dict[str, Any], headers: dict[str, str], token: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one Web API call: (HTTP status, JSON body, extra headers).

        The call is appended to ``calls`` once it has been processed (before the answer goes out), so a
        ``wait_for`` that returns a call also sees its effects (stored message, file, ...).
        """
        call = Call(method=method, args=args, headers=headers, token=token, at=time.time())
        extra_headers: dict[str, str] = {}
        with self._lock:
            delay = self._delays.get(method, 0.0)
            queued = self._faults.get(method)
            fault = None
            for index, candidate in enumerate(queued or []):
                if candidate.when is None or candidate.when(args):
                    fault = queued.pop(index)
                    break
        if delay:
            time.sleep(delay)
        status = 200
        if fault is not None:
            body: dict[str, Any] = {"ok": False, "error": fault.error}
            if fault.error == "ratelimited":
                status = 429
                extra_headers["Retry-After"] = str(fault.retry_after)
        else:
            try:
                body = self._dispatch(method, args, token)
            except SlackApiError as exc:
                body, status = exc.body(), exc.status
        call.response = body
        call.status = status
        with self._lock:
            bisect.insort(self.calls, call, key=lambda c: c.at)  # "in order received"
        return status, body, extra_headers

    def _dispatch(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        handler = _METHODS.get(method)
        if handler is None:
            raise SlackApiError("unknown_method")
        if not token:
            raise SlackApiError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackApiError("invalid_auth")
        is_app_token = token == self.app_token
        if is_app_token != (method in APP_TOKEN_METHODS):
            raise SlackApiError("not_allowed_token_type")
        with self._lock:
            return handler(self, args)

    # -- internals: shared validation ------------------------------------------------------------------

    def _resolve_channel(self, channel: Any, *, error: str = "channel_not_found") -> Channel:
        if not isinstance(channel, str) or not channel:
            raise SlackApiError(error)
        if channel in self.channels:
            return self.channels[channel]
        if channel in self.users:  # posting to a user id opens (or reuses) the DM with that user
            dm_id = "D" + channel[1:]
            if dm_id not in self.channels:
                self.channels[dm_id] = Channel(
                    id=dm_id, name=channel, is_member=True, is_im=True, user=channel
                )
                self.messages.setdefault(dm_id, [])
            return self.channels[dm_id]
        name = channel.lstrip("#")
        for candidate in self.channels.values():
            if candidate.name == name and not candidate.is_im:
                return candidate
        raise SlackApiError(error)

    def _member_channel(self, channel: Any) -> Channel:
        resolved = self._resolve_channel(channel)
        if not resolved.is_member:
            raise SlackApiError("not_in_channel")
        return resolved

    def _find_message(self, channel_id: str, ts: Any) -> dict[str, Any] | None:
        for message in self.messages.get(channel_id, []):
            if message["ts"] == ts:
                return message
        return None

    def _validate_content(self, args: dict[str, Any], *, require_content: bool = True) -> None:
        text = args.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
            args["text"] = text
        blocks = args.get("blocks")
        attachments = args.get("attachments")
        if isinstance(blocks, str) or (blocks is not None and not isinstance(blocks, list)):
            raise SlackApiError("invalid_blocks_format")
        if isinstance(attachments, str):
            raise SlackApiError("invalid_attachments")
        if require_content and not text and not blocks and not attachments:
            raise SlackApiError("no_text")
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            raise SlackApiError("msg_too_long")
        if blocks is not None:
            errors = validate_blocks(blocks, MESSAGE_BLOCKS_MAX)
            if errors:
                raise SlackApiError("invalid_blocks", errors)
        if "metadata" in args and args["metadata"] is not None:
            problem = _metadata_error(args["metadata"])
            if problem:
                raise SlackApiError("invalid_metadata_format", [f"[ERROR] {problem}"])

    def _new_message(
        self,
        channel_id: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        metadata: dict[str, Any] | None,
        user: str,
        files: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        if thread_ts is not None:
            parent = self._find_message(channel_id, thread_ts)
            if parent is None:
                raise SlackApiError("thread_not_found")
            if parent.get("thread_ts") not in (None, parent["ts"]):  # replying to a reply joins its thread
                thread_ts = parent["thread_ts"]
                parent = self._find_message(channel_id, thread_ts) or parent
            parent["thread_ts"] = parent["ts"]
        message: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "text": text,
            "blocks": blocks,
            "attachments": attachments,
            "thread_ts": thread_ts,
            "metadata": metadata,
            "user": user,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "files": files,
            "channel": channel_id,
        }
        self.messages.setdefault(channel_id, []).append(message)
        return message

    def _render(self, message: dict[str, Any], *, include_metadata: bool = True) -> dict[str, Any]:
        """A stored message as Slack's API shows it (no null fields, thread summary on parents)."""
        rendered = _strip_none({k: v for k, v in message.items() if k != "channel"})
        if not include_metadata:
            rendered.pop("metadata", None)
        if message.get("files"):
            rendered["upload"] = True
            rendered["display_as_bot"] = False
        thread_ts = message.get("thread_ts")
        if thread_ts is not None and thread_ts != message["ts"]:
            parent = self._find_message(message["channel"], thread_ts)
            if parent is not None:
                rendered["parent_user_id"] = parent["user"]
        elif thread_ts == message["ts"]:
            replies = self.thread(message["channel"], thread_ts)
            rendered["reply_count"] = len(replies)
            rendered["reply_users"] = sorted({r["user"] for r in replies})
            rendered["reply_users_count"] = len(rendered["reply_users"])
            if replies:
                rendered["latest_reply"] = replies[-1]["ts"]
        return rendered

    # -- Web API methods -------------------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": WORKSPACE_URL,
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        self._validate_content(args)
        thread_ts = args.get("thread_ts") or None
        message = self._new_message(
            channel.id,
            text=args.get("text") or "",
            blocks=args.get("blocks"),
            thread_ts=str(thread_ts) if thread_ts is not None else None,
            metadata=args.get("metadata"),
            user=self.bot_user_id,
            attachments=args.get("attachments"),
        )
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": self._render(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        user = args.get("user")
        if not user or user not in self.users:
            raise SlackApiError("user_not_in_channel")
        self._validate_content(args)
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and self._find_message(channel.id, thread_ts) is None:
            raise SlackApiError("thread_not_found")
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel.id,
                "user": user,
                "ts": ts,
                "text": args.get("text") or "",
                "blocks": args.get("blocks"),
                "attachments": args.get("attachments"),
                "thread_ts": thread_ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        message = self._find_message(channel.id, args.get("ts"))
        if message is None:
            raise SlackApiError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise SlackApiError("cant_update_message")
        self._validate_content(args)
        if "text" in args:
            message["text"] = args.get("text") or ""
        if "blocks" in args:
            message["blocks"] = args["blocks"] or None
        if "attachments" in args:
            message["attachments"] = args["attachments"] or None
        if args.get("metadata") is not None:
            message["metadata"] = args["metadata"]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        rendered = self._render(message)
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": rendered,
        }

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        message = self._find_message(channel.id, args.get("message_ts"))
        if message is None:
            raise SlackApiError("message_not_found")
        permalink = f"{PERMALINK_BASE}/{channel.id}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts is not None and thread_ts != message["ts"]:
            permalink += f"?thread_ts={thread_ts}&cid={channel.id}"
        return {"ok": True, "channel": channel.id, "permalink": permalink}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        inclusive = _truthy(args.get("inclusive", False))
        latest = _ts_key(str(args["latest"])) if args.get("latest") else None
        oldest = _ts_key(str(args["oldest"])) if args.get("oldest") else None
        try:
            limit = int(args.get("limit") or 100)
        except ValueError as exc:
            raise SlackApiError("invalid_limit") from exc
        limit = max(1, min(limit, CONVERSATIONS_HISTORY_LIMIT_MAX))
        include_metadata = _truthy(args.get("include_all_metadata", False))

        def in_range(message: dict[str, Any]) -> bool:
            key = _ts_key(message["ts"])
            if latest is not None and (key > latest or (key == latest and not inclusive)):
                return False
            return not (oldest is not None and (key < oldest or (key == oldest and not inclusive)))

        top_level = [
            m
            for m in self.messages.get(channel.id, [])
            if m.get("thread_ts") in (None, m["ts"]) and in_range(m)
        ]
        newest_first = sorted(top_level, key=lambda m: _ts_key(m["ts"]), reverse=True)
        page = newest_first[:limit]
        body: dict[str, Any] = {
            "ok": True,
            "messages": [self._render(m, include_metadata=include_metadata) for m in page],
            "has_more": len(newest_first) > limit,
            "pin_count": 0,
        }
        if body["has_more"]:
            body["response_metadata"] = {"next_cursor": ""}
        return body

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        message = self._find_message(channel.id, args.get("ts"))
        if message is None:
            raise SlackApiError("thread_not_found")
        include_metadata = _truthy(args.get("include_all_metadata", False))
        parent_ts = message.get("thread_ts") or message["ts"]
        parent = self._find_message(channel.id, parent_ts) or message
        thread = [parent, *self.thread(channel.id, parent["ts"])]
        return {
            "ok": True,
            "messages": [self._render(m, include_metadata=include_metadata) for m in thread],
            "has_more": False,
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackApiError("user_not_found")
        return {"ok": True, "user": json.loads(json.dumps(user))}

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = {"handle": handle, "users": list(users)}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1:  # group DMs are not needed by the bot
            raise SlackApiError("invalid_arguments", ["[ERROR] this test server opens 1:1 DMs only"])
        if users[0] not in self.users:
            raise SlackApiError("user_not_found")
        channel = self._resolve_channel(users[0])
        return {"ok": True, "channel": {"id": channel.id, "is_im": True, "user": users[0]}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise SlackApiError("no_such_subteam")
        return {"ok": True, "users": list(group["users"])}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """A user's Home tab: `user_id` of a known user, a `home` view (at most 100 blocks, validated as
        Slack does; view_too_large past 250 kB of JSON); `hash`, when given, must be the one of the view
        it replaces (hash_conflict); an `external_id` (at most 255 characters) must not be another
        user's view's (duplicate_external_id)."""
        view_bytes_max, external_id_max = 250_000, 255  # Slack's views.publish limits
        user_id = args.get("user_id")
        if not user_id or not isinstance(user_id, str):
            raise SlackApiError("invalid_arguments", ["[ERROR] missing required field: user_id"])
        if user_id not in self.users:
            raise SlackApiError("user_not_found")
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise SlackApiError("invalid_arguments", ["[ERROR] view must be a JSON object"]) from None
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackApiError("invalid_arguments", ["[ERROR] must be home [json-pointer:/view/type]"])
        if len(json.dumps(view, ensure_ascii=False).encode()) > view_bytes_max:
            raise SlackApiError("view_too_large")
        errors = validate_view(view)
        validator = _BlockValidator()
        validator.max_len("/view/external_id", view.get("external_id"), external_id_max)
        errors += validator.errors
        if errors:
            raise SlackApiError("invalid_arguments", errors)
        current = self.home_views.get(user_id)
        if args.get("hash") and current is not None and args["hash"] != current["hash"]:
            raise SlackApiError("hash_conflict")
        external_id = view.get("external_id") or ""
        if external_id and any(
            other != user_id and published.get("external_id") == external_id
            for other, published in self.home_views.items()
        ):
            raise SlackApiError("duplicate_external_id")
        published = {
            "id": current["id"] if current else self._next_id("V"),
            "team_id": self.team_id,
            "type": "home",
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "hash": f"{time.time():.6f}.{self._next_id('h')}",
        }
        self.home_views[user_id] = published
        return {"ok": True, "view": published}

    def _chat_unfurl(self, args: dict[str, Any]) -> dict[str, Any]:
        """Unfurls for links in a message, addressed as Slack documents it: `channel` + `ts` of a message
        the links are in (missing_channel, missing_ts, cannot_find_channel, cannot_find_message), or
        `unfurl_id` + `source` from a link_shared event (invalid_source without a valid source); and
        `unfurls`, a JSON object of URL -> {"blocks": [...]} (validated; at most 50 blocks) for URLs on the
        app's unfurl domains (cannot_unfurl_url) that are in the message (cannot_unfurl_message; Slack
        keeps a message's `&` as `&amp;`)."""
        raw = args.get("unfurls")
        if raw in (None, "", {}):
            raise SlackApiError("missing_unfurls")
        try:
            unfurls = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise SlackApiError("invalid_unfurls_format") from None
        if not isinstance(unfurls, dict) or not all(isinstance(v, dict) for v in unfurls.values()):
            raise SlackApiError("invalid_unfurls_format")
        if args.get("unfurl_id"):
            if args.get("source") not in {"composer", "conversations_history"}:
                raise SlackApiError("invalid_source")
            text = None
        else:
            if not args.get("channel"):
                raise SlackApiError("missing_channel")
            if not args.get("ts"):
                raise SlackApiError("missing_ts")
            channel = self._resolve_channel(args.get("channel"), error="cannot_find_channel")
            if not channel.is_member:
                raise SlackApiError("not_in_channel")
            message = self._find_message(channel.id, args.get("ts"))
            if message is None:
                raise SlackApiError("cannot_find_message")
            text = message.get("text", "") + json.dumps(message.get("blocks") or [])
        errors: list[str] = []
        for url, unfurl in unfurls.items():
            host = (urlsplit(url).hostname or "").lower()
            if not any(host == d or host.endswith("." + d) for d in self.unfurl_domains):
                raise SlackApiError(
                    "cannot_unfurl_url", [f"[ERROR] {url} is not on the app's unfurl domains"]
                )
            if text is not None and url not in text and url.replace("&", "&amp;") not in text:
                raise SlackApiError("cannot_unfurl_message", [f"[ERROR] {url} is not in the message"])
            if "blocks" in unfurl:
                errors += validate_blocks(unfurl["blocks"], MESSAGE_BLOCKS_MAX)
            elif not unfurl.get("text") and not unfurl.get("title"):
                errors.append(f"[ERROR] unfurl for {url} has neither blocks nor text")
        if errors:
            raise SlackApiError("invalid_unfurls_format", errors)
        self.unfurls.append(
            {
                "channel": args.get("channel"),
                "ts": args.get("ts"),
                "unfurl_id": args.get("unfurl_id"),
                "source": args.get("source"),
                "unfurls": unfurls,
            }
        )
        return {"ok": True}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger_id = args.get("trigger_id")
        if not trigger_id or not isinstance(trigger_id, str):
            raise SlackApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        if trigger_id in self._trigger_ids:
            expires = self._trigger_ids[trigger_id]
            if expires is None:
                raise SlackApiError("exchanged_trigger_id")
            if time.monotonic() > expires:
                raise SlackApiError("expired_trigger_id")
        view = args.get("view")
        if isinstance(view, str):
            raise SlackApiError("invalid_arguments", ["[ERROR] view must be a JSON object"])
        errors = validate_view(view)
        if errors:
            raise SlackApiError("invalid_arguments", errors)
        if trigger_id in self._trigger_ids:
            self._trigger_ids[trigger_id] = None
        view_id = self._next_id("V")
        opened = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": uuid.uuid4().hex[:20],
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
            "trigger_id": trigger_id,
        }
        self.views.append(opened)
        return {"ok": True, "view": {k: v for k, v in opened.items() if k != "trigger_id"}}

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        if not filename or not isinstance(filename, str):
            raise SlackApiError("invalid_arguments", ["[ERROR] missing required field: filename"])
        try:
            length = int(args.get("length"))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise SlackApiError("invalid_arguments", ["[ERROR] missing required field: length"]) from exc
        if length < 0:
            raise SlackApiError("invalid_arguments", ["[ERROR] length must be a non-negative integer"])
        file_id = self._next_id("F")
        self.files[file_id] = FileRecord(
            id=file_id,
            filename=filename,
            title=filename,
            content=b"",
            channel=None,
            thread_ts=None,
            completed=False,
            declared_length=length,
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
        )
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def handle_upload(self, file_id: str, body: bytes, content_type: str) -> tuple[int, str]:
        """The upload URL: store the bytes, answer like files.slack.com."""
        if content_type.startswith("multipart/form-data"):
            parts = _parse_multipart(body, content_type)
            with_files = [p for p in parts if p[1] is not None] or parts
            body = with_files[0][2] if with_files else b""
        with self._lock:
            record = self.files.get(file_id)
            if record is None or record.completed:
                return 404, "Not Found"
            record.content = body
            record.uploaded = True
            record.valid = len(body) == record.declared_length
        return 200, f"OK - {len(body)}"

    def _file_object(self, record: FileRecord) -> dict[str, Any]:
        name = record.filename
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        now = int(time.time())
        obj: dict[str, Any] = {
            "id": record.id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": record.title,
            "mimetype": _MIMETYPES.get(extension, "application/octet-stream"),
            "filetype": extension,
            "pretty_type": extension.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "editable": False,
            "size": len(record.content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{record.id}/{name}",
            "url_private_download": f"https://files.slack.com/files-pri/{self.team_id}-{record.id}/download/{name}",
            "permalink": f"https://test.slack.com/files/{self.bot_user_id}/{record.id}/{name}",
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if record.alt_txt:
            obj["alt_txt"] = record.alt_txt
        return obj

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise SlackApiError("invalid_arguments", ["[ERROR] files must be a non-empty JSON array"])
        records: list[tuple[FileRecord, str | None]] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise SlackApiError("invalid_arguments", ["[ERROR] each file needs an id"])
            record = self.files.get(item["id"])
            if record is None or record.completed:
                raise SlackApiError("file_not_found")
            if not record.uploaded:
                raise SlackApiError("file_not_found", [f"[ERROR] nothing was uploaded for {record.id}"])
            if not record.valid:
                raise SlackApiError(
                    "file_not_found",
                    [
                        f"[ERROR] {record.id}: uploaded {len(record.content)} bytes but "
                        f"files.getUploadURLExternal declared length={record.declared_length}"
                    ],
                )
            records.append((record, item.get("title")))
        channel_ids: list[str] = []
        if args.get("channel_id"):
            channel_ids.append(str(args["channel_id"]))
        if args.get("channels"):
            channel_ids.extend(c for c in str(args["channels"]).split(",") if c)
        channels = [self._member_channel(c) for c in channel_ids]
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and len(channels) != 1:
            raise SlackApiError("invalid_arguments", ["[ERROR] thread_ts requires exactly one channel"])
        for channel in channels:
            if thread_ts is not None and self._find_message(channel.id, thread_ts) is None:
                raise SlackApiError("thread_not_found")
        initial_comment = args.get("initial_comment")
        if initial_comment is not None and len(str(initial_comment)) > MESSAGE_TEXT_MAX:
            raise SlackApiError("msg_too_long")
        for record, title in records:
            record.title = str(title) if title else record.filename
            record.completed = True
        file_objects = [self._file_object(record) for record, _ in records]
        for channel in channels:
            message = self._new_message(
                channel.id,
                text=str(initial_comment or ""),
                blocks=None,
                thread_ts=thread_ts,
                metadata=None,
                user=self.bot_user_id,
                files=file_objects,
            )
            for record, _ in records:
                record.channel = record.channel or channel.id
                record.thread_ts = thread_ts
                record.message_ts = record.message_ts or message["ts"]
        if channels:
            shares_key = "private" if any(c.is_im for c in channels) else "public"
            for obj, (record, _) in zip(file_objects, records, strict=True):
                obj["shares"] = {
                    shares_key: {
                        c.id: [
                            _strip_none(
                                {
                                    "ts": record.message_ts,
                                    "thread_ts": thread_ts,
                                    "channel_name": c.name,
                                    "team_id": self.team_id,
                                }
                            )
                        ]
                        for c in channels
                    }
                }
                obj["channels"] = [c.id for c in channels]
        return {"ok": True, "files": file_objects}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        socket_mode = self.socket_mode or self.start_socket_mode()
        return {"ok": True, "url": socket_mode.new_url()}

    def handle_response_url(self, key: str, payload: Any) -> tuple[int, dict[str, Any]]:
        """A POST to a response URL: validate like Slack, record it in ``responses``."""
        with self._lock:
            uses = self._response_urls.get(key)
            url = f"{self.base_url}/response/{key}"
            if uses is None:
                return 404, {"ok": False, "error": "no_service"}
            if uses >= RESPONSE_URL_MAX_USES:
                return 404, {"ok": False, "error": "used_url"}
            error: SlackApiError | None = None
            if not isinstance(payload, dict):
                error = SlackApiError("invalid_payload", status=400)
            elif not _truthy(payload.get("delete_original", False)):
                try:
                    self._validate_content(dict(payload))
                except SlackApiError as exc:
                    error = SlackApiError(exc.error, exc.messages, status=400)
            if error is not None:
                record = dict(payload) if isinstance(payload, dict) else {"_raw": payload}
                self.rejected_responses.append({**record, "_url": url, "_error": error.error})
                return error.status, error.body()
            self._response_urls[key] = uses + 1
            self.responses.append({**payload, "_url": url})
        return 200, {"ok": True}


_METHODS: dict[str, Callable[[SlackTestServer, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackTestServer._auth_test,
    "chat.postMessage": SlackTestServer._chat_post_message,
    "chat.postEphemeral": SlackTestServer._chat_post_ephemeral,
    "chat.update": SlackTestServer._chat_update,
    "chat.getPermalink": SlackTestServer._chat_get_permalink,
    "conversations.history": SlackTestServer._conversations_history,
    "conversations.replies": SlackTestServer._conversations_replies,
    "users.info": SlackTestServer._users_info,
    "views.open": SlackTestServer._views_open,
    "views.publish": SlackTestServer._views_publish,
    "chat.unfurl": SlackTestServer._chat_unfurl,
    "usergroups.users.list": SlackTestServer._usergroups_users_list,
    "conversations.open": SlackTestServer._conversations_open,
    "files.getUploadURLExternal": SlackTestServer._files_get_upload_url_external,
    "files.completeUploadExternal": SlackTestServer._files_complete_upload_external,
    "apps.connections.open": SlackTestServer._apps_connections_open,
}

_MIMETYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "txt": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "pdf": "application/pdf",
    "html": "text/html",
}


class _Handler(BaseHTTPRequestHandler):
    """Routes /api/<method>, /upload/<file_id> and /response/<key> to the owning SlackTestServer."""

    slack: SlackTestServer
    server_version = "SlackTestServer/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._route(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._route(self.rfile.read(length) if length else b"")

    def _route(self, body: bytes) -> None:
        parsed = urlsplit(self.path)
        path = parsed.path
        content_type = self.headers.get("Content-Type", "")
        if path.startswith("/api/"):
            self._api(path.removeprefix("/api/"), parsed.query, body, content_type)
        elif path.startswith("/upload/") and self.command == "POST":
            status, text = self.slack.handle_upload(path.removeprefix("/upload/"), body, content_type)
            self._send(status, text.encode(), "text/plain; charset=utf-8")
        elif path.startswith("/response/") and self.command == "POST":
            try:
                payload: Any = json.loads(body.decode("utf-8")) if body else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                payload = None
            status, answer = self.slack.handle_response_url(path.removeprefix("/response/"), payload)
            self._send_json(status, answer)
        else:
            self._send(404, b"Not Found", "text/plain; charset=utf-8")

    def _api(self, method: str, query: str, body: bytes, content_type: str) -> None:
        args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        form_token = args.get("token", "")
        try:
            if content_type.startswith("application/json"):
                decoded = json.loads(body.decode("utf-8")) if body else {}
                if isinstance(decoded, dict):
                    args.update(decoded)  # Slack ignores a token inside a JSON body: header only
            elif content_type.startswith("multipart/form-data"):
                for name, filename, raw in _parse_multipart(body, content_type):
                    args[name] = raw if filename is not None else raw.decode("utf-8")
                    if name == "token" and filename is None:
                        form_token = args[name]
            elif body:
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                args.update(form)
                form_token = form.get("token", form_token)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send_json(200, {"ok": False, "error": "invalid_form_data"})
            return
        for key in JSON_ARGS:
            value = args.get(key)
            if isinstance(value, str) and value:
                with contextlib.suppress(json.JSONDecodeError):
                    args[key] = json.loads(value)
        args.pop("token", None)
        authorization = self.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        token = token or str(form_token or "")
        headers = {k: v for k, v in self.headers.items()}
        status, answer, extra = self.slack.handle_api(method, args, headers, token)
        self._send_json(status, answer, extra)

    def _send_json(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        headers = {"X-Slack-Req-Id": uuid.uuid4().hex, "X-OAuth-Scopes": "chat:write,files:write,users:read"}
        headers.update(extra or {})
        self._send(status, json.dumps(body).encode("utf-8"), "application/json; charset=utf-8", headers)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


# ---------------------------------------------------------------------------------------------------------
# Socket Mode


class SocketModeTestServer:
    """A Socket Mode endpoint (``websockets`` sync server) that sends envelopes and collects acks."""

    def __init__(self, app_id: str = "A0TEST") -> None:
        self.app_id = app_id
        self.url = ""
        self.port = 0
        self.received: list[dict[str, Any]] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._tickets: set[str] = set()
        self._connections: list[ServerConnection] = []
        self._cond = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SocketModeTestServer:
        if self._server is not None:
            return self
        self._server = serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check_ticket,
            compression=None,
            ping_interval=5,
            ping_timeout=20,
            close_timeout=SOCKET_MODE_CLOSE_TIMEOUT,
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="socket-mode-test", daemon=True
        )
        self._thread.start()
        self.new_url()
        return self

    def new_url(self) -> str:
        """A fresh connection URL (``apps.connections.open`` hands out a new one per call)."""
        ticket = uuid.uuid4().hex
        with self._cond:
            self._tickets.add(ticket)
            self.url = f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # closes open connections (1001 going away) and joins their handlers
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        with self._cond:
            self.received.clear()
            self._acks.clear()

    @property
    def connection_count(self) -> int:
        with self._cond:
            return len(self._connections)

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        parsed = urlsplit(request.path)
        ticket = dict(parse_qsl(parsed.query)).get("ticket", "")
        with self._cond:
            known = ticket in self._tickets
        if parsed.path.rstrip("/") != "/link" or not known:
            return connection.respond(401, "invalid ticket\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        hello = {
            "type": "hello",
            "num_connections": self.connection_count + 1,
            "debug_info": {
                "host": "applink-test",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        connection.send(json.dumps(hello))
        with self._cond:
            self._connections.append(connection)
            self._cond.notify_all()
        try:
            for raw in connection:
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                try:
                    message = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if not isinstance(message, dict):
                    continue
                with self._cond:
                    self.received.append(message)
                    envelope_id = message.get("envelope_id")
                    if isinstance(envelope_id, str):
                        self._acks.setdefault(envelope_id, message)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._cond.notify_all()

    def wait_connected(self, timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._connections), timeout=timeout):
                raise AssertionError(f"no Socket Mode client connected within {timeout}s")

    def send_raw(self, message: dict[str, Any]) -> None:
        """Send any JSON message (e.g. ``{"type": "disconnect", "reason": "refresh_requested"}``)."""
        with self._cond:
            connections = list(self._connections)
        if not connections:
            raise AssertionError("no Socket Mode client is connected")
        data = json.dumps(message)
        for connection in connections:
            with contextlib.suppress(ConnectionClosed):
                connection.send(data)

    def send_envelope(
        self, type: str, payload: dict[str, Any], accepts_response_payload: bool = False
    ) -> str:
        """Send an envelope to every connected client (waiting up to 15 s for one); returns its id."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        self.send_raw(
            {
                "envelope_id": envelope_id,
                "type": type,
                "payload": payload,
                "accepts_response_payload": accepts_response_payload,
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 15.0) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self._acks, timeout=timeout):
                raise AssertionError(
                    f"no ack for envelope {envelope_id} within {timeout}s; "
                    f"{len(self.received)} message(s) received from clients"
                )
            return self._acks[envelope_id]
