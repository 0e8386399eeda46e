"""MLflow, split by what is read: runs, the review record, histories, the registry, artifacts,
experiments, LoggedModels and prompts, each over one shared connection (`client.Mlflow`: timeouts,
error mapping, health).

Services take only the parts they use; `connect` builds them all for the composition root, the CLI
and tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.mlflow.artifacts import Artifacts
from bot.mlflow.client import Mlflow, configure_http
from bot.mlflow.experiments import Experiments
from bot.mlflow.histories import Histories, HistoryCache
from bot.mlflow.logged_models import LoggedModels
from bot.mlflow.prompts import Prompts
from bot.mlflow.records import ReviewRecords
from bot.mlflow.registry import Registry
from bot.mlflow.runs import Runs
from bot.mlflow.subjects import SubjectReader
from bot.signature import Signer, Verifier

DEFAULT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class MlflowAccess:
    mlflow: Mlflow
    runs: Runs
    records: ReviewRecords
    histories: Histories
    registry: Registry
    artifacts: Artifacts
    experiments: Experiments
    logged_models: LoggedModels
    prompts: Prompts

    def health(self) -> str:
        return self.mlflow.health()


def connect(
    tracking_uri: str,
    ui_url: str = "",
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    retries: int = 1,
    *,
    signer: Signer | None = None,
    verifier: Verifier | None = None,
    history_cache: HistoryCache | None = None,
) -> MlflowAccess:
    """Every part, over one connection. Sets MLflow's process-wide HTTP timeout and retries. Review
    records are signed with `signer` and trusted when `verifier` vouches for them (none, without);
    finished runs' histories are kept in `history_cache` (read from MLflow each time, without)."""
    configure_http(timeout_seconds, retries)
    mlflow = Mlflow(tracking_uri, ui_url, verifier)
    registry = Registry(mlflow)
    logged_models = LoggedModels(mlflow, registry)
    prompts = Prompts(mlflow)
    return MlflowAccess(
        mlflow=mlflow,
        runs=Runs(mlflow, registry, SubjectReader(mlflow, registry, logged_models, prompts)),
        records=ReviewRecords(mlflow, signer),
        histories=Histories(mlflow, history_cache),
        registry=registry,
        artifacts=Artifacts(mlflow),
        experiments=Experiments(mlflow),
        logged_models=logged_models,
        prompts=prompts,
    )
