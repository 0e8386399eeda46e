"""What the Slack handlers and the HTTP endpoints use, built once by the composition root (`app.py`).

Handlers receive it through the request context (`handlers.context`), never as a global.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.compare.service import ComparisonPublisher
from bot.config import Settings
from bot.home.service import HomeService
from bot.meetings.service import MeetingService
from bot.nudges.service import NudgeService
from bot.reviews.publish import ReviewPublisher
from bot.scheduler import LeaderScheduler
from bot.server import drain_lazy_work
from bot.store import Store
from bot.unfurls.service import UnfurlService
from bot.votes.service import VoteService


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    publisher: ReviewPublisher
    votes: VoteService
    meetings: MeetingService
    nudges: NudgeService
    comparisons: ComparisonPublisher
    unfurls: UnfurlService
    home: HomeService
    scheduler: LeaderScheduler
    health: Callable[[], dict[str, str]]

    def start(self) -> None:
        """The background work of a serving process: the scheduler (leader only runs jobs) and the
        sweeper that finishes votes other replicas accepted and did not record."""
        self.scheduler.start()
        self.votes.start_sweeper()

    def stop(self) -> None:
        """On shutdown (SIGTERM; the server takes no more requests by now), within SHUTDOWN_GRACE_SECONDS:
        stop sweeping, let running scheduler jobs finish and give up the scheduler's leadership (another
        replica takes over at once rather than when the lock expires), then let the lazy work in flight
        finish (cards and threads of commands already acknowledged)."""
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        self.votes.stop_sweeper()
        self.scheduler.stop(grace_seconds=self.settings.shutdown_grace_seconds)
        drain_lazy_work(max(0.0, deadline - time.monotonic()))

    def __deepcopy__(self, memo: dict) -> Services:
        # Bolt deep-copies a request's context for its lazy listeners; the services are shared,
        # thread-safe singletons (clients, pools, the scheduler), so every copy is this one object.
        return self
