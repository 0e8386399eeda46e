"""`review-bot preview`: write exactly what would be posted, without Slack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.mlflow.registry import Registry
from bot.models import RunRef
from bot.nudges.blocks import build_nudge
from bot.reviews.prepare import ReviewPreparer
from bot.slack.message import SlackMessage
from bot.slack.outbox import FileUpload

PREVIEW_USER = "U0PREVIEW"


@dataclass(frozen=True)
class PreviewResult:
    out: Path
    card: Path
    thread: Path
    images: list[Path]


def write_preview(
    preparer: ReviewPreparer,
    ref: RunRef,
    out: Path,
    requested_by: str = PREVIEW_USER,
    baseline: RunRef | None = None,
) -> PreviewResult:
    out.mkdir(parents=True, exist_ok=True)
    prepared = preparer.card(ref, requested_by, baseline)
    card_path = out / "card.json"
    card_path.write_text(json.dumps(prepared.card.as_kwargs(), indent=2, ensure_ascii=False))
    thread: list[dict[str, Any]] = []
    images: list[Path] = []
    for index, item in enumerate(preparer.thread(prepared), start=1):
        if isinstance(item, SlackMessage):
            thread.append({"method": "chat.postMessage", **item.as_kwargs()})
        elif isinstance(item, FileUpload):
            names = []
            for upload in item.files:
                path = out / f"{index:02d}-{upload.filename.replace('/', '_')}"
                path.write_bytes(upload.content)
                images.append(path)
                names.append({"filename": upload.filename, "title": upload.title, "preview_file": path.name})
            thread.append({"method": "files.upload_v2", "initial_comment": item.comment, "files": names})
    thread_path = out / "thread.json"
    thread_path.write_text(json.dumps(thread, indent=2, ensure_ascii=False))
    return PreviewResult(out=out, card=card_path, thread=thread_path, images=images)


def write_nudge_preview(
    registry: Registry, name: str, version: str, deployment_aliases: list[str], out: Path
) -> Path | None:
    """The nudge the bot would post about this version, or None when it needs none (approved, or not
    deployed)."""
    deployed = registry.deployed_version(name, version, deployment_aliases)
    if not deployed.markers or deployed.approved:
        return None
    out.mkdir(parents=True, exist_ok=True)
    path = out / "nudge.json"
    message = build_nudge(deployed, deployed.markers, datetime.now(tz=UTC))
    path.write_text(json.dumps(message.as_kwargs(), indent=2, ensure_ascii=False))
    return path
