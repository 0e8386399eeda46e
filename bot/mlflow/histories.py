"""Metric histories of one run or several, as min-max envelopes (`bot.envelope`) of every point.

A chart must show a one-step spike in a 100,000-step run, so histories are read whole, not as the
tracking server's evenly spaced sample. The server's cheapest way to give every point is its
bulk-interval endpoint asked for a step range holding fewer points than it samples down to (2,500):
measured on the test server (sqlite, 2 workers) for 100,000 points, 2.0-3.2 s in 2,500-point step
windows against 4.3-7.2 s through `get-history` pages and 7.2-7.7 s through the client's
`get_metric_history` (machine load 7-14 both times). That costs the server about 10 ms of CPU per
request and 37 us per point (most of it writing indented JSON), so 100,000 points are ~4 s of its CPU,
~2 s on its 2 workers: the floor of a first look, which is why finished runs are cached. One series is
read in three rounds:

1. a probe: the server's sample of at most PROBE_POINTS points, for every run at once; a shorter
   history is then complete (most are);
2. a first window of at most WINDOW_POINTS steps, whole: how many points the probe's buckets hold;
3. step windows of as many buckets as fit under the server's limit, in parallel; a window that comes
   back full is split in two (points sharing steps), and a series that cannot be split by steps is
   read through `get-history` pages.

Only the keys the caller will draw are read whole (`full`), within `budget` points; the others keep
the probe's sample, marked `sampled`. A finished run's histories never change: their envelopes are
kept in the store (HistoryCache) by run, key and width, so a second look or a comparison of runs
already seen asks MLflow nothing. A sampled envelope is kept too (a second look needs it only to know
the metric is a history; a comparison that shows it says it is sampled). The cache fails soft:
without it, histories come from MLflow.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot import envelope
from bot.envelope import Envelope, Point
from bot.mlflow.client import Mlflow
from bot.models import RunSummary
from bot.store import Store, history_cache_key

log = logging.getLogger(__name__)

HISTORY_FETCH_THREADS = 8
# A probe for many runs keeps a server worker busy for about a second: more in flight than a small
# server has workers only queue, and a queued request can pass MLFLOW_TIMEOUT_SECONDS and be sent
# again (measured: 2 retries in 20 requests with 8 in flight against 2 workers).
MULTI_RUN_FETCH_THREADS = 4
BULK_INTERVAL_ENDPOINT = "/api/2.0/mlflow/metrics/get-history-bulk-interval"
HISTORY_ENDPOINT = "/api/2.0/mlflow/metrics/get-history"
BULK_MAX_RUNS = 100  # the server's limit on run_ids per bulk-interval request
SERVER_SAMPLE_LIMIT = 2500  # bulk-interval returns every point of a step range holding fewer than this
WINDOW_POINTS = 2400  # what a window is sized for, under the limit (fewer requests: ~10 ms each)
PROBE_POINTS = 250  # a history shorter than this is complete after the probe (most are)
HISTORY_PAGE = 25_000  # get-history page size, for a series whose steps cannot be windowed
FULL_POINTS_BUDGET = 2_000_000  # points read whole per call; past it, the server's sample (marked)
FINAL_STATES = frozenset({"FINISHED", "FAILED", "KILLED"})
HISTORIES_LOG = "metric histories: %d from the cache, %d read from MLflow"


def finished_runs(summaries: Iterable[RunSummary]) -> list[str]:
    """The runs whose histories can no longer change (a terminal state), so may be cached."""
    return [s.run_id for s in summaries if s.status in FINAL_STATES]


class HistoryCache:
    """Envelopes of finished runs in the store (Redis), by run, key and width. Fails soft: a store
    that cannot be read or written is logged (once a minute) and treated as empty."""

    def __init__(self, store: Store, ttl_seconds: int) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self._warned_at = 0.0

    def get(self, run_id: str, key: str, width: int) -> Envelope | None:
        if self.ttl_seconds <= 0:
            return None
        try:
            data = self.store.get_json(history_cache_key(run_id, key, width))
            return Envelope.from_json(data) if data is not None else None
        except Exception as exc:  # noqa: BLE001 - a cache: MLflow answers instead
            self._warn("read", exc)
            return None

    def put(self, run_id: str, env: Envelope) -> None:
        if self.ttl_seconds <= 0:
            return
        try:
            self.store.put_json(
                history_cache_key(run_id, env.key, env.width), env.to_json(), self.ttl_seconds
            )
        except Exception as exc:  # noqa: BLE001 - a cache: the next look reads MLflow again
            self._warn("write", exc)

    def _warn(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning("history cache %s failed (%s): reading MLflow instead", what, type(exc).__name__)


@dataclass
class _Series:
    """One run's history of one key while it is read."""

    run_id: str
    key: str
    probe: list[Point] = field(default_factory=list)
    points: list[Point] | None = None  # every point, once known

    @property
    def complete(self) -> bool:
        return self.points is not None

    @property
    def estimate(self) -> int:
        """Points in the whole history, guessed from the probe's first and last step (steps rarely repeat)."""
        if self.points is not None:
            return len(self.points)
        steps = [p[0] for p in self.probe]
        return max(len(self.probe), max(steps) - min(steps) + 1) if steps else 0


class Histories:
    def __init__(self, mlflow: Mlflow, cache: HistoryCache | None = None) -> None:
        self.mlflow = mlflow
        self.cache = cache

    def envelopes(
        self,
        run_ids: Sequence[str],
        keys: Iterable[str],
        *,
        width: int,
        finished: Collection[str] = (),
        full: Callable[[list[str]], Iterable[str]] | None = None,
        probe_points: int = PROBE_POINTS,
        budget: int = FULL_POINTS_BUDGET,
    ) -> dict[str, list[Envelope]]:
        """{run_id: [the envelope of each key the run logged, in key order]}, each at most `width`
        buckets wide.

        `finished`: runs in a terminal state, whose envelopes are cached. `full(keys)` is given the
        keys some run logged more than once and returns those worth reading whole (what a chart will
        draw); without it, every key. The rest, and whatever is past `budget` points, are drawn from
        the server's sample of `probe_points` points (`Envelope.sampled`).
        """
        run_ids = list(dict.fromkeys(run_ids))
        keys = sorted(set(keys))
        final = set(finished)
        found: dict[tuple[str, str], Envelope] = {}
        if self.cache is not None:
            for run_id in run_ids:
                if run_id in final:
                    for key in keys:
                        cached = self.cache.get(run_id, key, width)
                        if cached is not None:
                            found[(run_id, key)] = cached
        missing = [(run_id, key) for key in keys for run_id in run_ids if (run_id, key) not in found]
        log.info(HISTORIES_LOG, len(found), len(missing))
        if missing:
            fetched = self._read(missing, width, found, full, probe_points, budget, len(run_ids) > 1)
            for (run_id, key), env in fetched.items():
                found[(run_id, key)] = env
                if self.cache is not None and run_id in final and env.points:
                    self.cache.put(run_id, env)
        return {
            run_id: [found[(run_id, key)] for key in keys if found.get((run_id, key), Envelope(key)).points]
            for run_id in run_ids
        }

    # --- reading ---------------------------------------------------------------------------------

    def _read(
        self,
        missing: list[tuple[str, str]],
        width: int,
        cached: dict[tuple[str, str], Envelope],
        full: Callable[[list[str]], Iterable[str]] | None,
        probe_points: int,
        budget: int,
        several_runs: bool,
    ) -> dict[tuple[str, str], Envelope]:
        series = {pair: _Series(*pair) for pair in missing}
        threads = MULTI_RUN_FETCH_THREADS if several_runs else HISTORY_FETCH_THREADS
        with ThreadPoolExecutor(
            max_workers=HISTORY_FETCH_THREADS, thread_name_prefix="mlflow-history"
        ) as pool:
            if not self.mlflow.is_server:
                # A local store has no sampling endpoint: every point, one call per run and key.
                for item, points in zip(series.values(), pool.map(self._local, series.values()), strict=True):
                    item.points = points
            else:
                self._probe(series, probe_points, threads)
                self._complete(series, cached, full, budget, pool)
        return {
            pair: envelope.build(
                item.key,
                item.points if item.points is not None else item.probe,
                width,
                sampled=item.points is None,
            )
            for pair, item in series.items()
        }

    def _local(self, item: _Series) -> list[Point]:
        history = self.mlflow.call(
            f"metric `{item.key}`", lambda: self.mlflow.tracking.get_metric_history(item.run_id, item.key)
        )
        return [(m.step, m.timestamp, m.value) for m in history]

    def _probe(self, series: dict[tuple[str, str], _Series], probe_points: int, threads: int) -> None:
        """Round 1: the server's sample of each key, every run in one request (per BULK_MAX_RUNS)."""
        by_key: dict[str, list[str]] = {}
        for run_id, key in series:
            by_key.setdefault(key, []).append(run_id)
        requests = [
            (key, run_ids[i : i + BULK_MAX_RUNS])
            for key, run_ids in by_key.items()
            for i in range(0, len(run_ids), BULK_MAX_RUNS)
        ]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlflow-probe") as pool:
            answers = pool.map(lambda request: self._interval(request[1], request[0], probe_points), requests)
            for (key, run_ids), by_run in zip(requests, answers, strict=True):
                for run_id in run_ids:
                    item = series[(run_id, key)]
                    item.probe = by_run.get(run_id, [])
                    if len(item.probe) < probe_points:
                        item.points = item.probe

    def _complete(
        self,
        series: dict[tuple[str, str], _Series],
        cached: dict[tuple[str, str], Envelope],
        full: Callable[[list[str]], Iterable[str]] | None,
        budget: int,
        pool: ThreadPoolExecutor,
    ) -> None:
        """Rounds 2 and 3 for the series the caller wants whole, within the budget."""
        logged = {key for (_, key), env in cached.items() if env.charted}
        logged |= {key for (_, key), item in series.items() if len(item.probe) > 1}
        wanted = list(dict.fromkeys(full(sorted(logged)) if full is not None else sorted(logged)))
        # Whole keys at a time (every run of a key, or none), the caller's first keys first, so the
        # runs on one panel are never drawn one whole and one sampled.
        by_key: dict[str, list[_Series]] = {}
        for item in series.values():
            if not item.complete:
                by_key.setdefault(item.key, []).append(item)
        chosen: list[_Series] = []
        spent = 0
        for key in wanted:
            items = by_key.get(key, [])
            cost = sum(item.estimate for item in items)
            if spent + cost > budget:
                log.info("metric `%s` is past the history budget (%d points): sampled", key, budget)
                continue
            spent += cost
            chosen += items
        # Round 2: the first window of each, whole; it tells how many points the probe's buckets hold.
        plans = list(pool.map(self._first_window, chosen))
        # Round 3: every window of every series at once.
        jobs = [(i, window) for i, plan in enumerate(plans) if plan is not None for window in plan[1]]
        parts = pool.map(lambda job: self._window(chosen[job[0]], job[1]), jobs)
        read: list[list[Point] | None] = [None if plan is None else list(plan[0]) for plan in plans]
        for (i, _), part in zip(jobs, parts, strict=True):
            so_far = read[i]
            read[i] = None if part is None or so_far is None else so_far + part
        for item, points in zip(chosen, read, strict=True):
            item.points = points if points is not None else self._pages(item)

    def _first_window(self, item: _Series) -> tuple[list[Point], list[tuple[int, int]]] | None:
        """The first window, whole, and the step windows for the rest; None when the steps repeat too
        much to be read by step ranges.

        The first window spans at most WINDOW_POINTS steps (so at most that many points, unless steps
        repeat); the probe's buckets it covers tell how many points a bucket holds, and the rest is cut
        into equal windows of as many buckets as fit.
        """
        last = item.probe[-1][0]  # the probe keeps the series' last point in place of its last sample
        starts = sorted({p[0] for p in item.probe[:-1]})
        if len(starts) < 2:
            return [], [(starts[0] if starts else last, last)]
        covered = max(1, bisect.bisect_right(starts, starts[0] + WINDOW_POINTS) - 1)
        first = self._window(item, (starts[0], starts[covered] - 1))
        if first is None:
            return None
        per_bucket = len(first) / covered + 1  # buckets differ by a point
        rest = starts[covered:]
        count = math.ceil(len(rest) / max(1, int(WINDOW_POINTS // per_bucket)))
        stride = math.ceil(len(rest) / count)
        bounds = [*rest[::stride], last + 1]
        return first, [(low, high - 1) for low, high in zip(bounds, bounds[1:], strict=False) if high > low]

    def _window(self, item: _Series, window: tuple[int, int]) -> list[Point] | None:
        """Every point of one step range; split in two while the server had to sample it; None when
        one step holds too many points to be read by steps."""
        low, high = window
        points = self._interval([item.run_id], item.key, SERVER_SAMPLE_LIMIT, window).get(item.run_id, [])
        if len(points) < SERVER_SAMPLE_LIMIT:
            return points
        if low >= high:
            return None
        middle = (low + high) // 2
        left = self._window(item, (low, middle))
        right = self._window(item, (middle + 1, high))
        return None if left is None or right is None else left + right

    def _pages(self, item: _Series) -> list[Point]:
        """Every point through get-history pages (steps too repetitive for windows)."""
        points: list[Point] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "run_id": item.run_id,
                "metric_key": item.key,
                "max_results": HISTORY_PAGE,
            }
            if token:
                params["page_token"] = token
            body = self.mlflow.call(
                f"metric `{item.key}`", lambda params=params: self.mlflow.rest_get(HISTORY_ENDPOINT, params)
            )
            points += [_point(m) for m in body.get("metrics", [])]
            token = body.get("next_page_token")
            if not token:
                return points

    def _interval(
        self, run_ids: list[str], key: str, max_results: int, window: tuple[int, int] | None = None
    ) -> dict[str, list[Point]]:
        params: dict[str, Any] = {"run_ids": run_ids, "metric_key": key, "max_results": max_results}
        if window is not None:
            params["start_step"], params["end_step"] = window
        body = self.mlflow.call(
            f"metric `{key}`", lambda: self.mlflow.rest_get(BULK_INTERVAL_ENDPOINT, params)
        )
        points: dict[str, list[Point]] = {}
        for m in body.get("metrics", []):
            points.setdefault(m.get("run_id", run_ids[0]), []).append(_point(m))
        return points


def _point(m: dict[str, Any]) -> Point:
    # NaN and ±inf come as the strings "NaN", "Infinity", "-Infinity", which float() reads.
    return (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m.get("value", "NaN")))
