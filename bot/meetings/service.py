"""Review meetings: schedule, move, cancel, remind, start; the run's tags are the source of truth.

Jobs live in the LeaderScheduler (Redis job store, one leader). A job re-reads the run's tags when
it fires, so a meeting moved or cancelled since is never announced from stale state; a tag marks each
reminder and start as done, so neither is sent twice, even after Redis was lost and the jobs were
rebuilt from MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from bot import tags
from bot.errors import ReviewBotError
from bot.meetings.blocks import (
    build_agenda,
    build_cancelled,
    build_invite_text,
    build_meeting_announcement,
    build_meeting_start,
    build_missed,
    build_reminder,
    meeting_time,
)
from bot.meetings.rules import BadWhen, IcsMethod, build_ics, ics_uid, new_ics_uid, parse_when
from bot.mlflow.records import ReviewRecords
from bot.mlflow.runs import Runs, baseline_params
from bot.models import Meeting, ReviewStatus, RunRef, RunSummary
from bot.reviews.card import build_review_card
from bot.scheduler import LeaderScheduler
from bot.slack.message import SlackMessage
from bot.slack.mrkdwn import escape
from bot.slack.outbox import Outbox, UploadFile
from bot.slack.people import People
from bot.store import Store, run_lock
from bot.tags import DEFAULT_DURATION_MIN

log = logging.getLogger(__name__)

REMINDER, START = "reminder", "start"
RETRY_PREFIX = "retry-"
RETRY_AFTER = timedelta(minutes=1)
# Which meeting (its review.meeting_at) each job already ran for.
DONE_TAGS = {REMINDER: tags.MEETING_REMINDED, START: tags.MEETING_STARTED}

NO_CARD = (
    ":information_source: Run `{run_id}` has no review card yet. Post it first with `/review {run_id}`, "
    "then schedule its meeting."
)
ALREADY_APPROVED = (
    ":white_check_mark: Run `{run_id}` is already approved, so it needs no review meeting. "
    "Request changes on its card first if it should be discussed again."
)
SCHEDULED_REPLY = (
    ":calendar: Review meeting set for {when}. It is announced in the card's thread and {n} invitee(s) "
    "got a calendar file by DM."
)
AGENDA_SCHEDULED_REPLY = (
    ":calendar: {n} pending review(s) go into one meeting at {when}; announced in each card's thread, "
    "{invited} invitee(s) got one calendar file."
)
NOTHING_PENDING = ":information_source: No review with a card is pending, so there is nothing to schedule."
AGENDA_TITLE = "Model review meeting ({n} runs)"
NO_MEETING = ":information_source: There is no meeting scheduled for this review."
MISSED_WHAT = {REMINDER: "reminder", START: "start"}
JOB_KINDS = (REMINDER, START, RETRY_PREFIX + REMINDER, RETRY_PREFIX + START)


MAY_NOT_MOVE = (
    ":no_entry_sign: Only the review's requester, the meeting's invitees and the reviewers can move this "
    "meeting. Nothing was changed."
)
MAY_NOT_CANCEL = (
    ":no_entry_sign: Only the review's requester, the meeting's invitees and the reviewers can cancel this "
    "meeting. Nothing was changed."
)
CANCELLED_DESCRIPTION = "This review meeting was cancelled."
CANCELLED_DM = ":x: The review meeting for *{run}* is cancelled: this file removes it from your calendar."


class MeetingError(ReviewBotError):
    pass


class MeetingService:
    def __init__(
        self,
        runs: Runs,
        records: ReviewRecords,
        store: Store,
        outbox: Outbox,
        people: People,
        scheduler: LeaderScheduler,
        *,
        reminder_lead_minutes: int,
        missed_grace_minutes: int,
        required_approvals: int,
        reviewers: Callable[[], frozenset[str] | None],
        key_metrics: list[str] | None = None,
    ) -> None:
        self.runs = runs
        self.records = records
        self.store = store
        self.outbox = outbox
        self.people = people
        self.lead = timedelta(minutes=reminder_lead_minutes)
        self.grace = timedelta(minutes=missed_grace_minutes)
        self.required_approvals = required_approvals
        self.reviewers = reviewers
        self.key_metrics = key_metrics or []
        self.scheduler = scheduler
        # Told who a meeting concerns when it is scheduled or cancelled (bot.home); set by app.py.
        self.on_change: Callable[[Iterable[str]], None] | None = None
        scheduler.register(JOB_KINDS, self.run_job, self.report_missed)
        scheduler.on_leader(self.rebuild)

    # --- people ----------------------------------------------------------------------------------

    def user_timezone(self, user: str) -> str:
        return self.people.get(user).tz

    # --- what people ask for ----------------------------------------------------------------------

    def schedule_from_text(self, ref: RunRef, when: str, user: str, now: datetime | None = None) -> str:
        """`/review schedule <run> <when>`: the reply for the person who asked."""
        now = now or datetime.now(tz=UTC)
        at = parse_when(when, self.user_timezone(user), now)
        run_id = self.runs.resolve(ref)
        meeting = self.schedule(
            run_id,
            at,
            duration_min=DEFAULT_DURATION_MIN,
            invitees=self._invitees(user),
            agenda="",
            by=user,
            now=now,
        )
        return SCHEDULED_REPLY.format(when=meeting_time(meeting.at), n=len(meeting.invitees))

    def agenda(self, channel: str, now: datetime | None = None) -> SlackMessage:
        """The reviews pending in `channel` (the review channel): one team's agenda."""
        return build_agenda(self._pending(channel), now or datetime.now(tz=UTC))

    def schedule_agenda(self, when: str, user: str, channel: str, now: datetime | None = None) -> str:
        """`/review agenda <when>`: every pending review with a card goes into one meeting."""
        now = now or datetime.now(tz=UTC)
        at = parse_when(when, self.user_timezone(user), now)
        pending = [summary for summary, _ in self._pending(channel)]
        if not pending:
            return NOTHING_PENDING
        invitees = self._invitees(user)
        for summary in pending:
            self.schedule(
                summary.run_id, at, duration_min=DEFAULT_DURATION_MIN, invitees=invitees, agenda="", by=user,
                now=now, invite=False,
            )  # fmt: skip
        self._invite_agenda(at, invitees, pending, user)
        return AGENDA_SCHEDULED_REPLY.format(n=len(pending), when=meeting_time(at), invited=len(invitees))

    def _pending(self, channel: str) -> list[tuple[RunSummary, list[str]]]:
        reviewers = self.reviewers()
        found = []
        query = f"tags.`{tags.STATUS}` = 'pending' and tags.`{tags.SLACK_CHANNEL}` = '{channel}'"
        for summary, _ in self.runs.search_reviews(query):
            approved = {v.user for v in summary.review.approvals} if summary.review else set()
            found.append((summary, sorted(set(reviewers or ()) - approved)))
        return found

    def _invitees(self, user: str) -> list[str]:
        return sorted(self.reviewers() or ()) + [user]

    # --- scheduling ------------------------------------------------------------------------------

    def schedule(
        self,
        run_id: str,
        at: datetime,
        *,
        duration_min: int,
        invitees: list[str],
        agenda: str,
        by: str,
        now: datetime | None = None,
        invite: bool = True,
    ) -> Meeting:
        """Schedule (or move) the run's meeting; announce it, invite people, set the reminders."""
        now = now or datetime.now(tz=UTC)
        if at <= now:
            raise BadWhen(":warning: That time is in the past. Pick a time after now.")
        summary = self.runs.run_summary(run_id)
        review = summary.review
        if review is None or not review.slack_ts:
            raise MeetingError(NO_CARD.format(run_id=run_id))
        if review.status is ReviewStatus.APPROVED:
            raise MeetingError(ALREADY_APPROVED.format(run_id=run_id))
        meeting = Meeting(
            run_id=run_id,
            at=at,
            duration_min=duration_min,
            invitees=list(dict.fromkeys(invitees)),
            agenda=agenda,
            scheduled_by=by,
            channel=review.slack_channel,
            ts=review.slack_ts,
        )
        with run_lock(self.store, run_id):
            previous = tags.meeting_from_tags(run_id, self.records.run_tags(run_id))
            if previous is None:
                meeting = meeting.model_copy(update={"uid": new_ics_uid(run_id), "sequence": 0})
            else:  # a move: the same calendar event, one change later
                self._check_may_change(previous, review.requested_by, by, MAY_NOT_MOVE)
                meeting = meeting.model_copy(
                    update={"uid": ics_uid(previous), "sequence": previous.sequence + 1}
                )
            # All at once: the meeting, and "not yet reminded or started" for it.
            self.records.set_run_tags(
                run_id, {**tags.meeting_tags(meeting), **dict.fromkeys(DONE_TAGS.values(), "")}
            )
            self._set_jobs(meeting, now)
        self._refresh_card(summary.model_copy(update={"meeting": meeting}))
        if self.on_change is not None:
            self.on_change(
                {by, review.requested_by, *meeting.invitees, *(previous.invitees if previous else [])}
            )
        self._post(
            meeting, build_meeting_announcement(meeting, summary.run_name, rescheduled=previous is not None)
        )
        if invite:
            self._invite(meeting, summary, review.slack_permalink)
        if previous is not None:
            # Who held the old event and gets no update of it (dropped from the list, or moved into an
            # agenda meeting with its own calendar file) has it cancelled, so no ghost stays behind.
            kept = set(meeting.invitees) if invite else set()
            dropped = [u for u in previous.invitees if u not in kept]
            if dropped:
                gone = previous.model_copy(update={"sequence": meeting.sequence, "invitees": dropped})
                self._send_cancel(gone, summary)
        return meeting

    def cancel(self, run_id: str, by: str) -> Meeting:
        summary = self.runs.run_summary(run_id)
        requester = summary.review.requested_by if summary.review else ""
        with run_lock(self.store, run_id):
            meeting = tags.meeting_from_tags(run_id, self.records.run_tags(run_id))
            if meeting is None:
                raise MeetingError(NO_MEETING)
            self._check_may_change(meeting, requester, by, MAY_NOT_CANCEL)
            self.records.set_run_tags(run_id, tags.cleared_meeting_tags())
            for kind in (REMINDER, START):
                self.scheduler.cancel(kind, run_id)
        self._refresh_card(self.runs.run_summary(run_id))
        if self.on_change is not None:
            self.on_change({by, requester, meeting.scheduled_by, *meeting.invitees})
        self._post(meeting, build_cancelled(meeting, by))
        # Every invitee's calendar drops the event: same UID, one change later, METHOD:CANCEL.
        self._send_cancel(meeting.model_copy(update={"sequence": meeting.sequence + 1}), summary)
        return meeting

    def _check_may_change(self, meeting: Meeting, requester: str, by: str, refusal: str) -> None:
        """Only the review's requester, the meeting's invitees and organiser, and the reviewers (when
        REVIEWERS or REVIEWER_GROUP names them) may move or cancel a meeting."""
        reviewers = self.reviewers() or frozenset()
        if by in {requester, meeting.scheduled_by, *meeting.invitees} or by in reviewers:
            return
        raise MeetingError(refusal)

    def _send_cancel(self, meeting: Meeting, summary: RunSummary) -> None:
        ics = build_ics(
            meeting,
            f"Model review: {summary.run_name}",
            CANCELLED_DESCRIPTION,
            stamp=datetime.now(tz=UTC),
            method=IcsMethod.CANCEL,
        )
        upload = UploadFile(
            filename="review-meeting-cancelled.ics", title="Review meeting cancelled", content=ics
        )
        for user in meeting.invitees:
            self.outbox.send_file(
                user, CANCELLED_DM.format(run=escape(summary.run_name)), upload, what="meeting cancellation"
            )

    def _set_jobs(self, meeting: Meeting, now: datetime) -> None:
        reminder_at = meeting.at - self.lead
        if self.lead and reminder_at > now:
            self.scheduler.schedule(REMINDER, meeting.run_id, reminder_at)
        else:
            self.scheduler.cancel(REMINDER, meeting.run_id)  # too late for one: the start still comes
        self.scheduler.schedule(START, meeting.run_id, meeting.at)

    # --- jobs (run by the leader) ----------------------------------------------------------------

    def run_job(self, kind: str, run_id: str) -> None:
        """A reminder or a start falls due. If MLflow cannot be read, it is tried again every minute
        (as its own job, so the one running now can finish) until it goes out or is reported missed."""
        kind = kind.removeprefix(RETRY_PREFIX)
        try:
            self._run_job(kind, run_id)
        except ReviewBotError as exc:
            log.warning("meeting %s for run %s failed (%s); trying again in a minute", kind, run_id, exc)
            self.scheduler.schedule(RETRY_PREFIX + kind, run_id, datetime.now(tz=UTC) + RETRY_AFTER)

    def _run_job(self, kind: str, run_id: str) -> None:
        run_tags = self.records.run_tags(run_id)
        meeting = tags.meeting_from_tags(run_id, run_tags)
        if meeting is None or run_tags.get(DONE_TAGS[kind]) == run_tags.get(tags.MEETING_AT):
            return  # cancelled, or already done (a job rebuilt after it ran)
        due = meeting.at - self.lead if kind == REMINDER else meeting.at
        if datetime.now(tz=UTC) > due + self.grace:  # retried for too long: say so rather than send it late
            self.report_missed(kind, run_id, due)
            return
        if not self.store.claim(f"meeting-job:{kind}:{run_id}:{run_tags[tags.MEETING_AT]}", 7 * 24 * 3600):
            return  # another leader ran it a moment ago
        if kind == REMINDER:
            minutes = int(self.lead.total_seconds() // 60)
            self._post(meeting, build_reminder(meeting, minutes))
            for user in meeting.invitees:
                self.outbox.notice(user, build_reminder(meeting, minutes), what="meeting reminder DM")
        else:
            summary = self.runs.run_summary(run_id)  # the review as it stands now, for the summary
            start = build_meeting_start(meeting, summary, self.required_approvals, _permalink(summary))
            self._post(meeting, start, broadcast=True)
        self.records.set_run_tags(run_id, {DONE_TAGS[kind]: run_tags[tags.MEETING_AT]})

    def report_missed(self, kind: str, run_id: str, due: datetime) -> None:
        kind = kind.removeprefix(RETRY_PREFIX)
        run_tags = self.records.run_tags(run_id)
        meeting = tags.meeting_from_tags(run_id, run_tags)
        if meeting is None or run_tags.get(DONE_TAGS[kind]) == run_tags.get(tags.MEETING_AT):
            return
        self._post(meeting, build_missed(meeting, MISSED_WHAT[kind]))
        self.records.set_run_tags(run_id, {DONE_TAGS[kind]: run_tags[tags.MEETING_AT]})

    def rebuild(self, now: datetime | None = None) -> int:
        """Put back any job Redis no longer has, from the runs' tags; returns how many were added."""
        now = now or datetime.now(tz=UTC)
        added = 0
        for summary, run_tags in self.runs.search_reviews(f"tags.`{tags.MEETING_AT}` != ''"):
            meeting = tags.meeting_from_tags(summary.run_id, run_tags)
            if meeting is None:
                continue
            for kind, when in ((REMINDER, meeting.at - self.lead), (START, meeting.at)):
                if kind == REMINDER and not self.lead:
                    continue
                if run_tags.get(DONE_TAGS[kind]) == run_tags.get(tags.MEETING_AT) or self.scheduler.scheduled(
                    kind, summary.run_id
                ):
                    continue
                if when >= now - self.grace:
                    self.scheduler.schedule(kind, summary.run_id, when)  # runs at once if already due
                    added += 1
                else:
                    self.report_missed(kind, summary.run_id, when)
        return added

    # --- Slack -----------------------------------------------------------------------------------

    def _refresh_card(self, summary: RunSummary) -> None:
        """The card shows the meeting's time (each reader in their own timezone)."""
        review = summary.review
        if review is None or not review.slack_ts:
            return
        card = build_review_card(
            summary,
            requested_by=review.requested_by,
            key_metrics=self.key_metrics,
            required_approvals=self.required_approvals,
            baseline_params=baseline_params(self.runs, summary.baseline),  # what differs stays first
        )
        self.outbox.update(
            review.slack_channel, review.slack_ts, card, what=f"the card of run {summary.run_id}"
        )

    def _post(self, meeting: Meeting, message: SlackMessage | str, *, broadcast: bool = False) -> None:
        what = f"meeting message for run {meeting.run_id}"
        self.outbox.notice(meeting.channel, message, what=what, thread_ts=meeting.ts, broadcast=broadcast)

    def _invite(self, meeting: Meeting, summary: RunSummary, permalink: str) -> None:
        description = "\n".join(x for x in (meeting.agenda, summary.run_url, permalink) if x)
        ics = build_ics(meeting, f"Model review: {summary.run_name}", description, stamp=datetime.now(tz=UTC))
        self._send_invites(meeting.invitees, build_invite_text(meeting, summary.run_name, permalink), ics)

    def _invite_agenda(self, at: datetime, invitees: list[str], runs: list[RunSummary], by: str) -> None:
        meeting = Meeting(
            run_id="agenda", at=at, duration_min=DEFAULT_DURATION_MIN, invitees=invitees, scheduled_by=by
        )
        lines = [f"{s.run_name}: {s.review.slack_permalink if s.review else s.run_url}" for s in runs]
        title = AGENDA_TITLE.format(n=len(runs))
        ics = build_ics(meeting, title, "\n".join(lines), stamp=datetime.now(tz=UTC))
        self._send_invites(invitees, build_invite_text(meeting, title, ""), ics)

    def _send_invites(self, invitees: list[str], text: str, ics: bytes) -> None:
        """Each invitee gets a DM with the .ics file; one refused DM does not stop the others."""
        upload = UploadFile(filename="review-meeting.ics", title="Review meeting", content=ics)
        for user in invitees:
            self.outbox.send_file(user, text, upload, what="meeting invitation")


def _permalink(summary: RunSummary) -> str:
    return summary.review.slack_permalink if summary.review else ""
