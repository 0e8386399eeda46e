"""Votes on one run: how many a second can be recorded, and how long a voter waits to see the card move.

Distinct voters click Approve on one card, `concurrency` at a time, spread over the replicas given. A vote
counts as recorded when its tag is in MLflow; a click's "card time" runs from its send to the first
chat.update of the card whose Approve button counts at least as many approvals as had been clicked when
it was sent (the card moves in batches, so this is what the voter sees). One replica and two replicas are
measured in the same run, so their ratio holds on a noisy machine.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot import signature, tags
from bot.ids import ActionId
from tests import support
from tests.benchmarks.stack import Stack
from tests.scenarios.helpers import post_card

APPROVE_COUNT = re.compile(r"Approve \((\d+)/")


@dataclass
class VoteBurst:
    replicas: int
    votes: int
    concurrency: int
    recorded_s: float  # first click sent -> every vote in MLflow
    per_second: float
    ack_p99_s: float
    card_p50_s: float
    card_p99_s: float
    lost: int


def _wait(check, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def measure_votes(
    stack: Stack, replicas: list[support.BotProcess], votes: int, concurrency: int, timeout: float
) -> VoteBurst:
    def eventually(check, timeout: float = 60, what: str = "") -> object:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.1)
        raise TimeoutError(what)

    run_id, card = post_card(replicas[0], stack.slack, stack.runs, eventually, name=f"votes-{len(replicas)}")
    eventually(lambda: tags.SIGNATURE in stack.runs.tags(run_id))
    verifier = signature.verifier_for([support.PUBLIC_KEY])
    people = [f"U0V{len(replicas)}{i:05d}" for i in range(votes)]
    sent: list[tuple[float, int]] = []  # (when sent, clicks sent by then, this one included)
    acks: list[float] = []
    order = iter(range(1, votes + 1))

    def vote(i_user: tuple[int, str]) -> None:
        i, user = i_user
        replica = replicas[i % len(replicas)]
        started = time.time()
        sent.append((started, next(order)))
        reply = replica.block_action(
            ActionId.APPROVE.value,
            "{}",
            stack.slack.new_response_url(),
            message=card,
            channel=card["channel"],
            user=user,
        )
        acks.append(time.time() - started)
        assert reply.status_code == 200, reply.text

    first = time.time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(vote, enumerate(people)))

    def recorded() -> int:
        state = verifier.review(run_id, stack.runs.tags(run_id))
        return len(state.approvals) if state else 0

    _wait(lambda: recorded() >= votes, timeout)
    recorded_s = time.time() - first
    count = recorded()
    updates = [
        (c.at, max((int(n) for n in APPROVE_COUNT.findall(json.dumps(c.args.get("blocks")))), default=0))
        for c in stack.slack.calls_to("chat.update")
        if c.ok and c.args.get("ts") == card["ts"]
    ]
    waits = []
    for at, clicked in sent:
        shown = next((u_at for u_at, n in sorted(updates) if u_at >= at and n >= clicked), None)
        if shown is not None:
            waits.append(shown - at)
    quantiles = statistics.quantiles(waits, n=100) if len(waits) >= 2 else [float("nan")] * 99
    ack_quantiles = statistics.quantiles(acks, n=100) if len(acks) >= 2 else [float("nan")] * 99
    return VoteBurst(
        replicas=len(replicas),
        votes=votes,
        concurrency=concurrency,
        recorded_s=round(recorded_s, 2),
        per_second=round(count / recorded_s, 1) if recorded_s > 0 else 0.0,
        ack_p99_s=round(ack_quantiles[98], 3),
        card_p50_s=round(quantiles[49], 2),
        card_p99_s=round(quantiles[98], 2),
        lost=votes - count,
    )
