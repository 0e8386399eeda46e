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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from bot import envelope
from bot.envelope import Envelope, Point
from bot.mlflow.client import Mlflow
from bot.models import RunSummary
from bot.request_ids import ContextThreadPoolExecutor
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
# A series of known last step up to this many steps is read in WINDOW_POINTS-step windows all at once
# (a wasted request or two when its steps are sparse); a longer one sizes them from its first window.
DIRECT_STEPS = 8 * WINDOW_POINTS
MIN_STEP = -(2**63)  # MLflow's steps are int64: the first window takes any below 0 too
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
    last: int = 0  # its last step as the run says, when past 0: read whole without a probe
    probe: list[Point] = field(default_factory=list)
    probed: bool = False
    points: list[Point] | None = None  # every point, once known

    @property
    def complete(self) -> bool:
        return self.points is not None

    @property
    def maybe_history(self) -> bool:
        """Logged more than once, or, known only by a last step past 0, may be."""
        if self.points is not None:
            return len(self.points) > 1
        return len(self.probe) > 1 if self.probed else self.last > 0

    @property
    def estimate(self) -> int:
        """Points in the whole history, guessed from the probe's first and last step (steps rarely repeat)."""
        if self.points is not None:
            return len(self.points)
        if not self.probed:
            return self.last + 1
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
        last_steps: Mapping[str, Mapping[str, int]] | None = None,
    ) -> dict[str, list[Envelope]]:
        """{run_id: [the envelope of each key the run logged, in key order]}, each at most `width`
        buckets wide.

        `finished`: runs in a terminal state, whose envelopes are cached. `full(keys)` is given the
        keys some run logged more than once and returns those worth reading whole (what a chart will
        draw); without it, every key. The rest, and whatever is past `budget` points, are drawn from
        the server's sample of `probe_points` points (`Envelope.sampled`). `last_steps`: {run_id: {key:
        last step}} as the runs say (`RunSummary.metric_steps`); a series whose last step is past 0 is
        read whole without a probe (one at 0 may still be a history: Keras logs validation_* there).
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
            fetched = self._read(
                missing, width, found, full, probe_points, budget, len(run_ids) > 1, last_steps or {}
            )
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
        last_steps: Mapping[str, Mapping[str, int]],
    ) -> dict[tuple[str, str], Envelope]:
        series = {pair: _Series(*pair, last=last_steps.get(pair[0], {}).get(pair[1], 0)) for pair in missing}
        threads = MULTI_RUN_FETCH_THREADS if several_runs else HISTORY_FETCH_THREADS
        with ContextThreadPoolExecutor(
            max_workers=HISTORY_FETCH_THREADS, thread_name_prefix="mlflow-history"
        ) as pool:
            if not self.mlflow.is_server:
                # A local store has no sampling endpoint: every point, one call per run and key.
                for item, points in zip(series.values(), pool.map(self._local, series.values()), strict=True):
                    item.points = points
            else:
                # A series whose last step the run gave (past 0) needs no probe to be read whole.
                self._probe([item for item in series.values() if not item.last], probe_points, threads)
                self._complete(series, cached, full, budget, probe_points, threads, pool)
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

    def _probe(self, series: Sequence[_Series], probe_points: int, threads: int) -> None:
        """Round 1: the server's sample of each key, every run in one request (per BULK_MAX_RUNS)."""
        by_key: dict[str, list[_Series]] = {}
        for item in series:
            by_key.setdefault(item.key, []).append(item)
        requests = [
            (key, items[i : i + BULK_MAX_RUNS])
            for key, items in by_key.items()
            for i in range(0, len(items), BULK_MAX_RUNS)
        ]
        if not requests:
            return
        with ContextThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlflow-probe") as pool:
            answers = pool.map(
                lambda request: self._interval([i.run_id for i in request[1]], request[0], probe_points),
                requests,
            )
            for (_, items), by_run in zip(requests, answers, strict=True):
                for item in items:
                    item.probe = by_run.get(item.run_id, [])
                    item.probed = True
                    if len(item.probe) < probe_points:
                        item.points = item.probe

    def _complete(
        self,
        series: dict[tuple[str, str], _Series],
        cached: dict[tuple[str, str], Envelope],
        full: Callable[[list[str]], Iterable[str]] | None,
        budget: int,
        probe_points: int,
        threads: int,
        pool: ThreadPoolExecutor,
    ) -> None:
        """Rounds 2 and 3 for the series the caller wants whole, within the budget.

        A series known only by its last step counts as a history until read: if it turns out to hold
        one point, the caller is asked again (another key may take its panel) and what it now wants is
        read too (meanwhile the series not read whole were probed)."""
        spent = 0
        while True:
            logged = {key for (_, key), env in cached.items() if env.charted}
            logged |= {key for (_, key), item in series.items() if item.maybe_history}
            wanted = list(dict.fromkeys(full(sorted(logged)) if full is not None else sorted(logged)))
            # Whole keys at a time (every run of a key, or none), the caller's first keys first, so the
            # runs on one panel are never drawn one whole and one sampled.
            by_key: dict[str, list[_Series]] = {}
            for item in series.values():
                if not item.complete:
                    by_key.setdefault(item.key, []).append(item)
            chosen: list[_Series] = []
            for key in wanted:
                items = by_key.get(key, [])
                cost = sum(item.estimate for item in items)
                if spent + cost > budget:
                    log.info("metric `%s` is past the history budget (%d points): sampled", key, budget)
                    continue
                spent += cost
                chosen += items
            if not chosen:
                return
            picked = {id(item) for item in chosen}
            unprobed = [i for i in series.values() if not i.probed and not i.complete and id(i) not in picked]
            probing = pool.submit(self._probe, unprobed, probe_points, threads) if unprobed else None
            self._read_whole(chosen, pool)
            if probing is not None:
                probing.result()

    def _read_whole(self, chosen: list[_Series], pool: ThreadPoolExecutor) -> None:
        """Every point of each series: its windows are asked for as soon as they are known (at once
        for a series of known last step, after a first window otherwise), all series at once."""
        reads: list[list[Future[list[Point] | None]]] = [[] for _ in chosen]
        heads: list[list[Point] | None] = [[] for _ in chosen]
        firsts: dict[Future[tuple[list[Point], list[tuple[int, int]]] | None], int] = {}
        for i, item in enumerate(chosen):
            windows = _direct_windows(item.last) if item.last and not item.probed else None
            if windows is not None:
                reads[i] = [pool.submit(self._window, item, window) for window in windows]
            else:
                firsts[pool.submit(self._plan, item)] = i
        for done in as_completed(firsts):
            i = firsts[done]
            plan = done.result()
            heads[i] = None if plan is None else list(plan[0])
            if plan is not None:
                reads[i] = [pool.submit(self._window, chosen[i], window) for window in plan[1]]
        for i, item in enumerate(chosen):
            points = heads[i]
            for part in reads[i]:
                found = part.result()
                points = None if found is None or points is None else points + found
            item.points = points if points is not None else self._pages(item)

    def _plan(self, item: _Series) -> tuple[list[Point], list[tuple[int, int]]] | None:
        """The first window, whole, and the step windows for the rest; None when the steps repeat too
        much to be read by step ranges.

        A series of known last step: its first WINDOW_POINTS steps (and any below 0), then windows of as
        many steps as that density fits under the limit; one with nothing there is probed first. A
        probed series: `_first_window`.
        """
        if item.last and not item.probed:
            first = self._window(item, (MIN_STEP, WINDOW_POINTS - 1))
            if first is None:
                return None
            if first:
                low = min(0, first[0][0])
                per_step = len(first) / (WINDOW_POINTS - low)
                steps = max(1, int(WINDOW_POINTS / per_step))
                bounds = [*range(WINDOW_POINTS, item.last + 1, steps), item.last + 1]
                return first, [(a, b - 1) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
            self._probe([item], PROBE_POINTS, 1)  # nothing in the first steps: where are they?
            if item.complete:
                return item.points or [], []
        return self._first_window(item)

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
        # the server's sample keeps the range's first and last points: split where the points are
        low, high = max(low, points[0][0]), min(high, points[-1][0])
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


def _direct_windows(last: int) -> list[tuple[int, int]] | None:
    """WINDOW_POINTS-step windows up to `last` (the first also takes any step below 0); None past
    DIRECT_STEPS."""
    if last + 1 > DIRECT_STEPS:
        return None
    bounds = [*range(WINDOW_POINTS, last + 1, WINDOW_POINTS), last + 1]
    return [(MIN_STEP, bounds[0] - 1)] + [(a, b - 1) for a, b in zip(bounds, bounds[1:], strict=False)]


def _point(m: dict[str, Any]) -> Point:
    # NaN and ±inf come as the strings "NaN", "Infinity", "-Infinity", which float() reads.
    return (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m.get("value", "NaN")))
