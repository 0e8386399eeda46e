"""One escaping boundary: text that comes from people (Slack names, the form's agenda, command text) or from
MLflow (run, experiment, model, metric and param names, notes) goes out escaped in every message the bot
posts, updates, answers or uploads. A hostile corpus goes through every flow; no posted text may carry a
live mention or link from it."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.commands import CompareCommand, LeaderboardCommand
from bot.models import RefKind, RunRef, Via, VoteKind
from bot.services import Services
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import Told, post_card, run_ref
from tests.slack_api_server import SlackTestServer

CORPUS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@UEVIL0001>",
    "<#CEVIL0001>",
    "<!subteam^SEVIL01>",
    "<https://evil.example/steal|click me>",
    "<mailto:evil@example.com|mail>",
    "<!date^1700000000^{date}|x>",
    "&lt;!channel&gt;",
    "<\u200b!here>",
    "\u202eevil\u202c",
]
HOSTILE = " ".join(CORPUS)
LIVE = re.compile(
    r"<(?:!channel|!here|!everyone|@UEVIL|#CEVIL|!subteam\^SEVIL|https://evil|mailto:evil|!date\^1700000000)"
)
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


# Not read as mrkdwn by Slack (shown as typed, or not shown): button values, ids, metadata, plain_text
# objects (headers, buttons, modal labels), modal inputs' initial values, file names and titles.
NOT_MRKDWN = {
    "value",
    "private_metadata",
    "action_id",
    "block_id",
    "callback_id",
    "metadata",
    "initial_value",
}
NOT_MRKDWN |= {"filename", "title", "content", "file", "alt_text", "image_url", "url", "ts", "thread_ts"}


def mrkdwn_strings(value: object) -> list[str]:
    """Every string of a Slack call's arguments that Slack would read as mrkdwn."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in mrkdwn_strings(item)]
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            return []
        return [s for key, item in value.items() if key not in NOT_MRKDWN for s in mrkdwn_strings(item)]
    return []


def posted(slack: SlackTestServer) -> list[tuple[str, str]]:
    """(where, text) for everything the bot sent Slack as mrkdwn: calls, and answers to response_urls."""
    found = []
    for call in slack.calls:
        args = dict(call.args)
        for key in ("blocks", "attachments", "view", "file_uploads"):
            if isinstance(args.get(key), str):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        found += [(call.method, text) for text in mrkdwn_strings(args)]
    found += [("response_url", text) for r in slack.responses for text in mrkdwn_strings(r)]
    return found


@pytest.fixture
def hostile_people(slack: SlackTestServer) -> list[str]:
    users = ["U0EVE0001", "U0EVE0002", "U0EVE0003"]
    for i, user in enumerate(users):
        slack.add_user(user, f"eve{i}", f"{CORPUS[i]} Eve {HOSTILE}", f"eve{i}@example.com", "UTC")
    return users


def test_the_hostile_corpus_never_goes_out_live(
    make_services, fake_mlflow: FakeMlflow, slack: SlackTestServer, hostile_people: list[str]
) -> None:
    services: Services = make_services(reviewer_group=None)
    services.scheduler.scheduler.start(paused=True)  # meetings add jobs; none may run here
    names = {"run": f"run {HOSTILE}", "experiment": f"exp {HOSTILE}"}
    run_id = fake_mlflow.add_run(
        names["run"],
        experiment=names["experiment"],
        user=HOSTILE,
        metrics={"val_auc": 0.9, f"m {CORPUS[0]}": 1.0, f"m {CORPUS[6]}": 2.0},
        params={f"p {CORPUS[3]}": HOSTILE, "lr": CORPUS[1]},
        histories={"val_auc": [0.5, 0.7, 0.9], f"loss {CORPUS[4]}": [1.0, 0.5]},
        # (A Markdown link in the note stays a link: the run's author wrote it, as in the MLflow UI.)
        note=f"# Notes\n{HOSTILE}\n<https://evil.example|x>",
    )
    other = fake_mlflow.add_run(
        f"baseline {HOSTILE}", experiment=names["experiment"], metrics={"val_auc": 0.8}
    )
    model = f"model {CORPUS[5]}"
    fake_mlflow.register(model, run_id, alias="champion")

    card = post_card(services, slack, run_id, requested_by=support.ANA)
    eve, eve2, eve3 = hostile_people
    services.votes.vote(card["channel"], card["ts"], eve, VoteKind.REQUEST_CHANGES, Via.BUTTON, Told())
    services.votes.vote(card["channel"], card["ts"], eve2, VoteKind.APPROVE, Via.REACTION, Told())
    services.votes.vote(
        card["channel"], card["ts"], eve2, VoteKind.APPROVE, Via.REACTION, Told(), withdrawing=True
    )
    at = datetime.now(tz=UTC) + timedelta(hours=3)
    services.meetings.schedule(
        run_id, at, duration_min=30, invitees=[eve3, support.BO], agenda=HOSTILE, by=eve3
    )
    services.meetings.schedule(
        run_id, at + timedelta(hours=1), duration_min=30, invitees=[eve3], agenda=HOSTILE, by=eve3
    )
    services.meetings.cancel(run_id, by=eve3)
    told = Told()
    services.comparisons.publish_comparison(
        CompareCommand(refs=(run_ref(run_id), run_ref(other))), support.REVIEW_CHANNEL, told
    )
    services.comparisons.publish_leaderboard(
        LeaderboardCommand(words=tuple(names["experiment"].split())), support.REVIEW_CHANNEL, told
    )
    services.publisher.publish(
        RunRef(kind=RefKind.RUN, raw=HOSTILE, run_id="no-such-run"),
        requested_by=eve,
        origin_channel=support.DEV_CHANNEL,
        notify=told,
    )
    scan = services.nudges.scan(datetime.now(tz=UTC))
    services.nudges.post_digest(scan, datetime.now(tz=UTC))

    texts = posted(slack) + [("told", t) for t in told]
    assert len(slack.calls_to("chat.postMessage")) > 5 and slack.calls_to("chat.update")  # the flows ran
    leaks = [
        (where, text[max(0, m.start() - 50) : m.start() + 40])
        for where, text in texts
        for m in LIVE.finditer(text)
    ]
    assert leaks == []
    invisible = [(where, text[:80]) for where, text in texts if INVISIBLE.search(text)]
    assert invisible == []
    services.scheduler.scheduler.shutdown(wait=False)
