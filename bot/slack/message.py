"""The one shape every builder returns: what goes into chat.postMessage / chat.update."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.slack import limits


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Builders must cut before this point; failing here is a bug, not a Slack error.
        if len(self.blocks) > limits.MAX_BLOCKS:
            raise ValueError(f"{len(self.blocks)} blocks in one message (Slack allows {limits.MAX_BLOCKS})")
        if len(self.text) > limits.MESSAGE_TEXT:
            raise ValueError(f"message text of {len(self.text)} characters")

    def as_kwargs(self) -> dict[str, Any]:
        """Arguments for WebClient.chat_postMessage / chat_update / respond."""
        kwargs: dict[str, Any] = {"text": self.text, "blocks": self.blocks}
        if self.metadata is not None:
            kwargs["metadata"] = self.metadata
        return kwargs
