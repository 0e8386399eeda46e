"""`/review leaderboard`: an experiment's best runs by a metric, each with a Review button. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.compare.blocks import name_list
from bot.compare.rules import differing_params, format_value
from bot.ids import COMMAND, ActionId
from bot.models import Direction, RunSummary
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape, link, truncate
from bot.slack.values import run_value

# --- /review leaderboard ----------------------------------------------------------------------------

LEADERBOARD_HEADER = "Leaderboard: {experiment}"
LEADERBOARD_TEXT = "Leaderboard of {experiment} by {metric}"
LEADERBOARD_CONTEXT = "Top {n} runs by `{metric}`, {way} · {experiment}"
LEADERBOARD_ROW = "*{rank}.* {run} · `{metric}` *{value}*"
REVIEW_BUTTON = "Review"
ROW_PARAMS = 3
WAYS = {
    Direction.MAX: "higher is better",
    Direction.MIN: "lower is better",
    Direction.NEUTRAL: "as logged",
    Direction.UNKNOWN: "as logged",  # never ranked: the service asks for a direction first
}
UNKNOWN_EXPERIMENT = (
    ":mag: MLflow has no experiment named or numbered `{name}`. Check the name in the MLflow UI "
    "(names are case-sensitive; put a name with spaces in quotes)."
)
NO_RUNS = ":open_file_folder: Experiment `{name}` has no runs yet, so there is nothing to rank."
NO_METRIC_GIVEN = (
    ":thinking_face: Which metric? `PRIMARY_METRIC` is not set, so name one: "
    f"`{COMMAND} leaderboard {{name}} <metric>`. Metrics logged in `{{name}}`: {{metrics}}."
)
NO_DIRECTION = (
    ":thinking_face: Which way is better for `{metric}`? The bot does not know, and ranking by a guess could "
    "put the worst run first, so nothing was posted. Say it with the metric: "
    f"`{COMMAND} leaderboard {{name}} {{metric}}:max` (higher is better) or `{{metric}}:min` (lower is "
    "better); `METRIC_DIRECTIONS` sets it for good."
)
UNKNOWN_METRIC = ":mag: No run in `{name}` logged `{metric}`. Metrics logged there: {metrics}."
NO_METRICS_AT_ALL = "_none_"


def build_leaderboard(
    experiment_name: str,
    experiment_url: str,
    metric: str,
    direction: Direction,
    runs: Sequence[RunSummary],
) -> SlackMessage:
    """Rank, run linked to MLflow, the metric, the params that set the runs apart, a Review button."""
    key_params = differing_params([r.params for r in runs])[:ROW_PARAMS]
    experiment = link(experiment_url, experiment_name) if experiment_url else f"`{escape(experiment_name)}`"
    blocks: list[dict] = [
        HeaderBlock(
            text=PlainTextObject(
                text=truncate(LEADERBOARD_HEADER.format(experiment=experiment_name), limits.HEADER_TEXT),
                emoji=False,
            )
        ).to_dict(),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=truncate(
                        LEADERBOARD_CONTEXT.format(
                            n=len(runs), metric=escape(metric), way=WAYS[direction], experiment=experiment
                        ),
                        limits.SECTION_TEXT,
                    )
                )
            ]
        ).to_dict(),
    ]
    for rank, run in enumerate(runs, start=1):
        name = link(run.run_url, run.run_name) if run.run_url else f"`{escape(run.run_name)}`"
        line = LEADERBOARD_ROW.format(
            rank=rank, run=name, metric=escape(metric), value=format_value(run.metrics[metric])
        )
        params = [
            f"{escape(k)}=`{escape(truncate(run.params[k], 40))}`" for k in key_params if k in run.params
        ]
        if params:
            line += " · " + ", ".join(params)
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=truncate(line, limits.SECTION_TEXT)),
                accessory=ButtonElement(
                    text=REVIEW_BUTTON,
                    action_id=ActionId.LEADERBOARD_REVIEW,
                    value=run_value(run.run_id, run.experiment_id),
                ),
            ).to_dict()
        )
    text = LEADERBOARD_TEXT.format(experiment=experiment_name, metric=metric)
    return SlackMessage(text=truncate(escape(text), limits.MESSAGE_TEXT), blocks=blocks)


def metric_names(keys: Sequence[str]) -> str:
    return name_list(list(keys)) if keys else NO_METRICS_AT_ALL
