"""The demo store is trained for real (about 10 s), once per module, into a throwaway sqlite store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from bot.demo.preview import write_nudge_preview
from bot.demo.store import (
    BASELINE_RUN_NAME,
    CANDIDATE_RUN_NAME,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    EXPERIMENT_NAME,
    FEATURE_IMPORTANCE_ARTIFACT,
    MODEL_NAME,
    RUN_NAMES,
    DemoStore,
    build_demo_store,
)
from bot.mlflow import connect

VALIDATION_METRICS = ("val_auc", "val_accuracy", "val_f1", "val_precision", "val_recall")


@pytest.fixture(scope="module")
def store_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("demo-store")
    return f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"


@pytest.fixture(scope="module")
def demo(store_paths: tuple[str, Path]) -> DemoStore:
    tracking_uri, artifact_root = store_paths
    return build_demo_store(tracking_uri, str(artifact_root))


@pytest.fixture(scope="module")
def client(demo: DemoStore) -> MlflowClient:
    return MlflowClient(demo.tracking_uri, registry_uri=demo.tracking_uri)


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    paths: list[str] = []
    for info in client.list_artifacts(run_id, path):
        paths.extend(_artifact_paths(client, run_id, info.path) if info.is_dir else [info.path])
    return paths


def test_builds_three_named_runs_in_the_demo_experiment(demo: DemoStore, client: MlflowClient) -> None:
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)

    assert experiment is not None
    assert experiment.experiment_id == demo.experiment_id
    runs = client.search_runs([demo.experiment_id])
    assert sorted(run.info.run_id for run in runs) == sorted(demo.run_ids)
    assert [client.get_run(run_id).info.run_name for run_id in demo.run_ids] == list(RUN_NAMES)
    assert client.get_run(demo.review_run_id).info.run_name == CANDIDATE_RUN_NAME


def test_every_run_has_a_markdown_note_and_provenance(demo: DemoStore, client: MlflowClient) -> None:
    for run_id in demo.run_ids:
        tags = client.get_run(run_id).data.tags
        note = tags["mlflow.note.content"]
        assert note.startswith("## Summary\n")
        assert "**" in note and "](https://scikit-learn.org/" in note and "```python\n" in note
        assert re.search(r"^  - ", note, flags=re.MULTILINE), "expected a nested bullet"
        assert re.fullmatch(r"[0-9a-f]{40}", tags["mlflow.source.git.commit"])
        assert tags["mlflow.source.name"].endswith(".py")
        assert tags["mlflow.user"] != ""

    candidate_note = client.get_run(demo.review_run_id).data.tags["mlflow.note.content"]
    assert "|---|" in candidate_note
    assert "\n> Reviewer note:" in candidate_note


def test_candidate_logs_train_and_validation_histories(demo: DemoStore, client: MlflowClient) -> None:
    for key in ("loss", "val_loss", "train_accuracy", "val_accuracy", "val_auc"):
        steps = {point.step for point in client.get_metric_history(demo.review_run_id, key)}
        assert len(steps) > 1, key


def test_every_run_logs_comparable_validation_metrics_and_datasets(
    demo: DemoStore, client: MlflowClient
) -> None:
    for run_id in demo.run_ids:
        run = client.get_run(run_id)
        assert set(VALIDATION_METRICS) <= set(run.data.metrics), run.info.run_name
        assert 0.5 < run.data.metrics["val_auc"] <= 1.0
        contexts = {
            tag.value
            for dataset_input in run.inputs.dataset_inputs
            for tag in dataset_input.tags
            if tag.key == "mlflow.data.context"
        }
        assert {"train", "validation"} <= contexts, run.info.run_name


def test_every_run_has_png_charts_under_the_artifact_root(
    demo: DemoStore, client: MlflowClient, store_paths: tuple[str, Path]
) -> None:
    for run_id in demo.run_ids:
        assert any(path.endswith(".png") for path in _artifact_paths(client, run_id)), run_id

    assert FEATURE_IMPORTANCE_ARTIFACT in _artifact_paths(client, demo.review_run_id)
    _, artifact_root = store_paths
    assert any(artifact_root.rglob(FEATURE_IMPORTANCE_ARTIFACT))


def test_champion_is_the_baseline_and_challenger_the_candidate(demo: DemoStore, client: MlflowClient) -> None:
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    challenger = client.get_model_version_by_alias(MODEL_NAME, CHALLENGER_ALIAS)

    assert demo.model_name == MODEL_NAME
    assert str(champion.version) == demo.champion_version
    assert client.get_run(champion.run_id).info.run_name == BASELINE_RUN_NAME
    assert champion.run_id == demo.run_ids[0]
    assert challenger.run_id == demo.review_run_id


def test_second_build_reuses_the_store(demo: DemoStore, client: MlflowClient, store_paths) -> None:
    tracking_uri, artifact_root = store_paths

    again = build_demo_store(tracking_uri, str(artifact_root))

    assert again == demo
    # Deleted runs count too: a rebuild would soft-delete the old runs and add three new ones.
    all_runs = client.search_runs([demo.experiment_id], run_view_type=ViewType.ALL)
    assert len(all_runs) == len(RUN_NAMES)
    assert len(client.search_model_versions(f"name = '{MODEL_NAME}'")) == 2


def test_build_restores_the_callers_tracking_uri(demo: DemoStore, store_paths, tmp_path: Path) -> None:
    tracking_uri, artifact_root = store_paths
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    mlflow.set_tracking_uri(elsewhere)
    try:
        build_demo_store(tracking_uri, str(artifact_root))

        assert mlflow.get_tracking_uri() == elsewhere
        assert mlflow.get_registry_uri() == elsewhere
    finally:
        mlflow.set_tracking_uri(previous)


def test_the_unreviewed_champion_gets_a_nudge_preview(demo: DemoStore, tmp_path: Path) -> None:
    registry = connect(demo.tracking_uri, "http://localhost:5000").registry
    path = write_nudge_preview(registry, MODEL_NAME, demo.champion_version, ["champion"], tmp_path)
    assert path == tmp_path / "nudge.json"
    nudge = json.loads(path.read_text())
    assert nudge["text"] == (
        f"{MODEL_NAME} v{demo.champion_version} is deployed as @champion without an approved review"
    )
    assert "never reviewed, the run is" in json.dumps(nudge["blocks"])
    # Only deployment aliases count: under another name the same version needs no nudge.
    assert write_nudge_preview(registry, MODEL_NAME, demo.champion_version, ["prod"], tmp_path / "x") is None
