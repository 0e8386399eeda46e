"""Short-lived shared state: de-duplication keys, small JSON values with a TTL, and locks.

Redis when REDIS_URL is set (any number of replicas); otherwise an in-process store that is only
correct for a single process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import redis

from bot.errors import ReviewBotError

log = logging.getLogger(__name__)

KEY_PREFIX = "review-bot:"
SINGLE_REPLICA_WARNING = (
    "REDIS_URL is not set: using an in-process store. De-duplication and review state are not "
    "shared, so run a single replica with a single worker only."
)


class Store(Protocol):
    def claim(self, key: str, ttl_seconds: int) -> bool:
        """True for the first caller to claim `key` within `ttl_seconds`, False for everyone after."""

    def release(self, key: str) -> None: ...

    def put_json(self, key: str, value: Any, ttl_seconds: int) -> None: ...

    def get_json(self, key: str) -> Any | None: ...

    def health(self) -> str: ...

    def lock(self, name: str, ttl_seconds: int, wait_seconds: float) -> AbstractContextManager[Held]:
        """Hold `name` exclusively (across processes for Redis). The holder renews it every third of
        `ttl_seconds` while it works, so it cannot expire under slow work; if the holder dies it frees
        itself after `ttl_seconds`. Raises LockBusy after `wait_seconds`. `Held.check()` before a write
        raises LockLost if renewal failed (Redis gone, or the process stalled past the TTL)."""

    # A durable queue (a Redis sorted set): what was accepted before the ack outlives this process.
    def enqueue(self, queue: str, member: str, score: float) -> None:
        """Add `member` to `queue` (ordered by score) and note the queue as waiting since now."""

    def queued(self, queue: str) -> list[str]:
        """The queue's members, lowest score first."""

    def dequeue(self, queue: str, members: list[str]) -> None:
        """Remove these members; a queue left empty is no longer noted as waiting."""

    def waiting_queues(self, older_than_seconds: float) -> list[str]:
        """Queues noted as waiting for longer than this: work a replica accepted and did not finish."""


class LockLost(ReviewBotError):
    """The lock was lost while held (it could not be renewed): whatever it guarded must not be written."""

    def user_message(self) -> str:
        return LOCK_BUSY


class Held:
    """A held lock, as its holder sees it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = threading.Event()

    def check(self) -> None:
        if self.lost.is_set():
            raise LockLost(self.name)


class LockBusy(ReviewBotError):
    """Someone else holds the lock for longer than we may wait."""

    def user_message(self) -> str:
        return LOCK_BUSY


LOCK_BUSY = (
    ":hourglass: Another change to this review is being recorded right now. Nothing was changed; try again."
)


# Every read-modify-write of a run's review.* tags (request, votes, meetings) holds this lock. It is
# renewed while held, however slow MLflow is, and frees itself within RUN_LOCK_TTL if its holder dies.
RUN_LOCK_TTL = 30
RUN_LOCK_WAIT = 15
QUEUES_KEY = "queues"  # sorted set: queue name -> when it started waiting
MIRROR_QUEUE = "mirrors"  # run ids whose review's copy on their model versions is behind (retried)
# Envelopes of finished runs' metric histories (bot.mlflow.histories.HistoryCache), JSON with a TTL;
# the version changes when the envelope's JSON does, so old entries are never misread.
HISTORY_CACHE_PREFIX = "history:v1:"


def history_cache_key(run_id: str, key: str, width: int) -> str:
    """Where the envelope of one run's metric `key`, `width` buckets wide, is cached."""
    return f"{HISTORY_CACHE_PREFIX}{run_id}:{width}:{key}"


def run_lock(store: Store, run_id: str, wait_seconds: float = RUN_LOCK_WAIT) -> AbstractContextManager[Held]:
    return store.lock(f"run:{run_id}", RUN_LOCK_TTL, wait_seconds)


class RedisStore:
    def __init__(self, url: str) -> None:
        # Short socket timeouts: a Slack ack must not hang on a dead Redis.
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        # Atomic, so a member enqueued between the count and the removal keeps its queue noted.
        self._unnote = self._redis.register_script(
            "if redis.call('zcard', KEYS[1]) == 0 then redis.call('zrem', KEYS[2], ARGV[1]) end"
        )

    def claim(self, key: str, ttl_seconds: int) -> bool:
        return bool(self._redis.set(KEY_PREFIX + key, b"1", nx=True, ex=ttl_seconds))

    def release(self, key: str) -> None:
        self._redis.delete(KEY_PREFIX + key)

    def put_json(self, key: str, value: Any, ttl_seconds: int) -> None:
        self._redis.set(KEY_PREFIX + key, json.dumps(value), ex=ttl_seconds)

    def get_json(self, key: str) -> Any | None:
        raw = self._redis.get(KEY_PREFIX + key)
        return json.loads(raw) if raw is not None else None

    @contextmanager
    def lock(self, name: str, ttl_seconds: int, wait_seconds: float) -> Iterator[Held]:
        key = f"{KEY_PREFIX}lock:{name}"
        lock = self._redis.lock(key, timeout=ttl_seconds, blocking_timeout=wait_seconds, thread_local=False)
        if not lock.acquire():
            raise LockBusy(name)
        held = Held(name)
        done = threading.Event()

        def renew() -> None:
            while not done.wait(ttl_seconds / 3):
                try:
                    lock.reacquire()
                except (redis.exceptions.LockError, redis.RedisError) as exc:
                    log.error("lock %s could not be renewed (%s): its holder writes nothing more", name, exc)
                    held.lost.set()
                    return

        renewer = threading.Thread(target=renew, name=f"renew-{name}", daemon=True)
        renewer.start()
        try:
            yield held
        finally:
            done.set()
            renewer.join()
            try:
                lock.release()
            except redis.exceptions.LockError:  # lost while held (reported above)
                log.warning("lock %s expired before release", name)

    def enqueue(self, queue: str, member: str, score: float) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(KEY_PREFIX + queue, {member: score})
        pipe.zadd(KEY_PREFIX + QUEUES_KEY, {queue: time.time()}, nx=True)
        pipe.execute()

    def queued(self, queue: str) -> list[str]:
        return [m.decode() for m in self._redis.zrange(KEY_PREFIX + queue, 0, -1)]

    def dequeue(self, queue: str, members: list[str]) -> None:
        if members:
            self._redis.zrem(KEY_PREFIX + queue, *members)
        self._unnote(keys=[KEY_PREFIX + queue, KEY_PREFIX + QUEUES_KEY], args=[queue])

    def waiting_queues(self, older_than_seconds: float) -> list[str]:
        names = self._redis.zrangebyscore(KEY_PREFIX + QUEUES_KEY, "-inf", time.time() - older_than_seconds)
        return [n.decode() for n in names]

    def health(self) -> str:
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok"


class MemoryStore:
    """The same contract in one process (tests of pure logic, single-replica installs)."""

    def __init__(self, clock=time.monotonic) -> None:  # noqa: ANN001 - a () -> float
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._queues: dict[str, dict[str, float]] = {}
        self._waiting: dict[str, float] = {}

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._data[key]
            return None
        return value

    def claim(self, key: str, ttl_seconds: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (self._clock() + ttl_seconds, "1")
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def put_json(self, key: str, value: Any, ttl_seconds: int) -> None:
        with self._lock:
            self._data[key] = (self._clock() + ttl_seconds, json.dumps(value))

    def get_json(self, key: str) -> Any | None:
        with self._lock:
            raw = self._live(key)
        return json.loads(raw) if raw is not None else None

    @contextmanager
    def lock(self, name: str, ttl_seconds: int, wait_seconds: float) -> Iterator[Held]:
        with self._lock:
            mutex = self._locks.setdefault(name, threading.Lock())
        if not mutex.acquire(timeout=wait_seconds):
            raise LockBusy(name)
        try:
            yield Held(name)  # one process: it cannot expire under its holder
        finally:
            mutex.release()

    def enqueue(self, queue: str, member: str, score: float) -> None:
        with self._lock:
            self._queues.setdefault(queue, {})[member] = score
            self._waiting.setdefault(queue, self._clock())

    def queued(self, queue: str) -> list[str]:
        with self._lock:
            items = self._queues.get(queue, {})
            return sorted(items, key=lambda m: (items[m], m))

    def dequeue(self, queue: str, members: list[str]) -> None:
        with self._lock:
            items = self._queues.get(queue, {})
            for member in members:
                items.pop(member, None)
            if not items:
                self._queues.pop(queue, None)
                self._waiting.pop(queue, None)

    def waiting_queues(self, older_than_seconds: float) -> list[str]:
        with self._lock:
            return [q for q, since in self._waiting.items() if since <= self._clock() - older_than_seconds]

    def health(self) -> str:
        return "in-process (single replica only)"


def create_store(redis_url: str | None) -> Store:
    if redis_url:
        return RedisStore(redis_url)
    log.warning(SINGLE_REPLICA_WARNING)
    return MemoryStore()
