"""Unit tests for bot.commands: what the text after /review means."""

from __future__ import annotations

import pytest

from bot.commands import (
    BASELINE_USAGE,
    COMPARE_COUNT,
    LEADERBOARD_LIMIT,
    LEADERBOARD_USAGE,
    USAGE,
    CompareCommand,
    HelpCommand,
    LeaderboardCommand,
    ReviewCommand,
    parse_command,
    parse_ref,
)
from bot.errors import BadReference
from bot.ids import COMMAND
from bot.models import Direction, RefKind, RunRef

RUN_ID = "0123456789abcdef0123456789abcdef"
UI_URL = f"http://mlflow:5000/#/experiments/1/runs/{RUN_ID}"


def _run(raw: str) -> RunRef:
    return RunRef(kind=RefKind.RUN, raw=raw, run_id=RUN_ID)


@pytest.mark.parametrize(
    "raw",
    [
        RUN_ID,
        RUN_ID.upper(),
        f"  {RUN_ID}  ",
        UI_URL,
        UI_URL.replace(RUN_ID, RUN_ID.upper()),
        f"https://mlflow.example.com/#/experiments/1/runs/{RUN_ID}",
        f"{UI_URL}/artifacts",
        f"{UI_URL}/artifacts/model/MLmodel",
        f"{UI_URL}?o=DESC&searchFilter=",
        f"http://mlflow:5000/?x=1#/experiments/1/runs/{RUN_ID}?tab=metrics",
        f"<{UI_URL}>",
        f"<{UI_URL}|my run>",
        f"<{UI_URL}?a=1&amp;b=2|label>",
        f"runs:/{RUN_ID}/model",
        f"runs:/{RUN_ID}",
        f"runs:/{RUN_ID.upper()}/model/sub",
    ],
)
def test_parse_ref_finds_the_run(raw: str) -> None:
    assert parse_ref(raw) == _run(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("models:/fraud-clf/3", {"kind": RefKind.MODEL_VERSION, "model_name": "fraud-clf", "version": "3"}),
        ("models:/fraud-clf/3/", {"kind": RefKind.MODEL_VERSION, "model_name": "fraud-clf", "version": "3"}),
        (
            "models:/fraud-clf@champion",
            {"kind": RefKind.MODEL_ALIAS, "model_name": "fraud-clf", "alias": "champion"},
        ),
        ("models:/my%20model/12", {"kind": RefKind.MODEL_VERSION, "model_name": "my model", "version": "12"}),
        ("models:/a%2Fb@prod", {"kind": RefKind.MODEL_ALIAS, "model_name": "a/b", "alias": "prod"}),
        ("<models:/fraud-clf/3>", {"kind": RefKind.MODEL_VERSION, "model_name": "fraud-clf", "version": "3"}),
        ("models:/fraud-clf/latest", {"kind": RefKind.MODEL_LATEST, "model_name": "fraud-clf"}),
        ("models:/fraud-clf/LATEST", {"kind": RefKind.MODEL_LATEST, "model_name": "fraud-clf"}),
        (
            "models:/fraud-clf/Production",
            {"kind": RefKind.MODEL_STAGE, "model_name": "fraud-clf", "stage": "Production"},
        ),
        (
            "models:/fraud-clf/staging",
            {"kind": RefKind.MODEL_STAGE, "model_name": "fraud-clf", "stage": "Staging"},
        ),
        (f"models:/m-{RUN_ID}", {"kind": RefKind.LOGGED_MODEL, "model_id": f"m-{RUN_ID}"}),
        (f"models:/m-{RUN_ID.upper()}/", {"kind": RefKind.LOGGED_MODEL, "model_id": f"m-{RUN_ID}"}),
        (
            "prompts:/summarizer/2",
            {"kind": RefKind.PROMPT_VERSION, "model_name": "summarizer", "version": "2"},
        ),
        (
            "prompts:/summarizer@production",
            {"kind": RefKind.PROMPT_ALIAS, "model_name": "summarizer", "alias": "production"},
        ),
        (
            "prompts:/summarizer",
            {"kind": RefKind.PROMPT_ALIAS, "model_name": "summarizer", "alias": "latest"},
        ),
        (
            "prompts:/summarizer/latest",
            {"kind": RefKind.PROMPT_ALIAS, "model_name": "summarizer", "alias": "latest"},
        ),
        (
            f"http://mlflow:5000/#/experiments/4/models/m-{RUN_ID}",
            {"kind": RefKind.LOGGED_MODEL, "model_id": f"m-{RUN_ID}"},
        ),
        (
            f"https://mlflow.example.com/#/experiments/4/models/m-{RUN_ID}/artifacts?x=1",
            {"kind": RefKind.LOGGED_MODEL, "model_id": f"m-{RUN_ID}"},
        ),
        (
            "http://mlflow:5000/#/models/fraud%20clf/versions/7",
            {"kind": RefKind.MODEL_VERSION, "model_name": "fraud clf", "version": "7"},
        ),
        (
            "<http://mlflow:5000/#/prompts/summarizer>",
            {"kind": RefKind.PROMPT_ALIAS, "model_name": "summarizer", "alias": "latest"},
        ),
        (
            "http://mlflow:5000/#/prompts/summarizer?promptVersion=3",
            {"kind": RefKind.PROMPT_VERSION, "model_name": "summarizer", "version": "3"},
        ),
    ],
)
def test_parse_ref_models(raw: str, expected: dict[str, object]) -> None:
    assert parse_ref(raw) == RunRef(raw=raw, **expected)


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "Help", "-h", "--help", "?", "help me please"])
def test_parse_command_help(text: str) -> None:
    assert parse_command(text) == HelpCommand()


def test_usage_names_the_command_and_every_form() -> None:
    for needle in (
        f"`{COMMAND} <run>`",
        "runs:/",
        "models:/fraud-clf/3",
        "models:/fraud-clf@champion",
        "models:/fraud-clf/latest",
        "models:/m-",
        "prompts:/summarizer/2",
        "prompts:/summarizer@production",
        "help",
    ):
        assert needle in USAGE


def test_parse_command_review() -> None:
    assert parse_command(f"  {UI_URL}  ") == ReviewCommand(ref=_run(UI_URL))
    assert parse_command("models:/m@champion") == ReviewCommand(
        ref=RunRef(kind=RefKind.MODEL_ALIAS, raw="models:/m@champion", model_name="m", alias="champion")
    )


def test_parse_command_rejects_more_than_one_word() -> None:
    with pytest.raises(BadReference) as caught:
        parse_command(f"{RUN_ID} {RUN_ID} please")
    message = caught.value.user_message()
    assert "got 3 words" in message
    assert f"`{COMMAND} help`" in message


@pytest.mark.parametrize(
    ("raw", "shown", "hint"),
    [
        ("0123", "0123", "is not a run id"),
        (RUN_ID + "0", RUN_ID + "0", "is not a run id"),
        (RUN_ID[:-1] + "g", RUN_ID[:-1] + "g", "is not a run id"),
        ("runs:/notarun/model", "runs:/notarun/model", "is not a run id"),
        ("runs:/", "runs:/", "is not a run id"),
        ("models:/fraud-clf", "models:/fraud-clf", "is not a model URI"),
        ("models:/fraud-clf/v3", "models:/fraud-clf/v3", "is not a model URI"),
        ("models:/m-123/", "models:/m-123/", "is not a model URI"),
        ("prompts:/", "prompts:/", "is not a prompt URI"),
        ("prompts:/a/b/c", "prompts:/a/b/c", "is not a prompt URI"),
        ("prompts:/summarizer/v2", "prompts:/summarizer/v2", "is not a prompt URI"),
        ("prompts:/<!here>@x", "prompts:/&lt;!here&gt;@x", "has characters no registered model or prompt"),
        ("http://mlflow:5000/#/models/fraud-clf", "http://mlflow:5000/#/models/fraud-clf", "many versions"),
        ("models:/a/b/c", "models:/a/b/c", "is not a model URI"),
        ("models:/", "models:/", "is not a model URI"),
        (
            "http://mlflow:5000/#/experiments/1",
            "http://mlflow:5000/#/experiments/1",
            "not look like an MLflow page",
        ),
        (f"http://mlflow:5000/#/runs/{RUN_ID}0", f"http://mlflow:5000/#/runs/{RUN_ID}0", "not look like"),
        ("<!channel>", "&lt;!channel&gt;", "is not a run id"),
        ("<@U123>", "&lt;@U123&gt;", "is not a run id"),
        ("a&b", "a&amp;b", "is not a run id"),
        ("`oops`", "'oops'", "is not a run id"),
        (
            "<https://evil.example|click>",
            "&lt;https://evil.example|click&gt;",
            "not look like an MLflow page",
        ),
    ],
)
def test_parse_ref_rejects_with_the_input_named(raw: str, shown: str, hint: str) -> None:
    with pytest.raises(BadReference) as caught:
        parse_ref(raw)
    message = caught.value.user_message()
    assert f"`{shown}`" in message
    assert hint in message
    assert "<!" not in message and "<@" not in message


def test_parse_ref_bounds_a_long_input_in_the_message() -> None:
    raw = "x" * 500
    with pytest.raises(BadReference) as caught:
        parse_ref(raw)
    message = caught.value.user_message()
    assert f"`{'x' * 119}…`" in message
    assert "x" * 120 not in message


def test_parse_command_passes_bad_reference_through() -> None:
    with pytest.raises(BadReference, match="&lt;!here&gt;"):
        parse_command("<!here>")


# --- comparisons ------------------------------------------------------------------------------------

OTHER_ID = "fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize(
    "text",
    [
        f"{RUN_ID} --baseline {OTHER_ID}",
        f"--baseline {OTHER_ID} {RUN_ID}",
        f"{RUN_ID} --baseline={OTHER_ID}",
        f"{RUN_ID} --BASELINE {OTHER_ID}",
    ],
)
def test_review_with_a_baseline(text: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, ReviewCommand)
    assert parsed.ref.run_id == RUN_ID
    assert parsed.baseline is not None and parsed.baseline.run_id == OTHER_ID


def test_baseline_can_be_a_model_alias() -> None:
    parsed = parse_command(f"{RUN_ID} --baseline models:/fraud-clf@champion")
    assert isinstance(parsed, ReviewCommand) and parsed.baseline is not None
    assert (parsed.baseline.kind, parsed.baseline.model_name, parsed.baseline.alias) == (
        RefKind.MODEL_ALIAS,
        "fraud-clf",
        "champion",
    )


@pytest.mark.parametrize(
    "text",
    [f"{RUN_ID} --baseline", f"--baseline {OTHER_ID}", f"{RUN_ID} --baseline a b", f"{RUN_ID} --baseline="],
)
def test_baseline_usage(text: str) -> None:
    with pytest.raises(BadReference) as error:
        parse_command(text)
    assert error.value.user_message() == BASELINE_USAGE


def test_review_without_baseline_has_none() -> None:
    parsed = parse_command(RUN_ID)
    assert isinstance(parsed, ReviewCommand) and parsed.baseline is None


def test_compare_two_to_ten_runs() -> None:
    ids = [f"{i:032x}" for i in range(10)]
    parsed = parse_command("compare " + " ".join(ids))
    assert isinstance(parsed, CompareCommand)
    assert [r.run_id for r in parsed.refs] == ids
    two = parse_command(f"Compare {RUN_ID} models:/fraud-clf/3")
    assert isinstance(two, CompareCommand) and two.refs[1].kind is RefKind.MODEL_VERSION


@pytest.mark.parametrize("count", [0, 1, 11])
def test_compare_refuses_fewer_than_two_or_more_than_ten(count: int) -> None:
    ids = [f"{i:032x}" for i in range(count)]
    with pytest.raises(BadReference) as error:
        parse_command("compare " + " ".join(ids))
    assert error.value.user_message() == COMPARE_COUNT.format(n=count)


def test_compare_refuses_the_same_run_twice_and_bad_references() -> None:
    with pytest.raises(BadReference, match="named twice"):
        parse_command(f"compare {RUN_ID} {RUN_ID.upper()}")
    with pytest.raises(BadReference, match="not a run id"):
        parse_command(f"compare {RUN_ID} nope")


@pytest.mark.parametrize(
    ("text", "words", "limit"),
    [
        ("leaderboard fraud", ("fraud",), 10),
        ("leaderboard fraud val_auc", ("fraud", "val_auc"), 10),
        ("leaderboard fraud val_auc 5", ("fraud", "val_auc"), 5),
        ("leaderboard 12 3", ("12",), 3),
        ("leaderboard 12", ("12",), 10),
        ('leaderboard "fraud detection" rmse 25', ("fraud detection", "rmse"), 25),
        ("leaderboard fraud detection", ("fraud", "detection"), 10),
        ("leaderboard it's", ("it's",), 10),  # an unbalanced quote is read word by word
    ],
)
def test_leaderboard(text: str, words: tuple[str, ...], limit: int) -> None:
    assert parse_command(text) == LeaderboardCommand(words=words, limit=limit)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("leaderboard fraud valid-l2:min", LeaderboardCommand(("fraud", "valid-l2"), 10, Direction.MIN)),
        ("leaderboard fraud foo_metric:MAX 5", LeaderboardCommand(("fraud", "foo_metric"), 5, Direction.MAX)),
        (
            'leaderboard "fraud detection" aic :min',
            LeaderboardCommand(("fraud detection", "aic"), 10, Direction.MIN),
        ),
        ("leaderboard fraud:max", LeaderboardCommand(("fraud:max",), 10)),  # one word: the experiment
        ("leaderboard fraud l2:up", LeaderboardCommand(("fraud", "l2:up"), 10)),  # not a direction
    ],
)
def test_leaderboard_metric_with_its_direction(text: str, expected: LeaderboardCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(("text", "message"), [("leaderboard", LEADERBOARD_USAGE), ("leaderboard x 0", None)])
def test_leaderboard_bad_input(text: str, message: str | None) -> None:
    with pytest.raises(BadReference) as error:
        parse_command(text)
    assert error.value.user_message() == (message or LEADERBOARD_LIMIT.format(n=0))


def test_usage_names_every_subcommand() -> None:
    for word in ("compare", "leaderboard", "--baseline", "schedule", "agenda"):
        assert word in USAGE
