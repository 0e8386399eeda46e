"""The id of what a review is of, and what kind it is. Pure.

Everything keyed by a review (the card index, the run lock, the vote queue, the signed record) uses this
one string, so a LoggedModel or a prompt version is reviewed through the same paths as a run:

- a run id (32 hex characters): the run's tags hold the decision;
- `m-<hex>`: a LoggedModel logged outside any run: its tags, mirrored onto its registered versions;
- `models:/<name>/<version>`: a registered version with neither a run nor a LoggedModel: its tags;
- `prompts:/<name>/<version>`: a prompt version: its tags.

A model logged from a run is reviewed as that run (its decision lives where it always has).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from bot.models import SubjectKind

RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
LOGGED_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")
_MODEL_VERSION_RE = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>[0-9]+)$")
_PROMPT_VERSION_RE = re.compile(r"^prompts:/(?P<name>[^/]+)/(?P<version>[0-9]+)$")


def subject_kind(subject_id: str) -> SubjectKind:
    if subject_id.startswith("prompts:/"):
        return SubjectKind.PROMPT_VERSION
    if subject_id.startswith("models:/"):
        return SubjectKind.MODEL_VERSION
    if subject_id.startswith("m-"):
        return SubjectKind.LOGGED_MODEL
    return SubjectKind.RUN


def model_version_subject(name: str, version: str) -> str:
    return f"models:/{quote(name, safe='')}/{version}"


def prompt_subject(name: str, version: str) -> str:
    return f"prompts:/{quote(name, safe='')}/{version}"


def name_and_version(subject_id: str) -> tuple[str, str]:
    """(name, version) of a MODEL_VERSION or PROMPT_VERSION subject; ValueError for any other id."""
    match = _MODEL_VERSION_RE.match(subject_id) or _PROMPT_VERSION_RE.match(subject_id)
    if match is None:
        raise ValueError(f"not a model or prompt version id: {subject_id!r}")
    return unquote(match.group("name")), match.group("version")


def plain_name(subject_id: str) -> str:
    """`describe` without backticks, for a CI log: run …, logged model m-…, prompt name version 2."""
    return describe(subject_id).replace("`", "")


def describe(subject_id: str) -> str:
    """How messages name it: run `…`, logged model `m-…`, model `name` version 3, prompt `name` version 2."""
    kind = subject_kind(subject_id)
    if kind is SubjectKind.RUN:
        return f"run `{subject_id}`"
    if kind is SubjectKind.LOGGED_MODEL:
        return f"logged model `{subject_id}`"
    name, version = name_and_version(subject_id)
    what = "prompt" if kind is SubjectKind.PROMPT_VERSION else "model"
    return f"{what} `{name}` version {version}"
