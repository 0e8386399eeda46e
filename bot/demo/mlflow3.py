"""MLflow 3 in the demo store: a support agent logged as LoggedModels outside any run (v1 under
@champion, the candidate v2 under @challenger, both evaluated on the same dataset) and a prompt with two
versions, v1 under @production. `make demo` previews the candidate LoggedModel's card and prompt v2's.

Imports MLflow inside the functions, as bot.demo.store does.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.demo.store import CHALLENGER_ALIAS, CHAMPION_ALIAS

if TYPE_CHECKING:
    from mlflow import MlflowClient

AGENT_EXPERIMENT = "demo-support-agent"
AGENT_MODEL = "support-agent"
AGENT_NAME = "support-agent"
PROMPT_NAME = "ticket-summarizer"
PROMPT_ALIAS = "production"
EVAL_DATASET = "support-tickets-eval"
# (params, metrics on the eval set) of the deployed agent and of the candidate
AGENTS = (
    (
        {"llm": "gpt-4o-mini", "temperature": "0.7", "retriever": "bm25", "top_k": "5"},
        {"answer_correctness": 0.74, "groundedness": 0.81, "latency_p95_s": 3.1},
    ),
    (
        {"llm": "gpt-4o-mini", "temperature": "0.2", "retriever": "hybrid", "top_k": "8"},
        {"answer_correctness": 0.79, "groundedness": 0.86, "latency_p95_s": 3.4},
    ),
)
PROMPT_V1 = (
    "Summarize this support ticket for the on-call engineer in {{ sentences }} sentences.\n\n{{ ticket }}"
)
PROMPT_V2 = [
    {"role": "system", "content": "You summarize support tickets for on-call engineers. Never guess."},
    {
        "role": "user",
        "content": "Summarize this ticket in {{ sentences }} sentences. Keep error codes and numbers exact."
        "\n\n{{ ticket }}",
    },
]


@dataclass(frozen=True)
class Mlflow3Demo:
    agent_model_id: str  # the candidate LoggedModel (no run), under @challenger
    agent_model: str
    prompt_name: str
    prompt_version: str  # the candidate version (v1 is under @production)


def build_mlflow3_demo(tracking: MlflowClient) -> Mlflow3Demo:
    """The agent and the prompt, made once per store (found again by their aliases)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        challenger = tracking.get_model_version_by_alias(AGENT_MODEL, CHALLENGER_ALIAS)
        tracking.get_prompt_version_by_alias(PROMPT_NAME, PROMPT_ALIAS)  # made completely before
        latest = max(int(v.version) for v in tracking.search_prompt_versions(PROMPT_NAME))
        return Mlflow3Demo(
            str(challenger.source).removeprefix("models:/"), AGENT_MODEL, PROMPT_NAME, str(latest)
        )
    except (MlflowException, ValueError):
        pass
    experiment = tracking.get_experiment_by_name(AGENT_EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else tracking.create_experiment(AGENT_EXPERIMENT)
    eval_set = _eval_dataset()
    model_ids = []
    for params, metrics in AGENTS:
        model = mlflow.initialize_logged_model(
            name=AGENT_NAME, experiment_id=experiment_id, params=params, tags={"team": "support-ml"}
        )
        for key, value in metrics.items():
            mlflow.log_metric(key, value, model_id=model.model_id, dataset=eval_set)
        if mlflow.active_run():  # a metric logged against a model alone opens a run
            mlflow.end_run()
        mlflow.finalize_logged_model(model.model_id, "READY")
        model_ids.append(model.model_id)
    with redirect_stderr(io.StringIO()):  # register_model narrates; failures still raise
        versions = [str(mlflow.register_model(f"models:/{m}", AGENT_MODEL).version) for m in model_ids]
    tracking.set_registered_model_alias(AGENT_MODEL, CHAMPION_ALIAS, versions[0])
    tracking.set_registered_model_alias(AGENT_MODEL, CHALLENGER_ALIAS, versions[1])
    mlflow.genai.register_prompt(
        PROMPT_NAME,
        PROMPT_V1,
        commit_message="First version, used since launch",
        model_config={"model_name": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 300},
    )
    v2 = mlflow.genai.register_prompt(
        PROMPT_NAME,
        PROMPT_V2,
        commit_message="Chat format; keep error codes exact; lower temperature",
        model_config={"model_name": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 300},
    )
    mlflow.genai.set_prompt_alias(PROMPT_NAME, alias=PROMPT_ALIAS, version=1)
    return Mlflow3Demo(model_ids[1], AGENT_MODEL, PROMPT_NAME, str(v2.version))


def _eval_dataset() -> Any:
    import mlflow
    import numpy as np

    tickets = np.random.default_rng(7).integers(0, 1000, size=(50, 4))
    return mlflow.data.from_numpy(tickets, name=EVAL_DATASET)
