"""Unit tests for a run's images in the thread: MLflow's names of logged steps (bot.mlflow.artifacts),
which images go and in which order (bot.reviews.plots), and the comment naming the rest
(bot.reviews.thread.build_plots_comment)."""

from __future__ import annotations

import pytest

from bot.mlflow.artifacts import StepImage, parse_step_image
from bot.models import ArtifactImages, ImageArtifact
from bot.reviews.plots import PlotPlan, plan_plots, plot_of
from bot.reviews.thread import build_plots_comment

MB = 1024 * 1024
UUID = "0f5c0f8e-6c1d-4b8e-9a51-7c2f3e9d1a22"


def step_path(key: str, step: int, ts: int = 1733000000000, compressed: bool = False, sep: str = "+") -> str:
    name = sep.join([key, "step", str(step), "timestamp", str(ts), UUID])
    return f"images/{name}{sep + 'compressed.webp' if compressed else '.png'}"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            step_path("sample_predictions", 0),
            StepImage("sample_predictions", 0, 1733000000000, False, step_path("sample_predictions", 0)[:-4]),
        ),
        (
            step_path("sample_predictions", 12, compressed=True),
            StepImage(
                "sample_predictions", 12, 1733000000000, True, step_path("sample_predictions", 12)[:-4]
            ),
        ),
        # a `/` in the key is stored as `~` (older MLflow: `#`, with `%` between the parts)
        (
            step_path("eval~confusion", 3)[:-4] + ".png",
            StepImage("eval/confusion", 3, 1733000000000, False, step_path("eval~confusion", 3)[:-4]),
        ),
        (
            step_path("eval#roc", 7, sep="%"),
            StepImage("eval/roc", 7, 1733000000000, False, step_path("eval#roc", 7, sep="%")[:-4]),
        ),
        (
            step_path("with space.v2-x", 1),
            StepImage("with space.v2-x", 1, 1733000000000, False, step_path("with space.v2-x", 1)[:-4]),
        ),
        ("images/roc.png", None),
        ("plots/" + step_path("k", 0), None),  # only MLflow's own folder
        ("training_confusion_matrix.png", None),
        (step_path("k", 0)[:-4] + ".jpg", None),
    ],
)
def test_parse_step_image(path: str, expected: StepImage | None) -> None:
    assert parse_step_image(path) == expected


def test_a_logged_step_is_uploaded_under_its_key_and_step() -> None:
    plot = plot_of(ImageArtifact(path=step_path("sample_predictions", 0), size=10))
    assert (plot.filename, plot.title) == ("sample_predictions (step 0).png", "sample_predictions (step 0)")
    nested = plot_of(ImageArtifact(path=step_path("eval~roc", 4), size=10))
    assert (nested.filename, nested.title) == ("eval_roc (step 4).png", "eval/roc (step 4)")
    plain = plot_of(ImageArtifact(path="plots/roc_curve.png", size=10))
    assert (plain.filename, plain.title) == ("roc_curve.png", "plots/roc_curve.png")


def images(*paths: str, size: int = 10) -> list[ImageArtifact]:
    return [ImageArtifact(path=p, size=size) for p in paths]


def test_the_latest_step_of_each_key_comes_first_and_compressed_copies_are_skipped() -> None:
    steps = [step_path("samples", s, ts=1000 + s) for s in range(5)]
    copies = [step_path("samples", s, ts=1000 + s, compressed=True) for s in range(5)]
    other = [step_path("attention", s, ts=2000 + s) for s in range(2)]
    lonely_copy = step_path("only_copy", 9, compressed=True)  # its full image is not there: shown
    listing = ArtifactImages(
        images=images(
            "confusion_matrix.png", *sorted(steps + copies + other + [lonely_copy]), "plots/roc.png"
        )
    )
    plan = plan_plots(listing, max_images=5, max_bytes=5 * MB)
    assert [p.title for p in plan.upload] == [
        "confusion_matrix.png",
        "attention (step 1)",
        "only_copy (step 9)",
        "samples (step 4)",
        "plots/roc.png",
    ]
    assert [p.title for p in plan.not_shown] == [
        "samples (step 3)",
        "samples (step 2)",
        "samples (step 1)",
        "attention (step 0)",
        "samples (step 0)",
    ]
    assert not any(
        p.step and p.step.compressed and p.step.key == "samples" for p in plan.upload + plan.not_shown
    )
    assert build_plots_comment(plan, 5 * MB) == (
        ":frame_with_picture: Plots logged with the run (5)."
        " Not shown (5 more): `samples` (4 steps, 3 to 0), `attention (step 0)`."
    )


def test_deep_big_svg_and_unsearched_images_are_named_with_why() -> None:
    listing = ArtifactImages(
        images=[
            *images("roc.png", "diagram.svg", "a/b/c/deep.png", "a/b/c/d/deeper.png"),
            ImageArtifact(path="huge.png", size=6 * MB),
        ],
        unlisted=["z/y/x"],
    )
    plan = plan_plots(listing, max_images=6, max_bytes=5 * MB)
    assert [p.artifact.path for p in plan.upload] == ["diagram.svg", "roc.png"]
    assert [p.artifact.path for p in plan.too_big] == ["huge.png"]
    assert [p.artifact.path for p in plan.too_deep] == ["a/b/c/deep.png", "a/b/c/d/deeper.png"]
    assert build_plots_comment(plan, 5 * MB) == (
        ":frame_with_picture: Plots logged with the run (2)."
        " SVG, posted as a file (Slack shows no preview of SVG): `diagram.svg`."
        " Skipped (over 5 MB): `huge.png`."
        " Not shown (more than 2 folders deep): `a/b/c/deep.png`, `a/b/c/d/deeper.png`."
        " Folders not searched for plots (only 40 are listed per run): `z/y/x/`."
    )


def test_an_image_found_too_big_on_download_moves_to_skipped() -> None:
    plan = plan_plots(ArtifactImages(images=[ImageArtifact(path="p.png", size=-1)]), 6, MB)
    after = plan.without(plan.upload[0])
    assert after.upload == [] and [p.artifact.path for p in after.too_big] == ["p.png"]
    assert build_plots_comment(after, MB) == (
        ":frame_with_picture: Plots logged with the run (0). Skipped (over 1 MB): `p.png`."
    )


def test_plots_comment_escapes_and_stays_within_limits() -> None:
    hostile = plot_of(ImageArtifact(path="<!channel>.png", size=9 * MB))
    many = [plot_of(ImageArtifact(path=f"plot{i}.png", size=1)) for i in range(12)]
    comment = build_plots_comment(PlotPlan(upload=many[:1], too_big=[hostile], not_shown=many), 5 * MB)
    assert comment == (
        ":frame_with_picture: Plots logged with the run (1). Skipped (over 5 MB): `&lt;!channel&gt;.png`."
        " Not shown (12 more): " + ", ".join(f"`plot{i}.png`" for i in range(10)) + " and 2 more."
    )
    huge = [plot_of(ImageArtifact(path="p" * 900 + str(i), size=1)) for i in range(10)]
    assert (
        len(build_plots_comment(PlotPlan(upload=[], too_big=huge, too_deep=huge, not_shown=huge), MB)) <= 3000
    )
