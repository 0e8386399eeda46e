"""The Home tab (bot.home): app_home_opened publishes it; its Approve / Request changes vote as the
card's buttons do; its page buttons show other pages of what waits on the person."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.ids import HomeActionId
from bot.models import Via, VoteClick, VoteKind
from bot.slack.dedupe import delivery_id
from bot.slack.values import CardValue, PageValue
from handlers.context import acknowledge, services_of, slack_time, subject_of


def publish_home(event: dict[str, Any], context: BoltContext) -> None:
    if event.get("tab", "home") == "home":
        services_of(context).home.opened(event["user"])


def _card(context: BoltContext) -> CardValue:
    subject = subject_of(context)
    return subject if isinstance(subject, CardValue) else CardValue()


def _delivery(body: dict[str, Any]) -> str:
    action = (body.get("actions") or [{}])[0]
    return delivery_id(body) or f"home:{body['user']['id']}:{action.get('action_ts')}"


def _accept_vote(kind: VoteKind, body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    """Before the ack, as on the card (handlers.actions): the click is kept durably under the card it
    names, so an acknowledged vote is recorded (or its voter told) whatever happens next."""
    card = _card(context)
    if card.channel and card.ts:
        action = (body.get("actions") or [{}])[0]
        services_of(context).votes.accept(
            VoteClick(
                delivery=_delivery(body),
                channel=card.channel,
                ts=card.ts,
                user=body["user"]["id"],
                kind=kind,
                via=Via.BUTTON,
                at=slack_time(action.get("action_ts")),
            )
        )
    ack()


def accept_approval(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    _accept_vote(VoteKind.APPROVE, body, context, ack)


def accept_change_request(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
    _accept_vote(VoteKind.REQUEST_CHANGES, body, context, ack)


def record_home_votes(body: dict[str, Any], context: BoltContext) -> None:
    """After the ack: the card's waiting clicks go to MLflow; this voter's answer goes to their tab."""
    services = services_of(context)
    card, user = _card(context), body["user"]["id"]
    if not (card.channel and card.ts):
        services.home.stale_button(user)
        return
    services.votes.process(card.channel, card.ts, answer={_delivery(body): services.home.notifier(user)})


def show_page(body: dict[str, Any], context: BoltContext) -> None:
    subject = subject_of(context)
    page = subject.page if isinstance(subject, PageValue) else 0
    services_of(context).home.show_page(body["user"]["id"], page)


def register(app: App) -> None:
    app.event("app_home_opened")(ack=acknowledge, lazy=[publish_home])
    app.action(HomeActionId.APPROVE.value)(ack=accept_approval, lazy=[record_home_votes])
    app.action(HomeActionId.REQUEST_CHANGES.value)(ack=accept_change_request, lazy=[record_home_votes])
    app.action(HomeActionId.PREVIOUS_PAGE.value)(ack=acknowledge, lazy=[show_page])
    app.action(HomeActionId.NEXT_PAGE.value)(ack=acknowledge, lazy=[show_page])
