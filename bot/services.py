"""What the Slack handlers and the HTTP endpoints use, built once by the composition root (`app.py`).

Handlers receive it through the request context (`handlers.context`), never as a global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.compare.service import ComparisonPublisher
from bot.config import Settings
from bot.home.service import HomeService
from bot.meetings.service import MeetingService
from bot.nudges.service import NudgeService
from bot.reviews.publish import ReviewPublisher
from bot.scheduler import LeaderScheduler
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
        """On shutdown: give up the scheduler's leadership at once (another replica takes over without
        waiting for the lock to expire) and stop sweeping."""
        self.votes.stop_sweeper()
        self.scheduler.stop()

    def __deepcopy__(self, memo: dict) -> Services:
        # Bolt deep-copies a request's context for its lazy listeners; the services are shared,
        # thread-safe singletons (clients, pools, the scheduler), so every copy is this one object.
        return self
