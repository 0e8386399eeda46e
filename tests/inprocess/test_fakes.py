"""What keeps FakeMlflow honest: it has every public method of the real MLflow parts, with the same
signatures, and it fails the way the services expect MLflow to fail."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from bot import tags
from bot.deployments import DeployedVersion
from bot.errors import MlflowUnavailable, ReviewBotError
from bot.mlflow.artifacts import Artifacts
from bot.mlflow.experiments import Experiments
from bot.mlflow.histories import Histories
from bot.mlflow.records import ReviewRecords
from bot.mlflow.registry import Registry
from bot.mlflow.runs import Runs
from bot.models import Direction, ModelVersionRef, RefKind, ReviewState, ReviewStatus, RunRef, Via, Vote
from tests import support
from tests.inprocess.fakes import FakeCrash, FakeMlflow

PARTS = (Runs, ReviewRecords, Histories, Registry, Artifacts, Experiments)
# The methods the services call most: the lists below must never come out empty by accident.
USED_BY_SERVICES = {
    "resolve", "run_summary", "active_run", "compared_summaries", "search_reviews", "run_tags", "review_of",
    "set_run_tags", "record_review", "set_model_version_tag", "log_discussion", "envelopes",
    "source_run", "registered_aliases", "deployment_candidates", "deployed_version",
    "model_version_state", "with_reviews", "list_images", "download_artifact", "find_experiment", "top_runs",
    "best_finished_runs", "metric_keys",
}  # fmt: skip
WRITES = {"set_run_tags", "record_review", "set_model_version_tag", "log_discussion", "register_webhook"}


def public_api(cls: type) -> list[str]:
    """The methods and properties a class defines for others to call."""
    return sorted(
        name
        for name, member in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    )


API = [(part, name) for part in PARTS for name in public_api(part)]


def shape(cls: type, name: str) -> tuple[list[tuple[str, Any, Any]], list[Any], Any]:
    """(parameters by name, kind and default; their annotations; the return annotation)."""
    member = inspect.getattr_static(cls, name)
    function = member.fget if isinstance(member, property) else getattr(cls, name)
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    return (
        [(p.name, p.kind, p.default) for p in parameters],
        [p.annotation for p in parameters],
        signature.return_annotation,
    )


def test_the_api_checked_covers_what_the_services_call() -> None:
    assert {name for _, name in API} >= USED_BY_SERVICES


@pytest.mark.parametrize(("part", "name"), API, ids=[f"{part.__name__}.{name}" for part, name in API])
def test_the_fake_has_each_public_method_with_the_same_signature(part: type, name: str) -> None:
    assert hasattr(FakeMlflow, name), f"FakeMlflow has no {name} (a public method of {part.__name__})"
    real_member, fake_member = inspect.getattr_static(part, name), inspect.getattr_static(FakeMlflow, name)
    assert isinstance(fake_member, property) == isinstance(real_member, property)
    real_parameters, real_annotations, real_returns = shape(part, name)
    fake_parameters, fake_annotations, fake_returns = shape(FakeMlflow, name)
    assert fake_parameters == real_parameters, f"{part.__name__}.{name}: parameters differ"
    assert (fake_annotations, fake_returns) == (real_annotations, real_returns), (
        f"{part.__name__}.{name}: types differ"
    )


def test_the_signature_check_fails_when_a_real_method_gains_a_parameter() -> None:
    class GrownRuns(Runs):
        def run_summary(self, run_id: str, with_versions: bool = True):  # noqa: ANN202 - the shape is the point
            raise NotImplementedError

    assert shape(GrownRuns, "run_summary")[0] != shape(FakeMlflow, "run_summary")[0]


# --- failing like MLflow ---------------------------------------------------------------------------


@pytest.fixture
def store() -> tuple[FakeMlflow, str]:
    fake = FakeMlflow()
    run_id = fake.add_run(
        "gbm",
        metrics={"val_auc": 0.91},
        histories={"loss": [3.0, 2.0, 1.0]},
        images={"plots/roc.png": b"png"},
    )
    fake.register("fraud-clf", run_id, alias="champion")
    return fake, run_id


def sample_calls(run_id: str) -> dict[str, Callable[[FakeMlflow], Any]]:
    """One call of each public method that reaches MLflow."""
    pending = f"tags.`{tags.STATUS}` = 'pending'"
    version = DeployedVersion(name="fraud-clf", version="1", markers=["champion"], run_id=run_id)
    return {
        "resolve": lambda f: f.resolve(
            RunRef(kind=RefKind.MODEL_VERSION, raw="models:/fraud-clf/1", model_name="fraud-clf", version="1")
        ),
        "resolve_run": lambda f: f.resolve_run(
            RunRef(kind=RefKind.MODEL_VERSION, raw="models:/fraud-clf/1", model_name="fraud-clf", version="1")
        ),
        "run_summary": lambda f: f.run_summary(run_id),
        "run_models": lambda f: f.run_models(run_id),
        "standing": lambda f: f.standing(run_id),
        "find_version": lambda f: f.find_version(
            RunRef(kind=RefKind.MODEL_LATEST, raw="models:/fraud-clf/latest", model_name="fraud-clf")
        ),
        "decision_subject": lambda f: f.decision_subject(
            f.find_version(
                RunRef(
                    kind=RefKind.MODEL_VERSION, raw="models:/fraud-clf/1", model_name="fraud-clf", version="1"
                )
            )
        ),
        "active_run": lambda f: f.active_run(run_id),
        "params_of": lambda f: f.params_of(run_id),
        "compared_summaries": lambda f: f.compared_summaries([run_id]),
        "experiment_names": lambda f: f.experiment_names(),
        "search_reviews": lambda f: f.search_reviews(pending),
        "run_tags": lambda f: f.run_tags(run_id),
        "review_of": lambda f: f.review_of(run_id),
        "set_run_tags": lambda f: f.set_run_tags(run_id, {"k": "v"}),
        "record_review": lambda f: f.record_review(ReviewState(run_id=run_id), {}, []),
        "mirror": lambda f: f.mirror(
            ReviewState(run_id=run_id), [ModelVersionRef(name="fraud-clf", version="1")]
        ),
        "set_model_version_tag": lambda f: f.set_model_version_tag("fraud-clf", "1", "k", "v"),
        "log_discussion": lambda f: f.log_discussion(run_id, "# discussion"),
        "envelopes": lambda f: f.envelopes([run_id], ["loss"], width=100),
        "source_run": lambda f: f.source_run("fraud-clf", alias="champion"),
        "version_of": lambda f: f.version_of(
            RunRef(
                kind=RefKind.MODEL_ALIAS,
                raw="models:/fraud-clf@champion",
                model_name="fraud-clf",
                alias="champion",
            )
        ),
        "registered_aliases": lambda f: f.registered_aliases("fraud-clf"),
        "model_versions_of": lambda f: f.model_versions_of(run_id),
        "deployment_candidates": lambda f: f.deployment_candidates(["champion"]),
        "deployed_version": lambda f: f.deployed_version("fraud-clf", "1", ["champion"]),
        "model_version_state": lambda f: f.model_version_state("fraud-clf", "1", ["champion"]),
        "with_reviews": lambda f: f.with_reviews([version]),
        "register_webhook": lambda f: f.register_webhook("review-bot", "http://bot", ("a.b",), "secret"),
        "list_images": lambda f: f.list_images(run_id),
        "download_artifact": lambda f: f.download_artifact(run_id, "plots/roc.png"),
        "find_experiment": lambda f: f.find_experiment("review-bot-tests"),
        "top_runs": lambda f: f.top_runs("1", "review-bot-tests", "val_auc", Direction.MAX, 5),
        "best_finished_runs": lambda f: f.best_finished_runs("1", "val_auc", Direction.MAX, None, 5),
        "metric_keys": lambda f: f.metric_keys("1"),
        "child_runs": lambda f: f.child_runs("1", run_id),
    }


# `mirror` reports the versions MLflow refused instead of raising: test_mirror_reports_what_failed;
# `run_models` leaves a run card's LoggedModels out when they cannot be read.
CALLED = sorted({name for _, name in API} - {"ui_url", "mirror", "run_models"})


def test_mirror_reports_what_failed(store: tuple[FakeMlflow, str]) -> None:
    fake, run_id = store
    [mv] = fake.model_versions_of(run_id)
    fake.down = True
    assert fake.mirror(ReviewState(run_id=run_id), [mv]) == [mv]
    assert fake.writes == []
    fake.down = False
    assert fake.mirror(ReviewState(run_id=run_id), [mv]) == []
    assert fake.version_tags("fraud-clf", "1")[tags.STATUS] == "pending"


@pytest.mark.parametrize("name", CALLED)
def test_mlflow_down_fails_every_call_and_writes_nothing(store: tuple[FakeMlflow, str], name: str) -> None:
    fake, run_id = store
    calls = sample_calls(run_id)
    assert name in calls, f"add a sample call of {name} to sample_calls"
    calls[name](fake)  # it works while MLflow is up
    fake.writes.clear()

    fake.down = True
    with pytest.raises(MlflowUnavailable) as raised:
        calls[name](fake)
    assert raised.value.user_message() == fake.unavailable().user_message()
    assert fake.writes == []


@pytest.mark.parametrize("name", CALLED)
def test_writes_down_fails_only_the_writes(store: tuple[FakeMlflow, str], name: str) -> None:
    fake, run_id = store
    fake.writes_down = True
    call = sample_calls(run_id)[name]
    if name in WRITES:
        with pytest.raises(MlflowUnavailable):
            call(fake)
    else:
        call(fake)
    assert fake.writes == []


def test_a_run_id_resolves_without_asking_mlflow_as_the_real_runs_do(store: tuple[FakeMlflow, str]) -> None:
    fake, run_id = store
    fake.down = True
    assert fake.resolve(RunRef(kind=RefKind.RUN, raw=run_id, run_id=run_id)) == run_id


# --- the review record, through bot.tags -----------------------------------------------------------


def test_record_review_writes_the_tags_bot_tags_encodes_and_mirrors_them(
    store: tuple[FakeMlflow, str],
) -> None:
    fake, run_id = store
    vote = Vote(user=support.BO, name="Bo Chen", at=tags.parse_moment("2026-02-01T10:00:00Z"), via=Via.BUTTON)
    state = ReviewState(
        run_id=run_id,
        status=ReviewStatus.APPROVED,
        approvals=[vote],
        requested_by=support.ANA,
        requested_at=tags.parse_moment("2026-02-01T09:00:00Z"),
        decided_at=vote.at,
        slack_channel=support.REVIEW_CHANNEL,
        slack_ts="1767225600.000100",
        slack_permalink="https://test.slack.com/archives/C0REVIEW/p1767225600000100",
    )
    [mv] = fake.model_versions_of(run_id)
    assert mv == ModelVersionRef(name="fraud-clf", version="1", aliases=["champion"])

    state = fake.covering(state, [mv]).model_copy(update={"last_click": {vote.user: vote.at}})
    assert fake.record_review(state, fake.tags_of(run_id), [mv]) == []

    assert fake.review_of(run_id) == state
    written = tags.review_tags(state)
    assert {k: fake.tags_of(run_id)[k] for k in written} == written
    assert fake.tags_of(run_id)[tags.SIGNATURE].startswith("ed25519:")
    assert fake.version_tags("fraud-clf", "1") == {k: written[k] for k in tags.MODEL_VERSION_MIRROR}
    assert [w.what for w in fake.writes] == ["set_run_tags"] + ["set_model_version_tag"] * len(
        tags.MODEL_VERSION_MIRROR
    )


def test_search_reviews_reads_the_tag_filters_the_services_send(store: tuple[FakeMlflow, str]) -> None:
    fake, run_id = store
    other = fake.add_run("other")
    fake.set_run_tags(
        run_id, tags.review_tags(ReviewState(run_id=run_id, slack_channel=support.REVIEW_CHANNEL))
    )
    fake.set_run_tags(other, {tags.MEETING_AT: ""})

    in_channel = (
        f"tags.`{tags.STATUS}` = 'pending' and tags.`{tags.SLACK_CHANNEL}` = '{support.REVIEW_CHANNEL}'"
    )
    assert [s.run_id for s, _ in fake.search_reviews(in_channel)] == [run_id]
    assert fake.search_reviews(f"tags.`{tags.SLACK_CHANNEL}` = '{support.DEV_CHANNEL}'") == []
    # A run without the tag matches neither = nor != (MLflow joins on the tag).
    assert fake.search_reviews(f"tags.`{tags.MEETING_AT}` != ''") == []
    with pytest.raises(ValueError, match="does not understand"):
        fake.search_reviews("attributes.status = 'FINISHED'")


def test_fail_calls_fails_only_the_calls_named(store: tuple[FakeMlflow, str]) -> None:
    fake, run_id = store
    fake.fail_calls = {"set_model_version_tag"}
    [mv] = fake.model_versions_of(run_id)

    behind = fake.record_review(ReviewState(run_id=run_id), {}, [mv])

    # Half a two-step write: the run's tags (the truth) went, the mirror did not, and says so.
    assert behind == [mv]
    assert [w.what for w in fake.writes] == ["set_run_tags"]
    assert fake.review(run_id) == ReviewState(run_id=run_id) and fake.version_tags("fraud-clf", "1") == {}


def test_crash_calls_raise_what_no_service_expects(store: tuple[FakeMlflow, str]) -> None:
    fake, run_id = store
    fake.crash_calls = {"run_summary"}
    with pytest.raises(FakeCrash):
        fake.run_summary(run_id)
    assert not issubclass(FakeCrash, ReviewBotError)
