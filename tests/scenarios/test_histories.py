"""Histories read whole from a real MLflow server, in step windows, and their cache.

Each shape is checked against the envelope of the client's own `get_metric_history` (every point, the
slow way): the windowed read must find the same points. A small probe makes short series take the
windowed path; the cache is counted by a proxy in front of MLflow (requests made, or none).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from mlflow.entities import Metric

from bot import charts, envelope
from bot.mlflow import connect
from bot.mlflow.histories import Histories, HistoryCache
from bot.store import MemoryStore, RedisStore
from tests.mlflow_runs import BATCH, RunFactory
from tests.slow_proxy import SlowProxy

WIDTH = charts.HISTORY_WIDTH_PX
PROBE = 40  # so a few hundred points already take the windowed path


def _log(runs: RunFactory, name: str, points: list[tuple[int, float]]) -> str:
    """A finished run with metric `m` logged at these (step, value) points, in this order."""
    run_id = runs.client.create_run(runs.experiment("review-bot-histories"), run_name=name).info.run_id
    now = int(time.time() * 1000)
    rows = [Metric("m", value, now + i, step) for i, (step, value) in enumerate(points)]
    for i in range(0, len(rows), BATCH):
        runs.client.log_batch(run_id, metrics=rows[i : i + BATCH])
    runs.client.set_terminated(run_id)
    return run_id


def _truth(runs: RunFactory, run_id: str) -> envelope.Envelope:
    history = runs.client.get_metric_history(run_id, "m")
    return envelope.build("m", [(m.step, m.timestamp, m.value) for m in history], WIDTH)


@pytest.fixture(scope="module")
def proxy(mlflow_server: str) -> Iterator[SlowProxy]:
    counting = SlowProxy(mlflow_server).start()
    yield counting
    counting.stop()


def _histories(proxy: SlowProxy, cache: HistoryCache | None = None) -> Histories:
    return connect(proxy.url, history_cache=cache).histories


SHAPES = {
    "one step each": [(s, math.sin(s / 30)) for s in range(3_000)],
    "every 10th step, a spike": [(s * 10, 25.0 if s == 1_234 else 2.0) for s in range(3_000)],
    "three values per step": [(s // 3, float(s % 7)) for s in range(3_000)],
    "dense then sparse": [(s, float(s % 5)) for s in range(1_000)]
    + [(1_000 + s * 50, -1.0) for s in range(500)],
    "all at one step (Keras validation_*)": [(0, 1.0 / (i + 1)) for i in range(3_000)],
    "diverged": [(s, 1.0 / (s + 1)) for s in range(500)]
    + [(500, math.inf), (501, -math.inf), (502, math.nan)]
    + [(s, math.nan) for s in range(503, 900)],
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_windowed_read_finds_every_point(runs: RunFactory, proxy: SlowProxy, shape: str) -> None:
    run_id = _log(runs, shape, SHAPES[shape])
    (got,) = _histories(proxy).envelopes([run_id], ["m"], width=WIDTH, probe_points=PROBE)[run_id]
    assert got == _truth(runs, run_id)
    assert not got.sampled and got.points == len(SHAPES[shape])


def test_mlflow_infinities_come_back_as_infinities(runs: RunFactory, proxy: SlowProxy) -> None:
    run_id = _log(runs, "inf", [(0, 1.0), (1, math.inf), (2, -math.inf), (3, math.nan), (4, 0.5)])
    (got,) = _histories(proxy).envelopes([run_id], ["m"], width=WIDTH)[run_id]
    assert got.values == (1.0, 0.5)
    assert got.marks == ((1, envelope.POS_INF), (2, envelope.NEG_INF), (3, envelope.NAN))
    assert sys.float_info.max not in got.values


def test_past_the_budget_a_key_keeps_the_servers_sample_and_says_so(
    runs: RunFactory, proxy: SlowProxy
) -> None:
    points = SHAPES["every 10th step, a spike"]
    run_id = _log(runs, "budget", points)
    histories = _histories(proxy)
    (sampled,) = histories.envelopes([run_id], ["m"], width=WIDTH, probe_points=PROBE, budget=100)[run_id]
    assert sampled.sampled and sampled.points == PROBE
    (whole,) = histories.envelopes([run_id], ["m"], width=WIDTH, probe_points=PROBE, full=lambda keys: [])[
        run_id
    ]
    assert whole.sampled  # not wanted whole by the caller: the sample is enough to know it is a history
    (whole,) = histories.envelopes([run_id], ["m"], width=WIDTH, probe_points=PROBE)[run_id]
    assert not whole.sampled and max(whole.values) == 25.0


def test_several_runs_share_the_probe_and_a_run_without_the_key_gets_nothing(
    runs: RunFactory, proxy: SlowProxy
) -> None:
    long = _log(runs, "long", SHAPES["one step each"])
    short = _log(runs, "short", [(0, 1.0), (1, 0.5)])
    before = len(proxy.paths)
    got = _histories(proxy).envelopes([long, short], ["m", "absent"], width=WIDTH, probe_points=PROBE)
    assert [e.key for e in got[long]] == ["m"] and [e.key for e in got[short]] == ["m"]
    assert got[short][0].values == (1.0, 0.5)
    assert got[long][0] == _truth(runs, long)
    probes = [p for p in proxy.paths[before:] if "start_step" not in p]
    assert len(probes) == 2  # one per key, both runs in it


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, redis_url: str) -> HistoryCache:
    store = MemoryStore() if request.param == "memory" else RedisStore(redis_url)
    return HistoryCache(store, ttl_seconds=600)


def test_a_finished_runs_histories_are_read_once(
    runs: RunFactory, proxy: SlowProxy, cache: HistoryCache
) -> None:
    run_id = _log(runs, "cached", SHAPES["every 10th step, a spike"])
    histories = _histories(proxy, cache)
    before = len(proxy.paths)
    first = histories.envelopes([run_id], ["m"], width=WIDTH, finished=[run_id], probe_points=PROBE)
    read = len(proxy.paths) - before
    assert read > 2  # a probe, the first bucket, its windows
    second = histories.envelopes([run_id], ["m"], width=WIDTH, finished=[run_id], probe_points=PROBE)
    assert second == first and len(proxy.paths) - before == read  # nothing asked of MLflow
    # Another width is another envelope; a run not known to be finished is read again.
    histories.envelopes([run_id], ["m"], width=WIDTH // 2, finished=[run_id], probe_points=PROBE)
    assert len(proxy.paths) - before > read
    again = len(proxy.paths)
    histories.envelopes([run_id], ["m"], width=WIDTH, probe_points=PROBE)
    assert len(proxy.paths) > again


class _BrokenStore(MemoryStore):
    def get_json(self, key: str) -> None:
        raise redis.ConnectionError("Redis is down")

    def put_json(self, key: str, value: object, ttl_seconds: int) -> None:
        raise redis.ConnectionError("Redis is down")


def test_the_cache_fails_soft(runs: RunFactory, proxy: SlowProxy, caplog: pytest.LogCaptureFixture) -> None:
    run_id = _log(runs, "no cache", SHAPES["one step each"])
    histories = _histories(proxy, HistoryCache(_BrokenStore(), ttl_seconds=600))
    (got,) = histories.envelopes([run_id], ["m"], width=WIDTH, finished=[run_id], probe_points=PROBE)[run_id]
    assert got == _truth(runs, run_id)
    assert any("history cache" in r.getMessage() for r in caplog.records)
