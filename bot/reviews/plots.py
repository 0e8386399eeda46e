"""Which of a run's images go to its thread, in which order and under which names. Pure.

Order: shallow folders first, by path, as the artifact tree lists them, with each key logged by step
(`log_image(key=..., step=...)`) standing there as its latest step only; the earlier steps come after
everything else, latest first across keys. So six slots show six keys rather than six steps of one.

Nothing is dropped silently: what is not uploaded is named in the comment with the reason (too big,
deeper than MAX_ARTIFACT_DEPTH, over the count, in a folder not searched). The one thing skipped without a
word is MLflow's compressed copy of a logged step whose full image is there: a copy, not another image.

SVG: Slack's file upload takes any file (so does tests/slack_api_server.py) but shows no preview of SVG.
It is uploaded as a file rather than left out, so a reviewer can open it with one click, and the comment
says it has no preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.mlflow.artifacts import MAX_ARTIFACT_DEPTH, StepImage, parse_step_image
from bot.models import ArtifactImages, ImageArtifact


@dataclass(frozen=True)
class Plot:
    artifact: ImageArtifact
    filename: str  # what Slack shows: "sample_predictions (step 3).png" for a logged step
    title: str
    step: StepImage | None = None

    @property
    def is_svg(self) -> bool:
        return self.artifact.path.lower().endswith(".svg")


@dataclass(frozen=True)
class PlotPlan:
    upload: list[Plot]  # in order
    too_big: list[Plot] = field(default_factory=list)
    too_deep: list[Plot] = field(default_factory=list)
    not_shown: list[Plot] = field(default_factory=list)  # over the count
    unlisted: list[str] = field(default_factory=list)  # folders not searched

    def without(self, plot: Plot) -> PlotPlan:
        """The plan once `plot` turned out too big on download (the store had not said its size)."""
        return replace(self, upload=[p for p in self.upload if p != plot], too_big=[*self.too_big, plot])


def step_title(step: StepImage) -> str:
    return f"{step.key} (step {step.step})"


def plot_of(artifact: ImageArtifact) -> Plot:
    """An image under a name a person reads: a logged step by its key and step, any other by its path."""
    step = parse_step_image(artifact.path)
    if step is None:
        return Plot(artifact, filename=artifact.path.rsplit("/", 1)[-1], title=artifact.path)
    extension = artifact.path.rsplit(".", 1)[-1]
    filename = f"{step.key.replace('/', '_')} (step {step.step}).{extension}"
    return Plot(artifact, filename=filename, title=step_title(step), step=step)


def plan_plots(listing: ArtifactImages, max_images: int, max_bytes: int) -> PlotPlan:
    parsed = [plot_of(a) for a in sorted(listing.images, key=lambda a: (a.path.count("/"), a.path))]
    full_stems = {p.step.stem for p in parsed if p.step is not None and not p.step.compressed}
    plots = [p for p in parsed if p.step is None or not (p.step.compressed and p.step.stem in full_stems)]
    deep = [p for p in plots if p.artifact.path.count("/") >= MAX_ARTIFACT_DEPTH]
    near = [p for p in plots if p.artifact.path.count("/") < MAX_ARTIFACT_DEPTH]
    too_big = [p for p in near if p.artifact.size > max_bytes]
    fitting = [p for p in near if p.artifact.size <= max_bytes]
    latest: dict[str, Plot] = {}
    for plot in fitting:
        if plot.step is not None:
            current = latest.get(plot.step.key)
            if current is None or _recency(plot) > _recency(current):
                latest[plot.step.key] = plot
    first = [p for p in fitting if p.step is None or latest[p.step.key] is p]
    earlier = sorted(
        (p for p in fitting if p.step is not None and latest[p.step.key] is not p),
        key=lambda p: (-_recency(p)[0], -_recency(p)[1], p.step.key if p.step else ""),
    )
    ordered = first + earlier
    return PlotPlan(
        upload=ordered[:max_images],
        too_big=too_big,
        too_deep=deep,
        not_shown=ordered[max_images:],
        unlisted=list(listing.unlisted),
    )


def _recency(plot: Plot) -> tuple[int, int]:
    assert plot.step is not None
    return plot.step.step, plot.step.timestamp
