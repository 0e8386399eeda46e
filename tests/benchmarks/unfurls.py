"""Unfurls: MLflow requests per unfurl vs per card, counted by a proxy in front of MLflow, and the time
from the link_shared event to chat.unfurl. `make bench` runs it (tests/benchmarks/__main__.py);
`python -m tests.benchmarks.unfurls` runs it alone on its own stack.

What is measured, each against a bot that reaches MLflow through the counting proxy (PRIMARY_METRIC set,
so an experiment's best run is looked up too):
- a whole review card: `/review <run>` until its thread is complete (the card, its completion, the
  chart), the cost an unfurl must stay under;
- the unfurl of the same run (it now has a card and a baseline: one more read for the baseline's metrics),
  of a run never reviewed, of an experiment, of a model version, of a message with MAX_LINKS runs;
- the same link again within the cache's minute (an edited message, another channel): no request.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests import support
from tests.benchmarks.measure import chart_calls, poll, response_texts
from tests.benchmarks.stack import Stack, counted_bot, running_stack
from tests.slow_proxy import SlowProxy

QUIET_S = 1.0  # no MLflow request for this long: the bot is done with what it was asked
CARD_QUIET_S = 3.0  # after the card's last chart: its plots are listed after a pause (the chart is drawn)
OVERLAY_FILENAME = "vs-baseline.png"  # the last chart of a card's thread
TIMEOUT_S = 60.0
MAX_LINKS = 5
HISTORY_STEPS = 200
POSTED_MARKER = "Review card posted"


@dataclass
class Cost:
    what: str
    requests: int
    seconds: float | None = None  # to the card's last thread item, or to chat.unfurl
    paths: dict[str, int] = field(default_factory=dict)


@dataclass
class UnfurlBench:
    card: Cost
    unfurls: list[Cost]

    @property
    def per_card(self) -> int:
        return self.card.requests


def _settled(proxy: SlowProxy, since: int, quiet_s: float = QUIET_S) -> list[str]:
    """The requests made since `since`, once none has come for `quiet_s` (or TIMEOUT_S passed)."""
    deadline = time.monotonic() + TIMEOUT_S
    seen, quiet_from = len(proxy.paths), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if len(proxy.paths) != seen:
            seen, quiet_from = len(proxy.paths), time.monotonic()
        elif time.monotonic() - quiet_from >= quiet_s:
            break
    return [path.split("?", 1)[0] for path in proxy.paths[since:]]


def _cost(what: str, paths: list[str], seconds: float | None) -> Cost:
    return Cost(what, len(paths), seconds, dict(Counter(paths)))


def _card(stack: Stack, bot: support.BotProcess, proxy: SlowProxy, run_id: str) -> Cost:
    """`/review <run>` until its thread's last chart (the overlay with the baseline) is posted and MLflow
    has been quiet for CARD_QUIET_S."""
    slack, url = stack.slack, stack.slack.new_response_url()
    since, t0 = len(proxy.paths), time.time()
    bot.command(run_id, url, user="U0UNFURLBENCH")
    posted = poll(lambda: [t for t in response_texts(slack, url) if POSTED_MARKER in t], TIMEOUT_S)
    if not posted:
        raise AssertionError(f"no card for {run_id}: {response_texts(slack, url)}")
    card = next(
        c
        for c in slack.calls_to("chat.postMessage")
        if c.ok and ((c.args.get("metadata") or {}).get("event_payload") or {}).get("run_id") == run_id
    )
    charts = poll(lambda: chart_calls(slack, {card.response["ts"]}, t0, OVERLAY_FILENAME), TIMEOUT_S)
    if not charts:
        raise AssertionError(f"the card of {run_id} has no chart against its baseline in its thread")
    done = max(c.at for c in charts) - t0
    return _cost(
        "a review card (`/review`: card, completion, thread)", _settled(proxy, since, CARD_QUIET_S), done
    )


def _unfurl(stack: Stack, bot: support.BotProcess, proxy: SlowProxy, what: str, *urls: str) -> Cost:
    """One link_shared event with `urls`: the requests it cost, and the time to its chat.unfurl."""
    unfurl_id = f"C-{uuid.uuid4().hex}"
    event = {
        "type": "link_shared",
        "channel": support.DEV_CHANNEL,
        "user": support.ANA,
        "message_ts": f"{time.time():.6f}",
        "unfurl_id": unfurl_id,
        "source": "conversations_history",
        "links": [{"domain": "127.0.0.1", "url": url} for url in urls],
    }
    since, t0 = len(proxy.paths), time.time()
    bot.post_signed(support.event_body(event, f"Ev{uuid.uuid4().hex[:12]}"), "application/json")
    made = poll(
        lambda: [c for c in stack.slack.calls_to("chat.unfurl") if c.args.get("unfurl_id") == unfurl_id], 15
    )
    paths = _settled(proxy, since)
    if not made or not made[0].ok:
        raise AssertionError(f"no unfurl for {what}: {made and made[0].response}")
    if len(made[0].args["unfurls"]) != len(urls):
        raise AssertionError(f"{what}: {len(urls)} links, unfurled {list(made[0].args['unfurls'])}")
    return _cost(what, paths, made[0].at - t0)


def measure(stack: Stack, progress: Callable[[str], None] = print) -> UnfurlBench:
    runs, ui = stack.runs, stack.mlflow_url
    experiment = f"unfurl-bench-{uuid.uuid4().hex[:6]}"
    history = [1.0 / (i + 1) for i in range(HISTORY_STEPS)]
    runs.make_run(
        "baseline", experiment=experiment, metrics={"val_auc": 0.90}, histories={"val_loss": history}
    )
    reviewed = runs.make_run(
        "reviewed", experiment=experiment, metrics={"val_auc": 0.95}, histories={"val_loss": history}
    )
    fresh = [
        runs.make_run(f"fresh-{i}", experiment=experiment, metrics={"val_auc": 0.8 + i / 100})
        for i in range(MAX_LINKS + 1)
    ]
    model = f"unfurl-bench-{uuid.uuid4().hex[:6]}"
    version = runs.register(model, fresh[-1], alias="champion")
    experiment_id = runs.experiment(experiment)

    def run_url(run_id: str) -> str:
        return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"

    stack.slack.unfurl_domains.add("127.0.0.1")
    with counted_bot(stack, PRIMARY_METRIC="val_auc:max") as (bot, proxy):
        progress("   a review card, then the unfurl of each kind of link…")
        card = _card(stack, bot, proxy, reviewed)
        unfurls = [
            _unfurl(stack, bot, proxy, "a run with its card and baseline", run_url(reviewed)),
            _unfurl(stack, bot, proxy, "a run never reviewed", run_url(fresh[0])),
            _unfurl(
                stack, bot, proxy, "an experiment (count, best run)", f"{ui}/#/experiments/{experiment_id}"
            ),
            _unfurl(
                stack, bot, proxy, "a model version (@champion)", f"{ui}/#/models/{model}/versions/{version}"
            ),
            _unfurl(
                stack, bot, proxy, f"a message with {MAX_LINKS} run links", *[run_url(r) for r in fresh[1:]]
            ),
            _unfurl(stack, bot, proxy, "the same run again within a minute (cached)", run_url(reviewed)),
        ]
    return UnfurlBench(card, unfurls)


def render(bench: UnfurlBench) -> str:
    title = "Unfurls: MLflow requests per unfurl vs per card"
    rows = [(bench.card.what, f"{bench.card.requests} requests", _s(bench.card.seconds))]
    rows += [(u.what, f"{u.requests} requests", _s(u.seconds)) for u in bench.unfurls]
    width = max(len(r[0]) for r in rows)
    lines = [title, "-" * len(title), f"  {'':<{width}}  {'MLflow':<12}  time"]
    lines += [f"  {what:<{width}}  {count:<12}  {seconds}" for what, count, seconds in rows]
    dearest = max(bench.unfurls, key=lambda u: u.requests)
    lines.append(
        f"  the dearest unfurl ({dearest.what}) costs {dearest.requests} requests, a card {bench.per_card}: "
        f"{dearest.requests / max(1, bench.per_card):.2f} of a card"
    )
    lines.append("  requests by endpoint:")
    for cost in [bench.card, *bench.unfurls]:
        detail = ", ".join(f"{path.rsplit('/mlflow/', 1)[-1]} ×{n}" for path, n in sorted(cost.paths.items()))
        lines.append(f"    {cost.what}: {detail or 'none'}")
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def main() -> int:
    with running_stack() as stack:
        bench = measure(stack, lambda message: print(message, file=sys.stderr, flush=True))
    print(render(bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
