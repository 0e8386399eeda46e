"""Builds MLflow runs on the test tracking server, the way training code logs them."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

BATCH = 1000  # MLflow's log_batch limit for metrics


class RunFactory:
    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._experiments: dict[str, str] = {}

    def experiment(self, name: str = "review-bot-tests") -> str:
        if name not in self._experiments:
            existing = self.client.get_experiment_by_name(name)
            self._experiments[name] = (
                existing.experiment_id if existing else self.client.create_experiment(name)
            )
        return self._experiments[name]

    def make_run(
        self,
        name: str = "candidate",
        *,
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        histories: dict[str, list[float]] | None = None,
        note: str = "",
        tags: dict[str, str] | None = None,
        images: dict[str, bytes] | None = None,
        user: str = "ana.lopez",
        experiment: str = "review-bot-tests",
    ) -> str:
        all_tags = {
            "mlflow.user": user,
            "mlflow.source.name": "train.py",
            "mlflow.source.git.commit": "a1b2c3d4e5f6" * 3,
        }
        if note:
            all_tags["mlflow.note.content"] = note
        all_tags.update(tags or {})
        run = self.client.create_run(self.experiment(experiment), run_name=name, tags=all_tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metric_rows = [Metric(k, v, now, 0) for k, v in (metrics or {}).items()]
        for key, values in (histories or {}).items():
            metric_rows += [Metric(key, v, now + i, i) for i, v in enumerate(values)]
        param_rows = [Param(k, str(v)) for k, v in (params or {}).items()]
        for i in range(0, max(len(param_rows), 1), 100):
            self.client.log_batch(run_id, params=param_rows[i : i + 100])
        for i in range(0, len(metric_rows), BATCH):
            self.client.log_batch(run_id, metrics=metric_rows[i : i + BATCH])
        if images:
            with tempfile.TemporaryDirectory() as tmp:
                for rel, content in images.items():
                    folder, _, filename = rel.rpartition("/")
                    local = Path(tmp) / filename
                    local.write_bytes(content)
                    self.client.log_artifact(run_id, str(local), folder or None)
        self.client.set_terminated(run_id)
        return run_id

    def tags(self, run_id: str) -> dict[str, str]:
        return self.client.get_run(run_id).data.tags

    def register(self, name: str, run_id: str, alias: str | None = None) -> str:
        if not self.client.search_registered_models(filter_string=f"name = '{name}'"):
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        if alias:
            self.client.set_registered_model_alias(name, alias, mv.version)
        return str(mv.version)
