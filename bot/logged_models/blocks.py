"""What a LoggedModel's card and its thread show: the fields, the body (metrics by dataset, params,
tags), what did not fit and the comparison with the deployed model, for the thread; and the short list
of the models a run logged, for a run's card.

Pure: LoggedModelInfo in, (label, mrkdwn) pairs, Block Kit models and SlackMessages out. Every text from
MLflow is escaped (names, keys, digests, values, tags); a cell of a monospace table cannot close its
code block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.compare.blocks import (
    NOT_JUDGED,
    delta_rows,
    name_list,
    not_judged_notes,
    text_table,
    verdict_word,
)
from bot.compare.rules import Verdict, format_value
from bot.logged_models.rules import (
    ComparedMetric,
    DatasetMetrics,
    ModelComparison,
    compare_by_dataset,
    metrics_by_dataset,
)
from bot.mlflow.urls import model_version_url, run_url
from bot.models import Direction, LoggedModelInfo, ModelVersionRef
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape_code, link, split_mrkdwn, truncate

# --- the fields -------------------------------------------------------------------------------------

FIELD_MODEL = "Model"
FIELD_EXPERIMENT = "Experiment"
FIELD_SOURCE_RUN = "Source run"
FIELD_TYPE = "Type"
FIELD_STATUS = "Status"
FIELD_CREATED = "Created"
FIELD_VERSIONS = "Registered versions"
MODEL_VALUE = "{name}\n`{model_id}`"
OUTSIDE_RUN = "_logged outside a run_"
NOT_REGISTERED = "_not registered_"
NOT_SET = "_not set_"
UNKNOWN = "_unknown_"
VERSION_LABEL = "{name} v{version}"
VERSIONS_SHOWN = 5
VERSIONS_MORE = " and {n} more"
FIELD_VALUE_CHARS = limits.FIELD_TEXT - 100  # room for the label the card puts above

# --- the body ---------------------------------------------------------------------------------------

METRICS_TITLE = "*Model metrics*, by dataset"
DATASET_TITLE = "*{name}* (digest `{digest}`)"
NO_DATASET_TITLE = "*Logged without a dataset*"
METRIC_LINE = "• {key}: `{value}`"
NO_METRICS = "_No metrics logged against this model._"
PARAMS_TITLE = "*Params*"
NO_PARAMS = "_No params logged._"
TAGS_TITLE = "*Tags*"
PARAM_LINE = "• {key} = `{value}`"
MORE_IN_THREAD = "_…and {n} more in the thread._"
DATASETS_MORE = "_…and {n} more datasets ({metrics} metrics) in the thread._"
CARD_DATASETS = 5  # sections of metrics on the card: with params, tags and the "more" line, 8 blocks
CARD_METRICS_PER_DATASET = 8
CARD_PARAMS = 12
CARD_TAGS = 8
VALUE_CHARS = 80  # a param's or tag's value on the card (whole in the thread)
LINE_CHARS = 300  # any one line on the card

# --- the thread -------------------------------------------------------------------------------------

ALL_METRICS_TITLE = "*All model metrics* ({n}), by dataset"
ALL_METRICS_TEXT = "All model metrics ({n})"
ALL_PARAMS_TITLE = "*All params* ({n})"
ALL_PARAMS_TEXT = "All params ({n})"
ALL_TAGS_TITLE = "*All tags* ({n})"
ALL_TAGS_TEXT = "All tags ({n})"
COMPARED_TITLE = "*Compared with {baseline}*, on the same datasets only"
COMPARED_TEXT = "Compared with the deployed model"
THE_BASELINE = "the deployed model `{name}`"
COMPARED_TALLY = "{better} better, {worse} worse, {same} unchanged"
COMPARED_NOT_JUDGED = ", {n} not judged"
COMPARED_DATASETS = "Compared on {n} dataset{s} both models were measured on (same digest)."
NO_COMMON_DATASET = (
    ":information_source: *Compared on no common dataset*: this model has metrics on {mine}, the "
    "baseline on {theirs}. Only metrics measured on the same data (the same dataset digest) are compared."
)
NO_DATASETS = "_none_"
DATASETS_DIFFER = (
    ":warning: *Datasets differ*, not compared: `{name}` is digest `{digest}` for this model and "
    "`{baseline_digest}` for the baseline (other data under the same name)."
)
ONLY_MODEL_DATASETS = "_Only this model has metrics on: {datasets}_"
ONLY_BASELINE_DATASETS = "_Only the baseline has metrics on: {datasets}_"
ONLY_MODEL_KEYS = "_Only this model has on it: {keys}_"
ONLY_BASELINE_KEYS = "_Only the baseline has on it: {keys}_"
UNDATED = "_Not compared, logged without a dataset: {keys}_"
DATASET_NAMED = "`{name}` (digest `{digest}`)"
THE_MODEL_PAGE = "the model's page"
MODEL_WHERE = "logged model `{model_id}`"
THIS_MODEL = "this model"
BASELINE_COLUMN = "baseline"
COMPARE_HEADER = ("metric", THIS_MODEL, BASELINE_COLUMN, "change", "%", "")
NAMES_SHOWN = 20
KEY_WIDTH = 40
VALUE_WIDTH = 60

# --- a run's card -----------------------------------------------------------------------------------

RUN_MODELS_TITLE = "*Models logged by this run* ({n})"
RUN_MODEL_LINE = "• {name} `{model_id}`{versions}"
RUN_MODEL_VERSIONS = " · {versions}"
RUN_MODEL_DATASET = "    {dataset}: {metrics}"
RUN_MODEL_NO_DATASET = "no dataset"
RUN_MODEL_METRIC = "{key} `{value}`"
RUN_MODEL_METRICS_MORE = " +{n} more"
RUN_MODEL_NO_METRICS = "    _no metrics logged against it_"
RUN_MODEL_DATASETS_MORE = "+{n} more datasets"
RUN_MODEL_DATASETS_MORE_METRICS = "{n} metrics"
RUN_MODELS_MORE = "_…and {n} more models: see the run's page in MLflow._"
RUN_MODELS_SHOWN = 3
RUN_MODEL_DATASETS = 3  # datasets per model
RUN_MODEL_METRICS = 4  # metrics per dataset

# Two backticks then a zero-width space before a third: no run of three can form (escape() has dropped
# any zero-width space the text had, so the only ones are these).
_BACKTICK_PAIR_BEFORE_ANOTHER = re.compile(r"``(?=`)")
_UI_PATH = "/#/experiments/"


_safe = escape_code  # text from MLflow: inert, and unable to open or close a code block


# --- the fields -------------------------------------------------------------------------------------


def build_logged_model_fields(info: LoggedModelInfo) -> list[tuple[str, str]]:
    """(label, mrkdwn value) for the card's fields section; the card adds "Requested by" and the
    baseline."""
    name = link(info.url, info.name) if info.url else f"*{_safe(info.name)}*"
    fields = [
        (FIELD_MODEL, MODEL_VALUE.format(name=name, model_id=_safe(info.model_id))),
        (FIELD_EXPERIMENT, _safe(info.experiment_name or info.experiment_id) or UNKNOWN),
        (FIELD_SOURCE_RUN, _source_run(info)),
        (FIELD_TYPE, _safe(info.model_type) or NOT_SET),
        (FIELD_STATUS, _safe(info.status.title()) or UNKNOWN),
        (FIELD_CREATED, _created(info)),
        (FIELD_VERSIONS, _versions(info)),
    ]
    return [(label, truncate(value, FIELD_VALUE_CHARS)) for label, value in fields]


def _ui_root(info: LoggedModelInfo) -> str:
    """The MLflow UI's address, from the model's own page ("" when no UI is known)."""
    return info.url.split(_UI_PATH, 1)[0] if _UI_PATH in info.url else ""


def _source_run(info: LoggedModelInfo) -> str:
    if not info.source_run_id:
        return OUTSIDE_RUN
    # The run's page under the model's experiment: where MLflow logs a model from a run.
    url = run_url(_ui_root(info), info.experiment_id, info.source_run_id)
    return link(url, info.source_run_id) if url else f"`{_safe(info.source_run_id)}`"


def _created(info: LoggedModelInfo) -> str:
    # Imported here: the review card (bot.reviews.card) is where these builders are called from.
    from bot.reviews.card import format_time

    return format_time(info.created) if info.created else UNKNOWN


def _versions(info: LoggedModelInfo) -> str:
    if not info.model_versions:
        return NOT_REGISTERED
    root = _ui_root(info)
    shown = [_version(mv, root) for mv in info.model_versions[:VERSIONS_SHOWN]]
    more = len(info.model_versions) - VERSIONS_SHOWN
    return ", ".join(shown) + (VERSIONS_MORE.format(n=more) if more > 0 else "")


def _version(mv: ModelVersionRef, ui_root: str) -> str:
    label = VERSION_LABEL.format(name=mv.name, version=mv.version)
    url = model_version_url(ui_root, mv.name, mv.version)
    named = link(url, label) if url else _safe(label)
    return " ".join([named, *(f"`@{_safe(alias)}`" for alias in mv.aliases)])


# --- the body ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """One section of the card's body: what it lists, its text, and how many items it left for the
    thread."""

    kind: str  # _METRICS, _PARAMS or _TAGS
    text: str
    cut: int


_METRICS, _PARAMS, _TAGS = "metrics", "params", "tags"


def build_logged_model_sections(info: LoggedModelInfo) -> list[Block]:
    """The card's body: the model's metrics (one section per dataset, the first CARD_DATASETS), its
    params and its tags (when it has any), each section within Slack's limit; what does not fit is
    counted and left for the thread."""
    return [SectionBlock(text=MarkdownTextObject(text=listing.text)) for listing in _card_listings(info)]


def _card_listings(info: LoggedModelInfo) -> list[_Listing]:
    groups = metrics_by_dataset(info.metrics)
    listings: list[_Listing] = []
    if not groups:
        listings.append(_Listing(_METRICS, f"{METRICS_TITLE}\n{NO_METRICS}", 0))
    for index, group in enumerate(groups[:CARD_DATASETS]):
        title = _dataset_title(group)
        if index == 0:
            title = f"{METRICS_TITLE}\n{title}"
        lines = [
            METRIC_LINE.format(key=_safe(k), value=format_value(v))
            for k, v in list(group.metrics.items())[:CARD_METRICS_PER_DATASET]
        ]
        listings.append(_fit(_METRICS, title, lines, len(group.metrics)))
    rest = groups[CARD_DATASETS:]
    if rest:
        hidden = sum(len(g.metrics) for g in rest)
        listings.append(_Listing(_METRICS, DATASETS_MORE.format(n=len(rest), metrics=hidden), hidden))
    if info.params:
        params = [_pair_line(k, v) for k, v in sorted(info.params.items())[:CARD_PARAMS]]
        listings.append(_fit(_PARAMS, PARAMS_TITLE, params, len(info.params)))
    else:
        listings.append(_Listing(_PARAMS, f"{PARAMS_TITLE}\n{NO_PARAMS}", 0))
    if info.tags:
        tag_lines = [_pair_line(k, v) for k, v in sorted(info.tags.items())[:CARD_TAGS]]
        listings.append(_fit(_TAGS, TAGS_TITLE, tag_lines, len(info.tags)))
    return listings


def _dataset_title(group: DatasetMetrics) -> str:
    if not group.digest and not group.name:
        return NO_DATASET_TITLE
    return DATASET_TITLE.format(name=_safe(group.name), digest=_safe(group.digest))


def _pair_line(key: str, value: str) -> str:
    return PARAM_LINE.format(key=_safe(key), value=truncate(_safe(value), VALUE_CHARS))


def _fit(kind: str, title: str, lines: list[str], total: int) -> _Listing:
    """`title` and as many of `lines` as fit in one section with a "…and N more in the thread" line
    for the rest of `total`."""
    lines = [truncate(line, LINE_CHARS) for line in lines]
    for count in range(len(lines), -1, -1):
        cut = total - count
        text = "\n".join([title, *lines[:count], *([MORE_IN_THREAD.format(n=cut)] if cut else [])])
        if len(text) <= limits.SECTION_BUDGET:
            return _Listing(kind, text, cut)
    return _Listing(kind, truncate(title, limits.SECTION_BUDGET), total)  # a title alone over the budget


# --- the thread -------------------------------------------------------------------------------------


def build_logged_model_thread(
    info: LoggedModelInfo,
    baseline: LoggedModelInfo | None,
    baseline_label: str,
    directions: Mapping[str, Direction],
) -> list[SlackMessage]:
    """What the card cut (all metrics by dataset, all params, all tags: each only when the card did not
    show all of it), then the comparison with `baseline` on the datasets both were measured on.
    `baseline_label` (mrkdwn, e.g. the card's baseline line) names it; "" names it by its model name."""
    messages = _overflow(info)
    if baseline is not None:
        messages += _comparison(info, baseline, baseline_label, directions)
    return messages


def _overflow(info: LoggedModelInfo) -> list[SlackMessage]:
    """All of each kind (metrics, params, tags) the card did not show all of."""
    cut = {kind: 0 for kind in (_METRICS, _PARAMS, _TAGS)}
    for listing in _card_listings(info):
        cut[listing.kind] += listing.cut
    messages: list[SlackMessage] = []
    where = _where(info)
    if cut[_METRICS]:
        groups = metrics_by_dataset(info.metrics)
        count = sum(len(g.metrics) for g in groups)
        parts = []
        for group in groups:
            parts.append(_dataset_title(group))
            parts.append(
                _table(["metric", "value"], [[k, format_value(v)] for k, v in group.metrics.items()])
            )
        messages += _paged(ALL_METRICS_TITLE.format(n=count), parts, ALL_METRICS_TEXT.format(n=count), where)
    for kind, title, text, values in (
        (_PARAMS, ALL_PARAMS_TITLE, ALL_PARAMS_TEXT, info.params),
        (_TAGS, ALL_TAGS_TITLE, ALL_TAGS_TEXT, info.tags),
    ):
        if cut[kind]:
            table = _table(["name", "value"], [[k, v] for k, v in sorted(values.items())])
            messages += _paged(title.format(n=len(values)), [table], text.format(n=len(values)), where)
    return messages


def _comparison(
    info: LoggedModelInfo,
    baseline: LoggedModelInfo,
    baseline_label: str,
    directions: Mapping[str, Direction],
) -> list[SlackMessage]:
    compared = compare_by_dataset(info, baseline, directions)
    parts = _comparison_parts(compared, info, baseline)
    label = baseline_label or THE_BASELINE.format(name=_safe(baseline.name))
    title = truncate(COMPARED_TITLE.format(baseline=label), limits.SECTION_BUDGET)
    return _paged(title, parts, COMPARED_TEXT, _where(info))


def _comparison_parts(
    compared: ModelComparison, info: LoggedModelInfo, baseline: LoggedModelInfo
) -> list[str]:
    parts: list[str] = []
    rows = compared.rows
    if compared.shared:
        tally = {v: sum(1 for row in rows if row.verdict is v) for v in Verdict}
        not_judged = sum(1 for row in rows if verdict_word(row.change) == NOT_JUDGED)
        parts.append(
            COMPARED_TALLY.format(
                better=tally[Verdict.BETTER], worse=tally[Verdict.WORSE], same=tally[Verdict.SAME]
            )
            + (COMPARED_NOT_JUDGED.format(n=not_judged) if not_judged else "")
            + " · "
            + COMPARED_DATASETS.format(n=len(compared.shared), s="" if len(compared.shared) == 1 else "s")
        )
        for dataset in compared.shared:
            parts.append(DATASET_TITLE.format(name=_safe(dataset.name), digest=_safe(dataset.digest)))
            parts.append(_table(list(COMPARE_HEADER), [_row(row) for row in dataset.rows]))
            if dataset.only_model:
                parts.append(ONLY_MODEL_KEYS.format(keys=name_list(dataset.only_model)))
            if dataset.only_baseline:
                parts.append(ONLY_BASELINE_KEYS.format(keys=name_list(dataset.only_baseline)))
        parts += _not_judged_notes(rows)
    else:
        parts.append(NO_COMMON_DATASET.format(mine=_datasets_of(info), theirs=_datasets_of(baseline)))
    for differing in compared.differing:
        parts.append(
            DATASETS_DIFFER.format(
                name=_safe(differing.name),
                digest=_safe(differing.digest),
                baseline_digest=_safe(differing.baseline_digest),
            )
        )
    if compared.shared:  # without a shared dataset, the line above already named them all
        if compared.only_model:
            parts.append(ONLY_MODEL_DATASETS.format(datasets=_dataset_names(compared.only_model)))
        if compared.only_baseline:
            parts.append(ONLY_BASELINE_DATASETS.format(datasets=_dataset_names(compared.only_baseline)))
    undated = sorted(set(compared.undated_model) | set(compared.undated_baseline))
    if undated:
        parts.append(UNDATED.format(keys=name_list(undated)))
    return parts


def _row(row: ComparedMetric) -> list[str]:
    return delta_rows([row.change])[0]


def _not_judged_notes(rows: Sequence[ComparedMetric]) -> list[str]:
    return not_judged_notes([row.change for row in rows])


def _datasets_of(info: LoggedModelInfo) -> str:
    named = [g for g in metrics_by_dataset(info.metrics) if g.digest]
    return _dataset_names(named) if named else NO_DATASETS


def _dataset_names(groups: Sequence[DatasetMetrics]) -> str:
    shown = ", ".join(
        DATASET_NAMED.format(name=_safe(g.name), digest=_safe(g.digest)) for g in groups[:NAMES_SHOWN]
    )
    return shown + (f" and {len(groups) - NAMES_SHOWN} more" if len(groups) > NAMES_SHOWN else "")


def _where(info: LoggedModelInfo) -> str:
    return link(info.url, THE_MODEL_PAGE) if info.url else MODEL_WHERE.format(model_id=_safe(info.model_id))


def _paged(title: str, parts: list[str], text: str, where: str) -> list[SlackMessage]:
    # Imported here: bot.reviews.thread imports the card, which imports these builders.
    from bot.reviews.thread import paged

    return paged(title, split_mrkdwn("\n".join(parts), limits.SECTION_BUDGET), text=text, where=where)


def _table(header: list[str], rows: list[list[str]]) -> str:
    return text_table(header, rows, key_width=KEY_WIDTH, value_width=VALUE_WIDTH)


# --- a run's card -----------------------------------------------------------------------------------


def build_run_models_section(models: Sequence[LoggedModelInfo]) -> list[Block]:
    """For a run's card: the LoggedModels it logged (the first RUN_MODELS_SHOWN), each with its id, its
    registered versions and a few metrics per dataset, in one section; nothing when it logged none."""
    if not models:
        return []
    lines = [RUN_MODELS_TITLE.format(n=len(models))]
    for model in models[:RUN_MODELS_SHOWN]:
        lines += _run_model_lines(model)
    if len(models) > RUN_MODELS_SHOWN:
        lines.append(RUN_MODELS_MORE.format(n=len(models) - RUN_MODELS_SHOWN))
    text = truncate("\n".join(truncate(line, LINE_CHARS) for line in lines), limits.SECTION_BUDGET)
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def _run_model_lines(model: LoggedModelInfo) -> list[str]:
    name = link(model.url, model.name) if model.url else f"*{_safe(model.name)}*"
    root = _ui_root(model)
    versions = ", ".join(_version(mv, root) for mv in model.model_versions[:VERSIONS_SHOWN])
    lines = [
        RUN_MODEL_LINE.format(
            name=name,
            model_id=_safe(model.model_id),
            versions=RUN_MODEL_VERSIONS.format(versions=versions) if versions else "",
        )
    ]
    groups = metrics_by_dataset(model.metrics)
    if not groups:
        return [*lines, RUN_MODEL_NO_METRICS]
    for group in groups[:RUN_MODEL_DATASETS]:
        shown = [
            RUN_MODEL_METRIC.format(key=_safe(k), value=format_value(v))
            for k, v in list(group.metrics.items())[:RUN_MODEL_METRICS]
        ]
        more = len(group.metrics) - len(shown)
        dataset = f"*{_safe(group.name)}*" if group.name else RUN_MODEL_NO_DATASET
        metrics = ", ".join(shown) + (RUN_MODEL_METRICS_MORE.format(n=more) if more > 0 else "")
        lines.append(RUN_MODEL_DATASET.format(dataset=dataset, metrics=metrics))
    if len(groups) > RUN_MODEL_DATASETS:
        hidden = groups[RUN_MODEL_DATASETS:]
        lines.append(
            RUN_MODEL_DATASET.format(
                dataset=RUN_MODEL_DATASETS_MORE.format(n=len(hidden)),
                metrics=RUN_MODEL_DATASETS_MORE_METRICS.format(n=sum(len(g.metrics) for g in hidden)),
            )
        )
    return lines
