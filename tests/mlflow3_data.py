"""MLflow 3 things to review, made the way teams make them: LoggedModels (from a run with a flavor's
`log_model`, and without any run), metrics logged against a model and a dataset, registered versions of
them with aliases, and prompts with versions and aliases. Real MLflow APIs against the given server."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

SUMMARIZER_V1 = "Summarize the following text in {{ sentences }} sentences:\n\n{{ text }}"
SUMMARIZER_V2 = (
    "You are a careful editor.\nSummarize the following text in {{ sentences }} sentences.\n"
    "Keep every number exactly as written.\n\n{{ text }}"
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LoggedModelMade:
    model_id: str
    registered: str  # the registered model's name
    version: str  # its version made from this LoggedModel


class Mlflow3Data:
    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)

    def experiment(self, name: str = "mlflow3-reviews") -> str:
        existing = self.client.get_experiment_by_name(name)
        return existing.experiment_id if existing else self.client.create_experiment(name)

    @staticmethod
    def dataset(name: str, seed: int) -> mlflow.data.Dataset:
        return mlflow.data.from_numpy(np.random.default_rng(seed).normal(size=(20, 3)), name=name)

    def logged_model_without_run(
        self,
        name: str = "support-agent",
        *,
        registered: str | None = None,
        alias: str | None = None,
        metrics: dict[str, float] | None = None,
        dataset_seed: int = 1,
    ) -> LoggedModelMade:
        """An agent logged outside any run (`initialize_logged_model`), its metrics on an eval dataset,
        registered (from `models:/m-…`) as a new version, maybe under an alias."""
        model = mlflow.initialize_logged_model(
            name=name,
            experiment_id=self.experiment(),
            params={"temperature": "0.2", "max_tokens": "512", "retriever": "bm25"},
            tags={"team": "support-ml"},
        )
        eval_set = self.dataset("support-eval", dataset_seed)
        for key, value in (metrics or {"answer_correctness": 0.81, "latency_p95_s": 2.4}).items():
            mlflow.log_metric(key, value, model_id=model.model_id, dataset=eval_set)
        if mlflow.active_run():  # logging a metric against a model alone opens a run: close it
            mlflow.end_run()
        mlflow.finalize_logged_model(model.model_id, "READY")
        registered = registered or unique("support-agent")
        version = self._register(f"models:/{model.model_id}", registered, alias)
        return LoggedModelMade(model.model_id, registered, version)

    def logged_model_from_run(
        self, *, registered: str | None = None, alias: str | None = None
    ) -> tuple[str, LoggedModelMade]:
        """A scikit-learn model logged from a run with `log_model(name=...)`, its metrics on two datasets."""
        from sklearn.linear_model import LogisticRegression

        x = np.random.default_rng(0).normal(size=(40, 3))
        y = (x[:, 0] > 0).astype(int)
        mlflow.set_experiment(experiment_id=self.experiment())
        with mlflow.start_run(run_name=unique("clf-run")) as run:
            clf = LogisticRegression(C=0.5).fit(x, y)
            mlflow.log_param("C", 0.5)
            info = mlflow.sklearn.log_model(clf, name="model", params={"C": "0.5"})
            for seed, name in ((3, "holdout"), (4, "shadow-traffic")):
                mlflow.log_metric(
                    "accuracy", 0.9 - seed / 100, model_id=info.model_id, dataset=self.dataset(name, seed)
                )
        registered = registered or unique("clf")
        version = self._register(info.model_uri, registered, alias)
        return run.info.run_id, LoggedModelMade(info.model_id, registered, version)

    def _register(self, uri: str, registered: str, alias: str | None) -> str:
        version = str(mlflow.register_model(uri, registered).version)
        if alias:
            self.client.set_registered_model_alias(registered, alias, version)
        return version

    def prompt(self, name: str | None = None, *, alias: str | None = "production") -> str:
        """A prompt with two versions (v2 changes the template and the model config), `alias` on v1."""
        name = name or unique("summarizer")
        mlflow.genai.register_prompt(
            name,
            SUMMARIZER_V1,
            commit_message="first cut",
            model_config={"model_name": "gpt-4o-mini", "temperature": 0.7},
        )
        mlflow.genai.register_prompt(
            name,
            SUMMARIZER_V2,
            commit_message="keep numbers exact; lower temperature",
            model_config={"model_name": "gpt-4o-mini", "temperature": 0.2},
        )
        if alias:
            mlflow.genai.set_prompt_alias(name, alias=alias, version=1)
        return name
