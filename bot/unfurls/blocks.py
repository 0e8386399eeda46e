"""What an unfurled MLflow link shows: a run, an experiment, a model version or LoggedModel, a prompt
version, or that MLflow has no such thing. Pure: values in, `{"blocks": [...]}` out (chat.unfurl's
value for one URL), at most UNFURL_BLOCKS blocks. Everything from MLflow is escaped; the title links to
the page that was pasted.

Each unfurl of something reviewable ends with the review's status (who it waits on) and one button:
the review card when one was posted, else Review, which posts it as `/review` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.compare.baseline_line import build_baseline_line
from bot.compare.blocks import verdict_word
from bot.compare.rules import format_delta, format_relative, format_value, metric_deltas
from bot.ids import UnfurlActionId
from bot.models import Direction, ReviewStatus, RunSummary, SubjectKind, Vote
from bot.slack import limits
from bot.slack.mrkdwn import escape, link, truncate
from bot.slack.values import RefValue, encode
from bot.unfurls.rules import (
    ExperimentShown,
    ReviewShown,
    VersionShown,
    card_link,
    model_metrics_shown,
    review_reference,
)

UNFURL_BLOCKS = 6
LINE_CHARS = 300  # any one line from MLflow (a name, a commit message)
PEOPLE_SHOWN = 5  # voters or reviewers named on a line; the rest as "and N more"

# --- titles -----------------------------------------------------------------------------------------

RUN_TITLE = "*Run {run}*"
RUN_LINE = "{experiment} · {status} · by {user}"
FROM_LOGGED_MODEL = "Logged model `{model_id}`, reviewed as the run that logged it"
EXPERIMENT_TITLE = "*Experiment {experiment}*"
MODEL_TITLE = "*Model {model}*"
LOGGED_MODEL_TITLE = "*Logged model {model}*"
LOGGED_MODEL_LINE = "`{model_id}` · {experiment} · {status} · by {user}"
PROMPT_TITLE = "*Prompt {prompt}*"
PROMPT_LINE = "by {author}"
VERSION_LABEL = "{name} v{version}"
UNKNOWN_USER = "_unknown_"
UNKNOWN_STATUS = "Unknown"

# --- bodies -----------------------------------------------------------------------------------------

METRIC_FIELD = "*{key}*\n`{value}`"
METRIC_DELTA = " · {delta}{relative}{verdict} vs the baseline"
METRIC_SAME = " · as the baseline"
NO_METRICS = "_No metrics logged._"
BASELINE_LINE = "Baseline: {line}"
RUNS_COUNT = "{n} runs"
RUNS_COUNT_ONE = "1 run"
RUNS_CAPPED = "{n}+ runs"
NO_RUNS = "No runs yet"
BEST_RUN = "Best run by `{metric}` ({way}): {run} · `{value}`"
WAYS = {Direction.MAX: "higher is better", Direction.MIN: "lower is better"}
NO_PRIMARY_METRIC = "_Set `PRIMARY_METRIC` to see the best run here._"
UNRANKED = (
    "_No best run: which way `{metric}` improves is not known (set `PRIMARY_METRIC={metric}:max` or `:min`)._"
)
NOT_LOGGED = "_No run logged `{metric}` yet._"
FROM_RUN = "From run {run} · {experiment}"
FROM_LOGGED_MODEL_VERSION = "From logged model {model}"
VERSION_ONLY = "_Registered with neither a run nor a logged model: MLflow holds no metrics for it._"
COMMIT_LINE = "> {message}"
NO_COMMIT_MESSAGE = "_No commit message._"
TEMPLATE_LINE = "`{first_line}`"
STAGE = "stage {stage}"

# --- the review -------------------------------------------------------------------------------------

NOT_REVIEWED = ":white_circle: Not put up for review yet"
PENDING = ":hourglass_flowing_sand: Review pending · {approvals}/{required} approvals"
WAITING_ON = " · waiting on {people}"
APPROVED = ":white_check_mark: Approved by {people}"
CHANGES_REQUESTED = ":x: Changes requested by {people}"
UNTRUSTED = ":warning: Its review tags in MLflow were not written by review-bot: not a decision"
MORE_PEOPLE = " and {n} more"
REVIEW_LABEL = "Review"
REVIEW_BEST_LABEL = "Review the best run"
OPEN_CARD_LABEL = "Open the review card"

# --- nothing to show --------------------------------------------------------------------------------

NOT_FOUND = ":mag: Not in MLflow: {what} (deleted, or never there)."
EXPERIMENT_WHAT = "experiment `{experiment_id}`"


def _unfurl(blocks: Sequence[Block]) -> dict[str, Any]:
    return {"blocks": [b.to_dict() for b in blocks[:UNFURL_BLOCKS]]}


def _line(text: str) -> str:
    return truncate(text, LINE_CHARS)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, limits.SECTION_TEXT)))


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(t, limits.SECTION_TEXT)) for t in texts])


def _people(mentions: Sequence[str]) -> str:
    more = len(mentions) - PEOPLE_SHOWN
    return ", ".join(mentions[:PEOPLE_SHOWN]) + (MORE_PEOPLE.format(n=more) if more > 0 else "")


def _voters(votes: Sequence[Vote]) -> str:
    return _people([escape(_line(v.name or v.user)) for v in votes])


def _status(value: str) -> str:
    return escape(value.title()) or UNKNOWN_STATUS


def _user(value: str) -> str:
    return escape(_line(value)) or UNKNOWN_USER


# --- the review and its button ----------------------------------------------------------------------


def build_review_status(shown: ReviewShown) -> str:
    """Where the review stands, and who it waits on while it is pending."""
    review = shown.review
    if review is None:
        return NOT_REVIEWED
    if review.untrusted:
        return UNTRUSTED
    if review.status is ReviewStatus.APPROVED:
        return APPROVED.format(people=_voters(review.approvals))
    if review.status is ReviewStatus.CHANGES_REQUESTED:
        return CHANGES_REQUESTED.format(people=_voters(review.change_requests))
    line = PENDING.format(approvals=len(review.approvals), required=shown.required_approvals)
    if shown.waiting_on:
        line += WAITING_ON.format(people=_people([f"<@{user}>" for user in shown.waiting_on]))
    return line


def build_review_button(shown: ReviewShown, label: str = REVIEW_LABEL) -> ButtonElement | None:
    """A link to the review card when one was posted, else Review (posts it as `/review` does); None for
    a reference too long for a button's value (a name of thousands of characters)."""
    permalink = card_link(shown.review)
    if permalink:
        return ButtonElement(text=OPEN_CARD_LABEL, action_id=UnfurlActionId.OPEN_CARD, url=permalink)
    value = encode(RefValue(ref=review_reference(shown.subject)))
    if len(value) > limits.BUTTON_VALUE:
        return None
    return ButtonElement(text=label, action_id=UnfurlActionId.REVIEW, value=value, style="primary")


def _review_blocks(shown: ReviewShown, label: str = REVIEW_LABEL) -> list[Block]:
    button = build_review_button(shown, label)
    return [_context(build_review_status(shown)), *([ActionsBlock(elements=[button])] if button else [])]


# --- metrics ----------------------------------------------------------------------------------------


def build_metric_fields(
    metrics: Mapping[str, float],
    shown: Sequence[str],
    baseline: Mapping[str, float] | None = None,
    directions: Mapping[str, Direction] | None = None,
) -> list[str]:
    """One field per metric shown: its value, and with the baseline's metrics its change and verdict."""
    deltas = {d.key: d for d in metric_deltas(metrics, baseline or {}, directions, shown)}
    fields = []
    for key in shown:
        text = METRIC_FIELD.format(key=escape(_line(key)), value=format_value(metrics[key]))
        delta = deltas.get(key)
        if delta is not None and delta.finite and delta.delta == 0:
            text += METRIC_SAME
        elif delta is not None and delta.finite:
            relative, verdict = format_relative(delta.relative), verdict_word(delta)
            text += METRIC_DELTA.format(
                delta=format_delta(delta.delta),
                relative=f" ({relative})" if relative else "",
                verdict=f", {verdict}" if verdict else "",
            )
        fields.append(truncate(text, limits.FIELD_TEXT))
    return fields


def _fields(fields: Sequence[str]) -> SectionBlock:
    return SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields[: limits.SECTION_FIELDS]])


def _metrics_block(fields: Sequence[str]) -> Block:
    return _fields(fields) if fields else _context(NO_METRICS)


# --- the builders -----------------------------------------------------------------------------------


def build_run_unfurl(
    url: str,
    summary: RunSummary,
    review: ReviewShown,
    metrics: Sequence[str],
    *,
    baseline_metrics: Mapping[str, float] | None = None,
    directions: Mapping[str, Direction] | None = None,
    logged_model_id: str = "",
) -> dict[str, Any]:
    """A run: name, experiment, status, author; its key metrics with their change against the baseline
    (when `baseline_metrics` were read); the baseline; the review. `logged_model_id`: the link was a
    LoggedModel's page, reviewed as the run that logged it."""
    experiment = (
        link(summary.experiment_url, _line(summary.experiment_name))
        if summary.experiment_url
        else escape(_line(summary.experiment_name))
    )
    lines = [
        RUN_TITLE.format(run=link(url, _line(summary.run_name))),
        RUN_LINE.format(experiment=experiment, status=_status(summary.status), user=_user(summary.user)),
    ]
    if logged_model_id:
        lines.append(FROM_LOGGED_MODEL.format(model_id=escape(logged_model_id)))
    blocks: list[Block] = [
        _section("\n".join(lines)),
        _metrics_block(build_metric_fields(summary.metrics, metrics, baseline_metrics, directions)),
    ]
    if summary.baseline is not None:
        blocks.append(_context(BASELINE_LINE.format(line=build_baseline_line(summary.baseline))))
    return _unfurl([*blocks, *_review_blocks(review)])


def build_experiment_unfurl(url: str, experiment: ExperimentShown) -> dict[str, Any]:
    """An experiment: how many runs, and its best run by PRIMARY_METRIC when it is known which way that
    metric improves (never a guess), with that run's review button."""
    if experiment.runs == 0:
        count = NO_RUNS
    elif experiment.capped:
        count = RUNS_CAPPED.format(n=experiment.runs)
    else:
        count = RUNS_COUNT_ONE if experiment.runs == 1 else RUNS_COUNT.format(n=experiment.runs)
    title = EXPERIMENT_TITLE.format(experiment=link(url, _line(experiment.name)))
    blocks: list[Block] = [_section(f"{title}\n{count}")]
    metric = escape(experiment.metric.replace("`", "'"))
    best = experiment.best
    if not experiment.runs:
        pass
    elif not experiment.metric:
        blocks.append(_context(NO_PRIMARY_METRIC))
    elif experiment.direction is None or not experiment.direction.judged:
        blocks.append(_context(UNRANKED.format(metric=metric)))
    elif best is None or experiment.metric not in best.metrics:
        blocks.append(_context(NOT_LOGGED.format(metric=metric)))
    else:
        run = (
            link(best.run_url, _line(best.run_name)) if best.run_url else f"`{escape(_line(best.run_name))}`"
        )
        blocks.append(
            _section(
                BEST_RUN.format(
                    metric=metric,
                    way=WAYS[experiment.direction],
                    run=run,
                    value=format_value(best.metrics[experiment.metric]),
                )
            )
        )
        button = build_review_button(ReviewShown(subject=best.run_id, review=best.review), REVIEW_BEST_LABEL)
        if button is not None:
            blocks.append(ActionsBlock(elements=[button]))
    return _unfurl(blocks)


def build_model_unfurl(
    url: str,
    summary: RunSummary,
    review: ReviewShown,
    metrics: Sequence[str],
    *,
    version: VersionShown | None = None,
    key_metrics: Sequence[str] = (),
    primary: str | None = None,
) -> dict[str, Any]:
    """A registered model version (`version`: its aliases and status; `summary`: what its review is of,
    its source run or LoggedModel), or a LoggedModel logged outside any run (`version` None)."""
    logged = summary.logged_model
    if version is not None:
        label = VERSION_LABEL.format(name=version.name, version=version.version)
        parts = [MODEL_TITLE.format(model=link(url, _line(label)))]
        parts += [f"`@{escape(_line(a))}`" for a in version.aliases]
        parts.append(f"· {_status(version.status)}" if version.status else "")
        parts.append(f"· {STAGE.format(stage=escape(version.stage))}" if version.stage else "")
        lines = [" ".join(p for p in parts if p)]
        if summary.kind is SubjectKind.RUN:
            run = (
                link(summary.run_url, _line(summary.run_name)) if summary.run_url else escape(summary.run_id)
            )
            lines.append(FROM_RUN.format(run=run, experiment=escape(_line(summary.experiment_name))))
        elif logged is not None:
            name = link(logged.url, _line(logged.name)) if logged.url else escape(_line(logged.name))
            lines.append(FROM_LOGGED_MODEL_VERSION.format(model=name))
        else:
            lines.append(VERSION_ONLY)
    else:
        name = logged.name if logged is not None else summary.run_name
        lines = [
            LOGGED_MODEL_TITLE.format(model=link(url, _line(name))),
            LOGGED_MODEL_LINE.format(
                model_id=escape(summary.run_id),
                experiment=escape(_line(summary.experiment_name)),
                status=_status(summary.status),
                user=_user(summary.user),
            ),
        ]
    blocks: list[Block] = [_section("\n".join(lines))]
    if logged is not None:
        pairs = model_metrics_shown(logged.metrics, key_metrics, primary)
        fields = [
            truncate(METRIC_FIELD.format(key=escape(_line(k)), value=format_value(v)), limits.FIELD_TEXT)
            for k, v in pairs
        ]
        blocks.append(_metrics_block(fields))
    elif summary.kind is SubjectKind.RUN:
        blocks.append(_metrics_block(build_metric_fields(summary.metrics, metrics)))
    return _unfurl([*blocks, *_review_blocks(review)])


def build_prompt_unfurl(url: str, summary: RunSummary, review: ReviewShown) -> dict[str, Any]:
    """A prompt version: name, version, aliases, author, its commit message and its template's first
    line; the review."""
    prompt = summary.prompt
    name = prompt.name if prompt is not None else summary.run_name
    version = prompt.version if prompt is not None else ""
    label = VERSION_LABEL.format(name=name, version=version) if version else name
    title = [PROMPT_TITLE.format(prompt=link(url, _line(label)))]
    title += [f"`@{escape(_line(a))}`" for a in (prompt.aliases if prompt is not None else [])]
    lines = [" ".join(title), PROMPT_LINE.format(author=_user(summary.user))]
    message = (prompt.commit_message if prompt is not None else "") or summary.note
    lines.append(
        COMMIT_LINE.format(message=escape(_line(" ".join(message.split())))) if message else NO_COMMIT_MESSAGE
    )
    blocks: list[Block] = [_section("\n".join(lines))]
    template = prompt.template if prompt is not None and not prompt.is_chat else ""
    if prompt is not None and prompt.is_chat and prompt.messages:
        template = prompt.messages[0].content
    first_line = next((line.strip() for line in template.splitlines() if line.strip()), "")
    if first_line:
        shown = escape(_line(first_line).replace("`", "'"))  # inside `…`: a backtick would end it
        blocks.append(_context(TEMPLATE_LINE.format(first_line=shown)))
    return _unfurl([*blocks, *_review_blocks(review)])


def build_not_found_unfurl(what: str) -> dict[str, Any]:
    """A link to something MLflow does not have (any more): one short line, nothing to act on.
    `what` is mrkdwn already (`RunRef.describe()`: names in backticks)."""
    return _unfurl([_context(NOT_FOUND.format(what=what))])
