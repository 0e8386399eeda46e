"""Unit tests for bot.store: the same contract for the in-process store and Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from bot.store import KEY_PREFIX, MemoryStore, RedisStore, create_store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("neither REDIS_URL nor a redis-server binary is available")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.02)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=5)


@pytest.fixture
def key() -> str:
    # Unique per test, so a shared REDIS_URL needs no flushing.
    return f"test:{uuid.uuid4().hex}"


# --- MemoryStore, with a clock the test moves --------------------------------------------------------


def test_memory_claim_once_until_expiry() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    assert store.claim("k", 10) is True
    assert store.claim("k", 10) is False
    clock.now += 9.9
    assert store.claim("k", 10) is False
    clock.now += 0.1
    assert store.claim("k", 10) is True
    assert store.claim("other", 10) is True


def test_memory_release_frees_the_key() -> None:
    store = MemoryStore(clock=FakeClock())
    assert store.claim("k", 10)
    store.release("k")
    assert store.claim("k", 10)
    store.release("never-claimed")


def test_memory_json_round_trip_and_expiry() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    value = {"run_id": "abc", "votes": [1, 2], "ok": True, "none": None}
    store.put_json("v", value, 60)
    assert store.get_json("v") == value
    assert store.get_json("missing") is None
    store.put_json("v", [1], 60)
    assert store.get_json("v") == [1]
    clock.now += 60
    assert store.get_json("v") is None


def test_memory_put_json_does_not_claim_a_different_key() -> None:
    store = MemoryStore(clock=FakeClock())
    store.put_json("k", 1, 10)
    assert store.claim("k", 10) is False  # the key is taken, whatever holds it
    assert store.health() == "in-process (single replica only)"


def test_create_store_without_redis_is_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="bot.store"):
        store = create_store(None)
    assert isinstance(store, MemoryStore)
    assert "REDIS_URL is not set" in caplog.text


def test_memory_claim_is_atomic_under_threads() -> None:
    _race(MemoryStore(), "race")


def _race(store: MemoryStore | RedisStore, key: str) -> None:
    barrier = threading.Barrier(20)
    results: list[bool] = []
    lock = threading.Lock()

    def contender() -> None:
        barrier.wait()
        won = store.claim(key, 30)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=contender) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 20
    assert results.count(True) == 1


# --- RedisStore against a real server ---------------------------------------------------------------


def test_redis_claim_release(redis_url: str, key: str) -> None:
    store = RedisStore(redis_url)
    assert store.claim(key, 10) is True
    assert store.claim(key, 10) is False
    store.release(key)
    assert store.claim(key, 10) is True
    raw = redis.Redis.from_url(redis_url)
    assert raw.get(KEY_PREFIX + key) == b"1"
    assert 0 < raw.ttl(KEY_PREFIX + key) <= 10
    store.release(key)


def test_redis_json_round_trip(redis_url: str, key: str) -> None:
    store = RedisStore(redis_url)
    value = {"run_id": "abc", "votes": [1, 2], "ok": True, "none": None, "text": "é <!channel>"}
    assert store.get_json(key) is None
    store.put_json(key, value, 60)
    assert store.get_json(key) == value
    assert 0 < redis.Redis.from_url(redis_url).ttl(KEY_PREFIX + key) <= 60
    store.release(key)
    assert store.get_json(key) is None


def test_redis_ttl_expiry(redis_url: str, key: str) -> None:
    store = RedisStore(redis_url)
    assert store.claim(key, 1)
    store.put_json(key + ":v", 1, 1)
    time.sleep(1.1)
    assert store.get_json(key + ":v") is None
    assert store.claim(key, 1) is True


def test_redis_claim_is_atomic_under_threads(redis_url: str, key: str) -> None:
    _race(RedisStore(redis_url), key)


def test_redis_health(redis_url: str) -> None:
    assert RedisStore(redis_url).health() == "ok"
    dead = RedisStore(f"redis://127.0.0.1:{_free_port()}/0")
    assert dead.health() == "unreachable: ConnectionError"


def test_create_store_with_url_is_redis(redis_url: str) -> None:
    assert isinstance(create_store(redis_url), RedisStore)
