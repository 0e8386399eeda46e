"""MLflow 3: LoggedModels and prompts reviewed through the served bot on the real MLflow server (3.x,
sqlite): every reference form, the LoggedModel card with and without a run, the prompt card and its
diff, a vote recorded on a prompt version, `review-bot gate` on each kind, and a real
`prompt_alias.created` webhook producing exactly one nudge."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot import signature, tags
from bot.ids import ActionId
from bot.models import ReviewStatus
from bot.nudges.blocks import STATUS_DELETED
from bot.subjects import model_version_subject, prompt_subject
from bot.votes.gate import DELETED
from tests import support
from tests.mlflow3_data import Mlflow3Data, unique
from tests.scenarios.helpers import blocks_text, cards_for, post_card, response_texts, run_gate
from tests.scenarios.test_nudges import QUIET, SECRET, cli

GATE_KEYS = signature.verifier_for([support.PUBLIC_KEY])
UI = "http://mlflow.example.test:5000"


@pytest.fixture(scope="module")
def data(mlflow_server: str) -> Mlflow3Data:
    return Mlflow3Data(mlflow_server)


def review(bot, slack, eventually, ref: str, subject: str) -> dict:
    """`/review <ref>` through the served bot; the card of `subject` once it is complete."""
    url = slack.new_response_url()
    bot.command(ref, url, user=support.ANA)
    eventually(lambda: [t for t in response_texts(slack, url) if "Review card posted" in t], what=ref)
    return latest_card(slack, subject)


def latest_card(slack, subject: str) -> dict:
    card = cards_for(slack, subject)[-1]
    updates = [c for c in slack.calls_to("chat.update") if c.ok and c.args.get("ts") == card["ts"]]
    return {**card, "blocks": updates[-1].args["blocks"]} if updates else card


def refused(bot, slack, eventually, ref: str) -> str:
    """What the requester is told: in the ack for a malformed reference, later for an unknown one."""
    url = slack.new_response_url()
    ack = bot.command(ref, url, user=support.ANA).json().get("text", "")
    if ":thinking_face:" in ack:
        return ack
    return eventually(lambda: [t for t in response_texts(slack, url) if ":mag:" in t], what=ref)[0]


def vote(bot, slack, card: dict, action: str = ActionId.APPROVE.value, user: str = support.BO) -> None:
    reply = bot.block_action(
        action, "{}", slack.new_response_url(), message=card, channel=card["channel"], user=user
    )
    assert reply.status_code == 200


def gate(ref: str, mlflow_server: str, tmp_path: Path):  # noqa: ANN201
    return run_gate(ref, mlflow_server, tmp_path)


# --- LoggedModels -------------------------------------------------------------------------------------


def test_a_logged_model_without_a_run_is_reviewed_voted_and_gated_on_itself(
    bot, slack, data, runs, mlflow_server, eventually, tmp_path
) -> None:
    made = data.logged_model_without_run(alias="staging")
    assert not runs.client.get_logged_model(made.model_id).source_run_id
    before = gate(f"models:/{made.model_id}", mlflow_server, tmp_path)
    assert before.returncode == 1 and "never put up for review" in before.stdout, (
        before.stdout + before.stderr
    )

    card = review(bot, slack, eventually, f"models:/{made.model_id}", made.model_id)
    text = blocks_text(card)
    assert "Model review: support-agent" in text
    assert "support-eval" in text and "answer_correctness" in text and "0.81" in text  # by dataset
    assert "temperature" in text and "bm25" in text  # params
    assert "support-ml" in text  # tags
    assert f"{made.registered} v{made.version}" in text and "@staging" in text
    pending = gate(f"models:/{made.registered}@staging", mlflow_server, tmp_path)
    assert pending.returncode == 1 and "pending" in pending.stdout

    vote(bot, slack, card)
    eventually(
        lambda: (
            GATE_KEYS.review(made.model_id, runs.client.get_logged_model(made.model_id).tags).status
            is ReviewStatus.APPROVED
        ),
        what="the approval on the LoggedModel's tags",
    )
    # Mirrored onto the version it covers, for the registry page.
    version_tags = runs.client.get_model_version(made.registered, made.version).tags
    eventually(lambda: runs.client.get_model_version(made.registered, made.version).tags.get(tags.STATUS))
    version_tags = runs.client.get_model_version(made.registered, made.version).tags
    assert version_tags[tags.STATUS] == "approved"
    for ref in (f"models:/{made.model_id}", f"models:/{made.registered}@staging"):
        passed = gate(ref, mlflow_server, tmp_path)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert passed.stdout.startswith(f"approved: logged model {made.model_id} approved by")
    unknown = gate("models:/m-" + "0" * 32, mlflow_server, tmp_path)
    assert unknown.returncode == 2 and "m-" + "0" * 32 in unknown.stderr


def test_a_logged_model_from_a_run_is_reviewed_as_its_run_with_its_models_listed(
    bot, slack, data, runs, mlflow_server, eventually, tmp_path
) -> None:
    run_id, made = data.logged_model_from_run(alias="champion")
    card = review(bot, slack, eventually, f"models:/{made.model_id}", run_id)
    text = blocks_text(card)
    assert "holdout" in text and "shadow-traffic" in text  # the run's LoggedModel, metrics by dataset
    assert made.model_id in text
    vote(bot, slack, card)
    eventually(lambda: runs.tags(run_id).get(tags.STATUS) == "approved", what="approval on the run")
    passed = gate(f"models:/{made.model_id}", mlflow_server, tmp_path)
    assert passed.returncode == 0 and passed.stdout.startswith(f"approved: run {run_id}"), passed.stdout


def test_every_model_reference_form_reaches_the_same_review(bot, slack, data, runs, eventually) -> None:
    made = data.logged_model_without_run(registered=unique("forms"), alias="champion")
    forms = [
        f"models:/{made.model_id}",
        f"<models:/{made.model_id}>",
        f"{UI}/#/experiments/{data.experiment()}/models/{made.model_id}",
        f"models:/{made.registered}/{made.version}",
        f"models:/{made.registered}@champion",
        f"models:/{made.registered}/latest",
        f"{UI}/#/models/{made.registered}/versions/{made.version}",
    ]
    for form in forms:
        card = review(bot, slack, eventually, form, made.model_id)
        assert "Model review: support-agent" in blocks_text(card), form
    assert len(cards_for(slack, made.model_id)) == len(forms)


def test_a_legacy_stage_and_a_version_without_run_or_logged_model(
    bot, slack, runs, mlflow_server, eventually, tmp_path
) -> None:
    name = unique("legacy")
    runs.client.create_registered_model(name)
    mv = runs.client.create_model_version(name, "s3://bucket/models/legacy-7", description="Exported by hand")
    with pytest.warns(FutureWarning):
        runs.client.transition_model_version_stage(name, mv.version, "Production")
    subject = model_version_subject(name, str(mv.version))
    card = review(bot, slack, eventually, f"models:/{name}/Production", subject)
    text = blocks_text(card)
    assert f"Model review: {name} v{mv.version}" in text
    assert "s3://bucket/models/legacy-7" in text and "Exported by hand" in text
    vote(bot, slack, card, ActionId.REQUEST_CHANGES.value)
    eventually(  # the signature is the last tag written: wait for what the gate would see
        lambda: (
            GATE_KEYS.review(subject, runs.client.get_model_version(name, mv.version).tags).status
            is ReviewStatus.CHANGES_REQUESTED
        ),
        what="the signed change request on the version",
    )
    verdict = gate(f"models:/{name}/{mv.version}", mlflow_server, tmp_path)
    assert verdict.returncode == 1 and "changes requested" in verdict.stdout, verdict.stdout + verdict.stderr


def test_unknown_models_and_prompts_are_named_back_and_nothing_is_posted(bot, slack, eventually) -> None:
    before = len(slack.calls_to("chat.postMessage"))
    missing_id = "m-" + "0" * 32
    assert missing_id in refused(bot, slack, eventually, f"models:/{missing_id}")
    assert "no-such-model" in refused(bot, slack, eventually, "models:/no-such-model/latest")
    assert "no-such-prompt" in refused(bot, slack, eventually, "prompts:/no-such-prompt@production")
    hint = refused(bot, slack, eventually, "models:/clf/Champion-ish")
    assert "prompts:/<name>/<version>" in hint and "models:/m-<id>" in hint
    assert len(slack.calls_to("chat.postMessage")) == before


# --- prompts ------------------------------------------------------------------------------------------


def test_a_prompt_version_card_diffs_against_the_deployed_version_and_records_votes_on_the_version(
    bot, slack, data, runs, mlflow_server, eventually, tmp_path
) -> None:
    name = data.prompt()
    subject = prompt_subject(name, "2")
    assert gate(f"prompts:/{name}@production", mlflow_server, tmp_path).returncode == 1
    card = review(bot, slack, eventually, f"prompts:/{name}/2", subject)
    text = blocks_text(card)
    assert f"Prompt review: {name} v2" in text
    assert "+Keep every number exactly as written." in text  # the diff against v1 (@production)
    assert "keep numbers exact; lower temperature" in text  # the commit message
    assert "temperature" in text and "0.2" in text  # the model config

    vote(bot, slack, card)
    record = lambda: runs.client.get_prompt_version(name, "2").tags  # noqa: E731
    # A version's tags are written one at a time, the signature last: until it lands the record reads as
    # unsigned (never approved), so wait for what the gate would see.
    eventually(
        lambda: GATE_KEYS.review(subject, record()).status is ReviewStatus.APPROVED,
        what="the signed approval on the prompt version",
    )
    assert record()[tags.STATUS] == "approved"
    assert tags.STATUS not in runs.client.get_prompt_version(name, "1").tags
    # The card shows the vote and keeps its diff.
    eventually(lambda: "Approved" in blocks_text(latest_card(slack, subject)))
    assert "+Keep every number exactly as written." in blocks_text(latest_card(slack, subject))

    # v1 is deployed (@production) and unreviewed: 1. Moving the alias to the approved v2: 0.
    assert gate(f"prompts:/{name}@production", mlflow_server, tmp_path).returncode == 1
    runs.client.set_prompt_alias(name, "production", 2)
    passed = gate(f"prompts:/{name}@production", mlflow_server, tmp_path)
    assert passed.returncode == 0 and passed.stdout.startswith(f"approved: prompt {name} version 2")
    unknown = gate("prompts:/no-such-prompt@production", mlflow_server, tmp_path)
    assert unknown.returncode == 2


def test_a_forged_approval_on_a_prompt_version_does_not_pass_the_gate(
    data, runs, mlflow_server, tmp_path
) -> None:
    name = data.prompt()
    runs.client.set_prompt_version_tag(name, "1", tags.STATUS, "approved")
    verdict = gate(f"prompts:/{name}@production", mlflow_server, tmp_path)
    assert verdict.returncode == 1 and "not signed by review-bot" in verdict.stdout


def test_every_prompt_reference_form_reaches_the_same_review(bot, slack, data, eventually) -> None:
    name = data.prompt()
    forms = {
        f"prompts:/{name}/1": "1",
        f"prompts:/{name}@production": "1",
        f"prompts:/{name}": "2",
        f"{UI}/#/prompts/{name}": "2",
        f"{UI}/#/prompts/{name}?promptVersion=1": "1",
    }
    for form, version in forms.items():
        card = review(bot, slack, eventually, form, prompt_subject(name, version))
        assert f"Prompt review: {name} v{version}" in blocks_text(card), form


# --- nudges -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompt_nudge_bot(bots, mlflow_server: str, runs):  # noqa: ANN201
    bot = bots.get(MLFLOW_WEBHOOK_SECRET=SECRET, NUDGE_REPEAT="1d")
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_WEBHOOK_SECRET": SECRET}
    created = cli(
        "webhook", "register", "--name", "review-bot-prompts", "--url", f"{bot.url}/mlflow/webhook", env=env
    )
    assert created.returncode == 0, created.stderr
    hooks = [w for w in runs.client.list_webhooks() if w.name == "review-bot-prompts"]
    assert "prompt_alias.created" in {str(e) for e in hooks[0].events}
    yield bot
    for hook in hooks:
        runs.client.delete_webhook(hook.webhook_id)


def prompt_nudges(slack, name: str) -> list[dict]:
    return [m for m in slack.messages.get(support.REVIEW_CHANNEL, []) if f"{name} v" in m.get("text", "")]


def test_a_deployment_alias_on_an_unreviewed_prompt_nudges_exactly_once(
    prompt_nudge_bot, slack, data, runs, eventually
) -> None:
    name = data.prompt(alias=None)
    runs.client.set_prompt_alias(name, "staging", 1)  # not a deployment alias: no nudge
    runs.client.set_prompt_alias(name, "production", 2)
    nudge = eventually(lambda: prompt_nudges(slack, name), what="the prompt nudge")[0]
    time.sleep(QUIET)
    assert len(prompt_nudges(slack, name)) == 1
    text = json.dumps(nudge["blocks"])
    assert "is deployed as @production without an approved review" in text
    assert "this prompt version" in text and "never reviewed" in text
    buttons = [e for b in nudge["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [ActionId.NUDGE_START_REVIEW, ActionId.NUDGE_SNOOZE]
    assert json.loads(buttons[0]["value"]) == {"model": name, "version": "2", "prompt": True}

    # Start review posts the prompt's card.
    reply = prompt_nudge_bot.block_action(
        ActionId.NUDGE_START_REVIEW.value,
        buttons[0]["value"],
        slack.new_response_url(),
        message=nudge,
        channel=support.REVIEW_CHANNEL,
    )
    assert reply.status_code == 200
    eventually(lambda: cards_for(slack, prompt_subject(name, "2")), what="the card from the nudge")


# --- one rule: the gate, the nudge and the digest agree -----------------------------------------------


def test_a_deleted_approved_run_fails_the_gate_and_the_digest_says_why(
    bot, slack, runs, mlflow_server, redis_url, eventually, tmp_path
) -> None:
    run_id, card = post_card(bot, slack, runs, eventually, name="approved-then-deleted")
    vote(bot, slack, card)
    eventually(lambda: runs.tags(run_id).get(tags.STATUS) == "approved", what="the approval")
    model, alias = unique("deleted-run"), unique("live")
    version = runs.register(model, run_id, alias=alias)
    assert gate(f"models:/{model}@{alias}", mlflow_server, tmp_path).returncode == 1  # registered after
    assert gate(run_id, mlflow_server, tmp_path).returncode == 0
    runs.client.delete_run(run_id)
    verdict = gate(run_id, mlflow_server, tmp_path)
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    assert verdict.stdout.strip() == DELETED.format(what=f"run {run_id}")
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "REDIS_URL": redis_url, "DEPLOYMENT_ALIASES": alias}
    digest = cli("nudge", "--once", "--dry-run", env=env)
    assert digest.returncode == 0, digest.stderr
    assert f"• v{version} @{alias}: {STATUS_DELETED}" in digest.stdout
    assert "never reviewed" not in digest.stdout


def test_the_digest_lists_a_deployed_unreviewed_logged_model_and_prompt_with_their_own_records(
    data, redis_url, mlflow_server
) -> None:
    alias = unique("live")
    made = data.logged_model_without_run(alias=alias)
    name = data.prompt(alias=None)
    data.client.set_prompt_alias(name, alias, 2)
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "REDIS_URL": redis_url, "DEPLOYMENT_ALIASES": alias}
    digest = cli("nudge", "--once", "--dry-run", env=env)
    assert digest.returncode == 0, digest.stderr
    shown = (
        f"/#/models/{made.registered}/versions/{made.version})\n• v{made.version} @{alias}: never reviewed"
    )
    assert shown in digest.stdout, digest.stdout
    assert (
        f"Prompt {name} (" in digest.stdout
        and f"/#/prompts/{name})\n• v2 @{alias}: never reviewed" in digest.stdout
    )
