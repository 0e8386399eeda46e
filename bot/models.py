"""Typed domain values that travel between MLflow, the review rules, the builders and Slack.

Nothing here talks to MLflow or Slack: `bot.mlflow` builds these, builders read them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RefKind(StrEnum):
    RUN = "run"
    MODEL_VERSION = "model_version"  # models:/name/3
    MODEL_ALIAS = "model_alias"  # models:/name@champion
    MODEL_LATEST = "model_latest"  # models:/name/latest: the highest version number
    MODEL_STAGE = "model_stage"  # models:/name/Production: the legacy stages (`stage`)
    LOGGED_MODEL = "logged_model"  # models:/m-<id>: an MLflow 3 LoggedModel (`model_id`)
    PROMPT_VERSION = "prompt_version"  # prompts:/name/2 (`model_name` holds the prompt's name)
    PROMPT_ALIAS = "prompt_alias"  # prompts:/name@production


# The references that name one registered model version (the gate checks the decision covers it).
MODEL_VERSION_REFS = frozenset(
    {RefKind.MODEL_VERSION, RefKind.MODEL_ALIAS, RefKind.MODEL_LATEST, RefKind.MODEL_STAGE}
)


class RunRef(_Frozen):
    """What a person pointed at: a run, a registered model version (by number, alias, `latest` or stage),
    a LoggedModel, or a prompt version (by number or alias). bot.mlflow.runs.Runs.resolve turns it into
    the id of what is reviewed (bot.subjects)."""

    kind: RefKind
    raw: str
    run_id: str | None = None
    model_name: str | None = None  # a registered model's name, or a prompt's
    version: str | None = None
    alias: str | None = None
    stage: str | None = None
    model_id: str | None = None

    def describe(self) -> str:
        if self.kind is RefKind.MODEL_VERSION:
            return f"model `{self.model_name}` version {self.version}"
        if self.kind is RefKind.MODEL_ALIAS:
            return f"model `{self.model_name}` alias @{self.alias}"
        if self.kind is RefKind.MODEL_LATEST:
            return f"the latest version of model `{self.model_name}`"
        if self.kind is RefKind.MODEL_STAGE:
            return f"model `{self.model_name}` in stage {self.stage}"
        if self.kind is RefKind.LOGGED_MODEL:
            return f"logged model `{self.model_id}`"
        if self.kind is RefKind.PROMPT_VERSION:
            return f"prompt `{self.model_name}` version {self.version}"
        if self.kind is RefKind.PROMPT_ALIAS:
            return f"prompt `{self.model_name}` alias @{self.alias}"
        return f"run `{self.run_id}`"


class MetricSeries(_Frozen):
    """One metric's history, ordered by step."""

    key: str
    steps: list[int]
    values: list[float]


class DatasetInput(_Frozen):
    name: str
    digest: str = ""
    source_type: str = ""
    context: str = ""  # "training", "eval", ... (tag mlflow.data.context)


class ModelVersionRef(_Frozen):
    name: str
    version: str
    aliases: list[str] = Field(default_factory=list)
    stage: str = ""


class ImageArtifact(_Frozen):
    path: str  # relative to the run's artifact root
    size: int  # bytes; -1 when the store does not say


class ArtifactImages(_Frozen):
    """A run's image artifacts as listed, and the folders left unlisted (a listing budget ran out)."""

    images: list[ImageArtifact] = Field(default_factory=list)
    unlisted: list[str] = Field(default_factory=list)


class ReviewStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


class VoteKind(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"


class Via(StrEnum):
    BUTTON = "button"
    REACTION = "reaction"


class Vote(_Frozen):
    user: str  # Slack user id
    name: str
    at: datetime
    via: Via


class VoteClick(_Frozen):
    """One vote as Slack delivered it (a button click, a reaction added or removed), accepted before
    the ack and kept in the store until it is recorded: any replica can finish it."""

    delivery: str  # Slack's identity of this delivery (see bot.slack.dedupe.delivery_id)
    channel: str  # the card's channel and ts
    ts: str
    user: str
    kind: VoteKind
    via: Via
    at: datetime  # Slack's time of the click (action_ts, event_ts): later clicks win
    withdrawing: bool = False
    response_url: str = ""  # where to answer the person (buttons); reactions answer ephemerally


class ReviewState(_Frozen):
    """A run's review as recorded in its MLflow tags (the source of truth)."""

    run_id: str
    status: ReviewStatus = ReviewStatus.PENDING
    approvals: list[Vote] = Field(default_factory=list)
    change_requests: list[Vote] = Field(default_factory=list)
    requested_by: str = ""
    requested_at: datetime | None = None
    decided_at: datetime | None = None
    slack_channel: str = ""
    slack_ts: str = ""
    slack_permalink: str = ""
    # Slack's time of each voter's last click applied (withdrawals too): a click older than it is stale.
    last_click: dict[str, datetime] = Field(default_factory=dict)
    covers: list[str] = Field(default_factory=list)  # "name/version": the model versions decided on
    # Why the recorded decision cannot be trusted ("" when it is signed by review-bot): an untrusted
    # record counts as pending with no votes, whatever its tags say.
    untrusted: str = ""


class Meeting(_Frozen):
    """A review meeting for one run; also kept in the run's review.meeting_* tags."""

    run_id: str
    at: datetime  # aware, UTC
    duration_min: int = 30
    invitees: list[str] = Field(default_factory=list)  # Slack user ids
    agenda: str = ""
    scheduled_by: str = ""
    channel: str = ""  # the card's
    ts: str = ""
    # The calendar event's identity (RFC 5545): one UID for the meeting however often it moves, and a
    # SEQUENCE that grows with every change, so calendars update the event instead of adding another.
    uid: str = ""
    sequence: int = 0


# --- comparisons -----------------------------------------------------------------------------------


class Direction(StrEnum):
    """Which way a metric improves. NEUTRAL metrics (epoch, learning rate) are bookkeeping; UNKNOWN ones
    are metrics the bot cannot tell which way is better (until METRIC_DIRECTIONS says). Neither is ever
    judged better or worse, nor used to pick a best run."""

    MAX = "max"
    MIN = "min"
    NEUTRAL = "neutral"
    UNKNOWN = "unknown"

    @property
    def judged(self) -> bool:
        return self in (Direction.MAX, Direction.MIN)


class MetricGoal(_Frozen):
    """A metric to rank by, e.g. PRIMARY_METRIC=val_auc:max. `direction` None: the naming rules decide."""

    key: str
    direction: Direction | None = None


class BaselineReason(StrEnum):
    """Why a run is the baseline, in the order they are tried (bot.compare.rules.choose_baseline)."""

    REQUESTED = "requested"  # /review <run> --baseline <run>
    DEPLOYED = "deployed"  # the version under a deployment alias of the model this run produced
    # A child of a sweep (tag mlflow.parentRunId): its best sibling by the sweep's metric, or the second
    # best when the run is the best itself; the parent only when it shares a metric with the run.
    BEST_SIBLING = "best_sibling"
    NEXT_BEST_SIBLING = "next_best_sibling"
    PARENT = "parent"  # tag mlflow.parentRunId
    BEST_EARLIER = "best_earlier"  # the best earlier run of the experiment by PRIMARY_METRIC
    NONE = "none"  # looked, found nothing (run_id is "")
    # A LoggedModel without a run or a prompt version: no other version is under a deployment alias
    NOTHING_DEPLOYED = "nothing_deployed"


class Baseline(_Frozen):
    """The run a review compares against; kept in the run's `review.baseline` tag so the card keeps it."""

    reason: BaselineReason
    run_id: str = ""
    run_name: str = ""
    run_url: str = ""
    model_name: str = ""  # DEPLOYED
    model_id: str = ""  # DEPLOYED, for a LoggedModel: the deployed version's LoggedModel
    version: str = ""
    alias: str = ""
    metric: str = ""  # BEST_EARLIER, *_SIBLING: the metric it was best by; NONE: PRIMARY_METRIC or ""
    parent_name: str = ""  # *_SIBLING: the sweep's parent run
    parent_url: str = ""
    # NONE: PRIMARY_METRIC is set but which way it improves is not known (or it is bookkeeping), so no
    # earlier run can be called the best by it.
    unranked: bool = False


class SweepBest(_Frozen):
    """The best child run of a sweep, by `Sweep.metric`."""

    run_id: str
    run_name: str
    run_url: str = ""
    value: float
    params: dict[str, str] = Field(default_factory=dict)  # its values of the params the children vary


class Sweep(_Frozen):
    """A parent run's child runs as its card shows them; kept in the run's `review.sweep` tag so the card
    keeps it (bot.sweeps reads and ranks the children)."""

    children: int  # how many child runs were counted
    more: bool = False  # the count stopped at a cap: there are more
    metric: str = ""  # what decides the best; "" when no metric could (then `best` is None)
    varied: int = 0  # how many params the children vary (`best.params` shows the first few)
    best: SweepBest | None = None


# --- MLflow 3: LoggedModels and prompts -------------------------------------------------------------


class SubjectKind(StrEnum):
    """What a review is of; its id (bot.subjects) says which, and where its decision is recorded."""

    RUN = "run"  # a run id: the run's tags (a model logged from a run is reviewed as its run)
    LOGGED_MODEL = "logged_model"  # "m-…": a LoggedModel with no run: its tags, mirrored on its versions
    MODEL_VERSION = "model_version"  # "models:/name/3": a version with neither run nor LoggedModel
    PROMPT_VERSION = "prompt_version"  # "prompts:/name/2": the prompt version's tags


class ModelMetric(_Frozen):
    """One model-level metric of a LoggedModel (MLflow 3 logs metrics with model_id and dataset)."""

    key: str
    value: float
    step: int = 0
    dataset_name: str = ""  # "" when logged without a dataset
    dataset_digest: str = ""
    run_id: str = ""  # the run that logged it, if any


class LoggedModelInfo(_Frozen):
    """An MLflow 3 LoggedModel as its card shows it."""

    model_id: str  # "m-…"
    name: str
    experiment_id: str = ""
    experiment_name: str = ""
    source_run_id: str = ""  # "" when it was logged outside a run
    model_type: str = ""
    status: str = ""  # READY, PENDING, FAILED
    created: datetime | None = None
    creator: str = ""  # its mlflow.user tag, when set
    params: dict[str, str] = Field(default_factory=dict)
    metrics: list[ModelMetric] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)  # the model's own tags (not mlflow.* or review.*)
    model_versions: list[ModelVersionRef] = Field(default_factory=list)  # registered from it, with aliases
    url: str = ""  # its page in the MLflow UI; "" when no UI is known


class PromptMessage(_Frozen):
    role: str
    content: str


class PromptEvaluation(_Frozen):
    """A run that used a prompt version (MLflow links them: the run's mlflow.linkedPrompts tag)."""

    run_id: str
    run_name: str = ""
    run_url: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)


class PromptInfo(_Frozen):
    """One version of a prompt in MLflow's Prompt Registry."""

    name: str
    version: str
    is_chat: bool = False
    template: str = ""  # a text prompt's template
    messages: list[PromptMessage] = Field(default_factory=list)  # a chat prompt's
    model_config_values: dict[str, str] = Field(default_factory=dict)  # the model config, values as JSON text
    commit_message: str = ""
    author: str = ""
    created: datetime | None = None
    aliases: list[str] = Field(default_factory=list)  # on this version
    tags: dict[str, str] = Field(default_factory=dict)  # the version's own tags (not mlflow.* or review.*)
    url: str = ""
    evaluations: list[PromptEvaluation] = Field(default_factory=list)


class RunSummary(_Frozen):
    """Everything the card and its thread show about what is reviewed: an MLflow run, or (see `kind`) a
    LoggedModel without a run, a model version without either, or a prompt version. `run_id` is then the
    subject's id (bot.subjects), and `logged_model` / `prompt` carry what the card shows."""

    run_id: str
    run_name: str
    experiment_id: str
    experiment_name: str
    user: str = ""
    status: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    source_name: str = ""
    git_commit: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    # each metric's last step, as the run says (MLflow keeps it with the latest value): a history's
    # step range is known without asking the server for a sample first
    metric_steps: dict[str, int] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    note: str = ""
    datasets: list[DatasetInput] = Field(default_factory=list)
    model_versions: list[ModelVersionRef] = Field(default_factory=list)
    run_url: str = ""  # the run's page in the MLflow UI; "" when no UI is known
    experiment_url: str = ""
    review: ReviewState | None = None  # what the run's review.* tags say; None if never reviewed
    meeting: Meeting | None = None  # the review meeting in its review.meeting_* tags, if any
    baseline: Baseline | None = None  # what the card compares with; None when never looked up
    parent_run_id: str = ""  # tag mlflow.parentRunId
    sweep: Sweep | None = None  # a sweep's parent: its children, as the card shows them
    kind: SubjectKind = SubjectKind.RUN
    logged_model: LoggedModelInfo | None = None  # LOGGED_MODEL: the LoggedModel reviewed
    run_models: list[LoggedModelInfo] = Field(default_factory=list)  # RUN: the LoggedModels the run logged
    prompt: PromptInfo | None = None  # PROMPT_VERSION: the version reviewed
    prompt_baseline: PromptInfo | None = None  # the version under a deployment alias, diffed against

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time and self.end_time:
            return (self.end_time - self.start_time).total_seconds()
        return None
