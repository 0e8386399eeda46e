"""The nudge digest's registry scan at scale: a registry of many models and versions, few deployed.

The scan must cost MLflow calls in proportion to the *deployed* versions (two calls each: the version,
the run), plus pages of registered models, never one call per version or run in the registry. The
calls are counted by a proxy in front of MLflow, per endpoint; the time is taken without the proxy.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

from bot import signature
from bot.mlflow import connect
from bot.models import ReviewState, ReviewStatus
from bot.nudges.rules import Scan
from bot.nudges.service import NudgeService
from bot.store import MemoryStore
from tests import support
from tests.benchmarks.stack import Stack
from tests.slow_proxy import SlowProxy

ALIAS = "champion"
LOG_THREADS = 8


@dataclass
class NudgeScanResult:
    models: int
    versions_per_model: int
    deployed: int
    approved: int
    build_s: float
    scan_s: list[float]
    calls: int
    calls_by_endpoint: dict[str, int] = field(default_factory=dict)
    unreviewed_found: int = 0


def build_registry(stack: Stack, models: int, versions: int) -> tuple[float, int]:
    """`models` registered models of `versions` versions each, the last one under @champion; every
    other model's run is approved. Returns (seconds taken, approved deployments)."""
    client = stack.runs.client
    started = time.perf_counter()
    experiment = stack.runs.experiment("nudge-bench")

    def one_model(m: int) -> bool:
        approved = m % 2 == 0
        run = client.create_run(experiment, run_name=f"bench-model-{m:03d}")
        if approved:  # a decision the bot signed, as it would write it
            state = ReviewState(
                run_id=run.info.run_id, status=ReviewStatus.APPROVED, decided_at=datetime.now(tz=UTC)
            )
            for key, value in support.signed_review_tags(state).items():
                client.set_tag(run.info.run_id, key, value)
        name = f"bench-model-{m:03d}"
        client.create_registered_model(name)
        last = None
        for _ in range(versions):
            last = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(name, ALIAS, last.version)
        return approved

    with ThreadPoolExecutor(max_workers=LOG_THREADS) as pool:
        approved = sum(pool.map(one_model, range(models)))
    return time.perf_counter() - started, approved


def _scanner(tracking_uri: str) -> NudgeService:
    mlflow = connect(tracking_uri, tracking_uri, verifier=signature.verifier_for([support.PUBLIC_KEY]))
    return NudgeService(
        mlflow.registry,
        mlflow.runs,
        mlflow.records,
        MemoryStore(),
        None,  # type: ignore[arg-type]  # a scan talks to MLflow only
        None,  # type: ignore[arg-type]
        channel=None,
        deployment_aliases=[ALIAS],
        pending_max_days=3,
        repeat_seconds=86400,
        reviewers=lambda: None,
    )


def measure_scan(stack: Stack, models: int, versions: int, repeats: int) -> NudgeScanResult:
    build_s, approved = build_registry(stack, models, versions)
    direct = _scanner(stack.mlflow_url)
    times, scan = [], Scan()
    for _ in range(repeats):
        started = time.perf_counter()
        scan = direct.scan(datetime.now(tz=UTC))
        times.append(time.perf_counter() - started)
    proxy = SlowProxy(stack.mlflow_url).start()
    try:
        _scanner(proxy.url).scan(datetime.now(tz=UTC))
    finally:
        proxy.stop()
    endpoints = Counter(urlparse(path).path.removeprefix("/api/2.0/mlflow/") for path in proxy.paths)
    return NudgeScanResult(
        models=models,
        versions_per_model=versions,
        deployed=models,
        approved=approved,
        build_s=build_s,
        scan_s=times,
        calls=proxy.requests_seen,
        calls_by_endpoint=dict(endpoints.most_common()),
        unreviewed_found=len(scan.unreviewed),
    )
