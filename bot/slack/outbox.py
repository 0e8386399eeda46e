"""Every Slack write the bot makes goes through the Outbox: post, update, thread, upload, DM.

This is the one place that catches SlackApiError. A post the person asked for (a card, a comparison)
raises SlackRefused with advice they can act on; a post that only reports something already recorded
(a card update, a line in a thread, a DM) is logged and reported as False, because the record in
MLflow stands either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import metrics_export
from bot.errors import MlflowUnavailable, ReviewBotError, SlackRefused, log_unexpected
from bot.slack.advice import UNEXPECTED, build_slack_advice, error_code
from bot.slack.message import SlackMessage

log = logging.getLogger(__name__)

Notify = Callable[[str], None]  # tells the person who asked, ephemerally
HTTP_OK = 200
THREAD_CUT_SHORT = (
    ":warning: MLflow at `{uri}` stopped answering while the thread of {what} was being posted: what is "
    "posted stands (and is recorded), the rest of the thread is missing. Ask again once MLflow answers."
)


@dataclass(frozen=True)
class UploadFile:
    filename: str
    title: str
    content: bytes


@dataclass(frozen=True)
class FileUpload:
    """Files posted into the thread together, with one comment."""

    name: str  # what this part is, for logs and error messages
    comment: str
    files: list[UploadFile] = field(default_factory=list)


ThreadItem = SlackMessage | FileUpload


class Outbox:
    def __init__(self, client: WebClient) -> None:
        self.client = client
        # Every Web API request of this client (this Outbox's and the services' sharing it), with the 429s
        # that slack_sdk's RateLimitErrorRetryHandler retries after Retry-After, counted for /metrics.
        metrics_export.count_slack_calls(client)

    def post(self, channel: str, message: SlackMessage, *, what: str) -> str:
        """Post a message someone asked for; its ts, or SlackRefused saying what they can do."""
        try:
            response = self.client.chat_postMessage(
                channel=channel, unfurl_links=False, **message.as_kwargs()
            )
        except SlackApiError as exc:
            code = error_code(exc)
            log.error("chat.postMessage to %s refused: %s (%s)", channel, code, what)
            raise SlackRefused(code, channel, build_slack_advice(code, channel)) from exc
        return response["ts"]

    def notice(
        self,
        channel: str,
        message: SlackMessage | str,
        *,
        what: str,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> bool:
        """Post a message that reports something (in a thread, a DM, the review channel); False if refused."""
        kwargs = message.as_kwargs() if isinstance(message, SlackMessage) else {"text": message}
        if thread_ts:
            kwargs.update(thread_ts=thread_ts, reply_broadcast=broadcast)
        try:
            self.client.chat_postMessage(channel=channel, unfurl_links=False, **kwargs)
        except SlackApiError as exc:
            log.error("%s to %s refused: %s", what, channel, error_code(exc))
            return False
        return True

    def update(self, channel: str, ts: str, message: SlackMessage, *, what: str) -> bool:
        """Show a changed message in place; False (logged) if Slack refused."""
        try:
            self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
        except SlackApiError as exc:
            log.error("updating %s failed: %s", what, error_code(exc))
            return False
        return True

    def unfurl(self, unfurls: dict[str, Any], *, what: str, **address: str) -> bool:
        """Unfurl links (`address`: channel+ts, or unfurl_id+source); False (logged) if refused. Nobody is
        told: the person pasted a link, they did not ask the bot for anything."""
        try:
            self.client.chat_unfurl(unfurls=unfurls, **address)
        except SlackApiError as exc:
            log.warning("chat.unfurl of %s refused: %s", what, error_code(exc))
            return False
        return True

    def publish_home(self, user: str, view: dict[str, Any]) -> bool:
        """A person's Home tab; False (logged) if Slack refused it after the client's Retry-After retries."""
        try:
            self.client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("publishing the Home tab of %s failed: %s", user, error_code(exc))
            return False
        return True

    def tell(self, channel: str, user: str, text: str, *, response_url: str = "") -> bool:
        """An ephemeral answer to one person: through the response_url of what they did when there is one
        (any replica can use it, for 30 minutes), else chat.postEphemeral. False (logged) if refused."""
        try:
            if response_url:
                answer = WebhookClient(response_url, timeout=10).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                if answer.status_code == HTTP_OK:
                    return True
                log.warning("answering %s through its response_url failed: HTTP %s", user, answer.status_code)
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("telling %s in %s failed: %s", user, channel, error_code(exc))
            return False
        except OSError as exc:  # the response_url did not answer
            log.warning("telling %s in %s failed: %s", user, channel, exc)
            return False
        return True

    def permalink(self, channel: str, ts: str) -> str:
        try:
            return self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
        except SlackApiError as exc:
            log.warning("chat.getPermalink failed: %s", error_code(exc))
            return ""

    def send_file(self, user: str, comment: str, upload: UploadFile, *, what: str) -> bool:
        """A file in a DM (conversations.open, then files v2); False (logged) if refused."""
        try:
            channel = self.client.conversations_open(users=user)["channel"]["id"]
            self.client.files_upload_v2(
                channel=channel,
                initial_comment=comment,
                file_uploads=[
                    {"content": upload.content, "filename": upload.filename, "title": upload.title}
                ],
            )
        except SlackApiError as exc:
            log.warning("%s to %s failed: %s", what, user, error_code(exc))
            return False
        return True

    def thread_replies(self, channel: str, ts: str) -> list[dict[str, Any]] | None:
        """The messages of a thread (at most 1,000); None (logged) if Slack refused."""
        try:
            return self.client.conversations_replies(channel=channel, ts=ts, limit=1000).get("messages", [])
        except SlackApiError as exc:
            log.error("reading the thread %s/%s failed: %s", channel, ts, error_code(exc))
            return None

    def fill_thread(
        self,
        items: Iterator[ThreadItem],
        channel: str,
        ts: str,
        notify: Notify,
        *,
        what: str,
        part_failed: str,
    ) -> None:
        """Post each thread item as it is made. One Slack refuses is logged and told (`part_failed`
        with {part} and {code}); the rest still go. A failure making them ends the thread, told too.
        Timed for /metrics: the thread, and each chart in it (drawn, then uploaded)."""
        with metrics_export.timed_work(metrics_export.THREAD):
            while True:
                started = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    return
                except MlflowUnavailable as exc:  # what is posted stands: say that, not "nothing was posted"
                    metrics_export.work_failed()
                    notify(THREAD_CUT_SHORT.format(uri=exc.tracking_uri, what=what))
                    return
                except ReviewBotError as exc:
                    metrics_export.work_failed()
                    notify(exc.user_message())
                    return
                except Exception:
                    notify(UNEXPECTED.format(error_id=log_unexpected(log, f"preparing the thread of {what}")))
                    return
                refused = False
                try:
                    self._send(item, channel, ts)
                except SlackApiError as exc:
                    refused = True
                    code = error_code(exc)
                    part = item.name if isinstance(item, FileUpload) else "message"
                    log.error("thread %s of %s refused: %s", part, what, code)
                    notify(part_failed.format(part=part, code=code))
                if isinstance(item, FileUpload) and item.name.endswith("chart"):
                    metrics_export.observe_work(
                        metrics_export.CHART, time.perf_counter() - started, failed=refused
                    )

    def _send(self, item: ThreadItem, channel: str, ts: str) -> None:
        """One thread item: a message, or files uploaded together (files v2) with their comment."""
        if isinstance(item, SlackMessage):
            self.client.chat_postMessage(
                channel=channel, thread_ts=ts, unfurl_links=False, **item.as_kwargs()
            )
        elif item.files:
            self.client.files_upload_v2(
                channel=channel,
                thread_ts=ts,
                initial_comment=item.comment,
                file_uploads=[
                    {"content": f.content, "filename": f.filename, "title": f.title} for f in item.files
                ],
            )
        else:
            self.client.chat_postMessage(channel=channel, thread_ts=ts, text=item.comment)
