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

    def lock(self, name: str, ttl_seconds: int, wait_seconds: float) -> AbstractContextManager[None]:
        """Hold `name` exclusively (across processes for Redis); it expires after `ttl_seconds` so a
        crashed holder cannot block it for ever. Raises LockBusy after `wait_seconds`."""


class LockBusy(ReviewBotError):
    """Someone else holds the lock for longer than we may wait."""

    def user_message(self) -> str:
        return LOCK_BUSY


LOCK_BUSY = (
    ":hourglass: Another change to this review is being recorded right now. Nothing was changed; try again."
)


# Every read-modify-write of a run's review.* tags (request, votes, meetings) holds this lock. It
# outlives any MLflow round trip the bot allows, and frees itself if its holder crashes.
RUN_LOCK_TTL = 30
RUN_LOCK_WAIT = 15


def run_lock(store: Store, run_id: str) -> AbstractContextManager[None]:
    return store.lock(f"run:{run_id}", RUN_LOCK_TTL, RUN_LOCK_WAIT)


class RedisStore:
    def __init__(self, url: str) -> None:
        # Short socket timeouts: a Slack ack must not hang on a dead Redis.
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

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
    def lock(self, name: str, ttl_seconds: int, wait_seconds: float) -> Iterator[None]:
        key = f"{KEY_PREFIX}lock:{name}"
        lock = self._redis.lock(key, timeout=ttl_seconds, blocking_timeout=wait_seconds)
        if not lock.acquire():
            raise LockBusy(name)
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:  # expired while held: the next holder already has it
                log.warning("lock %s expired before release", name)

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
    def lock(self, name: str, ttl_seconds: int, wait_seconds: float) -> Iterator[None]:
        with self._lock:
            held = self._locks.setdefault(name, threading.Lock())
        if not held.acquire(timeout=wait_seconds):
            raise LockBusy(name)
        try:
            yield
        finally:
            held.release()

    def health(self) -> str:
        return "in-process (single replica only)"


def create_store(redis_url: str | None) -> Store:
    if redis_url:
        return RedisStore(redis_url)
    log.warning(SINGLE_REPLICA_WARNING)
    return MemoryStore()
