"""`/review <run>`: signed slash commands into the served bot; the card, the thread, the replies out."""

from __future__ import annotations

import json
import time

import pytest

from bot.commands import USAGE
from bot.ids import ActionId, MetadataEvent
from bot.reviews.replies import ACK_DUPLICATE
from tests import support
from tests.scenarios.helpers import (
    action_ids,
    blocks_text,
    cards_for,
    complete_cards,
    png_bytes,
    posts_mentioning,
    response_texts,
    uploads_in_thread,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOTE = """## Summary
Gradient boosting beats the **baseline** by _two points_ of AUC.

- early stopping at `150` rounds
- see [the docs](https://scikit-learn.org/stable/)
"""


@pytest.fixture(scope="module")
def full_run(runs) -> str:
    steps = 20
    return runs.make_run(
        "gbm-candidate",
        params={"learning_rate": "0.1", "max_depth": "3", "n_estimators": "150"},
        metrics={"val_auc": 0.987, "val_accuracy": 0.95},
        histories={
            "loss": [1.0 / (i + 1) for i in range(steps)],
            "val_loss": [1.2 / (i + 1) + 0.05 for i in range(steps)],
            "val_auc": [0.8 + i * 0.009 for i in range(steps)],
        },
        note=NOTE,
        images={
            "training_confusion_matrix.png": png_bytes(label="confusion"),
            "plots/roc_curve.png": png_bytes(label="roc"),
            "huge_plot.png": PNG_MAGIC + b"\0" * (5 * 1024 * 1024 + 10),
        },
    )


def test_review_posts_card_to_review_channel_with_thread(
    bot, slack, full_run, response_url, eventually
) -> None:
    reply = bot.command(full_run, response_url)

    assert reply.status_code == 200, reply.text
    ack = reply.json()
    assert f"<#{support.REVIEW_CHANNEL}>" in ack["text"]
    assert ack.get("response_type", "ephemeral") == "ephemeral"

    card = eventually(lambda: cards_for(slack, full_run)[0], what="the card")
    assert card["channel"] == support.REVIEW_CHANNEL
    assert card["metadata"] == {
        "event_type": MetadataEvent.MODEL_REVIEW.value,
        "event_payload": {"run_id": full_run, "experiment_id": runs_experiment(bot, full_run)},
    }
    header = card["blocks"][0]
    assert header["type"] == "header" and "gbm-candidate" in header["text"]["text"]
    assert action_ids(card) == [
        a.value for a in (ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.SCHEDULE, ActionId.OPEN_MLFLOW)
    ]
    text = blocks_text(card)
    assert "/#/experiments/" in text and f"/runs/{full_run}|{full_run}>" in text  # run id linked to the UI
    assert "ana.lopez" in text and "train.py" in text and "`a1b2c3d`" in text
    assert "*Summary*" in text and "*baseline*" in text and "_two points_" in text
    assert "<https://scikit-learn.org/stable/|the docs>" in text
    # REVIEW_KEY_METRICS=val_auc,val_loss puts val_auc before val_accuracy although it sorts after
    assert text.index("val_auc") < text.index("val_accuracy")
    assert "gbm-candidate" in card["text"] and "<" not in card["text"]

    uploads = eventually(
        lambda: (
            len(uploads_in_thread(slack, card["channel"], card["ts"])) >= 2
            and uploads_in_thread(slack, card["channel"], card["ts"])
        )
    )
    by_name = {f.filename: f for f in uploads}
    assert by_name["metric-history.png"].content.startswith(PNG_MAGIC)
    assert {"training_confusion_matrix.png", "roc_curve.png"} <= set(by_name)
    assert "huge_plot.png" not in by_name
    thread_texts = " ".join(m.get("text", "") for m in slack.thread(card["channel"], card["ts"]))
    assert "huge_plot.png" in thread_texts  # named as skipped, not silently dropped

    posted = eventually(
        lambda: [t for t in response_texts(slack, response_url) if "Review card posted" in t][0]
    )
    assert "https://test.slack.com/archives/" in posted


def runs_experiment(bot, run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    return MlflowClient(bot.env["MLFLOW_TRACKING_URI"]).get_run(run_id).info.experiment_id


@pytest.mark.parametrize(
    "make_ref",
    [
        lambda run_id, ui: f"{ui}/#/experiments/1/runs/{run_id}",
        lambda run_id, ui: f"<{ui}/#/experiments/1/runs/{run_id}>",  # as Slack escapes links
        lambda run_id, ui: f"runs:/{run_id}/model",
        lambda run_id, ui: run_id.upper(),
    ],
    ids=["ui-url", "slack-escaped-url", "runs-uri", "upper-case-id"],
)
def test_run_references_people_paste(bot, slack, runs, response_url, eventually, make_ref) -> None:
    run_id = runs.make_run("ref-run", metrics={"val_auc": 0.9})
    bot.command(make_ref(run_id, bot.env["MLFLOW_TRACKING_URI"]), response_url)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    assert card["metadata"]["event_payload"]["run_id"] == run_id


def test_model_version_and_alias_resolve_to_source_run(bot, slack, runs, response_url, eventually) -> None:
    baseline = runs.make_run("baseline", metrics={"val_auc": 0.9})
    candidate = runs.make_run("candidate", metrics={"val_auc": 0.95})
    runs.register("fraud-clf", baseline, alias="champion")
    version = runs.register("fraud-clf", candidate)

    bot.command(f"models:/fraud-clf/{version}", response_url)
    card = eventually(lambda: complete_cards(slack, candidate)[0])  # model versions are read after the post
    assert f"fraud-clf v{version}" in blocks_text(card)

    bot.command("models:/fraud-clf@champion", slack.new_response_url())
    champion_card = eventually(lambda: complete_cards(slack, baseline)[0])
    assert "@champion" in blocks_text(champion_card)


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_usage_is_ephemeral_and_posts_nothing(bot, slack, response_url, text) -> None:
    reply = bot.command(text, response_url, user=support.CAROL)
    assert reply.status_code == 200
    assert reply.json() == {"response_type": "ephemeral", "text": USAGE}
    time.sleep(0.5)  # a wrong post would come from the lazy listener, right after the ack
    assert not posts_mentioning(slack, support.CAROL)
    assert response_texts(slack, response_url) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not-a-run", "`not-a-run` is not a run id"),
        ("1234", "`1234` is not a run id"),
        ("models:/fraud-clf/Champion-v2", "not a model URI I can review"),
        ("https://example.com/some/page", "does not look like an MLflow page I can review"),
        ("a b", "takes one run"),
    ],
)
def test_malformed_reference_answered_in_the_ack(bot, slack, response_url, text, expected) -> None:
    reply = bot.command(text, response_url, user=support.CAROL)
    assert expected in reply.json()["text"]
    time.sleep(0.5)
    assert not posts_mentioning(slack, support.CAROL)


def test_unknown_run_is_named_and_nothing_posted(bot, slack, response_url, eventually) -> None:
    missing = support.new_run_id()
    bot.command(missing, response_url)
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert missing in text and "MLflow has no run" in text
    assert not cards_for(slack, missing)


def test_deleted_run_is_named_and_nothing_posted(bot, slack, runs, response_url, eventually) -> None:
    run_id = runs.make_run("deleted")
    runs.client.delete_run(run_id)
    bot.command(run_id, response_url)
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert "was deleted" in text and run_id in text
    assert not cards_for(slack, run_id)


@pytest.mark.parametrize(
    ("ref", "named"),
    [("models:/no-such-model/1", "no-such-model"), ("models:/fraud-clf@no-such-alias", "no-such-alias")],
)
def test_unknown_model_or_alias_is_named(bot, slack, runs, response_url, eventually, ref, named) -> None:
    runs.register("fraud-clf", runs.make_run("for-registry"))
    bot.command(ref, response_url, user=support.CAROL)
    text = eventually(lambda: response_texts(slack, response_url)[0])
    assert named in text and "MLflow has no" in text
    assert not posts_mentioning(slack, support.CAROL)


def test_untrusted_text_from_mlflow_pings_no_one_and_links_nowhere(
    bot, slack, runs, response_url, eventually
) -> None:
    run_id = runs.make_run(
        "<!channel>",
        params={"mention": "<!here> <@U0EVE>"},
        note="Ping <!channel> and <https://evil.example|click> me",
        tags={"mlflow.user": "<!everyone>"},
    )
    bot.command(run_id, response_url)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    everything = json.dumps(card)
    for dangerous in ("<!channel>", "<!here>", "<!everyone>", "<@U0EVE>", "<https://evil.example"):
        assert dangerous not in everything.replace(card["blocks"][0]["text"]["text"], "")
    assert "&lt;https://evil.example|click&gt;" in blocks_text(card)
    assert card["blocks"][0]["text"]["type"] == "plain_text"  # header shows the name literally


def test_a_huge_run_still_posts_valid_messages(bot, slack, runs, response_url, eventually) -> None:
    run_id = runs.make_run(
        "x" * 200,
        params={f"param_{i:04d}": f"value-{i}" for i in range(1000)},
        metrics={f"metric_{i:03d}": i / 7 for i in range(300)},
        note=("Word " * 5 + "\n\n") * 1000,  # 30,000 characters
    )
    bot.command(run_id, response_url)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    assert len(card["blocks"]) <= 50
    assert "…and 288 more in the thread" in blocks_text(card)
    assert "…and 988 more in the thread" in blocks_text(card)
    # The thread's parts go one after another (the params table last): wait for the last one.
    thread = eventually(
        lambda: (
            "param_0999" in " ".join(blocks_text(m) for m in slack.thread(card["channel"], card["ts"]))
            and slack.thread(card["channel"], card["ts"])
        )
    )
    thread_text = " ".join(blocks_text(m) for m in thread)
    assert "param_0999" in thread_text and "metric_299" in thread_text and "Notes (continued)" in thread_text
    rejected = [
        c for c in slack.calls if c.method.startswith("chat.") and not c.ok and run_id in json.dumps(c.args)
    ]
    assert rejected == []


@pytest.mark.parametrize("captured_ago", [0, 240])
def test_a_replayed_signed_command_posts_one_card(
    bot, slack, runs, response_url, eventually, captured_ago
) -> None:
    """A signed /review captured and sent again 13 s later (really waited), or 4 minutes after it was
    signed (inside Slack's 5-minute window): refused by its signature, whatever its age."""
    run_id = runs.make_run("replayed")
    body = support.command_body(run_id, response_url)
    signed_at = int(time.time()) - captured_ago
    first = bot.post_signed(body, support.FORM, timestamp=signed_at)
    assert first.json()["text"] != ACK_DUPLICATE
    eventually(lambda: [t for t in response_texts(slack, response_url) if "Review card posted" in t])
    if captured_ago == 0:
        time.sleep(13)
    replayed = bot.post_signed(body, support.FORM, timestamp=signed_at)
    assert replayed.status_code == 200 and replayed.json()["text"] == ACK_DUPLICATE
    time.sleep(1.0)  # a second card would be posted by now
    assert len(cards_for(slack, run_id)) == 1


def test_the_same_command_typed_twice_is_two_requests(bot, slack, runs, response_url, eventually) -> None:
    run_id = runs.make_run("typed-twice")
    first, second = bot.command(run_id, response_url), bot.command(run_id, response_url)
    assert ACK_DUPLICATE not in (first.json()["text"], second.json()["text"])
    eventually(lambda: len(cards_for(slack, run_id)) == 2)


def test_a_double_click_is_two_clicks_that_change_the_vote_once(
    bot, slack, runs, response_url, eventually
) -> None:
    run_id = runs.make_run("double-click")
    bot.command(run_id, response_url)
    card = eventually(lambda: cards_for(slack, run_id)[0])
    url = slack.new_response_url()
    for _ in range(2):
        reply = bot.block_action(ActionId.APPROVE.value, "{}", url, message=card, channel=card["channel"])
        assert reply.status_code == 200
    eventually(lambda: runs.tags(run_id).get("review.status") == "approved")
    assert "already approved" in eventually(lambda: response_texts(slack, url)[0])
    lines = [m for m in slack.thread(card["channel"], card["ts"]) if "approved" in m.get("text", "")]
    assert len(lines) == 1
