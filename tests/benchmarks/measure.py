"""What the benchmark measures: ack latency under load, command-to-card/chart time for a big run, peak RSS.

Times come from two clocks on purpose: latencies the benchmark sees itself use `time.perf_counter()`;
"when did Slack receive it" uses `Call.at` from the Slack test server, which is `time.time()`, so those
are compared with a `time.time()` taken just before the command is sent.
"""

from __future__ import annotations

import contextlib
import io
import math
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from slack_sdk import WebClient

from tests import support
from tests.benchmarks.stack import Stack, child_pids
from tests.slack_api_server import Call, SlackTestServer

CHART_FILENAME = "metric-history.png"
POSTED_MARKER = "Review card posted"
POLL_INTERVAL = 0.05


# --- Slack-side queries -----------------------------------------------------------------------------


def card_calls(slack: SlackTestServer, run_ids: set[str], since: float) -> list[Call]:
    """Accepted chat.postMessage calls carrying review-card metadata for one of `run_ids`."""
    found = []
    for call in slack.calls_to("chat.postMessage"):
        metadata = call.args.get("metadata")
        if not call.ok or call.at < since or not isinstance(metadata, dict):
            continue
        if (metadata.get("event_payload") or {}).get("run_id") in run_ids:
            found.append(call)
    return found


def chart_calls(
    slack: SlackTestServer, thread_ts: set[str], since: float, filename: str = CHART_FILENAME
) -> list[Call]:
    """Accepted files.completeUploadExternal calls that put the chart `filename` into one of the threads."""
    found = []
    for call in slack.calls_to("files.completeUploadExternal"):
        if not call.ok or call.at < since or call.args.get("thread_ts") not in thread_ts:
            continue
        names = []
        for item in call.args.get("files") or []:
            record = slack.files.get(item.get("id", "")) if isinstance(item, dict) else None
            names.append(record.filename if record else "")
        if filename in names:
            found.append(call)
    return found


def response_texts(slack: SlackTestServer, url: str) -> list[str]:
    return [r.get("text", "") for r in list(slack.responses) if r.get("_url") == url]


def poll(check: Callable[[], Any], timeout: float) -> Any:
    """`check()`'s first truthy result, or its last result when `timeout` runs out (never raises)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(POLL_INTERVAL)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --- 1. ack latency under a burst of /review commands -----------------------------------------------


@dataclass
class AckBurst:
    commands: int
    concurrency: int
    latencies_s: list[float]  # one per command that got an HTTP response
    statuses: Counter[int]
    transport_errors: list[str]
    send_wall_s: float  # first request sent -> last ack received
    cards_posted: int
    charts_posted: int
    last_card_after_s: float | None  # after the first command was sent
    last_chart_after_s: float | None
    wait_timed_out: bool
    other_replies: Counter[str] = field(default_factory=Counter)  # ephemeral answers other than "posted"

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


def ack_burst(
    stack: Stack, run_ids: list[str], commands: int, concurrency: int, work_timeout: float
) -> AckBurst:
    slack, bot = stack.slack, stack.bot
    urls = [slack.new_response_url() for _ in range(commands)]

    def send(i: int) -> tuple[float | None, int | None, str | None]:
        started = time.perf_counter()
        try:
            # A distinct user per command: the bot drops a second identical command from the same user.
            reply = bot.command(run_ids[i % len(run_ids)], urls[i], user=f"U0BENCH{i:03d}")
        except requests.RequestException as exc:
            return None, None, f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - started, reply.status_code, None

    since = time.time()
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-ack")
    try:
        results = list(pool.map(send, range(commands)))
    finally:  # on Ctrl-C, drop the commands not sent yet instead of sending them all first
        pool.shutdown(wait=True, cancel_futures=True)
    send_wall = time.perf_counter() - started

    latencies = [latency for latency, _, _ in results if latency is not None]
    statuses = Counter(status for _, status, _ in results if status is not None)
    errors = [error for _, _, error in results if error is not None]

    # The work behind the acks: every requester hears back (card posted, or why not), then the charts.
    deadline = time.monotonic() + work_timeout
    answered = poll(lambda: all(response_texts(slack, url) for url in urls), work_timeout)
    card_list = card_calls(slack, set(run_ids), since)
    threads = {c.response["ts"] for c in card_list}
    remaining = max(1.0, deadline - time.monotonic())
    poll(lambda: len(chart_calls(slack, threads, since)) >= len(card_list), remaining)
    chart_list = chart_calls(slack, threads, since)

    replies: Counter[str] = Counter()
    for url in urls:
        texts = response_texts(slack, url)
        if not any(POSTED_MARKER in t for t in texts):
            replies[(texts[0] if texts else "(no answer)")[:120]] += 1
    return AckBurst(
        commands=commands,
        concurrency=concurrency,
        latencies_s=latencies,
        statuses=statuses,
        transport_errors=errors,
        send_wall_s=send_wall,
        cards_posted=len(card_list),
        charts_posted=len(chart_list),
        last_card_after_s=max((c.at for c in card_list), default=since) - since if card_list else None,
        last_chart_after_s=max((c.at for c in chart_list), default=since) - since if chart_list else None,
        wait_timed_out=not answered or len(chart_list) < len(card_list),
        other_replies=replies,
    )


# --- 2. command -> card -> chart for a big run --------------------------------------------------------


@dataclass
class BigRunTiming:
    user: str
    ack_s: float
    card_s: float | None
    chart_s: float | None


def command_to_card_and_chart(stack: Stack, run_id: str, user: str, timeout: float) -> BigRunTiming:
    slack = stack.slack
    url = slack.new_response_url()
    t0 = time.time()
    started = time.perf_counter()
    stack.bot.command(run_id, url, user=user)
    ack = time.perf_counter() - started

    cards = poll(lambda: card_calls(slack, {run_id}, t0), timeout)
    if not cards:
        return BigRunTiming(user, ack, None, None)
    card = min(cards, key=lambda c: c.at)
    remaining = max(1.0, timeout - (time.time() - t0))
    charts = poll(lambda: chart_calls(slack, {card.response["ts"]}, t0), remaining)
    chart_s = min(c.at for c in charts) - t0 if charts else None
    return BigRunTiming(user, ack, card.at - t0, chart_s)


@dataclass
class CardFloor:
    """The least work a card needs, timed from the benchmark against the same servers: one `get_run` of
    the run and one `chat.postMessage` of a card as big as the bot's (without its metadata, so it is not
    counted as a card)."""

    samples_s: list[float]

    @property
    def median_s(self) -> float | None:
        return median(list(self.samples_s))


FLOOR_GAP_S = 1.0


def card_floor(stack: Stack, run_id: str, repeats: int, gap_s: float = FLOOR_GAP_S) -> CardFloor:
    """Time the floor `repeats` times (after one untimed warm-up), posting the run's last card again.

    Each sample waits `gap_s` first, as a command comes to an idle bot: back to back on one kept-alive
    connection, MLflow's server answers about 40 ms later (measured: 52 ms a `get_run` back to back,
    14 ms one a second), which would make the floor look higher than what the bot pays."""
    posted = card_calls(stack.slack, {run_id}, 0.0)
    if not posted:
        return CardFloor([])
    card = max(posted, key=lambda c: c.at).args
    payload = {"text": card.get("text", ""), "blocks": card.get("blocks")}
    tracking = MlflowClient(tracking_uri=stack.mlflow_url)
    web = WebClient(token=support.BOT_TOKEN, base_url=stack.slack.api_url)

    def once() -> float:
        time.sleep(gap_s)
        started = time.perf_counter()
        tracking.get_run(run_id)
        web.chat_postMessage(channel=support.REVIEW_CHANNEL, unfurl_links=False, **payload)
        return time.perf_counter() - started

    once()
    return CardFloor([once() for _ in range(repeats)])


def card_ratio(timings: list[BigRunTiming], floor: CardFloor) -> float | None:
    """Median command → card posted over the median floor (≤ 1.3 is the target)."""
    card, least = median([t.card_s for t in timings]), floor.median_s
    return card / least if card is not None and least else None


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's client writes "View run … at: …" to stdout for every run; keep the report readable."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def make_big_run(stack: Stack, params: int, metrics: int, steps: int) -> tuple[str, float]:
    """A run as a long training job logs it; returns its id and how long logging took (s)."""
    started = time.perf_counter()
    with _quiet_mlflow():
        run_id = stack.runs.make_run(
            "bench-big-run",
            params={f"param_{i:02d}": f"value-{i}" for i in range(params)},
            histories={
                f"metric_{m:02d}": [math.sin(step / 500 + m) / (1 + step / 1000) for step in range(steps)]
                for m in range(metrics)
            },
            experiment="review-bot-bench",
        )
    return run_id, time.perf_counter() - started


def make_small_runs(stack: Stack, count: int) -> list[str]:
    steps = 30
    with _quiet_mlflow():
        return [
            stack.runs.make_run(
                f"bench-small-{i}",
                params={"learning_rate": "0.1", "max_depth": str(3 + i % 4), "seed": str(i)},
                metrics={"val_auc": 0.9 + i / 1000},
                histories={
                    "loss": [1.0 / (s + 1) for s in range(steps)],
                    "val_loss": [1.2 / (s + 1) + 0.05 for s in range(steps)],
                },
                experiment="review-bot-bench",
            )
            for i in range(count)
        ]


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# --- 3. /review compare of many long runs -----------------------------------------------------------

COMPARE_MARKER = "Comparing {n} runs"
HISTORIES_FILENAME = "metric-histories.png"


@dataclass
class CompareTiming:
    user: str
    ack_s: float
    posted_s: float | None  # command -> the comparison message (table, best per metric)
    histories_s: float | None  # command -> the overlaid histories chart in its thread (the last MLflow read)
    mlflow_requests: int  # counted by the proxy in front of MLflow, command to histories chart
    by_endpoint: dict[str, int] = field(default_factory=dict)


def make_compare_runs(stack: Stack, runs: int, metrics: int, steps: int) -> tuple[list[str], float]:
    """`runs` runs of one sweep, each logging `metrics` metrics over `steps` steps.

    The runs are created through MLflow's API, but their 2 million metric rows are written straight
    into the server's sqlite store (`metrics` and `latest_metrics`, as log_batch writes them): through
    the REST API this setup alone took 637 s on the benchmark machine, and it is not what is measured.
    """
    started = time.perf_counter()
    database = stack.workdir / "mlflow" / "mlflow.db"  # tests/servers.py's layout
    client = stack.runs.client
    experiment_id = stack.runs.experiment("review-bot-bench-compare")
    ids = []
    with _quiet_mlflow():
        for r in range(runs):
            run = client.create_run(experiment_id, run_name=f"bench-sweep-{r}")
            ids.append(run.info.run_id)
            client.log_batch(
                run.info.run_id,
                params=[
                    Param("learning_rate", str(0.01 * (r + 1))),
                    Param("seed", "7"),
                    Param("depth", str(3 + r % 4)),
                ],
            )
    now = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db, db:
        for r, run_id in enumerate(ids):
            for m in range(metrics):
                values = [math.cos(step / 700 + m + r / 3) / (1 + step / 2000) for step in range(steps)]
                db.executemany(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                    "VALUES (?, ?, ?, ?, ?, 0)",
                    ((f"metric_{m:02d}", v, now + step, run_id, step) for step, v in enumerate(values)),
                )
                db.execute(
                    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                    "VALUES (?, ?, ?, ?, 0, ?)",
                    (f"metric_{m:02d}", values[-1], now + steps - 1, steps - 1, run_id),
                )
    with _quiet_mlflow():
        for run_id in ids:
            client.set_terminated(run_id)
    return ids, time.perf_counter() - started


def compare_runs(
    stack: Stack, bot: support.BotProcess, proxy: Any, run_ids: list[str], user: str, timeout: float
) -> CompareTiming:
    slack = stack.slack
    url = slack.new_response_url()
    marker = COMPARE_MARKER.format(n=len(run_ids))
    seen_before = len(proxy.paths)
    t0 = time.time()
    started = time.perf_counter()
    bot.command("compare " + " ".join(run_ids), url, user=user)
    ack = time.perf_counter() - started

    def posted() -> list[Call]:
        return [
            c
            for c in slack.calls_to("chat.postMessage")
            if c.ok and c.at >= t0 and str(c.args.get("text", "")).startswith(marker)
        ]

    messages = poll(posted, timeout)
    if not messages:
        return CompareTiming(user, ack, None, None, len(proxy.paths) - seen_before)
    message = min(messages, key=lambda c: c.at)
    remaining = max(1.0, timeout - (time.time() - t0))
    charts = poll(lambda: chart_calls(slack, {message.response["ts"]}, t0, HISTORIES_FILENAME), remaining)
    paths = [path.split("?", 1)[0] for path in proxy.paths[seen_before:]]
    return CompareTiming(
        user,
        ack,
        message.at - t0,
        min(c.at for c in charts) - t0 if charts else None,
        len(paths),
        dict(Counter(paths)),
    )


# --- 4. peak RSS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "master" or "worker"
    peak_rss_kib: int | None  # VmHWM
    rss_kib: int | None  # VmRSS, for comparison


def serving_memory(master_pid: int) -> list[ProcessMemory]:
    """VmHWM of `review-bot serve` itself and of each worker process it started (WEB_CONCURRENCY > 1)."""
    found = [_memory(master_pid, "master")]
    found += [_memory(pid, "worker") for pid in child_pids(master_pid)]
    return found


def _memory(pid: int, role: str) -> ProcessMemory:
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in {"VmHWM", "VmRSS"}:
                fields[key] = int(value.split()[0])  # "123456 kB"
    except OSError:
        pass
    return ProcessMemory(pid, role, fields.get("VmHWM"), fields.get("VmRSS"))


def bot_log_problems(bot: support.BotProcess) -> Counter[str]:
    """ERROR/CRITICAL lines and tracebacks in the bot's log, by kind."""
    problems: Counter[str] = Counter()
    for line in bot.log().splitlines():
        if " ERROR " in line or "[ERROR]" in line:
            problems["ERROR lines"] += 1
        if " CRITICAL " in line or "[CRITICAL]" in line:
            problems["CRITICAL lines"] += 1
        if line.startswith("Traceback"):
            problems["tracebacks"] += 1
        if "WORKER TIMEOUT" in line:
            problems["gunicorn worker timeouts"] += 1
    return problems
