"""Unit tests for bot.store: the same contract for the in-process store and Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from bot.store import KEY_PREFIX, LockBusy, LockLost, MemoryStore, RedisStore, create_store
from tests.support import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# `redis_url` is the session fixture from tests/conftest.py: $REDIS_URL or a redis-server of our own.


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
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    assert dead.health() == "unreachable: ConnectionError"


def test_create_store_with_url_is_redis(redis_url: str) -> None:
    assert isinstance(create_store(redis_url), RedisStore)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_lock_excludes_a_second_holder_and_is_free_after(
    kind: str, request: pytest.FixtureRequest, key: str
) -> None:
    store = MemoryStore() if kind == "memory" else RedisStore(request.getfixturevalue("redis_url"))
    with (
        store.lock(key, ttl_seconds=10, wait_seconds=0.1),
        pytest.raises(LockBusy),
        store.lock(key, ttl_seconds=10, wait_seconds=0.1),
    ):
        pass
    with store.lock(key, ttl_seconds=10, wait_seconds=0.1):
        pass  # released on the way out


def test_redis_lock_expires_so_a_crashed_holder_cannot_block_for_ever(redis_url: str, key: str) -> None:
    store = RedisStore(redis_url)
    crashed = redis.Redis.from_url(redis_url).lock(f"{KEY_PREFIX}lock:{key}", timeout=1)
    assert crashed.acquire()  # and never released
    with store.lock(key, ttl_seconds=10, wait_seconds=3):
        pass


def test_redis_lock_is_renewed_while_its_holder_works_longer_than_its_ttl(redis_url: str, key: str) -> None:
    """Slow MLflow: the section outlasts the TTL three times over, and no one else gets in meanwhile."""
    store = RedisStore(redis_url)
    with store.lock(key, ttl_seconds=1, wait_seconds=0.1) as held:
        time.sleep(3)
        with pytest.raises(LockBusy), store.lock(key, ttl_seconds=1, wait_seconds=0.2):  # still ours
            pass
        held.check()  # not lost: a write may go ahead
    with store.lock(key, ttl_seconds=1, wait_seconds=0.1):
        pass


def test_redis_lock_lost_under_its_holder_forbids_the_write(redis_url: str, key: str) -> None:
    """Someone else took it (Redis flushed, the process stalled past the TTL): check() says so."""
    store = RedisStore(redis_url)
    with store.lock(key, ttl_seconds=1, wait_seconds=0.1) as held:
        redis.Redis.from_url(redis_url).delete(f"{KEY_PREFIX}lock:{key}")
        deadline = time.monotonic() + 3
        while not held.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(LockLost):
            held.check()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_queue_keeps_members_in_score_order_until_dequeued(
    kind: str, request: pytest.FixtureRequest, key: str
) -> None:
    store = MemoryStore() if kind == "memory" else RedisStore(request.getfixturevalue("redis_url"))
    store.enqueue(key, "late", 3.0)
    store.enqueue(key, "early", 1.0)
    store.enqueue(key, "middle", 2.0)
    assert store.queued(key) == ["early", "middle", "late"]
    assert key in store.waiting_queues(0)
    store.dequeue(key, ["early", "late"])
    assert store.queued(key) == ["middle"] and key in store.waiting_queues(0)
    store.dequeue(key, ["middle"])
    assert store.queued(key) == [] and key not in store.waiting_queues(0)


def test_a_queue_is_waiting_only_once_it_is_older_than_asked(redis_url: str, key: str) -> None:
    store = RedisStore(redis_url)
    store.enqueue(key, "click", 1.0)
    assert key not in store.waiting_queues(60)
    assert key in store.waiting_queues(0)
    store.dequeue(key, ["click"])


def test_a_queue_survives_the_store_object_that_filled_it(redis_url: str, key: str) -> None:
    """What a replica accepted before dying is there for the next one."""
    RedisStore(redis_url).enqueue(key, "click", 1.0)
    other = RedisStore(redis_url)
    assert other.queued(key) == ["click"]
    other.dequeue(key, ["click"])
