"""A run's artifacts: the images worth showing in the thread, and their bytes.

Also what MLflow's own file names mean: `mlflow.log_image(image, key=..., step=...)` stores each step as
`images/<key>+step+<step>+timestamp+<ms>+<uuid>.png` (a `/` in the key written as `~`; older MLflow
used `%` and `#` instead), plus a smaller `…+compressed.webp` copy for its UI.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from bot.mlflow.client import Mlflow
from bot.models import ArtifactImages, ImageArtifact

# What Slack shows inline (PNG, JPEG, GIF, WebP), and SVG, which Slack takes as a file (bot.reviews.plots).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
# How deep a plot is shown: autolog puts them at the root, `log_image` in `images/`, people tend to use one
# or two folders. Deeper images are still looked for, and named as not shown (bot.reviews.plots).
MAX_ARTIFACT_DEPTH = 3  # path parts: `a/b/plot.png` is shown, `a/b/c/plot.png` is named
# Folder listings per run (one request each, breadth first): the folders left are named as not searched.
MAX_LISTINGS = 40
SKIP_ARTIFACT_DIRS = frozenset({"model", "models", "checkpoints"})  # a saved model, not plots

IMAGES_DIR = "images"
_STEP_IMAGE = re.compile(
    r"^images/(?P<key>[^/]+?)[+%]step[+%](?P<step>-?\d+)[+%]timestamp[+%](?P<timestamp>\d+)"
    r"[+%](?P<uuid>[0-9A-Fa-f-]+)(?P<compressed>[+%]compressed)?\.(?:png|webp)$"
)


@dataclass(frozen=True)
class StepImage:
    """One step of an image logged with `log_image(key=..., step=...)`."""

    key: str
    step: int
    timestamp: int  # ms
    compressed: bool  # MLflow's smaller copy for its UI, next to the full image
    stem: str  # the path without "+compressed" and the extension: a compressed copy's full image's


def parse_step_image(path: str) -> StepImage | None:
    """What MLflow's file name of a logged image step says; None for any other file."""
    match = _STEP_IMAGE.match(path)
    if match is None:
        return None
    stem = path[: match.start("compressed")] if match["compressed"] else path.rsplit(".", 1)[0]
    return StepImage(
        key=match["key"].replace("~", "/").replace("#", "/"),
        step=int(match["step"]),
        timestamp=int(match["timestamp"]),
        compressed=bool(match["compressed"]),
        stem=stem,
    )


def is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


class Artifacts:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def list_images(self, run_id: str) -> ArtifactImages:
        """Image artifacts of a run at any depth (shallow folders first, in a stable order), within
        MAX_LISTINGS folder listings; the folders left unlisted are named."""
        found: list[ImageArtifact] = []
        folders: deque[str | None] = deque([None])
        listings = 0
        while folders and listings < MAX_LISTINGS:
            folder = folders.popleft()
            listings += 1
            entries = self.mlflow.call(
                "artifacts", lambda folder=folder: self.mlflow.tracking.list_artifacts(run_id, folder)
            )
            for entry in sorted(entries, key=lambda e: e.path):
                if entry.is_dir:
                    if posixpath.basename(entry.path) not in SKIP_ARTIFACT_DIRS:
                        folders.append(entry.path)
                elif is_image(entry.path):
                    found.append(
                        ImageArtifact(path=entry.path, size=entry.file_size if entry.file_size else -1)
                    )
        return ArtifactImages(
            images=sorted(found, key=lambda a: (a.path.count("/"), a.path)),
            unlisted=sorted(f for f in folders if f),
        )

    def download_artifact(self, run_id: str, path: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="review-bot-") as tmp:
            local = self.mlflow.call(
                f"artifact `{path}`",
                lambda: self.mlflow.tracking.download_artifacts(run_id, path, dst_path=tmp),
            )
            return Path(local).read_bytes()
