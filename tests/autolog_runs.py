"""Runs logged the way real teams log them: the libraries' own autolog, plus the edge cases of issue 12.

`log_autolog_runs(tracking_uri)` logs, in a few seconds each, into any tracking URI (a test server or a
local sqlite store):

- xgboost (`mlflow.xgboost.autolog()`): `xgb.train` with evals `train`/`valid`, and the sklearn API whose
  eval sets become `validation_0`/`validation_1`;
- LightGBM (`mlflow.lightgbm.autolog()`): `lgb.train` with the default eval names `training`/`valid_1`, a
  regression with `train`/`valid` and `l1`/`l2`, and the sklearn API (`valid_0`, `training`);
- scikit-learn (`mlflow.sklearn.autolog()`): a GridSearchCV parent with one child run per candidate;
- statsmodels (`mlflow.statsmodels.autolog()`): two OLS fits and two ARIMA fits (aic, bic, ssr, llf…);
- Keras: a real `mlflow.keras.autolog()` run recorded once outside the repo (tests/data/README.md),
  replayed here with its steps and relative timestamps;
- what autolog does not make but real runs contain: a run that diverged (NaN, +inf, -inf), one that
  only reached +inf, a 100,000-step metric with a one-step spike, CJK and emoji names, and a run logged
  the way PyTorch Lightning's MLFlowLogger names things (`train/loss`, `val/loss`, many more metrics).

Every run has a label (`xgboost/train-deep`); `COMPARISONS` pairs runs of the same library as
(candidate, baseline), for `/review <run> --baseline <run>`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param
from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
from mlflow.tracking import MlflowClient

BATCH = 1000  # MLflow's log_batch limit for metrics
KERAS_FIXTURE = Path(__file__).parent / "data" / "keras_autolog_run.json"
SEED = 7

# The edge cases' shapes, which the tests assert against.
LONG_STEPS = 100_000
LONG_LEVEL = 2.0
LONG_NOISE = 0.02
SPIKE_STEP = 61_237  # not on a round step: an evenly spaced sample of 1,000 steps skips it
SPIKE_VALUE = 25.0
LONG_METRIC = "loss"
LONG_THREADS = 2  # the test server's workers: 100 batches in about a third of the time of one by one
MLFLOW_INF = 1.7976931348623157e308  # what MLflow stores for +inf (and its negative for -inf)
UNICODE_RUN_NAME = "模型-評価 🚀"
UNICODE_METRIC = "損失"
UNICODE_METRIC_2 = "正解率"  # MLflow refuses emoji in metric names (not in run or model names)
UNICODE_MODEL = "分類器"
UNKNOWN_METRIC = "wobble"  # a name no library uses: its direction cannot be known
LIGHTNING_KEY_METRICS = ("train/loss", "val/loss")

LIBRARIES = ("xgboost", "lightgbm", "sklearn", "statsmodels", "keras", "edge", "unicode", "lightning")

# (candidate, baseline): runs of one library that share their metric names.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("xgboost/train-deep", "xgboost/train-shallow"),
    ("xgboost/sklearn-tuned", "xgboost/sklearn-baseline"),
    ("lightgbm/binary-a", "lightgbm/binary-b"),
    ("lightgbm/regression-a", "lightgbm/regression-b"),
    ("lightgbm/sklearn-a", "lightgbm/sklearn-b"),
    ("sklearn/grid-best", "sklearn/grid-worst"),
    ("statsmodels/ols-full", "statsmodels/ols-small"),
    ("statsmodels/arima-011", "statsmodels/arima-210"),
)


@dataclass(frozen=True)
class LoggedRun:
    label: str  # library/what
    run_id: str
    run_name: str
    experiment_id: str
    real_autolog: bool  # False for the edge cases logged with log_metric/log_batch

    @property
    def library(self) -> str:
        return self.label.split("/", 1)[0]


@dataclass
class AutologRuns:
    tracking_uri: str
    runs: dict[str, LoggedRun] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per library, to keep the setup honest
    registered_model: str = ""  # the CJK registered model's name

    def __getitem__(self, label: str) -> LoggedRun:
        return self.runs[label]

    def id(self, label: str) -> str:
        return self.runs[label].run_id

    def of(self, library: str) -> list[LoggedRun]:
        return [run for run in self.runs.values() if run.library == library]


@contextlib.contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """The fluent API (what autolog uses) pointed at `uri`, and back to what it was afterwards."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            mlflow.flush_async_logging()
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(before)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Autolog's and the libraries' chatter stays out of test output."""
    suppress = MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get_raw()
    os.environ[MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name] = "true"  # "View run … at: http…" per run
    loggers = [logging.getLogger(name) for name in ("mlflow", "lightgbm", "xgboost")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if suppress is None:
            os.environ.pop(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name, None)
        else:
            os.environ[MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name] = suppress


def _experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    existing = client.get_experiment_by_name(name)
    if existing:
        return existing.experiment_id
    location = f"{artifact_root}/{name}" if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


class _Logger:
    def __init__(self, tracking_uri: str, prefix: str, artifact_root: str | None) -> None:
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.result = AutologRuns(tracking_uri)
        self.prefix = prefix
        self.artifact_root = artifact_root

    def experiment(self, library: str) -> str:
        return _experiment(self.client, f"{self.prefix}{library}", self.artifact_root)

    @contextlib.contextmanager
    def run(self, label: str, run_name: str | None = None, *, real: bool = True) -> Iterator[str]:
        library = label.split("/", 1)[0]
        experiment_id = self.experiment(library)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name or label.split("/", 1)[1]
        ) as run:
            yield run.info.run_id
        self.add(label, run.info.run_id, real=real)

    def add(self, label: str, run_id: str, *, real: bool) -> None:
        info = self.client.get_run(run_id).info
        self.result.runs[label] = LoggedRun(label, run_id, info.run_name, info.experiment_id, real)

    def batch(self, run_id: str, metrics: list[Metric], params: list[Param] = (), threads: int = 1) -> None:
        """`threads` > 1 sends the metric batches in parallel (a server's workers take them together)."""
        params = list(params)
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i : i + 100])
        chunks = [metrics[i : i + BATCH] for i in range(0, len(metrics), BATCH)]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="log-batch") as pool:
            list(pool.map(lambda chunk: self.client.log_batch(run_id, metrics=chunk), chunks))


# --- data ---------------------------------------------------------------------------------------------


def _classification() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=600, n_features=10, n_informative=5, random_state=SEED)


def _regression() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_regression

    return make_regression(n_samples=600, n_features=8, n_informative=5, noise=10.0, random_state=SEED)


def _split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cut = int(len(y) * 0.7)
    return x[:cut], y[:cut], x[cut:], y[cut:]


# --- the libraries ----------------------------------------------------------------------------------


def _log_xgboost(log: _Logger) -> None:
    import xgboost as xgb

    xt, yt, xv, yv = _split(*_classification())
    mlflow.xgboost.autolog(log_models=False)
    try:
        for label, depth, eta, rounds in (
            ("xgboost/train-deep", 4, 0.3, 30),
            ("xgboost/train-shallow", 2, 0.05, 30),
        ):
            with log.run(label):
                dtrain, dvalid = xgb.DMatrix(xt, yt), xgb.DMatrix(xv, yv)
                xgb.train(
                    {
                        "objective": "binary:logistic",
                        "eval_metric": ["logloss", "auc", "error"],
                        "max_depth": depth,
                        "eta": eta,
                        "seed": SEED,
                    },
                    dtrain,
                    num_boost_round=rounds,
                    evals=[(dtrain, "train"), (dvalid, "valid")],
                    verbose_eval=False,
                )
        # The sklearn API names its eval sets validation_0, validation_1; the two runs differ in
        # exactly two params a person set (max_depth, learning_rate).
        for label, depth, rate in (("xgboost/sklearn-tuned", 4, 0.2), ("xgboost/sklearn-baseline", 2, 0.05)):
            with log.run(label):
                model = xgb.XGBClassifier(
                    n_estimators=40,
                    max_depth=depth,
                    learning_rate=rate,
                    eval_metric="logloss",
                    random_state=SEED,
                )
                model.fit(xt, yt, eval_set=[(xt, yt), (xv, yv)], verbose=False)
    finally:
        mlflow.xgboost.autolog(disable=True)


def _log_lightgbm(log: _Logger) -> None:
    import lightgbm as lgb

    xt, yt, xv, yv = _split(*_classification())
    rt, ryt, rv, ryv = _split(*_regression())
    mlflow.lightgbm.autolog(log_models=False)
    try:
        # Default eval names: the training set is `training`, the second set `valid_1`.
        for label, leaves in (("lightgbm/binary-a", 15), ("lightgbm/binary-b", 3)):
            with log.run(label):
                dtrain = lgb.Dataset(xt, yt)
                dvalid = lgb.Dataset(xv, yv, reference=dtrain)
                lgb.train(
                    {
                        "objective": "binary",
                        "metric": ["auc", "binary_logloss"],
                        "num_leaves": leaves,
                        "verbose": -1,
                        "seed": SEED,
                    },
                    dtrain,
                    num_boost_round=30,
                    valid_sets=[dtrain, dvalid],
                )
        for label, rounds in (("lightgbm/regression-a", 40), ("lightgbm/regression-b", 8)):
            with log.run(label):
                dtrain = lgb.Dataset(rt, ryt)
                dvalid = lgb.Dataset(rv, ryv, reference=dtrain)
                lgb.train(
                    {"objective": "regression", "metric": ["l1", "l2"], "verbose": -1, "seed": SEED},
                    dtrain,
                    num_boost_round=rounds,
                    valid_sets=[dtrain, dvalid],
                    valid_names=["train", "valid"],
                )
        # The sklearn API: the held-out set first is `valid_0`, the training set itself `training`;
        # the author also logs the held-out l1 and l2 by hand, as bare `l1` and `l2`.
        for label, rounds in (("lightgbm/sklearn-a", 40), ("lightgbm/sklearn-b", 8)):
            with log.run(label):
                model = lgb.LGBMRegressor(n_estimators=rounds, random_state=SEED, verbose=-1)
                model.fit(rt, ryt, eval_set=[(rv, ryv), (rt, ryt)], eval_metric=["l1", "l2"])
                error = model.predict(rv) - ryv
                mlflow.log_metrics({"l1": float(np.abs(error).mean()), "l2": float((error**2).mean())})
    finally:
        mlflow.lightgbm.autolog(disable=True)


def _log_sklearn(log: _Logger) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    x, y = _classification()
    mlflow.sklearn.autolog(log_models=False, max_tuning_runs=None)
    try:
        with log.run("sklearn/grid-parent", "gridsearch-logreg") as parent_id:
            GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.001, 0.03, 1.0]}, cv=3).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    children = log.client.search_runs([log.experiment("sklearn")], f"tags.mlflow.parentRunId = '{parent_id}'")
    by_rank = sorted(children, key=lambda run: run.data.metrics["rank_test_score"])
    log.add("sklearn/grid-best", by_rank[0].info.run_id, real=True)
    log.add("sklearn/grid-worst", by_rank[-1].info.run_id, real=True)
    for index, run in enumerate(by_rank[1:-1], start=2):
        log.add(f"sklearn/grid-rank-{index}", run.info.run_id, real=True)


def _log_statsmodels(log: _Logger) -> None:
    import statsmodels.api as sm
    from statsmodels.tsa.arima.model import ARIMA

    x, y = _regression()
    series = np.cumsum(np.random.default_rng(SEED).normal(size=240)) + np.sin(np.arange(240) / 6.0)
    mlflow.statsmodels.autolog(log_models=False)
    try:
        for label, columns, wobble in (("statsmodels/ols-full", 8, 0.4), ("statsmodels/ols-small", 3, 0.7)):
            with log.run(label):
                sm.OLS(y, sm.add_constant(x[:, :columns])).fit()
                mlflow.log_metric(UNKNOWN_METRIC, wobble)  # a name nobody documents: not judged
        for label, order in (("statsmodels/arima-011", (0, 1, 1)), ("statsmodels/arima-210", (2, 1, 0))):
            with log.run(label):
                ARIMA(series, order=order).fit()
    finally:
        mlflow.statsmodels.autolog(disable=True)


def _log_keras(log: _Logger) -> None:
    """The recorded Keras autolog run, replayed with its steps and relative timestamps."""
    fixture = json.loads(KERAS_FIXTURE.read_text())
    run = log.client.create_run(
        log.experiment("keras"),
        run_name=fixture["run_name"],
        tags={"mlflow.autologging": "keras", "mlflow.source.name": "train_keras.py", **fixture["tags"]},
    )
    start = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), start + offset, int(step))
        for key, points in fixture["metrics"].items()
        for step, offset, value in points
    ]
    log.batch(run.info.run_id, metrics, [Param(k, v) for k, v in fixture["params"].items()])
    log.client.set_terminated(run.info.run_id)
    log.add("keras/dense", run.info.run_id, real=True)


# --- what autolog does not make -----------------------------------------------------------------------


def _log_edge_cases(log: _Logger) -> None:
    with log.run("edge/diverged", "diverged-lr-0.5", real=False):
        mlflow.log_params({"learning_rate": "0.5", "optimizer": "sgd"})
        loss = [2.0 * math.exp(-i / 15) + 0.3 for i in range(30)] + [3.5, 9.0, math.nan, math.inf]
        grad_norm = [1.0 + i * 0.2 for i in range(30)] + [40.0, 900.0, math.inf, math.inf]
        log_likelihood = [-2.0 - i * 0.01 for i in range(30)] + [-9.0, -80.0, -math.inf, -math.inf]
        for step, (a, b, c) in enumerate(zip(loss, grad_norm, log_likelihood, strict=True)):
            mlflow.log_metrics({"loss": a, "grad_norm": b, "log_likelihood": c}, step=step)
        mlflow.log_metric("val_loss", math.nan, step=33)
    with log.run("edge/only-inf", "exploded-at-the-end", real=False):
        for step in range(20):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("loss", math.inf, step=20)


def _log_long_spike(log: _Logger) -> None:
    """100,000 steps at ~2.0 with one step at 25, in log_batch calls of 1,000 as a training loop would.

    Run in a thread beside the autolog runs: its time is the server's, theirs mostly the client's."""
    rng = np.random.default_rng(SEED)
    experiment_id = log.experiment("edge")
    run = log.client.create_run(
        experiment_id, run_name="long-100k-steps", tags={"mlflow.source.name": "train.py"}
    )
    run_id = run.info.run_id
    values = LONG_LEVEL + rng.uniform(-LONG_NOISE, LONG_NOISE, LONG_STEPS)
    values[SPIKE_STEP] = SPIKE_VALUE
    start = int(time.time() * 1000) - LONG_STEPS
    log.batch(
        run_id,
        [Metric(LONG_METRIC, float(v), start + i, i) for i, v in enumerate(values)],
        [Param("steps", str(LONG_STEPS))],
        threads=LONG_THREADS,
    )
    log.client.set_terminated(run_id)
    log.add("edge/long-spike", run_id, real=False)


def _log_unicode(log: _Logger) -> None:
    with log.run("unicode/cjk-emoji", UNICODE_RUN_NAME, real=False) as run_id:
        mlflow.log_params({"学習率": "0.01", "モデル": "勾配ブースティング"})
        for step in range(25):
            mlflow.log_metrics(
                {UNICODE_METRIC: 1.0 / (step + 1) + 0.1, UNICODE_METRIC_2: 1.0 - 0.5 / (step + 1)}, step=step
            )
    client = log.client
    if not client.search_registered_models(filter_string=f"name = '{UNICODE_MODEL}'"):
        client.create_registered_model(UNICODE_MODEL)
    client.create_model_version(UNICODE_MODEL, f"runs:/{run_id}/model", run_id=run_id)
    log.result.registered_model = UNICODE_MODEL


def _log_lightning_style(log: _Logger) -> None:
    """PyTorch Lightning's MLFlowLogger naming (`train/loss`, `val/loss`, `grad_norm/…`, `lr-Adam`), with
    more metric groups than the chart has panels, the train/val pair last in alphabetical order."""
    rng = np.random.default_rng(SEED)
    with log.run("lightning/many-metrics", "lightning-resnet", real=False) as run_id:
        mlflow.log_params({"lr": "0.001", "batch_size": "32", "max_epochs": "20"})
    metrics: list[Metric] = []
    now = int(time.time() * 1000)
    steps = 40
    for i in range(steps):
        series = {
            "train/loss": 1.5 * math.exp(-i / 10) + 0.2 + rng.normal(0, 0.02),
            "val/loss": 1.5 * math.exp(-i / 14) + 0.35 + rng.normal(0, 0.02),
            "train/acc": 1 - 0.6 * math.exp(-i / 10),
            "val/acc": 1 - 0.65 * math.exp(-i / 14),
            "lr-Adam": 0.001 * (0.95**i),
            "epoch": float(i // 2),
        }
        series.update(
            {f"grad_norm/layer{layer:02d}": 1 + layer * 0.1 + math.sin(i / 5) for layer in range(12)}
        )
        metrics += [Metric(key, float(value), now + i, i) for key, value in series.items()]
    log.batch(run_id, metrics)


def log_autolog_runs(
    tracking_uri: str, prefix: str = "autolog-", artifact_root: str | None = None
) -> AutologRuns:
    """Log every run above into `tracking_uri`, one experiment per library (`<prefix><library>`).

    `artifact_root` is where a local store keeps artifacts (a server keeps its own; a local sqlite store
    would otherwise write ./mlruns wherever it runs)."""
    log = _Logger(tracking_uri, prefix, artifact_root)
    steps = (
        ("xgboost", _log_xgboost),
        ("lightgbm", _log_lightgbm),
        ("sklearn", _log_sklearn),
        ("statsmodels", _log_statsmodels),
        ("keras", _log_keras),
        ("edge", _log_edge_cases),
        ("unicode", _log_unicode),
        ("lightning", _log_lightning_style),
    )
    for library in LIBRARIES:  # made here, before two threads might both create one
        log.experiment(library)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="long-history") as pool:
        long_run = pool.submit(_log_long_spike, log)
        with _tracking(tracking_uri), _quiet():
            for library, step in steps:
                step_started = time.monotonic()
                step(log)
                log.result.seconds[library] = round(time.monotonic() - step_started, 2)
        long_run.result()
    log.result.seconds["long-spike (in parallel)"] = round(time.monotonic() - started, 2)
    return log.result
