"""The card's Baseline field: which run the review compares with, and why that one. Pure."""

from __future__ import annotations

from bot.models import Baseline, BaselineReason
from bot.slack.mrkdwn import escape, link

BASELINE_FIELD = "Baseline"
BASELINE_LINES = {
    BaselineReason.REQUESTED: "vs {run}, chosen with `--baseline`",
    BaselineReason.DEPLOYED: "vs {alias} {model}, the version it would replace ({run})",
    BaselineReason.BEST_SIBLING: "vs {run}, the best sibling in sweep {parent} by `{metric}`",
    BaselineReason.NEXT_BEST_SIBLING: (
        "vs {run}, the second best in sweep {parent} by `{metric}` (this run is the best)"
    ),
    BaselineReason.PARENT: "vs parent run {run}",
    BaselineReason.BEST_EARLIER: "vs {run}, the best earlier run by `{metric}`",
}
NO_BASELINE = "_none: no deployed version, parent run or earlier run to compare with_"
NO_BASELINE_NO_PRIMARY = (
    "_none: no deployed version or parent run (set `PRIMARY_METRIC` to compare with the best earlier run)_"
)
NO_BASELINE_UNRANKED = (
    "_none: no deployed version or parent run, and no best earlier run: which way `{metric}` improves is "
    "not known (set `PRIMARY_METRIC={metric}:max` or `:min`)_"
)


NOTHING_DEPLOYED = "_none: no other version is under a deployment alias (`DEPLOYMENT_ALIASES`)_"
DEPLOYED_VERSION = "vs {alias} {model}, the version it would replace"


def build_baseline_line(baseline: Baseline) -> str:
    """ "vs champion fraud-clf v3, the version it would replace (run)": which run, and why that one.
    A LoggedModel's or a prompt's baseline is a version with no run: linked to its own page."""
    if baseline.reason is BaselineReason.NOTHING_DEPLOYED:
        return NOTHING_DEPLOYED
    if baseline.reason is BaselineReason.DEPLOYED and not baseline.run_id and baseline.version:
        line = DEPLOYED_VERSION.format(
            alias=escape(baseline.alias), model=escape(f"{baseline.model_name} v{baseline.version}")
        )
        return f"{line} ({link(baseline.run_url, 'open')})" if baseline.run_url else line
    if baseline.reason is BaselineReason.NONE or not baseline.run_id:
        if baseline.metric and baseline.unranked:
            return NO_BASELINE_UNRANKED.format(metric=escape(baseline.metric.replace("`", "'")))
        return NO_BASELINE if baseline.metric else NO_BASELINE_NO_PRIMARY
    name = baseline.run_name or baseline.run_id
    run = link(baseline.run_url, name) if baseline.run_url else f"`{escape(name)}`"
    parent = baseline.parent_name or "?"
    return BASELINE_LINES[baseline.reason].format(
        run=run,
        parent=link(baseline.parent_url, parent) if baseline.parent_url else f"`{escape(parent)}`",
        alias=escape(baseline.alias),
        model=escape(f"{baseline.model_name} v{baseline.version}"),
        metric=escape(baseline.metric),
    )
