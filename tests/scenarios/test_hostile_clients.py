"""Hostile clients at the served bot's door: idle half-open connections, huge unsigned bodies, malformed
requests. The bot stays up, answers Slack in time, refuses with 4xx (never 500) and logs one short line."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from tests import support
from tests.scenarios.helpers import response_texts

FORM = support.FORM


def _open(bot) -> socket.socket:
    parts = urlsplit(bot.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _timed_health(bot) -> float:
    started = time.perf_counter()
    assert requests.get(f"{bot.url}/healthz", timeout=10).status_code == 200
    return time.perf_counter() - started


def test_two_hundred_idle_half_open_connections_do_not_starve_slack(bots, runs, slack, eventually) -> None:
    bot = bots.get(BOT_INSTANCE="idle-clients")
    idle = []
    try:
        for i in range(200):
            conn = _open(bot)
            if i % 2:  # half a request line and headers, then nothing
                conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: applica")
            else:  # whole headers, a tenth of the promised body, then nothing
                conn.sendall(
                    b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100
                )
            idle.append(conn)
        waits = [_timed_health(bot) for _ in range(10)]
        assert max(waits) < 1.0, waits
        run_id = runs.make_run("while-idle-clients-wait")
        url = slack.new_response_url()
        started = time.perf_counter()
        ack = bot.command(run_id, url)
        assert ack.status_code == 200 and time.perf_counter() - started < 3.0
        eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t])
    finally:
        for conn in idle:
            conn.close()


def test_a_body_sent_too_slowly_is_refused_not_waited_for(bots) -> None:
    bot = bots.get(BOT_INSTANCE="idle-clients")
    conn = _open(bot)
    conn.settimeout(30)
    conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Length: 1000\r\n\r\nxx")
    started = time.perf_counter()
    answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408") and time.perf_counter() - started < 15
    conn.close()


def test_twenty_unsigned_ten_megabyte_posts_are_refused_unread_and_barely_logged(bots) -> None:
    bot = bots.get(BOT_INSTANCE="big-bodies")
    before = len(bot.log().encode())
    body = b"payload=" + b"A" * (10 * 1024 * 1024 - 8)
    for _ in range(20):
        conn = _open(bot)
        conn.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:65536]
        )
        started = time.perf_counter()
        answer = conn.recv(4096)  # answered after 64 kB of the 10 MB: the rest was never read
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert time.perf_counter() - started < 2
        conn.close()
    grown = len(bot.log().encode()) - before
    assert grown < 100_000, grown
    assert "AAAAAAAA" not in bot.log()


def test_a_body_without_length_is_cut_off_at_the_limit(bots) -> None:
    bot = bots.get(BOT_INSTANCE="big-bodies")
    chunks = (b"x" * 65536 for _ in range(40))  # 2.5 MB, chunked
    reply = requests.post(f"{bot.url}/slack/events", data=chunks, headers={"Content-Type": FORM}, timeout=30)
    assert reply.status_code == 413


def test_an_unsigned_request_is_refused_without_its_body_in_the_log(bots) -> None:
    bot = bots.get(BOT_INSTANCE="big-bodies")
    secret_url = "https://hooks.slack.com/commands/T0/123/only-the-requester-may-know"
    body = urlencode({"command": "/review", "text": "abc", "response_url": secret_url})
    for _ in range(30):
        reply = bot.post_signed(body, FORM, signed=False)
        assert reply.status_code == 401
    assert secret_url not in bot.log() and "only-the-requester" not in bot.log()
    refusals = [line for line in bot.log().splitlines() if "refused a request" in line]
    assert 1 <= len(refusals) <= 5  # one line a second, the rest counted


SIGNED_MALFORMED = {
    "not-utf8": (b"\xff\xfe\xfa payload=\x81", FORM),
    "deeply-nested-json": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "form-sent-as-json": (b"command=%2Freview&text=abc&user_id=U0ANA", "application/json"),
    "payload-not-json": (b"payload=%7Bnot+json", FORM),
    "json-not-an-object": (b"[1, 2, 3]", "application/json"),
    "json-string": (b'"hello"', "application/json"),
}


@pytest.mark.parametrize("name", SIGNED_MALFORMED)
def test_a_signed_but_malformed_body_is_400(bot, name: str) -> None:
    raw, content_type = SIGNED_MALFORMED[name]
    ts = int(time.time())
    base = b"v0:" + str(ts).encode() + b":" + raw
    signature = "v0=" + hmac.new(support.SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    reply = requests.post(
        f"{bot.url}/slack/events",
        data=raw,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature,
        },
        timeout=10,
    )
    assert reply.status_code == 400, (reply.status_code, reply.text[:200])


@pytest.mark.parametrize("timestamp", ["abc", "", "1.5e9", "-1", "9" * 40, "0x10", "1700000000.5"])
def test_a_malformed_timestamp_is_401(bot, timestamp: str) -> None:
    body = urlencode({"command": "/review", "text": "help"})
    reply = requests.post(
        f"{bot.url}/slack/events",
        data=body,
        headers={"Content-Type": FORM, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=00"},
        timeout=10,
    )
    assert reply.status_code == 401


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"\xff\xfe\xfa", FORM),
        (b"[" * 50_000, "application/json"),
        (json.dumps({"a": 1}).encode(), "text/plain"),
    ],
)
def test_unsigned_garbage_is_401(bot, raw: bytes, content_type: str) -> None:
    reply = requests.post(
        f"{bot.url}/slack/events",
        data=raw,
        headers={"Content-Type": content_type, "X-Slack-Request-Timestamp": str(int(time.time()))},
        timeout=10,
    )
    assert reply.status_code == 401


def test_other_methods_and_paths_are_refused_plainly(bot) -> None:
    assert requests.get(f"{bot.url}/slack/events", timeout=10).status_code == 405
    assert requests.get(f"{bot.url}/nowhere", timeout=10).status_code in (401, 404, 405)
    assert requests.get(f"{bot.url}/healthz", timeout=10).status_code == 200
