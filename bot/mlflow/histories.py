"""Metric histories of one run or several, sampled by the tracking server where there is one."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from bot.mlflow.client import Mlflow
from bot.models import MetricSeries

HISTORY_FETCH_THREADS = 8
# A bulk request for many runs keeps a server worker busy for about a second: more in flight than a
# small server has workers only queue, and a queued request can pass MLFLOW_TIMEOUT_SECONDS and be
# sent again (measured: 2 retries in 20 requests with 8 in flight against 2 workers).
MULTI_RUN_FETCH_THREADS = 4
BULK_INTERVAL_ENDPOINT = "/api/2.0/mlflow/metrics/get-history-bulk-interval"
BULK_MAX_RUNS = 100  # the server's limit on run_ids per bulk-interval request

Point = tuple[int, int, float]  # (step, timestamp, value)


class Histories:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def metric_histories(
        self, run_id: str, keys: Iterable[str], max_points: int = 1000
    ) -> list[MetricSeries]:
        """Histories of the given metrics of one run, at most `max_points` each (see bulk_histories)."""
        return self.bulk_histories([run_id], keys, max_points).get(run_id, [])

    def bulk_histories(
        self, run_ids: list[str], keys: Iterable[str], max_points: int = 1000
    ) -> dict[str, list[MetricSeries]]:
        """Histories of the given metrics for several runs: {run_id: [series by key]}.

        A tracking server samples them itself: one request per metric key serves every run (its
        bulk-interval endpoint takes up to 100 run ids and keeps each run's first and last steps), so
        comparing 10 runs costs what one does, and a 100,000-step metric what a 1,000-step one does.
        The requests for different keys go in parallel. A local store returns full histories (one call
        per run and key) and the chart downsamples them. A run without a key gets no series for it
        (an empty one from a local store).
        """
        run_ids = list(dict.fromkeys(run_ids))

        def fetch(key: str) -> dict[str, list[Point]]:
            if self.mlflow.is_server:
                return self._sampled(run_ids, key, max_points)
            return {
                run_id: [
                    (m.step, m.timestamp, m.value)
                    for m in self.mlflow.call(
                        f"metric `{key}`",
                        lambda run_id=run_id: self.mlflow.tracking.get_metric_history(run_id, key),
                    )
                ]
                for run_id in run_ids
            }

        keys = sorted(set(keys))
        threads = HISTORY_FETCH_THREADS if len(run_ids) == 1 else MULTI_RUN_FETCH_THREADS
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlflow-history") as pool:
            by_key = dict(zip(keys, pool.map(fetch, keys), strict=True))
        result: dict[str, list[MetricSeries]] = {run_id: [] for run_id in run_ids}
        for key in keys:
            for run_id, points in by_key[key].items():
                points.sort()
                result[run_id].append(
                    MetricSeries(key=key, steps=[p[0] for p in points], values=[p[2] for p in points])
                )
        return result

    def _sampled(self, run_ids: list[str], key: str, max_points: int) -> dict[str, list[Point]]:
        """One key of several runs, sampled by the server: one request per BULK_MAX_RUNS runs."""
        points: dict[str, list[Point]] = {}
        for i in range(0, len(run_ids), BULK_MAX_RUNS):
            chunk = run_ids[i : i + BULK_MAX_RUNS]
            body = self.mlflow.call(
                f"metric `{key}`",
                lambda chunk=chunk: self.mlflow.rest_get(
                    BULK_INTERVAL_ENDPOINT, {"run_ids": chunk, "metric_key": key, "max_results": max_points}
                ),
            )
            for m in body.get("metrics", []):
                point = (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m["value"]))
                points.setdefault(m["run_id"], []).append(point)
        return points
