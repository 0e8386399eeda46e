"""Reading MLflow 3's Prompt Registry: a prompt version (by number, alias or `latest`), its aliases, the
version deployed under a deployment alias, every deployed prompt version (for nudges), and the runs
that used a version (its evaluations). Returns bot.models values.

MLflow (open source) keeps a prompt as a registered model tagged `mlflow.prompt.is_prompt = true`, and
each version as a model version carrying the template, its type and the model config in tags. The
client's model calls hide prompts (and its prompt calls refuse models), so a name that is a model is
told apart here, on the failure path only, to say "a model, not a prompt" instead of "no such prompt".

A run that used a version carries it in its `mlflow.linkedPrompts` tag (a JSON list of
{"name", "version"}), written by `MlflowClient.link_prompt_version_to_run`, by `mlflow.genai.load_prompt`
inside a run and so by `mlflow.genai.evaluate` runs whose predict function loads the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from bot import tags
from bot.deployments import deployment_markers
from bot.errors import NotFound
from bot.mlflow.client import NOT_FOUND, Mlflow, ms_to_datetime
from bot.mlflow.registry import MAX_EXPERIMENTS, SEARCH_PAGE, aliases_by_version
from bot.mlflow.urls import run_url
from bot.models import PromptEvaluation, PromptInfo, PromptMessage
from bot.slack.mrkdwn import escape

T = TypeVar("T")

# --- limits -----------------------------------------------------------------------------------------

EVALUATIONS_SHOWN = 10  # runs that used a version, newest first
RUNS_PAGE = 50  # runs per search while looking for them (a LIKE match is checked against the JSON)
MAX_RUN_PAGES = 4  # searches at most, so a prompt used by thousands of runs costs a bounded read

# MLflow's own rule for prompt names; anything else cannot be a prompt (and must not reach a filter).
PROMPT_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")

NOT_A_PROMPT = (
    ":mag: `{name}` is a registered model, not a prompt. Review one of its versions as "
    "`models:/{name}/<version>`."
)
PROMPT_WHAT = "prompt `{name}`"
VERSION_WHAT = "prompt `{name}` version {version}"
ALIAS_WHAT = "prompt `{name}` with alias @{alias}"


def prompt_url(ui_url: str, name: str) -> str:
    """The prompt's page in the MLflow UI; "" when no UI is known."""
    return f"{ui_url}/#/prompts/{quote(name, safe='')}" if ui_url else ""


def linked_versions(tag_value: str | None) -> set[tuple[str, str]]:
    """(name, version) pairs of a run's mlflow.linkedPrompts tag; empty when missing or unreadable."""
    try:
        entries = json.loads(tag_value or "[]")
    except ValueError:
        return set()
    if not isinstance(entries, list):
        return set()
    return {
        (str(e.get("name")), str(e.get("version")))
        for e in entries
        if isinstance(e, dict) and "name" in e and "version" in e
    }


def _prompts_filter(extra: str = "") -> str:
    # Naming the prompt tag also stops MLflow's client from adding its own "not a prompt" clause.
    marker = f"tags.`{tags.PROMPT_MARKER}` = 'true'"
    return f"{extra} AND {marker}" if extra else marker


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


class Prompts:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    # --- one version -------------------------------------------------------------------------------

    def version(self, name: str, version: str, *, with_evaluations: bool = True) -> PromptInfo:
        """A prompt version by number; NotFound when the prompt or the version is not there, or the
        name is a registered model. `with_evaluations=False` skips the search for runs that used it."""
        what = VERSION_WHAT.format(name=escape(name), version=escape(version))
        self._check_name(name, what)
        if not version.isdigit():
            raise NotFound(NOT_FOUND.format(what=what))
        tracking = self.mlflow.tracking
        found = self._read(name, what, lambda: tracking.get_prompt_version(name, version))
        return self._info(found, with_evaluations)

    def version_by_alias(self, name: str, alias: str, *, with_evaluations: bool = True) -> PromptInfo:
        """The version under `alias`. MLflow's aliases are case-sensitive; when no alias is spelled
        exactly so, the one alias of the prompt that differs only in case is taken."""
        what = ALIAS_WHAT.format(name=escape(name), alias=escape(alias))
        self._check_name(name, what)
        tracking = self.mlflow.tracking
        try:
            found = self._read(name, what, lambda: tracking.get_prompt_version_by_alias(name, alias))
        except NotFound as missing:
            spelled = [
                a for a in self._aliases_or(missing, name) if a.lower() == alias.lower() and a != alias
            ]
            if len(spelled) != 1:
                raise
            found = self._read(name, what, lambda: tracking.get_prompt_version_by_alias(name, spelled[0]))
        return self._info(found, with_evaluations)

    def latest_version(self, name: str) -> str:
        """The highest version number of a prompt."""
        what = PROMPT_WHAT.format(name=escape(name))
        self._check_name(name, what)
        tracking = self.mlflow.tracking
        page = self._read(name, what, lambda: tracking.search_prompt_versions(name, max_results=1))
        if not page:
            raise NotFound(NOT_FOUND.format(what=what))
        return str(page[0].version)

    # --- aliases and deployments -------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, str]:
        """{alias: version} of one prompt (one search)."""
        what = PROMPT_WHAT.format(name=escape(name))
        self._check_name(name, what)
        tracking = self.mlflow.tracking
        found = self.mlflow.call(
            what,
            lambda: tracking.search_registered_models(filter_string=_prompts_filter(f"name = '{name}'")),
        )
        model = next((m for m in found if m.name == name), None)
        if model is None:
            self._raise_if_model(name)
            raise NotFound(NOT_FOUND.format(what=what))
        return {alias: str(v) for alias, v in (getattr(model, "aliases", None) or {}).items()}

    def deployed(self, name: str, deployment_aliases: list[str], excluding_version: str) -> PromptInfo | None:
        """The version under the first of `deployment_aliases` (in their order, any case) that is not
        `excluding_version`, read without its evaluations; None when no other version is deployed."""
        by_alias = self.aliases(name)
        for wanted in deployment_aliases:
            for alias in sorted(by_alias):
                if alias.lower() == wanted.lower() and by_alias[alias] != excluding_version:
                    return self.version(name, by_alias[alias], with_evaluations=False)
        return None

    def deployment_candidates(self, deployment_aliases: list[str]) -> list[tuple[str, str, list[str]]]:
        """(prompt name, version, its deployment aliases) for every prompt version under a deployment
        alias. Read from the prompts alone (each carries its aliases): the cost is pages of prompts."""
        found: list[tuple[str, str, list[str]]] = []
        tracking = self.mlflow.tracking
        token = None
        while True:
            page = self.mlflow.call(
                "prompt registry",
                lambda token=token: tracking.search_registered_models(
                    filter_string=_prompts_filter(), max_results=SEARCH_PAGE, page_token=token
                ),
            )
            for model in page:
                by_version = aliases_by_version(model)
                for version in sorted(by_version, key=_version_order):
                    markers = deployment_markers(by_version[version], None, deployment_aliases)
                    if markers:
                        found.append((model.name, version, markers))
            token = page.token
            if not token:
                return found

    # --- evaluations -------------------------------------------------------------------------------

    def evaluations(self, name: str, version: str) -> list[PromptEvaluation]:
        """The runs linked to this version, newest first, at most EVALUATIONS_SHOWN, with their final
        metrics. A LIKE on the tag finds candidates in MLflow's own spelling of the JSON; each is then
        checked against the parsed tag (`_` in a name is a LIKE wildcard)."""
        tracking = self.mlflow.tracking
        experiments = self.mlflow.call(
            "experiments", lambda: tracking.search_experiments(max_results=MAX_EXPERIMENTS)
        )
        if not experiments:
            return []
        ids = [e.experiment_id for e in experiments]
        entry = json.dumps({"name": name, "version": str(version)})
        query = f"tags.`{tags.LINKED_PROMPTS}` LIKE '%{entry}%'"
        found: list[PromptEvaluation] = []
        token = None
        for _ in range(MAX_RUN_PAGES):
            page = self.mlflow.call(
                "runs",
                lambda token=token: tracking.search_runs(
                    ids,
                    filter_string=query,
                    max_results=RUNS_PAGE,
                    order_by=["attributes.start_time DESC"],
                    page_token=token,
                ),
            )
            for run in page:
                if (name, str(version)) not in linked_versions(run.data.tags.get(tags.LINKED_PROMPTS)):
                    continue
                found.append(
                    PromptEvaluation(
                        run_id=run.info.run_id,
                        run_name=run.info.run_name or run.info.run_id,
                        run_url=run_url(self.mlflow.ui_url, run.info.experiment_id, run.info.run_id),
                        metrics=dict(run.data.metrics or {}),
                    )
                )
                if len(found) == EVALUATIONS_SHOWN:
                    return found
            token = page.token
            if not token:
                break
        return found

    # --- helpers -----------------------------------------------------------------------------------

    def _aliases_or(self, missing: NotFound, name: str) -> dict[str, str]:
        """The prompt's aliases, or `missing` (what was asked for) when the prompt is not there."""
        try:
            return self.aliases(name)
        except NotFound:
            raise missing from None

    def _check_name(self, name: str, what: str) -> None:
        if not PROMPT_NAME.match(name):
            raise NotFound(NOT_FOUND.format(what=what))

    def _read(self, name: str, what: str, fn: Callable[[], T | None]) -> T:
        """One prompt read; NotFound (saying so when the name is a registered model) when it fails."""
        try:
            found = self.mlflow.call(what, fn)
        except NotFound:
            self._raise_if_model(name)
            raise
        if found is None:  # MLflow answers None for a version that is not a prompt's
            self._raise_if_model(name)
            raise NotFound(NOT_FOUND.format(what=what))
        return found

    def _raise_if_model(self, name: str) -> None:
        """NotFound(NOT_A_PROMPT) when `name` is a registered model (MLflow's model search leaves
        prompts out); nothing otherwise."""
        tracking = self.mlflow.tracking
        models = self.mlflow.call(
            "model registry", lambda: tracking.search_registered_models(filter_string=f"name = '{name}'")
        )
        if any(m.name == name for m in models):
            raise NotFound(NOT_A_PROMPT.format(name=escape(name)))

    def _info(self, found: Any, with_evaluations: bool) -> PromptInfo:
        name, version = found.name, str(found.version)
        own = dict(found.tags or {})  # the version's tags without MLflow's reserved prompt keys
        is_chat = not found.is_text_prompt
        template = found.template
        return PromptInfo(
            name=name,
            version=version,
            is_chat=is_chat,
            template="" if is_chat else str(template),
            messages=[_message(m) for m in template] if is_chat else [],
            model_config_values={k: json.dumps(v) for k, v in (found.model_config or {}).items()},
            commit_message=found.commit_message or "",
            author=found.user_id or own.get(tags.USER) or own.get(tags.AUTHOR) or "",
            created=ms_to_datetime(found.creation_timestamp),
            aliases=sorted(found.aliases or []),
            tags={k: v for k, v in own.items() if not k.startswith(tags.HIDDEN_PREFIXES)},
            url=prompt_url(self.mlflow.ui_url, name),
            evaluations=self.evaluations(name, version) if with_evaluations else [],
        )


def _message(message: dict[str, Any]) -> PromptMessage:
    content = message.get("content", "")
    # Multi-part content (text and image parts) is shown as MLflow stores it.
    return PromptMessage(
        role=str(message.get("role", "")),
        content=content if isinstance(content, str) else json.dumps(content, ensure_ascii=False),
    )
