"""What counts as deployed: a registered model version under one of DEPLOYMENT_ALIASES (MLflow's current
way of marking what serves) or in the legacy stage `Production`. Read by the registry scan
(`bot.mlflow.registry`) and acted on by the nudges (`bot.nudges`). Pure."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.models import ReviewState, ReviewStatus

PRODUCTION_STAGE = "Production"


class DeployedVersion(BaseModel):
    """A registered model version (or a prompt version) that serves, and the review that covers it: of
    the run it came from, else of its LoggedModel, else its own (`subject`, bot.subjects)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    markers: list[str]  # the deployment aliases on it, and/or "Production" (the legacy stage)
    run_id: str = ""  # "" when the version was not logged from a run
    run_name: str = ""
    run_url: str = ""
    run_started: datetime | None = None
    version_url: str = ""
    review: ReviewState | None = None
    snoozed_until: datetime | None = None
    subject: str = ""  # where its review lives (bot.subjects); "" until the registry says
    prompt: bool = False  # a prompt version under a deployment alias, not a model version
    deleted: bool = False  # its run was deleted in MLflow: the review it had no longer counts

    @property
    def approved(self) -> bool:
        """The one rule the gate applies too (bot.votes.gate): a signed approval of what still exists."""
        return not self.deleted and self.review is not None and self.review.status is ReviewStatus.APPROVED

    @property
    def since(self) -> datetime | None:
        """When its review was requested: the age the digest sorts by (never reviewed: no age)."""
        return self.review.requested_at if self.review else None


def deployment_markers(aliases: list[str], stage: str | None, deployment_aliases: list[str]) -> list[str]:
    """The reasons a version counts as deployed; empty when it does not."""
    wanted = {a.lower() for a in deployment_aliases}
    markers = sorted(a for a in aliases if a.lower() in wanted)
    if (stage or "") == PRODUCTION_STAGE:
        markers.append(PRODUCTION_STAGE)
    return markers
