"""The Home tab: what waits on the person who opens it, published with views.publish.

`opened(user)` (app_home_opened) publishes at once. `changed(users)` is called by the votes, the review
publisher and the meetings when a review changes; it re-publishes, in the background, the tabs of those
people (and of the reviewers: every card and every decision changes what waits on them) who have opened
their Home before. Each person gets at most one views.publish per DEBOUNCE_SECONDS across replicas: a
burst of changes is coalesced into one publish now and one more when the burst is over (a "dirty" mark
per person in the store, and a short claim on their publish slot). Slack's views.publish is Tier 4
(about 100 a minute per workspace); a publish Slack refuses after the client's Retry-After retries
loses nothing: the tab is rebuilt from MLflow at the next change or open.

What the tabs are built from is read once for everyone: every pending review and those decided lately
(two MLflow searches) into a `Board`, cached in the store until the next change (a generation mark
that `changed` moves) or BOARD_TTL; the deployments without an approved review come from the nudges'
registry scan, cached DEPLOYMENTS_TTL, so opening a Home never costs a registry scan of its own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from slack_sdk import WebClient

from bot import tags
from bot.config import Settings
from bot.errors import MlflowUnavailable, ReviewBotError, log_unexpected
from bot.home.blocks import build_home
from bot.home.rules import (
    NOTICES_KEPT,
    Board,
    Deployments,
    HomeView,
    Notice,
    build_board,
    deployments_of,
    view_for,
)
from bot.mlflow import MlflowAccess
from bot.nudges.rules import Scan
from bot.request_ids import ContextThreadPoolExecutor
from bot.reviews.card_index import CardIndex
from bot.slack.outbox import Notify, Outbox
from bot.store import Store

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 3  # at most one views.publish per person per this long
PUBLISH_HOLD_SECONDS = 30  # a publish in progress holds its person's slot at most this long (a replica dies)
DIRTY_TTL = 600
OPENER_TTL = 90 * 24 * 3600  # who opened their Home lately: only their tabs are kept up to date
NOTICE_TTL = 15 * 60
PAGE_TTL = 3600
BOARD_TTL = 300  # what changes outside the bot (a run deleted in MLflow) shows within this
OPENED_FRESH_SECONDS = 30  # ...or at the next open after this long: opening the tab is how people refresh it
DEPLOYMENTS_TTL = 300  # at most one registry scan per this, whoever opens their Home
SCAN_CLAIM_TTL = 120
PUBLISH_THREADS = 4

PENDING_FILTER = f"tags.`{tags.STATUS}` = 'pending'"
DECIDED_FILTER = f"tags.`{tags.STATUS}` != 'pending'"
MLFLOW_DOWN = (
    "MLflow at `{uri}` did not answer, so your reviews are not listed; this tab updates when it does."
)
NOT_READ = "Your reviews could not be read ({why}); this tab updates at the next change."
STALE_BUTTON = ":warning: That button is from an older version of this tab; nothing was recorded. Try again."


class HomeService:
    def __init__(
        self,
        mlflow: MlflowAccess,
        settings: Settings,
        store: Store,
        outbox: Outbox,
        client: WebClient,
        cards: CardIndex,
        *,
        reviewers: Callable[[], frozenset[str] | None] = lambda: None,
        scan: Callable[[datetime], Scan] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
    ) -> None:
        self.mlflow = mlflow
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.client = client
        self.cards = cards
        self.reviewers = reviewers
        self.scan = scan
        self.clock = clock
        self.debounce_seconds = DEBOUNCE_SECONDS
        # Two bots sharing a Redis for different MLflow servers must not share a board.
        self._scope = hashlib.sha256(settings.mlflow_tracking_uri.encode()).hexdigest()[:12]
        self._work = ContextThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="home-publish")
        self._guard = threading.Lock()
        self._draining: set[str] = set()
        self._scanning = threading.Lock()

    # --- what happens ------------------------------------------------------------------------------

    def opened(self, user: str) -> None:
        """app_home_opened: remember the person (their tab is kept up to date from now on), publish now."""
        self.store.put_json(_key("opened", user), self.clock().isoformat(), OPENER_TTL)
        self.store.release(_key("page", user))  # an open starts at the first page
        self._publish_now(user, fresh_within=OPENED_FRESH_SECONDS)

    def changed(self, users: Iterable[str]) -> None:
        """A review changed for these people (a vote, a new card, a meeting): their tabs, and the
        reviewers', are re-published in the background. Never raises, never waits."""
        wanted = [u for u in users if u]
        try:
            self._work.submit(self._changed, wanted)
        except RuntimeError:  # shutting down: the next open publishes
            log.info("the Home tabs of %d people were not refreshed: shutting down", len(wanted))

    def show_page(self, user: str, page: int) -> None:
        """A page button: another page of the reviews waiting on the person."""
        self.store.put_json(_key("page", user), max(0, page), PAGE_TTL)
        self._publish_now(user)

    def notifier(self, user: str) -> Notify:
        """What a vote cast on the Home tells its voter: shown at the top of their tab (a Home has no
        response_url for an ephemeral answer), which is re-published with it."""

        def notify(text: str) -> None:
            self._add_notice(user, text)
            self._request(user)

        return notify

    def stale_button(self, user: str) -> None:
        self.notifier(user)(STALE_BUTTON)

    # --- when to publish ---------------------------------------------------------------------------

    def _changed(self, users: list[str]) -> None:
        try:
            # First: whatever reads the board after this sees the change (and nothing cached before it).
            self.store.put_json(self._board_key("gen"), uuid.uuid4().hex, BOARD_TTL * 12)
            everyone = {*users, *(self._reviewers() or ())}
            for user in sorted(everyone):
                if self.store.get_json(_key("opened", user)) is not None:
                    self._request(user)
        except Exception:  # a background task: nobody else would see it
            log_unexpected(log, "refreshing Home tabs")

    def _publish_now(self, user: str, fresh_within: float = BOARD_TTL) -> None:
        """Publish at once, unless one went out within the debounce: then as soon as it allows."""
        if self.store.claim(_key("slot", user), PUBLISH_HOLD_SECONDS):
            self.store.release(_key("dirty", user))
            try:
                self.publish(user, fresh_within=fresh_within)
            finally:
                self.store.put_json(_key("slot", user), 1, self.debounce_seconds)
            if self.store.get_json(_key("dirty", user)) is not None:
                self._request(user)
        else:
            self._request(user)

    def _request(self, user: str) -> None:
        """Mark the person's tab out of date and make sure a drain runs for them in this process."""
        self.store.put_json(_key("dirty", user), 1, DIRTY_TTL)
        with self._guard:
            if user in self._draining:
                return
            self._draining.add(user)
        try:
            self._work.submit(self._drain, user)
        except RuntimeError:
            with self._guard:
                self._draining.discard(user)

    def _drain(self, user: str) -> None:
        """Publish while the person's tab is out of date, at most once per debounce (across replicas:
        the slot is a claim in the store; a publish in progress holds it until it is done)."""
        try:
            while True:
                if self.store.claim(_key("slot", user), PUBLISH_HOLD_SECONDS):
                    self.store.release(_key("dirty", user))  # changes from now on mark it again
                    try:
                        self.publish(user)
                    finally:
                        self.store.put_json(_key("slot", user), 1, self.debounce_seconds)
                with self._guard:
                    if self.store.get_json(_key("dirty", user)) is None:
                        self._draining.discard(user)
                        return
                time.sleep(self.debounce_seconds / 3)
        except Exception:
            with self._guard:
                self._draining.discard(user)
            log_unexpected(log, "publishing a Home tab")

    # --- what to publish ---------------------------------------------------------------------------

    def publish(self, user: str, fresh_within: float = BOARD_TTL) -> bool:
        """Build the person's tab from the board (read again if older than `fresh_within` seconds) and
        publish it; False (logged) if Slack refused."""
        return self.outbox.publish_home(user, build_home(self.view(user, fresh_within)))

    def view(self, user: str, fresh_within: float = BOARD_TTL) -> HomeView:
        now = self.clock()
        problem = ""
        try:
            board = self._board(now, fresh_within)
        except MlflowUnavailable as exc:
            board, problem = Board(), MLFLOW_DOWN.format(uri=exc.tracking_uri)
        except ReviewBotError as exc:
            log.warning("reading the reviews for the Home tab failed: %s", exc)
            board, problem = Board(), NOT_READ.format(why=exc.user_message())
        return view_for(
            user,
            board,
            now,
            reviewers=self._reviewers(),
            deployments=self._deployments(now),
            notices=self._notices(user),
            page=int(self.store.get_json(_key("page", user)) or 0),
            required_approvals=self.settings.required_approvals,
            problem=problem,
        )

    def _reviewers(self) -> frozenset[str] | None:
        try:
            return self.reviewers()
        except ReviewBotError as exc:  # the group could not be read: the reviewers named one by one
            log.warning("reading the reviewers failed (%s): the Home uses REVIEWERS only", exc)
            return frozenset(self.settings.reviewers)

    def _board_key(self, part: str) -> str:
        return f"home:{part}:{self._scope}"

    def _board(self, now: datetime, fresh_within: float) -> Board:
        """Every pending review and those decided lately, cached until the next change (or for
        `fresh_within` seconds at most)."""
        generation = self.store.get_json(self._board_key("gen")) or ""
        cached = self.store.get_json(self._board_key("board"))
        if (
            isinstance(cached, dict)
            and cached.get("gen") == generation
            and time.time() - float(cached.get("at", 0)) <= fresh_within
        ):
            return Board.model_validate(cached["board"])
        read_at = time.time()
        runs = self.mlflow.runs
        board = build_board(
            [s for s, _ in runs.search_reviews(PENDING_FILTER)],
            [s for s, _ in runs.search_reviews(DECIDED_FILTER)],
            now,
        )
        self.store.put_json(
            self._board_key("board"),
            {"gen": generation, "at": read_at, "board": board.model_dump(mode="json")},
            BOARD_TTL,
        )
        return board

    def _deployments(self, now: datetime) -> Deployments | None:
        """The last registry scan's deployed-without-approval versions; a scan now if none is cached
        (one at a time: a replica that finds another one scanning shows the tab without them)."""
        if self.scan is None:
            return None
        key = self._board_key("deployments")
        cached = self.store.get_json(key)
        if cached is not None:
            return Deployments.model_validate(cached)
        with self._scanning:
            cached = self.store.get_json(key)
            if cached is not None:
                return Deployments.model_validate(cached)
            if not self.store.claim(self._board_key("scanning"), SCAN_CLAIM_TTL):
                return None
            try:
                scan = self.scan(now)
                found = deployments_of(scan.unreviewed, error=scan.registry_error, unchecked=scan.unchecked)
            except Exception:
                error_id = log_unexpected(log, "scanning the registry for the Home tab")
                found = Deployments(error=f"error id {error_id}")
            finally:
                self.store.release(self._board_key("scanning"))
            self.store.put_json(key, found.model_dump(mode="json"), DEPLOYMENTS_TTL)
            return found

    def _notices(self, user: str) -> list[Notice]:
        raw = self.store.get_json(_key("notices", user)) or []
        return [Notice.model_validate(n) for n in raw if isinstance(n, dict)]

    def _add_notice(self, user: str, text: str) -> None:
        notices = [*self._notices(user), Notice(text=text, at=self.clock())][-NOTICES_KEPT:]
        self.store.put_json(_key("notices", user), [n.model_dump(mode="json") for n in notices], NOTICE_TTL)


def _key(part: str, user: str) -> str:
    return f"home:{part}:{user}"
