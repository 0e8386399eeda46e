"""A run's artifacts: the plots worth showing in the thread, and their bytes."""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path

from bot.mlflow.client import Mlflow
from bot.models import ImageArtifact

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif")
# How deep to look for plots in a run's artifact tree: autolog puts them at the root, people
# tend to use one or two folders; a model folder is not worth walking.
MAX_ARTIFACT_DEPTH = 3
SKIP_ARTIFACT_DIRS = frozenset({"model", "models", "checkpoints"})


class Artifacts:
    def __init__(self, mlflow: Mlflow) -> None:
        self.mlflow = mlflow

    def list_images(self, run_id: str) -> list[ImageArtifact]:
        """Image artifacts of a run, shallow folders first, in a stable order."""
        found: list[ImageArtifact] = []

        def walk(path: str | None, depth: int) -> None:
            entries = self.mlflow.call("artifacts", lambda: self.mlflow.tracking.list_artifacts(run_id, path))
            for entry in sorted(entries, key=lambda e: e.path):
                if entry.is_dir:
                    if (
                        depth < MAX_ARTIFACT_DEPTH
                        and posixpath.basename(entry.path) not in SKIP_ARTIFACT_DIRS
                    ):
                        walk(entry.path, depth + 1)
                elif entry.path.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(
                        ImageArtifact(path=entry.path, size=entry.file_size if entry.file_size else -1)
                    )

        walk(None, 1)
        return sorted(found, key=lambda a: (a.path.count("/"), a.path))

    def download_artifact(self, run_id: str, path: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="review-bot-") as tmp:
            local = self.mlflow.call(
                f"artifact `{path}`",
                lambda: self.mlflow.tracking.download_artifacts(run_id, path, dst_path=tmp),
            )
            return Path(local).read_bytes()
