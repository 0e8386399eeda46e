"""Unit tests for bot.nudges.rules (what counts as deployed, working-day ages, webhook signatures) and
bot.nudges.blocks (the nudge, its outcome, the digest, the reviewer DM), by value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from bot.deployments import PRODUCTION_STAGE, DeployedVersion, deployment_markers
from bot.ids import ActionId, NudgeBlockId
from bot.models import ReviewState, ReviewStatus, RunSummary, Via, Vote
from bot.nudges.blocks import (
    DIGEST_MAX_VERSIONS,
    DM_MAX_REVIEWS,
    MORE,
    SNOOZE_LABEL,
    START_LABEL,
    STATUS_DELETED,
    STATUS_NEVER,
    SUBJECT_LINE,
    WAITING_ON_ANYONE,
    build_digest,
    build_nudge,
    build_nudge_outcome,
    build_reviewer_dm,
    review_status_text,
    snoozed_line,
    started_line,
    version_value,
)
from bot.nudges.rules import (
    Scan,
    is_overdue,
    needs_nudge,
    sign_webhook,
    waiting_on,
    webhook_refusal,
    working_days_between,
)
from bot.slack import limits
from tests.slack_api_server import validate_blocks

ALIASES = ["champion", "production", "prod"]
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|click>"


def _review(
    status: ReviewStatus = ReviewStatus.PENDING, requested_at: datetime | None = MONDAY, **kw
) -> ReviewState:
    return ReviewState(run_id="r", status=status, requested_at=requested_at, requested_by="U0REQ", **kw)


def _version(name: str = "fraud-clf", version: str = "3", **kw) -> DeployedVersion:
    base = {
        "name": name,
        "version": version,
        "markers": ["champion"],
        "run_id": "0123456789abcdef0123456789abcdef",
        "run_name": "gbm-v3",
        "run_url": "http://mlflow/#/experiments/1/runs/0123456789abcdef0123456789abcdef",
        "version_url": f"http://mlflow/#/models/{name}/versions/{version}",
    }
    return DeployedVersion(**{**base, **kw})


def _summary(run_id: str, requested_at: datetime | None, **kw) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        run_name=f"run-{run_id}",
        experiment_id="1",
        experiment_name="fraud",
        run_url=f"http://mlflow/#/experiments/1/runs/{run_id}",
        review=_review(requested_at=requested_at, **kw),
    )


# --- what counts as deployed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aliases", "stage", "expected"),
    [
        (["champion"], None, ["champion"]),
        (["Champion", "canary"], "", ["Champion"]),  # alias names compare without case
        (["canary", "staging"], "Staging", []),
        ([], "Production", [PRODUCTION_STAGE]),
        (["prod", "champion"], "Production", ["champion", "prod", PRODUCTION_STAGE]),
        ([], "Archived", []),
    ],
)
def test_deployment_markers(aliases, stage, expected) -> None:
    assert deployment_markers(aliases, stage, ALIASES) == expected


def test_an_approved_or_snoozed_version_needs_no_nudge() -> None:
    assert needs_nudge(_version(review=_review()), NOW)
    assert needs_nudge(_version(review=None), NOW)
    assert needs_nudge(_version(review=_review(ReviewStatus.CHANGES_REQUESTED)), NOW)
    assert not needs_nudge(_version(review=_review(ReviewStatus.APPROVED)), NOW)
    assert not needs_nudge(_version(snoozed_until=NOW + timedelta(days=1)), NOW)
    assert needs_nudge(_version(snoozed_until=NOW - timedelta(seconds=1)), NOW)  # the snooze ran out


# --- working days ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (MONDAY, NOW, 2),  # Mon, Tue
        (FRIDAY, MONDAY, 1),  # the weekend does not count
        (FRIDAY, NOW, 3),  # Fri, Mon, Tue
        (datetime(2026, 11, 21, 12, 0, tzinfo=UTC), MONDAY, 0),  # asked on a Saturday
        (NOW, MONDAY, 0),  # the future is not an age
    ],
)
def test_working_days_between(start, end, days) -> None:
    assert working_days_between(start, end) == days


def test_overdue_thresholds() -> None:
    assert not is_overdue(FRIDAY, NOW, 3)  # 3 working days: not longer than 3
    assert is_overdue(FRIDAY - timedelta(days=1), NOW, 3)  # Thursday: 4
    assert not is_overdue(FRIDAY - timedelta(days=1), NOW, 4)
    assert not is_overdue(None, NOW, 0)  # no request time: never overdue


def test_waiting_on_leaves_out_who_voted_and_who_asked() -> None:
    vote = Vote(user="U0ANA", name="Ana", at=NOW, via=Via.BUTTON)
    review = _review(approvals=[vote])
    reviewers = frozenset({"U0ANA", "U0BO", "U0REQ", "U0DAN"})
    assert waiting_on(review, reviewers) == ["U0BO", "U0DAN"]
    assert waiting_on(review, None) == []  # anyone may review: nobody in particular is waited on


# --- webhook signatures ------------------------------------------------------------------------------


BODY = json.dumps(
    {"entity": "model_version_alias", "action": "created", "data": {"name": "m", "alias": "champion"}}
).encode()


def test_our_signature_is_mlflows() -> None:
    ts = str(int(NOW.timestamp()))
    assert sign_webhook("s3cret", "d-1", ts, BODY) == _generate_hmac_signature(
        "s3cret", "d-1", ts, BODY.decode()
    )


def test_webhook_refusals() -> None:
    ts = str(int(NOW.timestamp()))
    good = sign_webhook("s3cret", "d-1", ts, BODY)
    assert webhook_refusal("s3cret", "d-1", ts, BODY, good, NOW) is None
    assert webhook_refusal("s3cret", "d-1", ts, BODY, "", NOW).startswith("unsigned")
    assert webhook_refusal("s3cret", "", ts, BODY, good, NOW).startswith("unsigned")
    assert webhook_refusal("other", "d-1", ts, BODY, good, NOW) == "bad signature"
    assert webhook_refusal("s3cret", "d-1", ts, BODY + b" ", good, NOW) == "bad signature"
    assert webhook_refusal("s3cret", "d-2", ts, BODY, good, NOW) == "bad signature"  # id is signed too
    stale = str(int((NOW - timedelta(minutes=6)).timestamp()))
    assert webhook_refusal("s3cret", "d-1", stale, BODY, sign_webhook("s3cret", "d-1", stale, BODY), NOW) == (
        "timestamp more than 5 minutes off"
    )
    ahead = str(int((NOW + timedelta(minutes=4)).timestamp()))
    assert (
        webhook_refusal("s3cret", "d-1", ahead, BODY, sign_webhook("s3cret", "d-1", ahead, BODY), NOW) is None
    )


# --- the nudge ---------------------------------------------------------------------------------------


def test_nudge_names_model_version_alias_status_and_offers_both_buttons() -> None:
    message = build_nudge(_version(review=_review()), ["champion"], NOW)
    assert validate_blocks(message.blocks) == []
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert "<http://mlflow/#/models/fraud-clf/versions/3|fraud-clf> v3 is deployed as @champion" in text
    assert "pending for 2 days" in text
    assert "<http://mlflow/#/experiments/1/runs/0123456789abcdef0123456789abcdef|gbm-v3>" in text
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert actions[0]["block_id"] == NudgeBlockId.ACTIONS
    buttons = actions[0]["elements"]
    assert [(b["action_id"], b["text"]["text"]) for b in buttons] == [
        (ActionId.NUDGE_START_REVIEW, START_LABEL),
        (ActionId.NUDGE_SNOOZE, SNOOZE_LABEL),
    ]
    assert {b["value"] for b in buttons} == {version_value("fraud-clf", "3")}
    assert json.loads(buttons[0]["value"]) == {"model": "fraud-clf", "version": "3"}
    assert message.text == "fraud-clf v3 is deployed as @champion without an approved review"


@pytest.mark.parametrize(
    ("subject", "said"),
    [
        ("m-" + "a" * 32, "its logged model `m-" + "a" * 32 + "` (no run)"),
        ("models:/fraud-clf/3", "this version (no run, no logged model)"),
    ],
)
def test_nudge_for_a_version_without_a_run_says_where_its_review_lives_and_can_start_one(
    subject: str, said: str
) -> None:
    message = build_nudge(
        _version(run_id="", markers=[PRODUCTION_STAGE], subject=subject), [PRODUCTION_STAGE], NOW
    )
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert "deployed as Production" in text
    assert json.dumps(SUBJECT_LINE.format(what=said, status=STATUS_NEVER))[1:-1] in text
    buttons = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [ActionId.NUDGE_START_REVIEW, ActionId.NUDGE_SNOOZE]


def test_a_deleted_run_is_not_approved_whatever_its_tags_say() -> None:
    approved = ReviewState(run_id="r1", status=ReviewStatus.APPROVED)
    version = _version(review=approved, deleted=True)
    assert not version.approved and needs_nudge(version, NOW)
    assert review_status_text(version, NOW) == STATUS_DELETED
    assert _version(review=approved).approved


def test_a_prompt_nudge_names_the_prompt_and_its_buttons_say_so() -> None:
    message = build_nudge(
        _version(name="summarizer", run_id="", subject="prompts:/summarizer/2", prompt=True, version="2"),
        ["production"],
        NOW,
    )
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert "Prompt " in text and "this prompt version" in text
    values = {e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    assert values == {version_value("summarizer", "2", prompt=True)}
    assert json.loads(values.pop()) == {"model": "summarizer", "version": "2", "prompt": True}


def test_nudge_escapes_what_mlflow_says() -> None:
    message = build_nudge(
        _version(name=HOSTILE, run_name=HOSTILE, version_url="", run_url=""), ["champion"], NOW
    )
    # What people read: a button's value is data for the bot, never shown.
    shown = [
        {k: v for k, v in e.items() if k != "value"} for b in message.blocks for e in b.get("elements", [])
    ]
    text = json.dumps([b.get("text") for b in message.blocks] + shown, ensure_ascii=False)
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        (None, STATUS_NEVER),
        (_review(requested_at=MONDAY), "pending for 2 days"),
        (
            _review(ReviewStatus.CHANGES_REQUESTED, decided_at=NOW - timedelta(hours=5)),
            "changes requested 5 hours ago",
        ),
        (_review(requested_at=None), "pending for an unknown time"),
    ],
)
def test_review_status_text(review, expected) -> None:
    assert review_status_text(_version(review=review), NOW) == expected


def test_a_never_reviewed_version_says_how_old_its_run_is() -> None:
    version = _version(review=None, run_started=NOW - timedelta(days=9, hours=2))
    assert review_status_text(version, NOW) == "never reviewed, the run is 9 days old"


def test_outcome_replaces_the_buttons_with_who_did_what() -> None:
    nudge = build_nudge(_version(), ["champion"], NOW)
    line = started_line("U0ANA", "https://slack/archives/C1/p1")
    after = build_nudge_outcome(nudge.text, nudge.blocks, line)
    assert [b["type"] for b in after.blocks] == ["section", "section", "context"]
    assert after.blocks[:2] == nudge.blocks[:2]
    assert after.blocks[-1]["elements"][0]["text"] == (
        ":mag: Review started by <@U0ANA>: <https://slack/archives/C1/p1|the card>."
    )
    until = NOW + timedelta(days=7)
    assert snoozed_line("U0BO", until) == (
        f":zzz: Snoozed by <@U0BO> until <!date^{int(until.timestamp())}^{{date_long_pretty}} at {{time}}"
        "|2026-12-02 10:00 UTC>."
    )


# --- the digest --------------------------------------------------------------------------------------


def test_nothing_to_say_posts_nothing() -> None:
    assert build_digest(Scan(), NOW, 3) is None
    assert build_digest(Scan(snoozed=2), NOW, 3) is None


def test_digest_groups_by_model_oldest_first() -> None:
    scan = Scan(
        unreviewed=[
            _version("zeta", "1", review=_review(requested_at=MONDAY)),
            _version("alpha", "7", review=_review(requested_at=NOW - timedelta(hours=1))),
            _version("zeta", "2", review=None, markers=["prod"]),
            _version("alpha", "5", review=_review(requested_at=FRIDAY)),
        ],
        snoozed=1,
    )
    message = build_digest(scan, NOW, 3)
    assert message is not None and validate_blocks(message.blocks) == []
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert sections[0].startswith(":rotating_light: *Deployed without an approved review* (4)")
    # zeta first: its v2 was never reviewed, which is the oldest wait of all
    assert sections[1].startswith("<http://mlflow/#/models/zeta/versions/2|zeta>\n• v2 @prod: never reviewed")
    assert "• v1 @champion: pending for 2 days" in sections[1]
    assert sections[1].index("v2 @prod") < sections[1].index("v1 @champion")
    assert sections[2].startswith("<http://mlflow/#/models/alpha/versions/5|alpha>\n• v5")
    assert sections[2].index("v5") < sections[2].index("v7")
    assert message.blocks[-1]["elements"][0]["text"] == "1 snoozed deployment(s) not shown."
    assert message.text == "Model review digest: 4 deployed without approval, 0 reviews overdue"


def test_digest_is_capped_and_stays_within_slacks_limits() -> None:
    unreviewed = [
        _version(
            f"model-{m:03d}-" + "x" * 100, str(v), review=_review(requested_at=MONDAY - timedelta(minutes=m))
        )
        for m in range(200)
        for v in range(1, 4)
    ]
    overdue = [_summary(f"run{i:03d}", FRIDAY - timedelta(days=3, minutes=i)) for i in range(40)]
    scan = Scan(unreviewed=unreviewed, overdue=overdue, unchecked=[f"broken-{i}" for i in range(30)])
    message = build_digest(scan, NOW, 3)
    assert message is not None
    assert validate_blocks(message.blocks) == []
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert text.count("• v") == DIGEST_MAX_VERSIONS
    assert MORE.format(n=len(unreviewed) - DIGEST_MAX_VERSIONS) in text
    assert MORE.format(n=40 - 10) in text
    assert "broken-29" in text


def test_digest_overdue_section_names_who_it_waits_on() -> None:
    old, older = _summary("r1", FRIDAY - timedelta(days=1)), _summary("r2", FRIDAY - timedelta(days=6))
    scan = Scan(overdue=[old, older], waiting_on={"U0BO": [old], "U0ANA": [old]})
    message = build_digest(scan, NOW, 3)
    assert message is not None
    section = message.blocks[2]["text"]["text"]
    assert message.blocks[1]["text"]["text"] == ":hourglass: *Reviews pending longer than 3 working days* (2)"
    lines = section.split("\n")
    assert lines[0].startswith("• <http://mlflow/#/experiments/1/runs/r2|run-r2>: pending for 11 days")
    assert lines[0].endswith(WAITING_ON_ANYONE)
    assert lines[1].endswith("waiting on <@U0ANA>, <@U0BO>")


def test_digest_says_what_could_not_be_checked() -> None:
    message = build_digest(
        Scan(unchecked=["fraud-clf"], registry_error="MLflow at http://x did not answer"), NOW, 3
    )
    assert message is not None
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert "*The model registry could not be read*" in text and "MLflow at http://x did not answer" in text
    assert (
        "*Could not be checked*" in text and "*fraud-clf*" in text and "the next digest tries again" in text
    )


def test_reviewer_dm_lists_oldest_first_with_cards_and_a_cap() -> None:
    reviews = [
        _summary(f"r{i:02d}", MONDAY - timedelta(hours=i), slack_permalink=f"https://slack/p{i}")
        for i in range(DM_MAX_REVIEWS + 3)
    ]
    message = build_reviewer_dm(reviews, NOW)
    assert validate_blocks(message.blocks) == []
    lines = message.blocks[0]["text"]["text"].split("\n")
    assert lines[0] == f":wave: *Reviews waiting on you* ({DM_MAX_REVIEWS + 3}), oldest first:"
    assert lines[1].startswith(f"• <http://mlflow/#/experiments/1/runs/r{DM_MAX_REVIEWS + 2}|")
    assert f"(<https://slack/p{DM_MAX_REVIEWS + 2}|card>)" in lines[1]
    assert lines[-1] == MORE.format(n=3)
    assert message.text == f"{DM_MAX_REVIEWS + 3} model review(s) are waiting on you"
    assert len(message.blocks[0]["text"]["text"]) <= limits.SECTION_TEXT
