"""Unit tests for the card lines about what kind of run it is: an unfinished run's caveat (and the reply to
whoever approves it), and a sweep's children (bot.reviews.run_state, bot.reviews.card)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.models import RunSummary, Sweep, SweepBest
from bot.reviews.card import build_review_card
from bot.reviews.run_state import (
    APPROVED_UNFINISHED,
    RUN_STATE_CAVEATS,
    build_approval_caveat,
    build_run_state_caveat,
)
from bot.sweeps.blocks import build_sweep_line
from tests.slack_api_server import validate_blocks

SWEEP = Sweep(
    children=6,
    metric="mean_test_score",
    varied=2,
    best=SweepBest(run_id="b" * 32, run_name="amazing-snake", value=0.99, params={"C": "1"}),
)


def summary(status: str, sweep: Sweep | None = None) -> RunSummary:
    return RunSummary(
        run_id="a" * 32,
        run_name="grid",
        experiment_id="1",
        experiment_name="iris",
        status=status,
        start_time=datetime(2026, 1, 5, tzinfo=UTC),
        metrics={"best_cv_score": 0.99},
        sweep=sweep,
    )


@pytest.mark.parametrize(
    ("status", "caveat"),
    [
        ("RUNNING", ":warning: This run is still RUNNING: its metrics may still change."),
        ("SCHEDULED", ":warning: This run is SCHEDULED and has not started: it has no results yet."),
        ("FAILED", ":warning: This run FAILED: its metrics and artifacts may be incomplete."),
        ("KILLED", ":warning: This run was KILLED: its metrics and artifacts may be incomplete."),
        ("running", ":warning: This run is still RUNNING: its metrics may still change."),
        ("FINISHED", None),
        ("", None),
    ],
)
def test_run_state_caveat(status: str, caveat: str | None) -> None:
    assert build_run_state_caveat(status) == caveat
    expected = APPROVED_UNFINISHED.format(caveat=caveat) if caveat else None
    assert build_approval_caveat(status) == expected


def texts(card_blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in card_blocks if b["type"] == "section" and "text" in b]


@pytest.mark.parametrize("status", sorted(RUN_STATE_CAVEATS))
def test_an_unfinished_runs_card_says_so_under_its_status(status: str) -> None:
    card = build_review_card(summary(status), requested_by="U1", key_metrics=[])
    blocks = card.blocks
    fields = next(i for i, b in enumerate(blocks) if b["type"] == "section" and "fields" in b)
    assert blocks[fields + 1]["text"]["text"] == RUN_STATE_CAVEATS[status]
    assert validate_blocks(blocks) == []


def test_a_finished_runs_card_has_no_caveat_and_a_sweep_parent_has_its_line() -> None:
    finished = json.dumps(build_review_card(summary("FINISHED"), requested_by="U1", key_metrics=[]).blocks)
    assert ":warning:" not in finished and "Sweep" not in finished
    card = build_review_card(summary("FAILED", SWEEP), requested_by="U1", key_metrics=[])
    fields = next(i for i, b in enumerate(card.blocks) if b["type"] == "section" and "fields" in b)
    assert [b["text"]["text"] for b in card.blocks[fields + 1 : fields + 3]] == [
        RUN_STATE_CAVEATS["FAILED"],
        build_sweep_line(SWEEP),
    ]
    assert validate_blocks(card.blocks) == []
