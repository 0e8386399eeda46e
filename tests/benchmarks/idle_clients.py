"""Hostile idle clients: `/healthz` and `/review` ack latency with 200 idle half-open connections held
open, against the same figures measured just before without them (a ratio, in one run)."""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from tests.benchmarks.stack import Stack

IDLE_CONNECTIONS = 200
SAMPLES = 60


@dataclass
class IdleClients:
    connections: int
    samples: int
    health_p99_idle_s: float
    health_p99_held_s: float
    ack_p99_idle_s: float
    ack_p99_held_s: float

    @property
    def health_ratio(self) -> float:
        return self.health_p99_held_s / self.health_p99_idle_s

    @property
    def ack_ratio(self) -> float:
        return self.ack_p99_held_s / self.ack_p99_idle_s


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def _latencies(stack: Stack, run_id: str, tag: str) -> tuple[list[float], list[float]]:
    health, acks = [], []
    for i in range(SAMPLES):
        started = time.perf_counter()
        requests.get(f"{stack.bot.url}/healthz", timeout=10).raise_for_status()
        health.append(time.perf_counter() - started)
        started = time.perf_counter()
        reply = stack.bot.command(run_id, stack.slack.new_response_url(), user=f"U0IDLE{tag}{i:03d}")
        acks.append(time.perf_counter() - started)
        assert reply.status_code == 200, reply.text
    return health, acks


def measure_idle_clients(stack: Stack, run_id: str) -> IdleClients:
    health_idle, ack_idle = _latencies(stack, run_id, "A")
    parts = urlsplit(stack.bot.url)
    held = []
    try:
        for i in range(IDLE_CONNECTIONS):
            conn = socket.create_connection((parts.hostname, parts.port), timeout=10)
            if i % 2:
                conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: applica")
            else:
                conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Length: 1000\r\n\r\nxx")
            held.append(conn)
        health_held, ack_held = _latencies(stack, run_id, "B")
    finally:
        for conn in held:
            conn.close()
    return IdleClients(
        connections=IDLE_CONNECTIONS,
        samples=SAMPLES,
        health_p99_idle_s=round(_p99(health_idle), 4),
        health_p99_held_s=round(_p99(health_held), 4),
        ack_p99_idle_s=round(_p99(ack_idle), 4),
        ack_p99_held_s=round(_p99(ack_held), 4),
    )
