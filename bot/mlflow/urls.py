"""Links into the MLflow UI (MLFLOW_UI_URL). Pure; "" when no UI address is known."""

from __future__ import annotations

from urllib.parse import quote


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url}/#/experiments/{experiment_id}/runs/{run_id}" if ui_url else ""


def experiment_url(ui_url: str, experiment_id: str) -> str:
    return f"{ui_url}/#/experiments/{experiment_id}" if ui_url else ""


def model_version_url(ui_url: str, name: str, version: str) -> str:
    return f"{ui_url}/#/models/{quote(name, safe='')}/versions/{version}" if ui_url else ""
