"""The machine the numbers come from, the printed tables, and bench-results/latest.json."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.benchmarks.histories import CacheResult, SpikeResult
from tests.benchmarks.idle_clients import IdleClients
from tests.benchmarks.measure import (
    AckBurst,
    BigRunTiming,
    CardFloor,
    CompareTiming,
    ProcessMemory,
    card_ratio,
    median,
    percentile,
)
from tests.benchmarks.nudge_scan import NudgeScanResult
from tests.benchmarks.votes import VoteBurst

RESULTS_DIR = Path(__file__).parents[2] / "bench-results"
ACK_LIMIT_S = 3.0  # Slack shows the user an error when the ack takes longer


@dataclass
class Results:
    machine: dict[str, Any]
    setup_s: dict[str, float]
    burst: AckBurst
    big_run_shape: str
    big_run_log_s: float
    big: list[BigRunTiming]
    memory: list[ProcessMemory]
    log_problems: dict[str, int]
    compare_shape: str = ""
    compare_log_s: float = 0.0
    compared: list[CompareTiming] = field(default_factory=list)
    nudge_scan: NudgeScanResult | None = None
    votes: list[VoteBurst] = field(default_factory=list)
    idle: IdleClients | None = None
    card_floor: CardFloor | None = None  # one get_run + one chat.postMessage, timed after each big-run repeat
    big_warm: BigRunTiming | None = None  # the big run once more, its histories from the cache
    spike: SpikeResult | None = None  # a 100,000-step metric with a one-step spike
    cache: CacheResult | None = None  # history requests to MLflow: first looks, second looks, a comparison


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    mem_total_kib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model or platform.processor() or "unknown",
        "ram_total_gib": round(mem_total_kib / 1024**2, 1) if mem_total_kib else None,
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def _mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f} MiB"


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)


def render(results: Results) -> str:
    info, setup, burst, big, memory = (
        results.machine,
        results.setup_s,
        results.burst,
        results.big,
        results.memory,
    )
    sections = [
        _table(
            "Machine",
            [
                ("nproc", str(info["nproc"])),
                ("CPU", info["cpu_model"]),
                ("RAM", f"{info['ram_total_gib']} GiB"),
                ("Python", info["python"]),
                ("date (UTC)", info["date"]),
            ],
        ),
        _table("Setup", [(name, _s(seconds)) for name, seconds in setup.items()]),
    ]
    lat = burst.latencies_s
    ack_rows = [
        ("commands sent", f"{burst.commands} ({burst.concurrency} at a time)"),
        ("HTTP 200", f"{burst.ok}/{burst.commands}"),
    ]
    other = {str(k): v for k, v in burst.statuses.items() if k != 200}
    if other or burst.transport_errors:
        ack_rows.append(("not 200", f"{other} + {len(burst.transport_errors)} transport errors"))
    if lat:
        ack_rows += [
            ("ack p50", _ms(percentile(lat, 50))),
            ("ack p99", _ms(percentile(lat, 99))),
            ("ack max", _ms(max(lat))),
            (f"acks over {ACK_LIMIT_S:.0f} s", str(sum(1 for v in lat if v > ACK_LIMIT_S))),
        ]
    ack_rows += [
        ("all acks received after", _s(burst.send_wall_s)),
        ("cards posted", f"{burst.cards_posted}/{burst.commands}"),
        ("last card posted after", _s(burst.last_card_after_s)),
        ("metric charts posted", f"{burst.charts_posted}/{burst.cards_posted}"),
        ("last chart posted after", _s(burst.last_chart_after_s)),
        ("waited until timeout", "yes" if burst.wait_timed_out else "no"),
    ]
    for text, count in burst.other_replies.most_common(5):
        ack_rows.append((f"other reply x{count}", text))
    sections.append(
        _table("1. /review ack latency (time from sending the command to its HTTP response)", ack_rows)
    )

    big_rows = [("run", results.big_run_shape), ("logging the run took", _s(results.big_run_log_s))]
    for i, timing in enumerate(big, 1):
        big_rows.append(
            (
                f"#{i} ({timing.user})",
                f"ack {_ms(timing.ack_s)}  card {_s(timing.card_s)}  chart {_s(timing.chart_s)}",
            )
        )
    big_rows += [
        ("median card", _s(median([t.card_s for t in big]))),
        ("median chart", _s(median([t.chart_s for t in big]))),
    ]
    if results.card_floor is not None:
        floor = results.card_floor
        ratio = card_ratio(big, floor)
        big_rows += [
            (
                "card floor: one get_run + one chat.postMessage",
                f"median {_s(floor.median_s)} ({len(floor.samples_s)} samples, 1 s apart)",
            ),
            ("median card / floor (target ≤ 1.3)", "—" if ratio is None else f"{ratio:.2f}"),
        ]
    if results.big_warm is not None:
        big_rows.append(("chart, a second look (histories from the cache)", _s(results.big_warm.chart_s)))
    sections.append(
        _table(
            "2. Big run: time from command to card posted and to chart posted "
            "(each repeat with an empty history cache)",
            big_rows,
        )
    )
    if results.spike is not None:
        sections.append(_spike_table(results.spike))
    if results.cache is not None:
        sections.append(_cache_table(results.cache))

    compare_rows = [("runs", results.compare_shape), ("logging them took", _s(results.compare_log_s))]
    for i, timing in enumerate(results.compared, 1):
        compare_rows.append(
            (
                f"#{i} ({timing.user})",
                f"ack {_ms(timing.ack_s)}  posted {_s(timing.posted_s)}  histories {_s(timing.histories_s)}  "
                f"{timing.mlflow_requests} MLflow requests",
            )
        )
    compare_rows += [
        ("median posted", _s(median([t.posted_s for t in results.compared]))),
        ("median histories chart", _s(median([t.histories_s for t in results.compared]))),
    ]
    if results.compared:
        for path, count in sorted(results.compared[-1].by_endpoint.items()):
            compare_rows.append((f"  requests to {path}", str(count)))
    sections.append(
        _table(
            "3. /review compare: time from command to the comparison and to its histories chart", compare_rows
        )
    )

    mem_rows = [
        (f"{m.role} pid {m.pid}", f"peak (VmHWM) {_mib(m.peak_rss_kib)}  now (VmRSS) {_mib(m.rss_kib)}")
        for m in memory
    ]
    # With WEB_CONCURRENCY=1 `review-bot serve` serves in its own process; with more, its workers do.
    workers = [m.peak_rss_kib for m in memory if m.role == "worker" and m.peak_rss_kib]
    serving = workers or [m.peak_rss_kib for m in memory if m.peak_rss_kib]
    mem_rows.append(("peak RSS of the serving process", _mib(max(serving)) if serving else "— (not found)"))
    sections.append(_table("4. Memory of `review-bot serve` (and its workers, if any)", mem_rows))

    if results.votes:
        sections.append(_votes_table(results.votes))
    if results.idle is not None:
        sections.append(_idle_table(results.idle))
    if results.nudge_scan is not None:
        sections.append(_nudge_table(results.nudge_scan))
    sections.append(
        _table(
            "Bot log",
            [(kind, str(count)) for kind, count in results.log_problems.items()] or [("errors", "none")],
        )
    )
    return "\n\n".join(sections)


def _spike_table(spike: SpikeResult) -> str:
    rows = [
        (
            "run",
            f"one metric, {spike.steps:,} steps, {spike.spike_value} at step {spike.spike_at:,} (else ~2.0)",
        ),
        ("logging it took (rows written into the store)", _s(spike.log_s)),
    ]
    for i, timing in enumerate(spike.cold, 1):
        rows.append((f"#{i} ({timing.user})", f"card {_s(timing.card_s)}  chart {_s(timing.chart_s)}"))
    rows += [
        ("median chart (target ≤ 2 s)", _s(median([t.chart_s for t in spike.cold]))),
        ("chart, a second look (histories from the cache)", _s(spike.warm.chart_s if spike.warm else None)),
        (
            "the spike in what the chart draws (read and reduced in-process)",
            f"{'yes' if spike.spike_kept else 'NO'}: max {spike.envelope_max} at step "
            f"{spike.envelope_max_step:,}, read in {_s(spike.read_s)}",
        ),
    ]
    return _table("2b. A one-step spike in 100,000 steps: command to chart (empty history cache)", rows)


def _cache_table(cache: CacheResult) -> str:
    rows = [("runs", cache.shape)]
    for step in cache.steps:
        rows.append(
            (
                step.what,
                f"{step.history_requests} MLflow history requests; {step.from_cache} (run, metric) from the "
                f"cache, {step.from_mlflow} read; chart {_s(step.chart_s)}",
            )
        )
    return _table("2c. History cache: MLflow history requests (counted by a proxy) and cache hits", rows)


def _idle_table(idle: IdleClients) -> str:
    return _table(
        f"Idle clients: {idle.connections} half-open connections held ({idle.samples} samples each)",
        [
            ("/healthz p99 without / with", f"{_s(idle.health_p99_idle_s)} / {_s(idle.health_p99_held_s)}"),
            ("/healthz ratio", f"{idle.health_ratio:.2f}"),
            ("/review ack p99 without / with", f"{_s(idle.ack_p99_idle_s)} / {_s(idle.ack_p99_held_s)}"),
            ("/review ack ratio", f"{idle.ack_ratio:.2f}"),
        ],
    )


def _votes_table(bursts: list[VoteBurst]) -> str:
    rows = []
    for b in bursts:
        label = f"{b.replicas} replica{'s' if b.replicas > 1 else ''}"
        rows += [
            (
                f"{label}: votes recorded per second",
                f"{b.per_second} ({b.votes} voters, {b.concurrency} at a time)",
            ),
            (f"{label}: all votes in MLflow after", _s(b.recorded_s)),
            (f"{label}: ack p99", _s(b.ack_p99_s)),
            (f"{label}: click to card update p50 / p99", f"{_s(b.card_p50_s)} / {_s(b.card_p99_s)}"),
            (f"{label}: votes lost", str(b.lost)),
        ]
    if len(bursts) == 2 and bursts[0].per_second:
        rows.append(
            ("two replicas / one (votes per second)", f"{bursts[1].per_second / bursts[0].per_second:.2f}")
        )
    return _table("Votes on one run", rows)


def _nudge_table(scan: NudgeScanResult) -> str:
    rows = [
        ("registry", f"{scan.models} models x {scan.versions_per_model} versions"),
        ("deployed (@champion)", f"{scan.deployed} ({scan.approved} approved)"),
        ("building the registry took", _s(scan.build_s)),
        ("unreviewed deployments found", str(scan.unreviewed_found)),
        ("MLflow requests per scan", str(scan.calls)),
    ]
    rows += [(f"  {endpoint}", str(count)) for endpoint, count in scan.calls_by_endpoint.items()]
    rows += [
        ("scan time (median)", _s(median(list(scan.scan_s)))),
        ("scan times", "  ".join(_s(t) for t in scan.scan_s)),
    ]
    return _table("5. Nudge digest: one registry scan (requests counted by a proxy in front of MLflow)", rows)


def write_json(results: Results) -> Path:
    info, setup, burst, big, memory = (
        results.machine,
        results.setup_s,
        results.burst,
        results.big,
        results.memory,
    )
    lat = burst.latencies_s
    workers = [m.peak_rss_kib for m in memory if m.role == "worker" and m.peak_rss_kib]
    data = {
        "machine": info,
        "setup_s": setup,
        "ack": {
            "commands": burst.commands,
            "concurrency": burst.concurrency,
            "http_200": burst.ok,
            "statuses": {str(k): v for k, v in burst.statuses.items()},
            "transport_errors": burst.transport_errors,
            "p50_s": percentile(lat, 50) if lat else None,
            "p99_s": percentile(lat, 99) if lat else None,
            "max_s": max(lat) if lat else None,
            "all_acks_s": burst.send_wall_s,
            "cards_posted": burst.cards_posted,
            "last_card_after_s": burst.last_card_after_s,
            "charts_posted": burst.charts_posted,
            "last_chart_after_s": burst.last_chart_after_s,
            "wait_timed_out": burst.wait_timed_out,
            "other_replies": dict(burst.other_replies),
            "latencies_s": sorted(lat),
        },
        "big_run": {
            "shape": results.big_run_shape,
            "logging_s": results.big_run_log_s,
            "repeats": [asdict(t) for t in big],
            "median_card_s": median([t.card_s for t in big]),
            "median_chart_s": median([t.chart_s for t in big]),
            "card_floor_samples_s": results.card_floor.samples_s if results.card_floor else [],
            "median_card_floor_s": results.card_floor.median_s if results.card_floor else None,
            "card_floor_ratio": card_ratio(big, results.card_floor) if results.card_floor else None,
        },
        "compare": {
            "shape": results.compare_shape,
            "logging_s": results.compare_log_s,
            "repeats": [asdict(t) for t in results.compared],
            "median_posted_s": median([t.posted_s for t in results.compared]),
            "median_histories_s": median([t.histories_s for t in results.compared]),
        },
        "memory": {
            "processes": [asdict(m) for m in memory],
            "serving_process_peak_rss_kib": max(workers) if workers else None,
        },
        "big_run_warm": asdict(results.big_warm) if results.big_warm else None,
        "spike": (
            {
                **asdict(results.spike),
                "spike_kept": results.spike.spike_kept,
                "median_chart_s": median([t.chart_s for t in results.spike.cold]),
            }
            if results.spike
            else None
        ),
        "history_cache": asdict(results.cache) if results.cache else None,
        "bot_log": results.log_problems,
        "nudge_scan": asdict(results.nudge_scan) if results.nudge_scan else None,
        "votes": [asdict(b) for b in results.votes],
        "idle_clients": asdict(results.idle) if results.idle else None,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "latest.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
