"""The same histories on an MLflow server whose backend store is PostgreSQL, as many teams run it.

MLflow's SQL stores keep ±inf as ±1.8e308 and NaN as a flag; PostgreSQL and sqlite differ in how they
compare, order and return doubles, so the windowed read (bulk-interval step windows) and the marks of
non-finite values are checked on both. Uses the machine's PostgreSQL (POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) with a database of its own, dropped afterwards.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import charts
from bot.compare.rules import format_value
from bot.mlflow import connect
from tests import servers
from tests.mlflow_runs import RunFactory
from tests.scenarios.test_histories import PROBE, SHAPES, WIDTH, _log, _truth

psycopg = pytest.importorskip("psycopg")  # what SQLAlchemy 2.1 uses for postgresql://, here and in MLflow

ADMIN_URL = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL; its URL."""
    try:
        admin = psycopg.connect(ADMIN_URL, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); set POSTGRES_URL")
    name = f"review_bot_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def pg_runs(workdir: Path, postgres_database: str) -> Iterator[RunFactory]:
    with servers.mlflow_server(workdir, backend_store_uri=postgres_database) as url:
        yield RunFactory(url)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_windowed_read_finds_every_point_on_postgresql(pg_runs: RunFactory, shape: str) -> None:
    run_id = _log(pg_runs, shape, SHAPES[shape])
    (got,) = connect(pg_runs.tracking_uri).histories.envelopes(
        [run_id], ["m"], width=WIDTH, probe_points=PROBE
    )[run_id]
    assert got == _truth(pg_runs, run_id)
    assert not got.sampled and got.points == len(SHAPES[shape])


def test_a_diverged_run_on_postgresql_is_charted_and_reads_inf_on_the_card(pg_runs: RunFactory) -> None:
    run_id = _log(pg_runs, "diverged", [(s, 1.0 / (s + 1)) for s in range(50)] + [(50, math.inf)])
    stored = pg_runs.client.get_run(run_id).data.metrics["m"]
    assert stored != math.inf and stored > 1e308  # what MLflow keeps for +inf
    assert format_value(stored) == "inf"
    (got,) = connect(pg_runs.tracking_uri).histories.envelopes([run_id], ["m"], width=WIDTH)[run_id]
    assert got.marks == ((50, "inf"),) and len(got.values) == 50
    chart = charts.render_metric_history([got], title="diverged")
    assert chart.png is not None and chart.panels == [("m",)]
