"""`python -m tests.benchmarks`: start the real stack, measure, print tables, write bench-results/latest.json.

Every wait is bounded and everything started is stopped on the way out, Ctrl-C included. Set
KEEP_BENCH_DIR=1 to keep the temp folder with the bot's and MLflow's logs for a closer look.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

from tests.benchmarks import histories, idle_clients, measure, nudge_scan, report, unfurls, votes
from tests.benchmarks.stack import counted_bot, running_stack, second_replica

SMALL_RUNS = 10
ACK_COMMANDS = 200
ACK_CONCURRENCY = 20
ACK_WORK_TIMEOUT = 120  # s for the burst's cards and charts to be posted, counted from the last ack
BIG_PARAMS = 50
BIG_METRICS = 30
BIG_STEPS = 5_000
BIG_REPEATS = 3
BIG_TIMEOUT = 60  # s per repeat, command to chart
SPIKE_REPEATS = 3  # the 100,000-step metric, each from an empty history cache
CARD_FLOOR_SAMPLES = 5  # after each repeat: one get_run + one chat.postMessage, a second apart
NUDGE_MODELS = 200
NUDGE_VERSIONS = 20
NUDGE_REPEATS = 3
COMPARE_RUNS = 10
COMPARE_METRICS = 20
COMPARE_STEPS = 10_000
COMPARE_REPEATS = 3
COMPARE_TIMEOUT = 120  # s per repeat, command to the overlaid histories
VOTES = 300
VOTE_CONCURRENCY = 20
VOTE_TIMEOUT = 180  # s for every vote to be in MLflow


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean-up path as Ctrl-C


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    info = report.machine()
    setup: dict[str, float] = {}
    progress("starting mlflow server, redis-server, the Slack test server and review-bot serve…")
    started = time.perf_counter()
    with running_stack() as stack:
        setup["stack start"] = time.perf_counter() - started
        progress(
            f"stack up in {setup['stack start']:.1f} s (bot: {stack.bot.url}, mlflow: {stack.mlflow_url})"
        )

        started = time.perf_counter()
        small_runs = measure.make_small_runs(stack, SMALL_RUNS)
        setup[f"{SMALL_RUNS} small runs logged"] = time.perf_counter() - started

        progress(f"1. {ACK_COMMANDS} /review commands, {ACK_CONCURRENCY} at a time…")
        burst = measure.ack_burst(stack, small_runs, ACK_COMMANDS, ACK_CONCURRENCY, ACK_WORK_TIMEOUT)

        shape = f"{BIG_PARAMS} params, {BIG_METRICS} metrics x {BIG_STEPS:,} steps"
        progress(f"2. logging a big run ({shape})…")
        big_run, big_log_s = measure.make_big_run(stack, BIG_PARAMS, BIG_METRICS, BIG_STEPS)
        progress(f"   logged in {big_log_s:.1f} s; reviewing it {BIG_REPEATS} times…")
        big, floor_samples = [], []
        for i in range(BIG_REPEATS):
            histories.clear_history_cache(stack.redis_url)  # each repeat reads MLflow: a first look
            timing = measure.command_to_card_and_chart(stack, big_run, f"U0BIG{i:03d}", BIG_TIMEOUT)
            floor = measure.card_floor(stack, big_run, CARD_FLOOR_SAMPLES)
            progress(f"   #{i + 1}: card {timing.card_s}, chart {timing.chart_s}, floor {floor.median_s}")
            big.append(timing)
            floor_samples += floor.samples_s
        card_floor = measure.CardFloor(floor_samples)
        big_warm = measure.command_to_card_and_chart(stack, big_run, "U0BIGWARM", BIG_TIMEOUT)
        big_floor = histories.history_floor(stack, big_run)
        chart_median = measure.median([t.chart_s for t in big])
        progress(
            f"   chart floor (MLflow alone, same windows) {big_floor}; chart/floor {chart_median} / "
            f"{measure.median(big_floor)}"
        )
        progress(f"   a second look (history cache): card {big_warm.card_s}, chart {big_warm.chart_s}")

        progress(f"2b. a {histories.SPIKE_STEPS:,}-step metric with a one-step spike, {SPIKE_REPEATS} times…")
        spike = histories.measure_spike(stack, SPIKE_REPEATS, BIG_TIMEOUT)
        progress(
            f"   charts {[t.chart_s for t in spike.cold]}, second look {spike.warm and spike.warm.chart_s}"
        )
        progress(
            f"   spike in the envelope: {spike.spike_kept} "
            f"(max {spike.envelope_max} at step {spike.envelope_max_step:,})"
        )

        compare_shape = f"{COMPARE_RUNS} runs x {COMPARE_METRICS} metrics x {COMPARE_STEPS:,} steps"
        progress(f"3. logging {compare_shape}…")
        compare_ids, compare_log_s = measure.make_compare_runs(
            stack, COMPARE_RUNS, COMPARE_METRICS, COMPARE_STEPS
        )
        progress(f"   logged in {compare_log_s:.1f} s; comparing them {COMPARE_REPEATS} times…")
        compared = []
        with counted_bot(stack) as (counted, proxy):
            for i in range(COMPARE_REPEATS):
                timing = measure.compare_runs(
                    stack, counted, proxy, compare_ids, f"U0CMP{i:03d}", COMPARE_TIMEOUT
                )
                progress(
                    f"   #{i + 1}: posted {timing.posted_s}, histories {timing.histories_s}, "
                    f"{timing.mlflow_requests} MLflow requests"
                )
                compared.append(timing)
            progress("   the history cache: two runs reviewed, reviewed again, then compared…")
            cache = histories.measure_cache(stack, counted, proxy, COMPARE_TIMEOUT)
            for item in cache.steps:
                progress(
                    f"   {item.what}: {item.history_requests} history requests, {item.from_cache} cached"
                )

        progress(f"4. {VOTES} votes on one run, {VOTE_CONCURRENCY} at a time: one replica, then two…")
        vote_bursts = [votes.measure_votes(stack, [stack.bot], VOTES, VOTE_CONCURRENCY, VOTE_TIMEOUT)]
        with second_replica(stack) as other:
            vote_bursts.append(
                votes.measure_votes(stack, [stack.bot, other], VOTES, VOTE_CONCURRENCY, VOTE_TIMEOUT)
            )
        for b in vote_bursts:
            progress(f"   {b.replicas} replica(s): {b.per_second} votes/s, card p99 {b.card_p99_s} s")

        progress(
            f"   {idle_clients.IDLE_CONNECTIONS} half-open connections: /healthz and ack, without and with…"
        )
        idle = idle_clients.measure_idle_clients(stack, small_runs[0])
        progress(
            f"   /healthz p99 x{idle.health_ratio:.2f}, ack p99 x{idle.ack_ratio:.2f} with them held open"
        )

        memory = measure.serving_memory(stack.bot.proc.pid)
        problems = dict(measure.bot_log_problems(stack.bot))

        progress(f"5. a registry of {NUDGE_MODELS} models x {NUDGE_VERSIONS} versions, one deployed each…")
        nudges = nudge_scan.measure_scan(stack, NUDGE_MODELS, NUDGE_VERSIONS, NUDGE_REPEATS)
        progress(unfurls.render(unfurls.measure(stack, progress)))  # 6. MLflow requests per unfurl, per card

    results = report.Results(
        info, setup, burst, shape, big_log_s, big, memory, problems, compare_shape, compare_log_s, compared,
        nudges, vote_bursts, idle, card_floor=card_floor, big_warm=big_warm, spike=spike, cache=cache,
    )  # fmt: skip
    print()
    print(report.render(results))
    path = report.write_json(results)
    print(f"\nWritten to {path}")
    return 0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: everything the benchmark started has been stopped", file=sys.stderr)
        sys.exit(130)
