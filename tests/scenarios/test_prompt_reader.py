"""bot.mlflow.prompts against a real MLflow 3 server: prompts registered with mlflow.genai (text and
chat, two versions, an alias, a model config, commit messages), runs linked to a version the two ways
MLflow links them, and a registered model that is not a prompt."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.prompt.constants import IS_PROMPT_TAG_KEY
from mlflow.tracing.constant import TraceTagKey

from bot.errors import NotFound
from bot.mlflow.client import NOT_FOUND, Mlflow
from bot.mlflow.prompts import (
    NOT_A_PROMPT,
    Prompts,
    linked_versions,
    prompt_url,
)
from bot.mlflow.urls import run_url
from bot.models import PromptEvaluation, PromptInfo, PromptMessage
from bot.tags import LINKED_PROMPTS, PROMPT_MARKER

T = TypeVar("T")
UI = "https://mlflow.example"
TEXT_V1 = "Summarize {{text}}.\nBe brief."
TEXT_V2 = "Summarize {{text}}.\nBe very brief."
CHAT_V1 = [{"role": "system", "content": "You are {{style}}."}, {"role": "user", "content": "{{question}}"}]
CHAT_V2 = [
    {"role": "system", "content": "You are {{style}} and brief."},
    {"role": "user", "content": "{{question}}"},
]


class CountingMlflow(Mlflow):
    """The real connection, counting the MLflow calls a reader makes."""

    calls = 0

    def call(self, what: str, fn: Callable[[], T], *, writes: bool = False) -> T:
        self.calls += 1
        return super().call(what, fn, writes=writes)


@dataclass(frozen=True)
class Registered:
    text: str  # a text prompt: v1 (@production, a model config, tags) and v2
    chat: str  # a chat prompt: v1 and v2, no alias
    lookalike: str  # `text` with its `_` replaced: a LIKE on `text` matches runs linked to it
    model: str  # a registered model, not a prompt
    experiment_id: str
    linked_run: str  # linked to text v2 by link_prompt_version_to_run
    loaded_run: str  # linked to text v2 by load_prompt inside the run (as mlflow.genai.evaluate does)
    v1_run: str  # linked to text v1
    lookalike_run: str  # linked to lookalike v1


@pytest.fixture(scope="module")
def registered(mlflow_server: str) -> Iterator[Registered]:
    suffix = uuid.uuid4().hex[:8]
    text, chat = f"summarizer_{suffix}", f"assistant-{suffix}"
    lookalike, model = f"summarizerX{suffix}", f"classifier-{suffix}"
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    before = mlflow.get_tracking_uri()
    # mlflow.genai's registry calls and MLflow's run linking use the process-wide URI, not a client's.
    mlflow.set_tracking_uri(mlflow_server)
    try:
        mlflow.genai.register_prompt(
            text,
            TEXT_V1,
            commit_message="First cut",
            tags={"team": "search"},
            model_config={"model_name": "gpt-4o-mini", "temperature": 0.2},
        )
        mlflow.genai.register_prompt(
            text,
            TEXT_V2,
            commit_message="Shorter summaries",
            model_config={"model_name": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 300},
        )
        mlflow.genai.set_prompt_alias(text, "production", 1)
        mlflow.genai.register_prompt(chat, CHAT_V1, commit_message="Chat")
        mlflow.genai.register_prompt(chat, CHAT_V2)
        mlflow.genai.register_prompt(lookalike, "Look alike")

        experiment_id = client.create_experiment(f"review-bot-prompts-{suffix}")
        v1_run = client.create_run(experiment_id, run_name="eval-v1").info.run_id
        client.link_prompt_version_to_run(v1_run, f"prompts:/{text}/1")
        client.log_metric(v1_run, "accuracy", 0.7)
        lookalike_run = client.create_run(experiment_id, run_name="eval-lookalike").info.run_id
        client.link_prompt_version_to_run(lookalike_run, f"prompts:/{lookalike}/1")
        time.sleep(0.01)  # distinct start times: newest first is well defined
        linked_run = client.create_run(experiment_id, run_name="eval-linked").info.run_id
        client.link_prompt_version_to_run(linked_run, f"prompts:/{text}/2")
        client.log_metric(linked_run, "accuracy", 0.8)
        time.sleep(0.01)
        with mlflow.start_run(experiment_id=experiment_id, run_name="eval-loaded") as run:
            mlflow.genai.load_prompt(f"prompts:/{text}/2")
            mlflow.genai.load_prompt(f"prompts:/{chat}/1")
            mlflow.log_metrics({"correctness/mean": 0.9, "latency": 1.5})
        loaded_run = run.info.run_id

        source = client.create_run(experiment_id, run_name="train").info.run_id
        client.create_registered_model(model)
        client.create_model_version(model, f"runs:/{source}/model", run_id=source)
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(before)
    yield Registered(
        text=text,
        chat=chat,
        lookalike=lookalike,
        model=model,
        experiment_id=experiment_id,
        linked_run=linked_run,
        loaded_run=loaded_run,
        v1_run=v1_run,
        lookalike_run=lookalike_run,
    )


@pytest.fixture
def connection(mlflow_server: str) -> CountingMlflow:
    return CountingMlflow(mlflow_server, UI)


@pytest.fixture
def prompts(connection: CountingMlflow) -> Prompts:
    return Prompts(connection)


def evaluation(data: Registered, run_id: str, name: str, metrics: dict[str, float]) -> PromptEvaluation:
    return PromptEvaluation(
        run_id=run_id, run_name=name, run_url=run_url(UI, data.experiment_id, run_id), metrics=metrics
    )


# --- one version --------------------------------------------------------------------------------------


def test_a_text_prompt_version_with_its_config_commit_message_and_evaluations(
    prompts: Prompts, registered: Registered
) -> None:
    found = prompts.version(registered.text, "2")
    assert found.created is not None
    assert found.model_copy(update={"created": None}) == PromptInfo(
        name=registered.text,
        version="2",
        template=TEXT_V2,
        model_config_values={"model_name": '"gpt-4o-mini"', "temperature": "0.7", "max_tokens": "300"},
        commit_message="Shorter summaries",
        url=f"{UI}/#/prompts/{registered.text}",
        evaluations=[
            evaluation(
                registered, registered.loaded_run, "eval-loaded", {"correctness/mean": 0.9, "latency": 1.5}
            ),
            evaluation(registered, registered.linked_run, "eval-linked", {"accuracy": 0.8}),
        ],
    )


def test_the_version_under_an_alias_with_its_tags(prompts: Prompts, registered: Registered) -> None:
    found = prompts.version(registered.text, "1")
    assert (found.aliases, found.tags, found.commit_message) == (
        ["production"],
        {"team": "search"},
        "First cut",
    )
    assert found.model_config_values == {"model_name": '"gpt-4o-mini"', "temperature": "0.2"}
    assert found.evaluations == [evaluation(registered, registered.v1_run, "eval-v1", {"accuracy": 0.7})]


def test_a_chat_prompt_version_is_its_messages(prompts: Prompts, registered: Registered) -> None:
    found = prompts.version(registered.chat, "2", with_evaluations=False)
    assert (found.is_chat, found.template, found.commit_message, found.evaluations) == (True, "", "", [])
    assert found.messages == [
        PromptMessage(role="system", content="You are {{style}} and brief."),
        PromptMessage(role="user", content="{{question}}"),
    ]
    assert [e.run_id for e in prompts.version(registered.chat, "1").evaluations] == [registered.loaded_run]


def test_a_run_linked_to_a_lookalike_name_is_not_an_evaluation(
    prompts: Prompts, registered: Registered
) -> None:
    # `_` in a LIKE matches any character: the run linked to the lookalike matches the search; the
    # parsed tag leaves it out.
    assert [e.run_id for e in prompts.evaluations(registered.lookalike, "1")] == [registered.lookalike_run]
    assert registered.lookalike_run not in [e.run_id for e in prompts.evaluations(registered.text, "1")]


def test_without_evaluations_no_run_is_searched(
    prompts: Prompts, connection: CountingMlflow, registered: Registered
) -> None:
    assert prompts.version(registered.text, "2", with_evaluations=False).evaluations == []
    assert connection.calls == 1


def test_by_alias_and_latest(prompts: Prompts, registered: Registered) -> None:
    assert prompts.version_by_alias(registered.text, "production").version == "1"
    # MLflow's aliases are case-sensitive; the one alias spelled otherwise is taken.
    assert prompts.version_by_alias(registered.text, "Production", with_evaluations=False).version == "1"
    assert prompts.latest_version(registered.text) == "2"
    assert prompts.latest_version(registered.chat) == "2"


# --- aliases and deployments --------------------------------------------------------------------------


def test_aliases(prompts: Prompts, registered: Registered) -> None:
    assert prompts.aliases(registered.text) == {"production": "1"}
    assert prompts.aliases(registered.chat) == {}


def test_deployed_is_the_version_under_the_first_deployment_alias_other_than_the_one_reviewed(
    prompts: Prompts, registered: Registered
) -> None:
    deployed = prompts.deployed(registered.text, ["champion", "PRODUCTION"], excluding_version="2")
    assert deployed is not None
    assert (deployed.version, deployed.template, deployed.aliases, deployed.evaluations) == (
        "1",
        TEXT_V1,
        ["production"],
        [],
    )
    assert prompts.deployed(registered.text, ["production"], excluding_version="1") is None
    assert prompts.deployed(registered.text, ["champion"], excluding_version="2") is None
    assert prompts.deployed(registered.chat, ["production"], excluding_version="2") is None


def test_deployment_candidates_are_read_a_page_of_prompts_at_a_time(
    prompts: Prompts, connection: CountingMlflow, registered: Registered
) -> None:
    found = prompts.deployment_candidates(["Production", "champion"])
    assert connection.calls == 1  # one page: far fewer than 500 prompts on the test server
    ours = [c for c in found if c[0] in (registered.text, registered.chat, registered.lookalike)]
    assert ours == [(registered.text, "1", ["production"])]
    assert not [c for c in found if c[0] == registered.model]  # models are not prompts


# --- what is not there --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("read", "what"),
    [
        (lambda p, d: p.version(f"missing-{d.text}", "1"), "prompt `missing-{text}` version 1"),
        (lambda p, d: p.version(d.text, "9"), "prompt `{text}` version 9"),
        (lambda p, d: p.version(d.text, "production"), "prompt `{text}` version production"),
        (lambda p, d: p.version("a'b", "1"), "prompt `a'b` version 1"),
        (lambda p, d: p.version_by_alias(d.text, "nope"), "prompt `{text}` with alias @nope"),
        (lambda p, d: p.version_by_alias(f"missing-{d.text}", "x"), "prompt `missing-{text}` with alias @x"),
        (lambda p, d: p.latest_version(f"missing-{d.text}"), "prompt `missing-{text}`"),
        (lambda p, d: p.aliases(f"missing-{d.text}"), "prompt `missing-{text}`"),
        (lambda p, d: p.aliases("<!here>"), "prompt `&lt;!here&gt;`"),
    ],
)
def test_an_unknown_prompt_version_or_alias_is_not_found(
    prompts: Prompts, registered: Registered, read: Callable[[Prompts, Registered], object], what: str
) -> None:
    with pytest.raises(NotFound) as caught:
        read(prompts, registered)
    assert str(caught.value) == NOT_FOUND.format(what=what.format(text=registered.text))


@pytest.mark.parametrize(
    "read",
    [
        lambda p, name: p.version(name, "1"),
        lambda p, name: p.version(name, "2"),
        lambda p, name: p.version_by_alias(name, "champion"),
        lambda p, name: p.latest_version(name),
        lambda p, name: p.aliases(name),
        lambda p, name: p.deployed(name, ["production"], "1"),
    ],
)
def test_a_registered_model_is_not_a_prompt(
    prompts: Prompts, registered: Registered, read: Callable[[Prompts, str], object]
) -> None:
    with pytest.raises(NotFound) as caught:
        read(prompts, registered.model)
    assert str(caught.value) == NOT_A_PROMPT.format(name=registered.model)


# --- MLflow's spelling ----------------------------------------------------------------------------------


def test_the_tags_read_are_mlflows_own() -> None:
    assert PROMPT_MARKER == IS_PROMPT_TAG_KEY
    assert LINKED_PROMPTS == TraceTagKey.LINKED_PROMPTS


def test_linked_versions_read_the_tag_and_ignore_what_they_cannot() -> None:
    assert linked_versions('[{"name": "a", "version": "2"}, {"name": "b", "version": 3}]') == {
        ("a", "2"),
        ("b", "3"),
    }
    assert linked_versions('[{"name": "a"}, "x", 1]') == set()
    assert linked_versions('{"name": "a", "version": "1"}') == set()
    assert linked_versions("not json") == set()
    assert linked_versions(None) == set()


def test_the_prompt_link_quotes_its_name() -> None:
    assert prompt_url(UI, "a b/c") == f"{UI}/#/prompts/a%20b%2Fc"
    assert prompt_url("", "x") == ""
