"""A realistic local MLflow store for `make demo`: three trained runs, notes, charts and a registry.

The bot's runtime image ships neither scikit-learn nor MLflow's SQL store, so both are imported
inside `build_demo_store`; importing this module costs nothing.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.demo import GBM_ESTIMATORS, RANDOM_SEED, VALIDATION_FRACTION, notes

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from bot.demo.mlflow3 import Mlflow3Demo

# Bump when the runs below change shape: a store built by another version is rebuilt.
DEMO_VERSION = "1"
DEMO_VERSION_TAG = "demo.version"
DEMO_ROLE_TAG = "demo.role"

EXPERIMENT_NAME = "demo-breast-cancer"
MODEL_NAME = "breast-cancer-clf"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"

BASELINE_RUN_NAME = "logreg-baseline"
FOREST_RUN_NAME = "random-forest"
CANDIDATE_RUN_NAME = "gbm-candidate"
RUN_NAMES = (BASELINE_RUN_NAME, FOREST_RUN_NAME, CANDIDATE_RUN_NAME)

# One seed for the split and every model. 39 is a split on which the candidate edges out the
# baseline on AUC with equal F1: a close call, which is what a review demo needs.
TOP_FEATURES = 15
HISTORY_METRICS = ("loss", "val_loss", "train_accuracy", "val_accuracy", "val_auc")

# Plausible provenance for a demo: nothing checks it out.
SOURCE_NAME = "pipelines/train_classifier.py"
GIT_COMMIT = "3f9c2a7e1b4d8c06e5a2f7b9d1c3e8a4b6f0d2c7"

FEATURE_IMPORTANCE_ARTIFACT = "feature_importance.png"
REGISTERED_MODEL_DESCRIPTION = (
    "Benign/malignant classifier on the Wisconsin breast cancer data set (demo store for review-bot)."
)

# Loggers that narrate a local build (alembic migrations, model logging) without telling the user
# anything they need; silenced only while the demo is being built.
_NOISY_LOGGERS = ("mlflow", "alembic", "sklearn")


@dataclass(frozen=True)
class DemoStore:
    tracking_uri: str
    experiment_id: str
    review_run_id: str
    run_ids: list[str]
    model_name: str
    champion_version: str
    mlflow3: Mlflow3Demo | None = None  # a LoggedModel without a run and a prompt (bot.demo.mlflow3)


@dataclass(frozen=True)
class _Split:
    X_train: pd.DataFrame
    X_val: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series


def build_demo_store(tracking_uri: str, artifact_root: str) -> DemoStore:
    """Train and log the demo runs into `tracking_uri`, or return them if this version already did.

    `tracking_uri` is a `sqlite:///` URI; artifacts (and logged models) land under `artifact_root`.
    """
    import mlflow

    with _quiet(), _use_store(tracking_uri):
        tracking = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
        experiment_id = _ensure_experiment(tracking, artifact_root)
        from bot.demo.mlflow3 import build_mlflow3_demo

        store = _find_existing(tracking, experiment_id, tracking_uri)
        if store is None:
            _delete_stale_runs(tracking, experiment_id)
            store = _build(tracking, experiment_id, tracking_uri)
        return replace(store, mlflow3=build_mlflow3_demo(tracking))


def _build(tracking: MlflowClient, experiment_id: str, tracking_uri: str) -> DemoStore:
    import mlflow
    import mlflow.sklearn

    split = _load_split()
    # log_post_training_metrics is off because it would turn our own validation scoring into a
    # second, oddly named copy of every val_* metric (e.g. `roc_auc_score_X_val`).
    mlflow.sklearn.autolog(log_models=True, log_datasets=True, silent=True, log_post_training_metrics=False)
    try:
        baseline_id, baseline_metrics = _train_baseline(experiment_id, split)
        forest_id, _ = _train_forest(experiment_id, split)
        candidate_id = _train_candidate(experiment_id, split, baseline_metrics)
    finally:
        mlflow.sklearn.autolog(disable=True)

    champion = _register(tracking, baseline_id)
    challenger = _register(tracking, candidate_id)
    tracking.update_registered_model(MODEL_NAME, description=REGISTERED_MODEL_DESCRIPTION)
    tracking.set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, champion)
    tracking.set_registered_model_alias(MODEL_NAME, CHALLENGER_ALIAS, challenger)
    return DemoStore(
        tracking_uri=tracking_uri,
        experiment_id=experiment_id,
        review_run_id=candidate_id,
        run_ids=[baseline_id, forest_id, candidate_id],
        model_name=MODEL_NAME,
        champion_version=champion,
    )


# --- the store: experiment, reuse, clean-up, registry -------------------------------------------


def _ensure_experiment(tracking: MlflowClient, artifact_root: str) -> str:
    experiment = tracking.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        Path(artifact_root).mkdir(parents=True, exist_ok=True)
        return tracking.create_experiment(
            EXPERIMENT_NAME,
            artifact_location=Path(artifact_root).resolve().as_uri(),
        )
    if experiment.lifecycle_stage == "deleted":
        tracking.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _find_existing(tracking: MlflowClient, experiment_id: str, tracking_uri: str) -> DemoStore | None:
    """The store built earlier by this DEMO_VERSION, if it is complete; None means rebuild."""
    from mlflow.exceptions import MlflowException

    runs = tracking.search_runs(
        [experiment_id], filter_string=f"tags.`{DEMO_VERSION_TAG}` = '{DEMO_VERSION}'"
    )
    by_name = {run.info.run_name: run.info.run_id for run in runs}
    if len(runs) != len(RUN_NAMES) or set(by_name) != set(RUN_NAMES):
        return None
    try:
        champion = tracking.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    except MlflowException:
        return None
    if champion.run_id != by_name[BASELINE_RUN_NAME]:
        return None
    return DemoStore(
        tracking_uri=tracking_uri,
        experiment_id=experiment_id,
        review_run_id=by_name[CANDIDATE_RUN_NAME],
        run_ids=[by_name[name] for name in RUN_NAMES],
        model_name=MODEL_NAME,
        champion_version=str(champion.version),
    )


def _delete_stale_runs(tracking: MlflowClient, experiment_id: str) -> None:
    """Soft-delete demo runs from another version or an interrupted build; leave others alone."""
    for run in tracking.search_runs([experiment_id], filter_string=f"tags.`{DEMO_VERSION_TAG}` != ''"):
        tracking.delete_run(run.info.run_id)


def _register(tracking: MlflowClient, run_id: str) -> str:
    """Register the model autolog logged in `run_id`; return the new version number.

    In MLflow 3 autolog logs a LoggedModel (stored under the experiment's `models/` folder, not the
    run's artifacts), linked to the run through `run.outputs.model_outputs`. Registering
    `models:/<model_id>` records the LoggedModel's source run as the version's run_id.
    """
    import mlflow

    outputs = tracking.get_run(run_id).outputs
    model_ids = [output.model_id for output in (outputs.model_outputs if outputs else [])]
    if len(model_ids) != 1:
        raise RuntimeError(f"expected one logged model in run {run_id}, found {len(model_ids)}")
    # register_model narrates on stderr ("Successfully registered model ..."); failures still raise.
    with redirect_stderr(io.StringIO()):
        version = mlflow.register_model(f"models:/{model_ids[0]}", MODEL_NAME)
    return str(version.version)


# --- data and training ---------------------------------------------------------------------------


def _load_split() -> _Split:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(
        data.data,
        data.target,
        test_size=VALIDATION_FRACTION,
        random_state=RANDOM_SEED,
        stratify=data.target,
    )
    return _Split(X_train=X_train, X_val=X_val, y_train=y_train, y_val=y_val)


def _run_tags(user: str, role: str) -> dict[str, str]:
    return {
        "mlflow.user": user,
        "mlflow.source.name": SOURCE_NAME,
        "mlflow.source.git.commit": GIT_COMMIT,
        DEMO_VERSION_TAG: DEMO_VERSION,
        DEMO_ROLE_TAG: role,
        "team": "diagnostics-ml",
    }


def _log_run_context(split: _Split) -> None:
    """What autolog does not log: the split recipe and the validation data set."""
    import mlflow
    import mlflow.data

    mlflow.log_params({"data.validation_fraction": VALIDATION_FRACTION, "data.split_seed": RANDOM_SEED})
    validation = mlflow.data.from_pandas(
        split.X_val.assign(target=split.y_val), name="breast-cancer-validation", targets="target"
    )
    mlflow.log_input(validation, context="validation")


def _validation_metrics(model: Any, split: _Split) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    proba = model.predict_proba(split.X_val)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    return {
        "val_auc": float(roc_auc_score(split.y_val, proba)),
        "val_accuracy": float(accuracy_score(split.y_val, predicted)),
        "val_f1": float(f1_score(split.y_val, predicted)),
        "val_precision": float(precision_score(split.y_val, predicted)),
        "val_recall": float(recall_score(split.y_val, predicted)),
        "val_log_loss": float(log_loss(split.y_val, proba)),
    }


def _train_baseline(experiment_id: str, split: _Split) -> tuple[str, dict[str, float]]:
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tags = _run_tags(user="ben.okafor", role="baseline")
    with mlflow.start_run(experiment_id=experiment_id, run_name=BASELINE_RUN_NAME, tags=tags) as run:
        _log_run_context(split)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(split.X_train, split.y_train)
        metrics = _validation_metrics(model, split)
        mlflow.log_metrics(metrics)
        mlflow.set_tag("mlflow.note.content", notes.baseline_note(metrics))
    return run.info.run_id, metrics


def _train_forest(experiment_id: str, split: _Split) -> tuple[str, dict[str, float]]:
    import mlflow
    from sklearn.ensemble import RandomForestClassifier

    tags = _run_tags(user="ana.lopez", role="exploration")
    with mlflow.start_run(experiment_id=experiment_id, run_name=FOREST_RUN_NAME, tags=tags) as run:
        _log_run_context(split)
        model = RandomForestClassifier(n_estimators=100, random_state=RANDOM_SEED)
        model.fit(split.X_train, split.y_train)
        metrics = _validation_metrics(model, split)
        mlflow.log_metrics(metrics)
        mlflow.set_tag("mlflow.note.content", notes.forest_note(metrics))
    return run.info.run_id, metrics


def _train_candidate(experiment_id: str, split: _Split, baseline: dict[str, float]) -> str:
    import mlflow
    from sklearn.ensemble import GradientBoostingClassifier

    tags = _run_tags(user="ana.lopez", role="candidate")
    with mlflow.start_run(experiment_id=experiment_id, run_name=CANDIDATE_RUN_NAME, tags=tags) as run:
        _log_run_context(split)
        model = GradientBoostingClassifier(
            n_estimators=GBM_ESTIMATORS, learning_rate=0.1, max_depth=3, random_state=RANDOM_SEED
        )
        model.fit(split.X_train, split.y_train)
        best_step = _log_boosting_history(model, split)
        metrics = _validation_metrics(model, split)
        # The histories already end on the fitted model's values at the last step; logging those
        # keys again would put a second point on the same step.
        final = {key: value for key, value in metrics.items() if key not in HISTORY_METRICS}
        mlflow.log_metrics(final, step=GBM_ESTIMATORS)
        mlflow.log_figure(_feature_importance_figure(model), FEATURE_IMPORTANCE_ARTIFACT)
        mlflow.set_tag("mlflow.note.content", notes.candidate_note(metrics, baseline, best_step))
    return run.info.run_id


def _log_boosting_history(model: Any, split: _Split) -> int:
    """Log HISTORY_METRICS per iteration (step = number of trees); return the step of least val_loss."""
    import mlflow
    from sklearn.metrics import log_loss, roc_auc_score

    stages = zip(
        model.staged_predict_proba(split.X_train), model.staged_predict_proba(split.X_val), strict=True
    )
    val_losses: list[float] = []
    for step, (train_proba, val_proba) in enumerate(stages, start=1):
        point = {
            "loss": float(log_loss(split.y_train, train_proba)),
            "val_loss": float(log_loss(split.y_val, val_proba)),
            "train_accuracy": float((train_proba.argmax(axis=1) == split.y_train.to_numpy()).mean()),
            "val_accuracy": float((val_proba.argmax(axis=1) == split.y_val.to_numpy()).mean()),
            "val_auc": float(roc_auc_score(split.y_val, val_proba[:, 1])),
        }
        mlflow.log_metrics(point, step=step)
        val_losses.append(point["val_loss"])
    return val_losses.index(min(val_losses)) + 1


def _feature_importance_figure(model: Any) -> Any:
    from matplotlib.figure import Figure

    ranked = sorted(
        zip(model.feature_names_in_, model.feature_importances_, strict=True),
        key=lambda pair: pair[1],
        reverse=True,
    )[:TOP_FEATURES]
    names = [name for name, _ in reversed(ranked)]
    values = [float(value) for _, value in reversed(ranked)]

    figure = Figure(figsize=(7.0, 5.0), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    axes.barh(names, values, color="#2f6db5")
    axes.set_xlabel("Impurity-based importance")
    axes.set_title(f"gbm-candidate: top {TOP_FEATURES} features")
    axes.grid(axis="x", alpha=0.3)
    return figure


# --- process state ---------------------------------------------------------------------------------


@contextmanager
def _use_store(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at `tracking_uri` for the build, then put the caller's URIs back."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_REGISTRY_URI

    previous_tracking = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    previous_registry = MLFLOW_REGISTRY_URI.get()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        # None clears the URI (and its environment variable) so MLflow falls back to its defaults.
        mlflow.set_tracking_uri(previous_tracking)  # type: ignore[arg-type]
        if previous_registry is None:
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]
            MLFLOW_REGISTRY_URI.unset()
        else:
            mlflow.set_registry_uri(previous_registry)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence library warnings and chatter during the build only; the host's settings come back."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
