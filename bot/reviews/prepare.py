"""Preparing a review: MLflow in, the card and its thread out, as values (no Slack).

`ReviewPreparer` is what `review-bot preview` runs; `bot.reviews.publish` sends what it makes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bot import charts
from bot.compare.baseline import BaselineFinder
from bot.compare.blocks import OVERLAY_COMMENT, OVERLAY_TITLE, build_baseline_comparison, build_chart_upload
from bot.envelope import Envelope
from bot.errors import BadReference, MlflowRefused, MlflowUnavailable, ReviewBotError, log_unexpected
from bot.logged_models.blocks import build_logged_model_thread
from bot.mlflow.artifacts import Artifacts
from bot.mlflow.histories import Histories, finished_runs
from bot.mlflow.registry import Registry
from bot.mlflow.runs import Runs
from bot.mlflow.subjects import SubjectReader
from bot.models import (
    Baseline,
    BaselineReason,
    Direction,
    LoggedModelInfo,
    PromptInfo,
    ReviewState,
    RunRef,
    RunSummary,
    SubjectKind,
)
from bot.prompts.blocks import build_prompt_thread
from bot.request_ids import ContextThreadPoolExecutor
from bot.reviews.card import CardLayout, build_review_card, plan_card
from bot.reviews.plots import plan_plots
from bot.reviews.thread import (
    CHART_FAILED,
    CHART_TITLE,
    NO_HISTORY,
    build_chart_comment,
    build_note_continuation,
    build_overflow,
    build_plots_comment,
)
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape
from bot.slack.outbox import FileUpload, ThreadItem, UploadFile
from bot.subjects import describe
from bot.sweeps.blocks import build_sweep_children
from bot.sweeps.rules import SweepRanking, sweep_summary
from bot.sweeps.service import SweepReader

log = logging.getLogger(__name__)
T = TypeVar("T")

# Said first in the thread when a read made after the card was posted failed: the card stands without it.
BASELINE_FOR_RUNS = (
    ":thinking_face: `--baseline` compares runs; {what} has no run. Its card compares it with the version "
    "under a deployment alias. Nothing was posted."
)
REGISTRY_NOT_READ = (
    ":warning: The card shows no registered model version of this run: the model registry could not be "
    "read ({why}). Ask for the review again to retry."
)
BASELINE_NOT_READ = (
    ":warning: This review has no baseline: it could not be looked up ({why}). The card names none and "
    "marks no param as different; ask for the review again to retry."
)
SWEEP_NOT_READ = ":warning: The sweep's child runs could not be read ({why}), so they are not listed."
MLFLOW_SILENT = "MLflow at `{uri}` did not answer"
MLFLOW_REFUSED = "MLflow at `{uri}` refused the bot's account, HTTP {status}"
UNEXPECTED_WHY = "an unexpected error, id {error_id}"


CHART_PANELS = 12  # panels in the run's history chart and in its overlay with the baseline


@dataclass(frozen=True)
class PreparedCard:
    """A card and what its thread needs. `complete` is False for the card posted as soon as the run is
    read (`ReviewPreparer.first_card`): no model versions, baseline or sweep yet."""

    summary: RunSummary
    layout: CardLayout
    card: SlackMessage
    sweep: SweepRanking | None = None  # a sweep's parent: its children, for the thread
    requested_by: str = ""
    complete: bool = True
    baseline_summary: RunSummary | None = None  # the baseline run as read for this card
    notes: tuple[str, ...] = ()  # what could not be read, said first in the thread
    baseline_params: Mapping[str, str] | None = field(default=None, repr=False)
    # the run's own histories, read from when the run is read (`first_card`) while the card is
    # posted and completed; None: read them when the thread needs them
    histories: Future[dict[str, list[Envelope]]] | None = field(default=None, repr=False, compare=False)
    baseline_model: LoggedModelInfo | None = None  # a LoggedModel's baseline: the deployed version's model


class ReviewPreparer:
    def __init__(
        self,
        runs: Runs,
        histories: Histories,
        artifacts: Artifacts,
        baselines: BaselineFinder,
        *,
        key_metrics: list[str],
        max_images: int,
        max_image_bytes: int,
        required_approvals: int = 1,
        metric_directions: dict[str, Direction] | None = None,
        sweeps: SweepReader | None = None,
        registry: Registry,
        primary_metric: str | None = None,
    ) -> None:
        self.runs = runs
        self.registry = registry  # the run's model versions, read after the card is out
        self.histories = histories
        self.artifacts = artifacts
        self.baselines = baselines
        self.key_metrics = key_metrics
        self.max_images = max_images
        self.max_image_bytes = max_image_bytes
        self.required_approvals = required_approvals
        self.metric_directions = metric_directions or {}
        # Chart panels named first: REVIEW_KEY_METRICS, then PRIMARY_METRIC.
        self.chart_first: Sequence[str] = [*key_metrics, *([primary_metric] if primary_metric else [])]
        self.sweeps = sweeps
        # The run's histories are read as soon as the run is, so its chart need not wait for the card.
        self._history_reads = ContextThreadPoolExecutor(max_workers=2, thread_name_prefix="review-histories")

    def card(self, ref: RunRef, requested_by: str, baseline: RunRef | None = None) -> PreparedCard:
        """The complete card (what `review-bot preview` writes): `first_card`, then `complete`."""
        return self.complete(self.first_card(ref, requested_by, baseline))

    def first_card(self, ref: RunRef, requested_by: str, baseline: RunRef | None = None) -> PreparedCard:
        """The card as soon as the run is read: one `get_run` (the experiment's name is mostly in memory),
        so it is posted at about the cost of a `get_run` and a `chat.postMessage`. A baseline asked for
        with `--baseline` is looked up here, so a wrong one posts nothing (NotFound or BadReference)."""
        summary = self.runs.run_summary(self.runs.resolve(ref), with_model_versions=False)
        if summary.kind is not SubjectKind.RUN:  # a LoggedModel, model version or prompt without a run
            if baseline is not None:
                raise BadReference(BASELINE_FOR_RUNS.format(what=describe(summary.run_id)))
            return self._prepared(summary, requested_by, complete=False)
        chosen = self.baselines.choose(summary, baseline) if baseline is not None else None
        histories = self._history_reads.submit(self._histories, [summary], summary.metrics)
        return self._prepared(
            summary.model_copy(update={"baseline": chosen}), requested_by, complete=False, histories=histories
        )

    def complete(self, first: PreparedCard) -> PreparedCard:
        """The card with what `first_card` left out: the run's model versions, its baseline (with the
        baseline's params, to mark what differs) and, for a sweep's parent, its children; the registry,
        the baseline and the sweep are read in parallel. A failed read never raises: the card goes
        without that part (a baseline that cannot be read is no baseline), and the thread says why."""
        if first.complete:
            return first
        if first.summary.kind is not SubjectKind.RUN:
            return self._complete_subject(first)
        summary, notes = first.summary, list(first.notes)
        with ContextThreadPoolExecutor(max_workers=4, thread_name_prefix="review-card") as pool:
            sweep_read = pool.submit(self.sweeps.sweep_of, summary) if self.sweeps else None
            versions_read = pool.submit(self.registry.model_versions_of, summary.run_id)
            # the LoggedModels the run logged (MLflow 3); none when they cannot be read
            models_read = pool.submit(self.runs.run_models, summary.run_id, summary.experiment_id)
            chosen = summary.baseline  # asked for with --baseline; else chosen while the registry is read,
            # as for a run without model versions, and again for one with (what it would replace comes first)
            chosen_read = pool.submit(self.baselines.choose, summary) if chosen is None else None
            baseline_read = self._submit_baseline(pool, chosen)
            versions = self._wait(versions_read, REGISTRY_NOT_READ, notes, summary.run_id)
            summary = summary.model_copy(
                update={"model_versions": versions or [], "run_models": models_read.result()}
            )
            if chosen_read is not None:
                if versions and self.baselines.deployment_aliases:
                    chosen_read = pool.submit(self.baselines.choose, summary)
                chosen = self._wait(chosen_read, BASELINE_NOT_READ, notes, summary.run_id)
                baseline_read = self._submit_baseline(pool, chosen)
            baseline_summary = None
            if baseline_read is not None:
                found = self._wait(baseline_read, BASELINE_NOT_READ, notes, summary.run_id)
                baseline_summary = found[0] if found else None
                chosen = chosen if found else None
            summary = summary.model_copy(update={"baseline": chosen})
            sweep, sweep_failed = None, False
            if sweep_read is not None:
                before = len(notes)
                sweep = self._wait(sweep_read, SWEEP_NOT_READ, notes, summary.run_id)
                sweep_failed = len(notes) > before
        if sweep_read is not None and not sweep_failed:  # else the card keeps what the run's tags say
            summary = summary.model_copy(update={"sweep": sweep_summary(sweep) if sweep else None})
        return self._prepared(
            summary,
            first.requested_by,
            complete=True,
            baseline_summary=baseline_summary,
            sweep=sweep,
            notes=tuple(notes),
            histories=first.histories,
        )

    def _complete_subject(self, first: PreparedCard) -> PreparedCard:
        """A LoggedModel's or a prompt version's card, with its baseline: the version now under a
        deployment alias (its LoggedModel; the prompt version, to diff against)."""
        summary, notes = first.summary, list(first.notes)
        baseline, baseline_model = None, None
        aliases = self.baselines.deployment_aliases
        try:
            if summary.kind is SubjectKind.LOGGED_MODEL and summary.logged_model is not None:
                found = self._subjects().logged_models.deployed_baseline(summary.logged_model, aliases)
                baseline = Baseline(reason=BaselineReason.NOTHING_DEPLOYED)
                if found is not None:
                    version, baseline_model = found
                    baseline = _deployed(
                        version.name, version.version, version.aliases, aliases, baseline_model
                    )
            elif summary.kind is SubjectKind.PROMPT_VERSION and summary.prompt is not None:
                prompt = summary.prompt
                deployed = self._subjects().prompts.deployed(prompt.name, aliases, prompt.version)
                baseline = Baseline(reason=BaselineReason.NOTHING_DEPLOYED)
                if deployed is not None:
                    baseline = _deployed(deployed.name, deployed.version, deployed.aliases, aliases, deployed)
                summary = summary.model_copy(update={"prompt_baseline": deployed})
        except ReviewBotError as exc:
            log.warning("the baseline of %s could not be read: %s", summary.run_id, exc)
            notes.append(BASELINE_NOT_READ.format(why=_why(exc)))
        prepared = self._prepared(
            summary.model_copy(update={"baseline": baseline}),
            first.requested_by,
            complete=True,
            notes=tuple(notes),
        )
        return replace(prepared, baseline_model=baseline_model)

    def _subjects(self) -> SubjectReader:
        assert self.runs.subjects is not None, "MLflow 3's readers are built by bot.mlflow.connect"
        return self.runs.subjects

    def _submit_baseline(
        self, pool: ThreadPoolExecutor, baseline: Baseline | None
    ) -> Future[list[RunSummary]] | None:
        """Read the baseline run (for its params on the card, and the comparison in the thread)."""
        if baseline is None or not baseline.run_id:
            return None
        return pool.submit(self.runs.compared_summaries, [baseline.run_id])

    def rendered(self, prepared: PreparedCard, review: ReviewState | None) -> SlackMessage:
        """The prepared card showing `review` (the request as just recorded, with any votes on it)."""
        summary = prepared.summary.model_copy(update={"review": review})
        return self._build(summary, prepared.requested_by, prepared.baseline_params)

    def _prepared(
        self,
        summary: RunSummary,
        requested_by: str,
        *,
        complete: bool,
        baseline_summary: RunSummary | None = None,
        sweep: SweepRanking | None = None,
        notes: tuple[str, ...] = (),
        histories: Future[dict[str, list[Envelope]]] | None = None,
    ) -> PreparedCard:
        params = baseline_summary.params if baseline_summary is not None else None
        return PreparedCard(
            summary,
            plan_card(summary, self.key_metrics, params),
            self._build(summary, requested_by, params, completing=not complete),
            sweep,
            requested_by=requested_by,
            complete=complete,
            baseline_summary=baseline_summary,
            notes=notes,
            baseline_params=params,
            histories=histories,
        )

    def _build(
        self,
        summary: RunSummary,
        requested_by: str,
        baseline_params: Mapping[str, str] | None,
        *,
        completing: bool = False,
    ) -> SlackMessage:
        return build_review_card(
            summary,
            requested_by=requested_by,
            key_metrics=self.key_metrics,
            required_approvals=self.required_approvals,
            baseline_params=baseline_params,
            completing=completing,
        )

    @staticmethod
    def _wait(read: Future[T], note: str, notes: list[str], run_id: str) -> T | None:
        """A read's result, or None with `note` (why it failed) added for the thread."""
        try:
            return read.result()
        except ReviewBotError as exc:
            log.warning("a read for the card of run %s failed: %s", run_id, exc)
            notes.append(note.format(why=_why(exc)))
        except Exception as exc:  # the card is out: a bug here must not leave it half done
            error_id = log_unexpected(log, f"a read for the card of run {run_id}", exc)
            notes.append(note.format(why=UNEXPECTED_WHY.format(error_id=error_id)))
        return None

    def thread(self, prepared: PreparedCard) -> Iterator[ThreadItem]:
        """Thread items, most useful first, each made only when the previous one is sent."""
        for note in prepared.notes:
            yield SlackMessage(text=note)
        summary = prepared.summary
        if summary.kind is SubjectKind.PROMPT_VERSION and summary.prompt is not None:
            yield from build_prompt_thread(summary.prompt, summary.prompt_baseline)
            return
        if summary.kind is SubjectKind.LOGGED_MODEL and summary.logged_model is not None:
            deployed = summary.baseline
            label = (
                escape(f"{deployed.alias} {deployed.model_name} v{deployed.version}".strip())
                if deployed is not None and deployed.version
                else ""
            )
            yield from build_logged_model_thread(
                summary.logged_model, prepared.baseline_model, label, self.metric_directions
            )
            return
        if summary.kind is not SubjectKind.RUN:
            return
        baseline = summary.baseline
        baseline_summary = prepared.baseline_summary
        # The run's own histories first, so its chart does not wait for the baseline's (read whole too,
        # unless cached) for the overlay.
        if prepared.histories is not None:
            histories = dict(prepared.histories.result())  # a failed read raises here, as it would below
        else:
            histories = self._histories([summary], summary.metrics)
        yield self._chart(summary, histories[summary.run_id])
        if baseline is not None and baseline_summary is not None:
            yield from build_baseline_comparison(
                summary, baseline_summary, baseline, self.metric_directions, self.key_metrics
            )
            shared = [key for key in summary.metrics if key in baseline_summary.metrics]
            histories |= self._histories([baseline_summary], shared)
            overlay = self._overlay(summary, baseline_summary, histories)
            if overlay is not None:
                yield overlay
        if prepared.sweep is not None:
            yield build_sweep_children(prepared.sweep)
        plots = self._plots(summary)
        if plots is not None:
            yield plots
        yield from build_note_continuation(prepared.layout, summary)
        yield from build_overflow(prepared.layout, summary)

    def _histories(self, runs: Sequence[RunSummary], keys: Sequence[str]) -> dict[str, list[Envelope]]:
        """Envelopes of the runs' histories: whole for what the chart draws, cached once finished."""
        return self.histories.envelopes(
            [run.run_id for run in runs],
            keys,
            width=charts.HISTORY_WIDTH_PX,
            finished=finished_runs(runs),
            full=lambda logged: charts.charted_keys(logged, self.chart_first, CHART_PANELS),
            last_steps={run.run_id: run.metric_steps for run in runs},
        )

    def _chart(self, summary: RunSummary, histories: list[Envelope]) -> ThreadItem:
        title = CHART_TITLE.format(run=summary.run_name)
        chart = charts.render_metric_history(
            histories, title=title, max_panels=CHART_PANELS, first=self.chart_first
        )
        if chart.png is None:
            # Never "nothing to chart" when a chart was due and failed.
            return SlackMessage(text=CHART_FAILED if chart.failed else NO_HISTORY)
        return FileUpload(
            name="metric chart",
            comment=build_chart_comment(len(chart.panels), chart.omitted, chart.sampled, chart.nonfinite),
            files=[UploadFile(filename="metric-history.png", title=title, content=chart.png)],
        )

    def _overlay(
        self, summary: RunSummary, baseline: RunSummary, histories: dict[str, list[Envelope]]
    ) -> FileUpload | None:
        """Both runs' histories of the metrics they share, the baseline dashed; None if none has a history."""
        shared = set(summary.metrics) & set(baseline.metrics)
        title = OVERLAY_TITLE.format(run=summary.run_name, baseline=baseline.run_name)
        chart = charts.render_overlay(
            [
                charts.ComparedSeries(
                    summary.run_name, [s for s in histories[summary.run_id] if s.key in shared]
                ),
                charts.ComparedSeries(
                    f"baseline: {baseline.run_name}",
                    [s for s in histories.get(baseline.run_id, []) if s.key in shared],
                ),
            ],
            title=title,
            max_panels=CHART_PANELS,
            dashed_last=True,
            first=self.chart_first,
        )
        return build_chart_upload("baseline chart", OVERLAY_COMMENT, chart, "vs-baseline.png", title)

    def _plots(self, summary: RunSummary) -> FileUpload | None:
        """The run's images (bot.reviews.plots says which and in which order), with a comment naming
        every one that is not uploaded."""
        plan = plan_plots(self.artifacts.list_images(summary.run_id), self.max_images, self.max_image_bytes)
        if not (plan.upload or plan.too_big or plan.too_deep or plan.not_shown or plan.unlisted):
            return None
        files = []
        for plot in plan.upload:
            content = self.artifacts.download_artifact(summary.run_id, plot.artifact.path)
            if len(content) > self.max_image_bytes:  # the store did not report a size
                plan = plan.without(plot)
                continue
            files.append(UploadFile(filename=plot.filename, title=plot.title, content=content))
        return FileUpload(name="plots", comment=build_plots_comment(plan, self.max_image_bytes), files=files)


def _deployed(
    name: str,
    version: str,
    on_it: list[str],
    deployment_aliases: list[str],
    found: LoggedModelInfo | PromptInfo,
) -> Baseline:
    """The baseline of a LoggedModel or a prompt: the version under a deployment alias, named by it."""
    wanted = [a for a in deployment_aliases if a.lower() in {x.lower() for x in on_it}]
    return Baseline(
        reason=BaselineReason.DEPLOYED,
        model_name=name,
        version=version,
        alias=f"@{wanted[0]}" if wanted else "",
        model_id=found.model_id if isinstance(found, LoggedModelInfo) else "",
        run_name=found.name if isinstance(found, LoggedModelInfo) else f"{name} v{version}",
        run_url=found.url,
    )


def _why(exc: ReviewBotError) -> str:
    """A failed read, in a few words for the thread (the error's own text says "nothing was posted")."""
    if isinstance(exc, MlflowUnavailable):
        return MLFLOW_SILENT.format(uri=exc.tracking_uri)
    if isinstance(exc, MlflowRefused):
        return MLFLOW_REFUSED.format(uri=exc.tracking_uri, status=exc.status)
    return exc.user_message()
