"""Who a Slack user is, as the bot needs it: a name to show, the names they may go by in MLflow's
`mlflow.user`, and their timezone. One users.info per person per hour, shared by all replicas."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import ReviewBotError
from bot.slack.advice import error_code
from bot.store import Store

log = logging.getLogger(__name__)

USER_TTL = 3600
GROUP_TTL = 600
GROUP_UNREADABLE = (
    ":warning: Slack would not list the reviewer group (`{code}`), so I cannot tell who may vote. "
    "Nothing was changed; try again in a minute, or ask whoever runs the bot to check `REVIEWER_GROUP`."
)


class GroupUnreadable(ReviewBotError):
    """Slack refused usergroups.users.list: nobody can tell who the reviewers are right now."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    handles: frozenset[str]  # lower-case: email local part, user name, display and real name
    tz: str  # IANA timezone from their Slack profile


class People:
    def __init__(self, store: Store, client: WebClient) -> None:
        self.store = store
        self.client = client

    def get(self, user_id: str) -> Person:
        info = self.store.get_json(f"user:{user_id}")
        if info is None:
            try:
                user = self.client.users_info(user=user_id)["user"]
            except SlackApiError as exc:
                log.warning("users.info %s failed: %s", user_id, error_code(exc))
                user = {"id": user_id}  # not cached: next time may work
            else:
                user = dict(user)
            info = _person_info(user_id, user)
            if "profile" in user:
                self.store.put_json(f"user:{user_id}", info, USER_TTL)
        return Person(id=user_id, name=info["name"], handles=frozenset(info["handles"]), tz=info["tz"])

    def group_members(self, group_id: str) -> list[str]:
        """The user ids in a Slack user group, cached for GROUP_TTL; GroupUnreadable if Slack refuses."""
        members = self.store.get_json(f"usergroup:{group_id}")
        if members is None:
            try:
                members = self.client.usergroups_users_list(usergroup=group_id).get("users", [])
            except SlackApiError as exc:
                code = error_code(exc)
                log.warning("usergroups.users.list %s failed: %s", group_id, code)
                raise GroupUnreadable(GROUP_UNREADABLE.format(code=code)) from exc
            self.store.put_json(f"usergroup:{group_id}", members, GROUP_TTL)
        return list(members)


def _person_info(user_id: str, user: dict) -> dict:
    profile = user.get("profile") or {}
    names = (
        (profile.get("email") or "").split("@")[0],
        user.get("name") or "",
        profile.get("display_name") or "",
        profile.get("real_name") or "",
    )
    return {
        "name": profile.get("real_name") or user.get("real_name") or user.get("name") or user_id,
        "handles": sorted({n.lower() for n in names if n}),
        "tz": user.get("tz") or "UTC",
    }
