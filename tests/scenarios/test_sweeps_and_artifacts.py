"""Issue 12 items 7 and 8 on the real stack: a scikit-learn GridSearchCV sweep logged by MLflow's own
autolog (its parent and its children), a FAILED run, a run in a deleted experiment, images logged by step
with `log_image`, and a PNG four folders deep next to an SVG."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
import warnings
from collections.abc import Iterator

import mlflow
import numpy as np
import pytest

from bot import tags
from bot.ids import ActionId
from bot.reviews.run_state import RUN_STATE_CAVEATS, build_approval_caveat
from tests import support
from tests.scenarios.helpers import blocks_text, cards_for, png_bytes, response_texts, uploads_in_thread

GRID = {"C": [0.01, 1.0, 100.0]}  # three candidates: the sweep runs in about a second


@contextlib.contextmanager
def autolog_into(tracking_uri: str) -> Iterator[None]:
    """scikit-learn autolog pointed at the test server, and everything global put back afterwards."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    level = logging.getLogger("mlflow").level
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.sklearn.autolog(log_models=False, max_tuning_runs=None, silent=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        mlflow.sklearn.autolog(disable=True)
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(before)
        logging.getLogger("mlflow").setLevel(level)


@pytest.fixture(scope="module")
def sweep(runs) -> dict[str, object]:
    """A real GridSearchCV parent and its children as autolog logs them: the ids, best child first."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    x, y = load_breast_cancer(return_X_y=True)
    experiment = runs.experiment("sweeps")
    with (
        autolog_into(runs.tracking_uri),
        mlflow.start_run(experiment_id=experiment, run_name="grid-logreg") as parent,
    ):
        GridSearchCV(LogisticRegression(max_iter=200), GRID, cv=3).fit(x[:, :5], y)
    children = runs.client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    ranked = sorted(children, key=lambda r: (-r.data.metrics["mean_test_score"], r.info.run_name))
    return {"parent": parent.info.run_id, "children": ranked, "experiment": experiment}


def review(bot, slack, eventually, ref: str, user: str = support.ANA) -> str:
    url = slack.new_response_url()
    bot.command(ref, url, user=user)
    eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t], what="posted")
    return url


def thread_texts(slack, card) -> str:
    return json.dumps(slack.thread(card["channel"], card["ts"]), ensure_ascii=False)


def test_a_grid_search_parent_shows_its_children_and_the_best_one(
    bot, slack, sweep, runs, eventually
) -> None:
    parent, children = sweep["parent"], sweep["children"]
    best = children[0]
    review(bot, slack, eventually, parent)
    # The card is completed in place once the children are read: the sweep line lands on it.
    card = eventually(
        lambda: [c for c in cards_for(slack, parent) if "Sweep" in blocks_text(c)][-1], what="sweep line"
    )
    text = blocks_text(card)
    best_value = f"{best.data.metrics['mean_test_score']:.4g}"
    assert f"*Sweep*: {len(children)} child runs; best: " in text
    assert f"/runs/{best.info.run_id}|{best.info.run_name}>" in text
    assert f"(`mean_test_score` {best_value})" in text
    assert f"Best's params: C = `{best.data.params['C']}`" in text
    assert "max_iter" not in text.split("Best's params")[1].split("\\n")[0]  # the same in every child

    # Kept in the parent's tags, so a vote's re-render keeps the line.
    kept = eventually(lambda: runs.tags(parent).get(tags.SWEEP))
    assert json.loads(kept)["children"] == len(children)
    assert json.loads(kept)["best"]["run_id"] == best.info.run_id

    listing = eventually(
        lambda: [
            m for m in slack.thread(card["channel"], card["ts"]) if m.get("text", "").startswith("Sweep: ")
        ][0]
    )
    body = blocks_text(listing)
    assert "Best first by `mean_test_score`" in body
    positions = [body.index(f"/runs/{c.info.run_id}|") for c in children]
    assert positions == sorted(positions)  # best first
    for c in children:
        assert f"C = `{c.data.params['C']}`" in body


def test_a_child_is_compared_with_its_best_sibling_not_its_parent(bot, slack, sweep, eventually) -> None:
    children = sweep["children"]
    worst, best, second = children[-1], children[0], children[1]

    review(bot, slack, eventually, worst.info.run_id)
    card = eventually(
        lambda: [c for c in cards_for(slack, worst.info.run_id) if "best sibling" in blocks_text(c)][-1],
        what="the sibling baseline",
    )
    text = blocks_text(card)
    assert (
        "vs <" in text
        and f"/runs/{best.info.run_id}|{best.info.run_name}>, the best sibling in sweep " in text
    )
    assert "grid-logreg" in text and "by `mean_test_score`" in text
    comparison = eventually(
        lambda: [
            m
            for m in slack.thread(card["channel"], card["ts"])
            if m.get("text") == "Compared with the baseline"
        ][0]
    )
    compared = blocks_text(comparison)
    assert "no metric in common" not in compared and "mean_test_score" in compared
    assert "rank_test_score" in compared

    review(bot, slack, eventually, best.info.run_id)
    best_card = eventually(
        lambda: [c for c in cards_for(slack, best.info.run_id) if "second best" in blocks_text(c)][-1]
    )
    assert f"/runs/{second.info.run_id}|{second.info.run_name}>, the second best in sweep " in blocks_text(
        best_card
    )
    assert "(this run is the best)" in blocks_text(best_card)


def test_a_failed_run_says_so_on_its_card_and_to_whoever_approves_it(bot, slack, runs, eventually) -> None:
    run_id = runs.make_run("diverged", metrics={"val_auc": 0.5})
    runs.client.set_terminated(run_id, "FAILED")
    review(bot, slack, eventually, run_id)
    card = cards_for(slack, run_id)[-1]
    text = blocks_text(card)
    assert RUN_STATE_CAVEATS["FAILED"] in text
    assert text.index("Run status") < text.index(RUN_STATE_CAVEATS["FAILED"]) < text.index("*Metrics*")

    url = slack.new_response_url()
    bot.block_action(
        ActionId.APPROVE.value, "{}", url, message=card, channel=card["channel"], user=support.BO
    )
    # The vote counts (it is not blocked), and the voter is told what the run is.
    eventually(lambda: runs.tags(run_id).get("review.status") == "approved", what="approved")
    caveat = build_approval_caveat("FAILED")
    assert caveat is not None
    eventually(lambda: caveat in response_texts(slack, url), what="the caveat in the voter's reply")


def test_a_finished_runs_approval_has_no_caveat(bot, slack, runs, eventually) -> None:
    run_id = runs.make_run("finished", metrics={"val_auc": 0.9})
    review(bot, slack, eventually, run_id)
    card = cards_for(slack, run_id)[-1]
    assert ":warning:" not in blocks_text(card)
    url = slack.new_response_url()
    bot.block_action(
        ActionId.APPROVE.value, "{}", url, message=card, channel=card["channel"], user=support.BO
    )
    eventually(lambda: runs.tags(run_id).get("review.status") == "approved", what="approved")
    assert not [t for t in response_texts(slack, url) if "Your approval is recorded" in t]


def test_a_run_in_a_deleted_experiment_says_the_experiment_was_deleted(bot, slack, runs, eventually) -> None:
    name = f"deleted-{uuid.uuid4().hex[:6]}"
    run_id = runs.make_run("orphan", metrics={"val_auc": 0.9}, experiment=name)
    runs.client.delete_experiment(runs.experiment(name))
    assert runs.client.get_run(run_id).info.lifecycle_stage == "deleted"  # MLflow marks its runs too
    url = slack.new_response_url()
    bot.command(run_id, url)
    reply = eventually(lambda: [t for t in response_texts(slack, url) if "deleted" in t][0])
    assert f"Experiment `{name}` was deleted in MLflow (restore it to review its runs)" in reply
    assert f"Run `{run_id}` was deleted" not in reply  # not described as a deleted run
    assert cards_for(slack, run_id) == []


def test_images_logged_by_step_and_nested_or_svg_images_are_named(bot, slack, runs, eventually) -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    )
    run_id = runs.make_run(
        "images",
        metrics={"val_auc": 0.9},
        images={
            "roc_curve.png": png_bytes(label="roc"),
            "plots/architecture.svg": svg,
            "eval/by_class/cat/deep/confusion.png": png_bytes(label="deep"),  # four folders deep
        },
    )
    rng = np.random.default_rng(0)
    for step in range(3):
        image = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
        runs.client.log_image(run_id, image, key="sample_predictions", step=step)
    runs.client.log_image(run_id, np.zeros((8, 8, 3), dtype=np.uint8), key="eval/attention", step=5)
    stored = [a.path for a in runs.client.list_artifacts(run_id, "images")]
    assert any(p.endswith("+compressed.webp") for p in stored)  # MLflow's copies, which are skipped

    review(bot, slack, eventually, run_id)
    card = cards_for(slack, run_id)[-1]
    plots = eventually(
        lambda: [
            m
            for m in slack.thread(card["channel"], card["ts"])
            if "Plots logged with the run" in m.get("text", "")
        ][0],
        what="the plots comment",
    )
    uploads = {f.filename: f for f in uploads_in_thread(slack, card["channel"], card["ts"])}
    assert {
        "roc_curve.png",
        "architecture.svg",
        "sample_predictions (step 2).png",
        "sample_predictions (step 1).png",
        "sample_predictions (step 0).png",
        "eval_attention (step 5).png",
    } <= set(uploads)
    assert uploads["sample_predictions (step 2).png"].title == "sample_predictions (step 2)"
    assert uploads["sample_predictions (step 2).png"].content.startswith(b"\x89PNG")
    assert uploads["architecture.svg"].content == svg
    assert not [n for n in uploads if n.endswith(".webp") or "+step+" in n or "confusion" in n]
    # Every image not uploaded is named with why; the SVG is said to have no preview.
    comment = plots["text"]
    assert "Plots logged with the run (6)" in comment
    assert "Not shown (more than 2 folders deep): `eval/by_class/cat/deep/confusion.png`" in comment
    assert "SVG, posted as a file (Slack shows no preview of SVG): `plots/architecture.svg`" in comment
    # The latest step of each key before the earlier steps of one key.
    order = [f.filename for f in sorted(uploads.values(), key=lambda f: f.id)]
    assert order.index("eval_attention (step 5).png") < order.index("sample_predictions (step 1).png")
    assert order.index("sample_predictions (step 2).png") < order.index("sample_predictions (step 1).png")
