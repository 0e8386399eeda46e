"""bot.mlflow.logged_models against a real MLflow 3 server: LoggedModels made the way teams make them (a
flavor's `log_model(name=...)` inside a run, `initialize_logged_model` outside any), metrics logged
against them on two datasets, versions registered from them (from `models:/m-…` and from the model's
artifact location) under one registered model with an alias, and every reader method read back."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from bot.errors import NotFound
from bot.mlflow.client import Mlflow
from bot.mlflow.logged_models import LoggedModels
from bot.mlflow.registry import Registry
from bot.models import ModelMetric, ModelVersionRef

UI = "http://mlflow.example.test:5000"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Made:
    experiment_id: str
    experiment_name: str
    run_id: str
    clf_id: str  # logged from the run, registered as v2 (models:/m-…) and v3 (its artifact location)
    clf_b_id: str  # logged from the same run, not registered
    agent_id: str  # logged outside any run, registered as v1 under @champion
    deleted_id: str
    registered: str
    holdout_digest: str
    shadow_digest: str
    user: str


@contextlib.contextmanager
def fluent(uri: str) -> Iterator[None]:
    """The fluent API (what `log_model` uses) pointed at `uri`, and back to what it was afterwards."""
    before_tracking, before_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(before_tracking)
        mlflow.set_registry_uri(before_registry)


@pytest.fixture(scope="module")
def made(mlflow_server: str) -> Made:
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    experiment_name = unique("logged-models")
    experiment_id = client.create_experiment(experiment_name)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = (x[:, 0] > 0).astype(int)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y.astype(float))
    holdout = mlflow.data.from_pandas(frame, name="holdout", targets="label")
    shadow = mlflow.data.from_numpy(rng.normal(size=(10, 3)), name="shadow-traffic")
    registered = unique("churn")
    with fluent(mlflow_server):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            clf = LogisticRegression(C=0.5).fit(x, y)
            # pip_requirements given: no environment inference, which is slow
            logged = mlflow.sklearn.log_model(clf, name="clf", params={"C": "0.5"}, pip_requirements=[])
            logged_b = mlflow.sklearn.log_model(clf, name="clf-b", pip_requirements=[])
            mlflow.log_metric("accuracy", 0.91, model_id=logged.model_id, dataset=holdout)
            mlflow.log_metric("log_loss", 0.40, step=0, model_id=logged.model_id, dataset=holdout)
            mlflow.log_metric("log_loss", 0.30, step=5, model_id=logged.model_id, dataset=holdout)
            mlflow.log_metric("accuracy", 0.87, model_id=logged.model_id, dataset=shadow)
            mlflow.log_metric("train_seconds", 1.5, model_id=logged.model_id)
            mlflow.log_metric("accuracy", 0.5, model_id=logged_b.model_id, dataset=holdout)
        mlflow.set_logged_model_tags(logged.model_id, {"team": "growth", "review.status": "pending"})

        agent = mlflow.initialize_logged_model(
            name="support-agent",
            experiment_id=experiment_id,
            params={"temperature": "0.2"},
            tags={"team": "support"},
            model_type="agent",
        )
        mlflow.log_metric("accuracy", 0.89, model_id=agent.model_id, dataset=holdout)
        while mlflow.active_run():  # a metric logged against a model alone opens a run: close it
            mlflow.end_run()
        mlflow.finalize_logged_model(agent.model_id, "READY")
        gone = mlflow.initialize_logged_model(name="gone", experiment_id=experiment_id)

        v1 = mlflow.register_model(f"models:/{agent.model_id}", registered).version
        v2 = mlflow.register_model(logged.model_uri, registered).version
    clf_model = client.get_logged_model(logged.model_id)
    v3 = client.create_model_version(
        registered, clf_model.artifact_location, model_id=logged.model_id
    ).version
    assert (str(v1), str(v2), str(v3)) == ("1", "2", "3")
    client.set_registered_model_alias(registered, "champion", "1")
    client.delete_logged_model(gone.model_id)
    return Made(
        experiment_id=experiment_id,
        experiment_name=experiment_name,
        run_id=run.info.run_id,
        clf_id=logged.model_id,
        clf_b_id=logged_b.model_id,
        agent_id=agent.model_id,
        deleted_id=gone.model_id,
        registered=registered,
        holdout_digest=holdout.digest,
        shadow_digest=shadow.digest,
        user=clf_model.tags["mlflow.user"],
    )


@pytest.fixture(scope="module")
def reader(mlflow_server: str) -> LoggedModels:
    mlflow_access = Mlflow(mlflow_server, UI)
    return LoggedModels(mlflow_access, Registry(mlflow_access))


def test_a_model_logged_from_a_run_is_read_whole(reader: LoggedModels, made: Made) -> None:
    info = reader.get(made.clf_id)
    holdout = {"dataset_name": "holdout", "dataset_digest": made.holdout_digest, "run_id": made.run_id}
    shadow = {"dataset_name": "shadow-traffic", "dataset_digest": made.shadow_digest, "run_id": made.run_id}
    assert info.metrics == [
        ModelMetric(key="accuracy", value=0.91, **holdout),
        ModelMetric(key="accuracy", value=0.87, **shadow),
        ModelMetric(key="log_loss", value=0.40, step=0, **holdout),
        ModelMetric(key="log_loss", value=0.30, step=5, **holdout),
        ModelMetric(key="train_seconds", value=1.5, run_id=made.run_id),
    ]
    assert info.model_dump(exclude={"metrics", "created"}) == {
        "model_id": made.clf_id,
        "name": "clf",
        "experiment_id": made.experiment_id,
        "experiment_name": made.experiment_name,
        "source_run_id": made.run_id,
        "model_type": "",
        "status": "READY",
        "creator": made.user,
        "params": {"C": "0.5"},
        "tags": {"team": "growth"},  # neither mlflow.* nor review.*
        "model_versions": [
            {"name": made.registered, "version": "2", "aliases": [], "stage": ""},
            {"name": made.registered, "version": "3", "aliases": [], "stage": ""},
        ],
        "url": f"{UI}/#/experiments/{made.experiment_id}/models/{made.clf_id}",
    }
    assert info.created is not None and info.created.tzinfo is not None


def test_a_model_logged_outside_any_run_has_no_source_run_and_its_alias(
    reader: LoggedModels, made: Made
) -> None:
    info = reader.get(made.agent_id)
    assert (info.name, info.source_run_id, info.model_type, info.status) == (
        "support-agent",
        "",
        "agent",
        "READY",
    )
    assert info.params == {"temperature": "0.2"}
    assert info.tags == {"team": "support"}
    assert [(m.key, m.value, m.dataset_name, m.dataset_digest) for m in info.metrics] == [
        ("accuracy", 0.89, "holdout", made.holdout_digest)
    ]
    assert info.model_versions == [ModelVersionRef(name=made.registered, version="1", aliases=["champion"])]


def test_an_unknown_or_deleted_model_is_not_found(reader: LoggedModels, made: Made) -> None:
    for model_id in ("m-" + "0" * 32, made.deleted_id):
        with pytest.raises(NotFound, match=model_id):
            reader.get(model_id)


def test_the_models_a_run_logged_come_with_their_versions(reader: LoggedModels, made: Made) -> None:
    models = reader.of_run(made.run_id)
    assert [(m.model_id, m.name, m.source_run_id) for m in models] == [
        (made.clf_id, "clf", made.run_id),
        (made.clf_b_id, "clf-b", made.run_id),
    ]
    assert [v.version for v in models[0].model_versions] == ["2", "3"]
    assert models[1].model_versions == []
    assert [(m.key, m.value) for m in models[1].metrics] == [("accuracy", 0.5)]
    # The same with the run's experiment given (one call fewer), and the whole model as `get` reads it
    # but for the experiment's name.
    assert reader.of_run(made.run_id, made.experiment_id) == models
    assert models[0] == reader.get(made.clf_id).model_copy(update={"experiment_name": ""})


def test_a_run_that_logged_no_model_has_none(reader: LoggedModels, made: Made, mlflow_server: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.create_run(made.experiment_id)
    assert reader.of_run(run.info.run_id) == []
    with pytest.raises(NotFound):
        reader.of_run("f" * 32)


def test_the_model_behind_a_version(reader: LoggedModels, made: Made, mlflow_server: str) -> None:
    assert reader.model_id_of_version(made.registered, "1") == made.agent_id  # source models:/m-…
    assert reader.model_id_of_version(made.registered, "2") == made.clf_id
    assert reader.model_id_of_version(made.registered, "3") == made.clf_id  # its artifact location
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    plain = unique("plain")
    client.create_registered_model(plain)
    client.create_model_version(plain, "s3://bucket/models/exported-by-hand")
    assert reader.model_id_of_version(plain, "1") == ""
    with pytest.raises(NotFound):
        reader.model_id_of_version(made.registered, "99")


def test_the_deployed_baseline_is_the_logged_model_under_a_deployment_alias(
    reader: LoggedModels, made: Made
) -> None:
    clf = reader.get(made.clf_id)
    found = reader.deployed_baseline(clf, ["production", "champion"])
    assert found is not None
    version, baseline = found
    assert version == ModelVersionRef(name=made.registered, version="1", aliases=["champion"])
    assert baseline == reader.get(made.agent_id)
    # The alias on the model's own version is not a baseline; nor is an alias nobody set.
    assert reader.deployed_baseline(reader.get(made.agent_id), ["champion"]) is None
    assert reader.deployed_baseline(clf, ["production"]) is None
    assert reader.deployed_baseline(clf, []) is None
    assert reader.deployed_baseline(reader.get(made.clf_b_id), ["champion"]) is None  # never registered


def test_a_deployed_version_without_a_logged_model_is_no_baseline(
    reader: LoggedModels, made: Made, mlflow_server: str
) -> None:
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    name = unique("mixed")
    client.create_registered_model(name)
    exported = client.create_model_version(name, "s3://bucket/models/exported-by-hand").version
    mine = client.create_model_version(name, f"models:/{made.clf_b_id}", model_id=made.clf_b_id).version
    client.set_registered_model_alias(name, "production", exported)
    info = reader.get(made.clf_b_id)
    assert info.model_versions == [ModelVersionRef(name=name, version=str(mine))]
    assert reader.deployed_baseline(info, ["production"]) is None
