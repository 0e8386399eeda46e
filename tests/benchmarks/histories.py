"""Metric histories in the benchmark: a 100,000-step metric with a one-step spike, the big run read cold
(history cache emptied) and warm, and what the cache saves MLflow (requests counted by a proxy).

Runs are written straight into the server's sqlite store (as `measure.make_compare_runs` does): logging
100,000 points through the REST API is not what is measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis

from bot import charts
from bot.mlflow import connect
from bot.store import HISTORY_CACHE_PREFIX, KEY_PREFIX
from tests import support
from tests.benchmarks.measure import BigRunTiming, _quiet_mlflow, command_to_card_and_chart
from tests.benchmarks.stack import Stack
from tests.slow_proxy import SlowProxy

SPIKE_KEY = "loss"
SPIKE_STEPS = 100_000
SPIKE_AT = 61_234
SPIKE_VALUE = 25.0
SPIKE_LEVEL = 2.0
CACHE_METRICS = 10
CACHE_STEPS = 5_000
HISTORY_PATHS = ("/metrics/get-history",)  # get-history and get-history-bulk-interval
CACHE_LINE = re.compile(r"metric histories: (\d+) from the cache, (\d+) read from MLflow")


def write_run(stack: Stack, name: str, histories: dict[str, list[float]], experiment: str) -> str:
    """A finished run whose metric rows are written into the server's store, one per step."""
    database = stack.workdir / "mlflow" / "mlflow.db"  # tests/servers.py's layout
    client = stack.runs.client
    with _quiet_mlflow():
        run_id = client.create_run(stack.runs.experiment(experiment), run_name=name).info.run_id
    now = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db, db:
        for key, values in histories.items():
            db.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (?, ?, ?, ?, ?, 0)",
                ((key, v, now + step, run_id, step) for step, v in enumerate(values)),
            )
            db.execute(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (?, ?, ?, ?, 0, ?)",
                (key, values[-1], now + len(values) - 1, len(values) - 1, run_id),
            )
    with _quiet_mlflow():
        client.set_terminated(run_id)
    return run_id


def clear_history_cache(redis_url: str) -> int:
    """Forget every cached history envelope (a cold look); how many there were."""
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}{HISTORY_CACHE_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


# --- a one-step spike in 100,000 steps ------------------------------------------------------------------


@dataclass
class SpikeResult:
    steps: int
    spike_at: int
    spike_value: float
    log_s: float
    cold: list[BigRunTiming]  # history cache emptied before each
    warm: BigRunTiming | None  # right after, from the cache
    envelope_max: float  # what the bot's own reading and reduction keep, in-process
    envelope_max_step: int
    read_s: float  # that in-process read and reduction

    @property
    def spike_kept(self) -> bool:
        return self.envelope_max == self.spike_value and self.envelope_max_step == self.spike_at


def make_spike_run(stack: Stack) -> tuple[str, float]:
    started = time.perf_counter()
    values = [SPIKE_LEVEL + 0.03 * math.sin(step / 300) for step in range(SPIKE_STEPS)]
    values[SPIKE_AT] = SPIKE_VALUE
    run_id = write_run(stack, "bench-100k-spike", {SPIKE_KEY: values}, "review-bot-bench")
    return run_id, time.perf_counter() - started


def measure_spike(stack: Stack, repeats: int, timeout: float) -> SpikeResult:
    run_id, log_s = make_spike_run(stack)
    cold = []
    for i in range(repeats):
        clear_history_cache(stack.redis_url)
        cold.append(command_to_card_and_chart(stack, run_id, f"U0SPK{i:03d}", timeout))
    warm = command_to_card_and_chart(stack, run_id, "U0SPKWARM", timeout)
    # The bot's own reading and reduction, in this process: does the spike reach the chart's data?
    started = time.perf_counter()
    histories = connect(stack.mlflow_url).histories
    (env,) = histories.envelopes([run_id], [SPIKE_KEY], width=charts.HISTORY_WIDTH_PX)[run_id]
    read_s = time.perf_counter() - started
    top = max(env.values)
    return SpikeResult(
        SPIKE_STEPS, SPIKE_AT, SPIKE_VALUE, log_s, cold, warm, top, env.x[env.values.index(top)], read_s
    )


def measure_big_run_cold_and_warm(
    stack: Stack, run_id: str, repeats: int, timeout: float
) -> tuple[list[BigRunTiming], BigRunTiming]:
    """The big run reviewed `repeats` times from an empty history cache, then once more from it."""
    cold = []
    for i in range(repeats):
        clear_history_cache(stack.redis_url)
        cold.append(command_to_card_and_chart(stack, run_id, f"U0BIG{i:03d}", timeout))
    return cold, command_to_card_and_chart(stack, run_id, "U0BIGWARM", timeout)


# --- what the cache saves ----------------------------------------------------------------------------


@dataclass
class CacheStep:
    what: str
    history_requests: int  # to MLflow's history endpoints, counted by the proxy
    from_cache: int  # (run, metric) envelopes, from the bot's log line
    from_mlflow: int
    chart_s: float | None = None


@dataclass
class CacheResult:
    shape: str
    steps: list[CacheStep] = field(default_factory=list)


def measure_cache(stack: Stack, bot: support.BotProcess, proxy: SlowProxy, timeout: float) -> CacheResult:
    """Two finished runs of CACHE_METRICS metrics x CACHE_STEPS steps: each reviewed (cold), reviewed
    again, then compared, through a bot whose MLflow requests a proxy counts."""
    from tests.benchmarks.measure import compare_runs

    curve = [1.0 / (1 + step / 100) for step in range(CACHE_STEPS)]
    runs = [
        write_run(
            stack,
            f"bench-cache-{name}",
            {f"metric_{m:02d}": [v * (1 + m / 10 + offset) for v in curve] for m in range(CACHE_METRICS)},
            "review-bot-bench-cache",
        )
        for name, offset in (("a", 0.0), ("b", 0.05))
    ]
    clear_history_cache(stack.redis_url)
    counted = dataclasses.replace(stack, bot=bot)
    result = CacheResult(f"2 runs x {CACHE_METRICS} metrics x {CACHE_STEPS:,} steps")

    def step(what: str, action) -> None:  # noqa: ANN001 - () -> float | None
        seen, log_at = len(proxy.paths), len(bot.log())
        chart_s = action()
        time.sleep(0.5)  # the thread's last part (plots, overflow) after the chart
        requests = [p for p in proxy.paths[seen:] if any(h in p for h in HISTORY_PATHS)]
        lines = CACHE_LINE.findall(bot.log()[log_at:])
        result.steps.append(
            CacheStep(
                what,
                len(requests),
                sum(int(hit) for hit, _ in lines),
                sum(int(miss) for _, miss in lines),
                chart_s,
            )
        )

    for attempt in ("first look", "second look"):
        for index, run_id in enumerate(runs):
            user = f"U0CACHE{attempt[0]}{index}"
            step(
                f"review run {'ab'[index]}, {attempt}",
                lambda run_id=run_id, user=user: (
                    command_to_card_and_chart(counted, run_id, user, timeout).chart_s
                ),
            )
    step(
        "/review compare a b (both reviewed)",
        lambda: compare_runs(counted, bot, proxy, runs, "U0CACHECMP", timeout).histories_s,
    )
    return result


# --- the floor of a chart: MLflow alone serving the same points -------------------------------------


def history_floor(stack: Stack, run_id: str, repeats: int = 3) -> list[float]:
    """The seconds the MLflow server alone takes to serve what the bot reads for the run's chart: the
    same step windows of the same (charted) keys, sent with `requests` at the bot's parallelism
    (HISTORY_FETCH_THREADS), `repeats` times. Command → chart over this is the chart's ratio."""
    import requests

    from bot.mlflow.histories import (
        BULK_INTERVAL_ENDPOINT,
        HISTORY_FETCH_THREADS,
        MIN_STEP,
        SERVER_SAMPLE_LIMIT,
        WINDOW_POINTS,
    )

    with _quiet_mlflow():
        run = stack.runs.client.get_run(run_id)
    last = {m.key: m.step for m in run.data._metric_objs}
    keys = charts.charted_keys([key for key, step in last.items() if step > 0], (), 12)
    jobs = []
    for key in keys:
        bounds = [*range(WINDOW_POINTS, last[key] + 1, WINDOW_POINTS), last[key] + 1]
        windows = [(MIN_STEP, bounds[0] - 1)] + list(zip(bounds, [b - 1 for b in bounds[1:]], strict=False))
        jobs += [(key, window) for window in windows]
    url = stack.mlflow_url.rstrip("/") + BULK_INTERVAL_ENDPOINT
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=HISTORY_FETCH_THREADS))

    def fetch(job: tuple[str, tuple[int, int]]) -> int:
        key, (low, high) = job
        params = {"run_ids": run_id, "metric_key": key, "max_results": SERVER_SAMPLE_LIMIT}
        params |= {"start_step": low, "end_step": high}
        return len(session.get(url, params=params, timeout=60).json().get("metrics", []))

    times = []
    with ThreadPoolExecutor(max_workers=HISTORY_FETCH_THREADS) as pool:
        for _ in range(repeats):
            started = time.perf_counter()
            list(pool.map(fetch, jobs))
            times.append(time.perf_counter() - started)
    return times
