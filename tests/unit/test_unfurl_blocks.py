"""bot.unfurls.blocks: every unfurl compared by value, escaped, within Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.ids import UnfurlActionId
from bot.models import (
    Baseline,
    BaselineReason,
    Direction,
    LoggedModelInfo,
    ModelMetric,
    PromptInfo,
    ReviewState,
    ReviewStatus,
    RunSummary,
    SubjectKind,
    Via,
    Vote,
)
from bot.slack.values import RefValue, parse_value
from bot.unfurls import blocks as b
from bot.unfurls.rules import ExperimentShown, ReviewShown, VersionShown
from tests.slack_api_server import validate_blocks

UI = "https://mlflow.example.com"
RUN = "0123456789abcdef0123456789abcdef"
BASE = "f" * 32
URL = f"{UI}/#/experiments/3/runs/{RUN}"
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CARD = "https://acme.slack.com/archives/C0REVIEW/p1772443800000100"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def fields(*texts: str) -> dict[str, Any]:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": t} for t in texts]}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def review_button(ref: str, label: str = b.REVIEW_LABEL) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": UnfurlActionId.REVIEW.value,
                "text": {"type": "plain_text", "text": label, "emoji": True},
                "value": json.dumps({"ref": ref}, separators=(",", ":")),
                "style": "primary",
            }
        ],
    }


def card_button(url: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": UnfurlActionId.OPEN_CARD.value,
                "text": {"type": "plain_text", "text": b.OPEN_CARD_LABEL, "emoji": True},
                "url": url,
            }
        ],
    }


def vote(user: str, name: str) -> Vote:
    return Vote(user=user, name=name, at=AT, via=Via.BUTTON)


def run_summary(**changes: Any) -> RunSummary:
    values: dict[str, Any] = {
        "run_id": RUN,
        "run_name": "gbm <v2>",
        "experiment_id": "3",
        "experiment_name": "fraud & co",
        "user": "ana.lopez",
        "status": "FINISHED",
        "metrics": {"val_auc": 0.95, "val_loss": 0.2, "epoch": 9.0, "extra": 1.0},
        "run_url": URL,
        "experiment_url": f"{UI}/#/experiments/3",
    }
    return RunSummary(**{**values, **changes})


def assert_valid(unfurl: dict[str, Any]) -> None:
    assert set(unfurl) == {"blocks"}
    assert len(unfurl["blocks"]) <= b.UNFURL_BLOCKS
    assert validate_blocks(unfurl["blocks"]) == []


# --- runs ---------------------------------------------------------------------------------------------


def test_a_run_with_its_baseline_and_a_pending_review_waiting_on_two() -> None:
    baseline = Baseline(
        reason=BaselineReason.BEST_EARLIER,
        run_id=BASE,
        run_name="logreg",
        run_url=f"{UI}/r",
        metric="val_auc",
    )
    summary = run_summary(
        baseline=baseline,
        review=ReviewState(run_id=RUN, approvals=[vote("U0BO", "Bo <Chen>")], slack_permalink=""),
    )
    shown = ReviewShown(
        subject=RUN, review=summary.review, required_approvals=2, waiting_on=("U0DAN", "U0CAROL")
    )
    unfurl = b.build_run_unfurl(
        URL,
        summary,
        shown,
        ["val_auc", "val_loss", "epoch", "extra"],
        baseline_metrics={"val_auc": 0.9, "val_loss": 0.25, "epoch": 9.0},
        directions={"extra": Direction.MAX},
    )
    assert unfurl == {
        "blocks": [
            section(
                f"*Run <{URL}|gbm &lt;v2&gt;>*\n"
                f"<{UI}/#/experiments/3|fraud &amp; co> · Finished · by ana.lopez"
            ),
            fields(
                "*val_auc*\n`0.95` · +0.05 (+5.6%), better vs the baseline",
                "*val_loss*\n`0.2` · -0.05 (-20%), better vs the baseline",
                "*epoch*\n`9` · as the baseline",
                "*extra*\n`1`",  # the baseline did not log it
            ),
            context(f"Baseline: vs <{UI}/r|logreg>, the best earlier run by `val_auc`"),
            context(
                ":hourglass_flowing_sand: Review pending · 1/2 approvals · waiting on <@U0DAN>, <@U0CAROL>"
            ),
            review_button(RUN),
        ]
    }
    assert_valid(unfurl)


def test_a_run_never_reviewed_and_without_baseline_or_metrics() -> None:
    summary = run_summary(metrics={}, status="RUNNING", user="", experiment_url="")
    unfurl = b.build_run_unfurl(URL, summary, ReviewShown(subject=RUN, review=None), [])
    assert unfurl == {
        "blocks": [
            section(f"*Run <{URL}|gbm &lt;v2&gt;>*\nfraud &amp; co · Running · by _unknown_"),
            context(b.NO_METRICS),
            context(b.NOT_REVIEWED),
            review_button(RUN),
        ]
    }


def test_an_unjudged_metric_says_so_and_a_logged_model_page_says_it_is_reviewed_as_its_run() -> None:
    summary = run_summary(metrics={"mystery": 2.0})
    unfurl = b.build_run_unfurl(
        URL,
        summary,
        ReviewShown(subject=RUN, review=None),
        ["mystery"],
        baseline_metrics={"mystery": 1.0},
        logged_model_id="m-" + "a" * 32,
    )
    assert unfurl["blocks"][0]["text"]["text"].endswith(
        "\n" + b.FROM_LOGGED_MODEL.format(model_id="m-" + "a" * 32)
    )
    assert unfurl["blocks"][1] == fields("*mystery*\n`2` · +1 (+100%), not judged vs the baseline")


def test_a_posted_card_is_linked_instead_of_the_review_button() -> None:
    review = ReviewState(
        run_id=RUN,
        status=ReviewStatus.APPROVED,
        approvals=[vote(f"U{i}", f"Person {i}") for i in range(7)],
        slack_permalink=CARD,
    )
    unfurl = b.build_run_unfurl(URL, run_summary(review=review), ReviewShown(subject=RUN, review=review), [])
    names = ", ".join(f"Person {i}" for i in range(5))
    assert unfurl["blocks"][-2:] == [
        context(f":white_check_mark: Approved by {names} and 2 more"),
        card_button(CARD),
    ]


def test_changes_requested_and_an_untrusted_record() -> None:
    changes = ReviewState(
        run_id=RUN,
        status=ReviewStatus.CHANGES_REQUESTED,
        change_requests=[vote("U0BO", "Bo")],
        slack_permalink=CARD,
    )
    assert b.build_review_status(ReviewShown(subject=RUN, review=changes)) == ":x: Changes requested by Bo"
    forged = changes.model_copy(
        update={"untrusted": "no signature", "slack_permalink": "https://evil.example"}
    )
    unfurl = b.build_run_unfurl(URL, run_summary(), ReviewShown(subject=RUN, review=forged), [])
    assert unfurl["blocks"][-2:] == [context(b.UNTRUSTED), review_button(RUN)]


def test_the_review_buttons_value_is_read_back_by_the_middleware() -> None:
    button = b.build_review_button(ReviewShown(subject="m-" + "b" * 32, review=None))
    assert button is not None
    parsed = parse_value(UnfurlActionId.REVIEW.value, button.value)
    assert parsed == RefValue(ref="models:/m-" + "b" * 32)


def test_no_review_button_for_a_reference_too_long_for_a_button() -> None:
    subject = "models:/" + "x" * 2000 + "/1"
    assert b.build_review_button(ReviewShown(subject=subject, review=None)) is None
    summary = run_summary(run_id=subject, kind=SubjectKind.MODEL_VERSION, metrics={})
    unfurl = b.build_model_unfurl(URL, summary, ReviewShown(subject=subject, review=None), [])
    assert unfurl["blocks"][-1] == context(b.NOT_REVIEWED)


# --- experiments --------------------------------------------------------------------------------------


def experiment(**changes: Any) -> ExperimentShown:
    values: dict[str, Any] = {
        "experiment_id": "3",
        "name": "fraud <detection>",
        "url": f"{UI}/#/experiments/3",
        "runs": 42,
        "metric": "val_auc",
        "direction": Direction.MAX,
        "best": run_summary(),
    }
    return ExperimentShown(**{**values, **changes})


EXP_URL = f"{UI}/#/experiments/3"


def test_an_experiment_with_its_best_run_by_the_primary_metric() -> None:
    unfurl = b.build_experiment_unfurl(EXP_URL, experiment())
    assert unfurl == {
        "blocks": [
            section(f"*Experiment <{EXP_URL}|fraud &lt;detection&gt;>*\n42 runs"),
            section(f"Best run by `val_auc` (higher is better): <{URL}|gbm &lt;v2&gt;> · `0.95`"),
            review_button(RUN, b.REVIEW_BEST_LABEL),
        ]
    }
    assert_valid(unfurl)


def test_an_experiment_never_ranks_by_a_metric_of_unknown_direction() -> None:
    for direction in (None, Direction.UNKNOWN, Direction.NEUTRAL):
        unfurl = b.build_experiment_unfurl(EXP_URL, experiment(direction=direction, metric="score`x"))
        assert unfurl["blocks"][1:] == [context(b.UNRANKED.format(metric="score'x"))]


def test_an_experiment_without_primary_metric_runs_or_a_run_that_logged_it() -> None:
    title = f"*Experiment <{EXP_URL}|fraud &lt;detection&gt;>*"
    assert b.build_experiment_unfurl(EXP_URL, experiment(metric="", direction=None))["blocks"] == [
        section(f"{title}\n42 runs"),
        context(b.NO_PRIMARY_METRIC),
    ]
    assert b.build_experiment_unfurl(EXP_URL, experiment(runs=0, best=None))["blocks"] == [
        section(f"{title}\n{b.NO_RUNS}")
    ]
    assert b.build_experiment_unfurl(EXP_URL, experiment(runs=1, best=None))["blocks"] == [
        section(f"{title}\n1 run"),
        context(b.NOT_LOGGED.format(metric="val_auc")),
    ]
    capped = b.build_experiment_unfurl(EXP_URL, experiment(runs=200, capped=True))
    assert capped["blocks"][0] == section(f"{title}\n200+ runs")


# --- model versions and LoggedModels ------------------------------------------------------------------


def test_a_model_version_under_an_alias_from_a_run() -> None:
    review = ReviewState(run_id=RUN, slack_permalink=CARD)
    version = VersionShown(
        name="fraud-clf", version="3", aliases=("champion",), status="READY", stage="Production"
    )
    url = f"{UI}/#/models/fraud-clf/versions/3"
    unfurl = b.build_model_unfurl(
        url,
        run_summary(review=review),
        ReviewShown(subject=RUN, review=review, required_approvals=1),
        ["val_auc"],
        version=version,
    )
    assert unfurl == {
        "blocks": [
            section(
                f"*Model <{url}|fraud-clf v3>* `@champion` · Ready · stage Production\n"
                f"From run <{URL}|gbm &lt;v2&gt;> · fraud &amp; co"
            ),
            fields("*val_auc*\n`0.95`"),
            context(":hourglass_flowing_sand: Review pending · 0/1 approvals"),
            card_button(CARD),
        ]
    }
    assert_valid(unfurl)


def logged_model(**changes: Any) -> LoggedModelInfo:
    values: dict[str, Any] = {
        "model_id": "m-" + "c" * 32,
        "name": "support <agent>",
        "experiment_id": "5",
        "experiment_name": "agents",
        "status": "READY",
        "creator": "carol",
        "metrics": [
            ModelMetric(key="answer_correctness", value=0.81, dataset_name="support-eval"),
            ModelMetric(key="latency_p95_s", value=2.4, dataset_name="support-eval"),
        ],
        "url": f"{UI}/#/experiments/5/models/m-{'c' * 32}",
    }
    return LoggedModelInfo(**{**values, **changes})


def test_a_logged_model_without_a_run() -> None:
    info = logged_model()
    summary = run_summary(
        run_id=info.model_id,
        run_name=info.name,
        experiment_name="agents",
        user="carol",
        status="READY",
        kind=SubjectKind.LOGGED_MODEL,
        logged_model=info,
    )
    unfurl = b.build_model_unfurl(
        info.url, summary, ReviewShown(subject=info.model_id, review=None), [], primary="latency_p95_s"
    )
    assert unfurl == {
        "blocks": [
            section(
                f"*Logged model <{info.url}|support &lt;agent&gt;>*\n"
                f"`{info.model_id}` · agents · Ready · by carol"
            ),
            fields("*latency_p95_s (support-eval)*\n`2.4`", "*answer_correctness (support-eval)*\n`0.81`"),
            context(b.NOT_REVIEWED),
            review_button(f"models:/{info.model_id}"),
        ]
    }
    assert_valid(unfurl)


def test_a_version_of_a_logged_model_and_a_version_with_neither() -> None:
    info = logged_model(metrics=[])
    summary = run_summary(run_id=info.model_id, kind=SubjectKind.LOGGED_MODEL, logged_model=info)
    version = VersionShown(name="agent", version="1")
    url = f"{UI}/#/models/agent/versions/1"
    unfurl = b.build_model_unfurl(
        url, summary, ReviewShown(subject=info.model_id, review=None), [], version=version
    )
    assert unfurl["blocks"][:2] == [
        section(f"*Model <{url}|agent v1>*\nFrom logged model <{info.url}|support &lt;agent&gt;>"),
        context(b.NO_METRICS),
    ]
    bare = run_summary(run_id="models:/agent/2", kind=SubjectKind.MODEL_VERSION, metrics={})
    unfurl = b.build_model_unfurl(
        url, bare, ReviewShown(subject="models:/agent/2", review=None), [], version=VersionShown("agent", "2")
    )
    assert unfurl["blocks"] == [
        section(f"*Model <{url}|agent v2>*\n{b.VERSION_ONLY}"),
        context(b.NOT_REVIEWED),
        review_button("models:/agent/2"),
    ]


# --- prompts and nothing ------------------------------------------------------------------------------


def test_a_prompt_version() -> None:
    prompt = PromptInfo(
        name="summarizer",
        version="2",
        template="\n  You are a `careful` <editor>.\nSummarize {{ text }}",
        commit_message="keep numbers\nexact",
        author="ana",
        aliases=["production"],
        url=f"{UI}/#/prompts/summarizer?promptVersion=2",
    )
    summary = run_summary(
        run_id="prompts:/summarizer/2",
        run_name="summarizer v2",
        user="ana",
        kind=SubjectKind.PROMPT_VERSION,
        prompt=prompt,
    )
    unfurl = b.build_prompt_unfurl(prompt.url, summary, ReviewShown(subject=summary.run_id, review=None))
    assert unfurl == {
        "blocks": [
            section(
                f"*Prompt <{UI}/#/prompts/summarizer?promptVersion=2|summarizer v2>* `@production`\n"
                "by ana\n> keep numbers exact"
            ),
            context("`You are a 'careful' &lt;editor&gt;.`"),
            context(b.NOT_REVIEWED),
            review_button("prompts:/summarizer/2"),
        ]
    }
    assert_valid(unfurl)
    chat = prompt.model_copy(update={"template": "", "is_chat": True, "messages": [], "commit_message": ""})
    unfurl = b.build_prompt_unfurl(
        prompt.url,
        summary.model_copy(update={"prompt": chat, "note": ""}),
        ReviewShown(subject="x", review=None),
    )
    assert unfurl["blocks"][0]["text"]["text"].endswith("\nby ana\n" + b.NO_COMMIT_MESSAGE)
    assert len(unfurl["blocks"]) == 3  # no template line


def test_not_found() -> None:
    unfurl = b.build_not_found_unfurl(f"run `{RUN}`")
    assert unfurl == {"blocks": [context(f":mag: Not in MLflow: run `{RUN}` (deleted, or never there).")]}
    assert_valid(unfurl)


def test_long_names_are_cut_and_every_unfurl_stays_within_the_limits() -> None:
    summary = run_summary(run_name="n" * 5000, experiment_name="e" * 5000, user="u" * 5000)
    unfurl = b.build_run_unfurl(URL, summary, ReviewShown(subject=RUN, review=None), ["val_auc"])
    assert_valid(unfurl)
    assert len(unfurl["blocks"][0]["text"]["text"]) < 3 * b.LINE_CHARS + 200
