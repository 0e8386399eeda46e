"""Unit tests for bot.charts: metric pairing, downsampling, PNG rendering, thread safety."""

from __future__ import annotations

import io
import logging
import math
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from bot import charts
from bot.charts import (
    DPI,
    FIGURE_WIDTH_IN,
    PANEL_HEIGHT_IN,
    TITLE_HEIGHT_IN,
    MetricChart,
    downsample,
    pair_metrics,
    render_metric_history,
)
from bot.models import MetricSeries

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _series(key: str, count: int = 20, offset: float = 0.0) -> MetricSeries:
    steps = list(range(count))
    return MetricSeries(key=key, steps=steps, values=[math.exp(-s / 5) + offset for s in steps])


def _image_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size


# --- pair_metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["val_loss", "loss"], [("loss", "val_loss")]),
        (
            ["validation_acc", "test_acc", "valid_acc", "val_acc", "train_acc"],
            [("train_acc", "val_acc", "valid_acc", "validation_acc", "test_acc")],
        ),
        (["f1_val", "f1_test", "f1_train"], [("f1_train", "f1_val", "f1_test")]),
        (["auc", "val_auc"], [("auc", "val_auc")]),
        (["train_loss", "loss", "val_loss"], [("train_loss", "loss", "val_loss")]),
        (["lr", "epoch_time"], [("epoch_time",), ("lr",)]),
        (["train_loss"], [("train_loss",)]),
        (["val_loss"], [("val_loss",)]),
        (["val_loss", "val_loss", "loss"], [("loss", "val_loss")]),
        (["train/loss", "val/loss"], [("train/loss", "val/loss")]),
        (["train_"], [("train_",)]),
        ([], []),
        (
            ["zeta", "val_acc", "loss", "train_acc", "val_loss", "alpha"],
            # Pairs first, then single keys; each by group name: "acc" < "loss", "alpha" < "zeta".
            [("train_acc", "val_acc"), ("loss", "val_loss"), ("alpha",), ("zeta",)],
        ),
    ],
)
def test_pair_metrics(keys: list[str], expected: list[tuple[str, ...]]) -> None:
    assert pair_metrics(keys) == expected


def test_pair_metrics_is_deterministic_for_any_input_order() -> None:
    keys = ["val_loss", "loss", "train_acc", "val_acc", "lr", "f1_test", "f1_train"]
    assert pair_metrics(keys) == pair_metrics(reversed(keys)) == pair_metrics(sorted(keys))


# --- downsample --------------------------------------------------------------------------------------


def test_downsample_short_series_unchanged() -> None:
    series = _series("loss", 50)
    assert downsample(series, max_points=50) == series


@pytest.mark.parametrize(
    ("count", "max_points"), [(1001, 1000), (10_000, 1000), (5000, 7), (100, 2), (100, 3)]
)
def test_downsample_bounds_and_endpoints(count: int, max_points: int) -> None:
    series = MetricSeries(
        key="m", steps=list(range(0, count * 2, 2)), values=[float(i % 97) for i in range(count)]
    )
    result = downsample(series, max_points=max_points)
    assert len(result.steps) == len(result.values)
    assert 2 <= len(result.steps) <= max_points
    assert result.steps[0] == 0 and result.steps[-1] == (count - 1) * 2
    assert result.values[0] == series.values[0] and result.values[-1] == series.values[-1]
    assert result.steps == sorted(result.steps)
    assert result.key == "m"
    # Every kept point is a real point of the original series.
    original = dict(zip(series.steps, series.values, strict=True))
    assert all(original[s] == v for s, v in zip(result.steps, result.values, strict=True))


def test_downsample_keeps_a_single_spike() -> None:
    values = [1.0] * 10_000
    values[4321] = 50.0
    series = MetricSeries(key="loss", steps=list(range(10_000)), values=values)
    result = downsample(series, max_points=100)
    assert 50.0 in result.values
    assert result.steps[result.values.index(50.0)] == 4321


def test_downsample_rejects_fewer_than_two_points() -> None:
    with pytest.raises(ValueError):
        downsample(_series("loss"), max_points=1)


# --- render_metric_history ---------------------------------------------------------------------------


def test_render_produces_png_of_expected_size() -> None:
    chart = render_metric_history([_series("loss"), _series("val_loss", offset=0.1), _series("lr")])
    assert chart.png is not None
    assert chart.png.startswith(PNG_MAGIC)
    assert chart.panels == [("loss", "val_loss"), ("lr",)]
    assert chart.omitted == []
    assert _image_size(chart.png) == (FIGURE_WIDTH_IN * DPI, PANEL_HEIGHT_IN * DPI)


def test_render_grid_rows_and_title_height() -> None:
    keys = [f"metric_{i}" for i in range(7)]
    chart = render_metric_history([_series(k) for k in keys], title="run abc")
    assert chart.png is not None
    assert len(chart.panels) == 7
    # 7 panels in 3 columns is 3 rows, plus room for the title.
    assert _image_size(chart.png) == (
        FIGURE_WIDTH_IN * DPI,
        round((3 * PANEL_HEIGHT_IN + TITLE_HEIGHT_IN) * DPI),
    )


def test_render_image_is_not_blank() -> None:
    chart = render_metric_history([_series("loss")])
    assert chart.png is not None
    with Image.open(io.BytesIO(chart.png)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 10


def test_render_caps_panels_and_lists_omitted_keys() -> None:
    series = [_series(f"m{i:02d}") for i in range(14)] + [_series("zz_loss"), _series("val_zz_loss")]
    chart = render_metric_history(series, max_panels=12)
    assert chart.png is not None
    # A train/validation pair comes before single metrics, however late its name sorts.
    assert chart.panels == [("zz_loss", "val_zz_loss"), *[(f"m{i:02d}",) for i in range(11)]]
    assert chart.omitted == ["m11", "m12", "m13"]


def test_render_skips_single_step_metrics_without_listing_them() -> None:
    single = MetricSeries(key="final_score", steps=[10], values=[0.9])
    chart = render_metric_history([single, _series("loss")], max_panels=1)
    assert chart.panels == [("loss",)]
    assert chart.omitted == []


def test_render_nothing_to_chart() -> None:
    single = MetricSeries(key="final_score", steps=[0], values=[0.9])
    empty = MetricSeries(key="empty", steps=[], values=[])
    assert render_metric_history([single, empty]) == MetricChart(png=None, panels=[], omitted=[])
    assert render_metric_history([]) == MetricChart(png=None, panels=[], omitted=[])


def test_render_drops_non_finite_values() -> None:
    values = [1.0, math.nan, 0.5, math.inf, 0.25, -math.inf, 0.1]
    series = MetricSeries(key="loss", steps=list(range(len(values))), values=values)
    chart = render_metric_history([series])
    assert chart.png is not None and chart.png.startswith(PNG_MAGIC)
    assert chart.panels == [("loss",)]


def test_render_metric_with_one_finite_value_is_not_charted() -> None:
    series = MetricSeries(key="diverged", steps=[0, 1, 2], values=[1.0, math.nan, math.inf])
    chart = render_metric_history([series, _series("loss")])
    assert chart.panels == [("loss",)]
    assert chart.omitted == []


def test_render_handles_awkward_names_and_huge_series() -> None:
    series = [
        MetricSeries(key="cost_$x$", steps=list(range(5000)), values=[float(i % 13) for i in range(5000)]),
        _series("_private"),
        _series("val__private"),
    ]
    chart = render_metric_history(series, title="price in $ and $$")
    assert chart.png is not None and chart.png.startswith(PNG_MAGIC)


def test_render_failure_is_logged_and_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise RuntimeError("agg exploded")

    monkeypatch.setattr(charts, "_render_png", broken)
    with caplog.at_level(logging.ERROR, logger="bot.charts"):
        chart = render_metric_history([_series("loss")])
    assert chart.png is None
    records = [r for r in caplog.records if r.name == "bot.charts"]
    assert len(records) == 1
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError


def test_render_concurrently_from_threads() -> None:
    def render(index: int) -> MetricChart:
        keys = [f"metric_{index}_{j}" for j in range(index % 4 + 1)]
        return render_metric_history([_series(k, count=200 + index) for k in keys], title=f"run {index}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(render, range(8)))
    for index, chart in enumerate(results):
        assert chart.png is not None and chart.png.startswith(PNG_MAGIC)
        assert len(chart.panels) == index % 4 + 1
        width, height = _image_size(chart.png)
        assert width == FIGURE_WIDTH_IN * DPI and height > 0
    # Shared state trampled between threads would show up as different pixels.
    assert [chart.png for chart in results] == [render(index).png for index in range(8)]


def test_charts_never_import_pyplot() -> None:
    script = textwrap.dedent(
        """
        import sys
        import bot.charts
        from bot.models import MetricSeries
        chart = bot.charts.render_metric_history(
            [MetricSeries(key="loss", steps=[0, 1, 2], values=[3.0, 2.0, 1.0])]
        )
        assert chart.png is not None
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- comparisons ------------------------------------------------------------------------------------


def _image(png: bytes) -> Image.Image:
    assert png.startswith(PNG_MAGIC)
    return Image.open(io.BytesIO(png))


def _runs(count: int, keys: int, steps: int) -> list[charts.ComparedSeries]:
    return [
        charts.ComparedSeries(
            f"{chr(65 + r)}: run-{r}",
            [
                MetricSeries(
                    key=f"metric_{k:02d}",
                    steps=list(range(steps)),
                    values=[math.sin(s / 50 + r + k) for s in range(steps)],
                )
                for k in range(keys)
            ],
        )
        for r in range(count)
    ]


def test_overlay_has_a_panel_per_metric_and_caps_them() -> None:
    chart = charts.render_overlay(_runs(10, 20, 10_000), "histories", max_panels=12)
    assert chart.png is not None and _image(chart.png).width == FIGURE_WIDTH_IN * DPI
    assert chart.panels == [(f"metric_{k:02d}",) for k in range(12)]
    assert chart.omitted == [f"metric_{k:02d}" for k in range(12, 20)]


def test_overlay_skips_metrics_no_run_logged_over_several_steps() -> None:
    single = charts.ComparedSeries("A", [MetricSeries(key="auc", steps=[0], values=[0.9])])
    assert charts.render_overlay([single, single]) == MetricChart(png=None)
    assert charts.render_overlay([]) == MetricChart(png=None)


def test_overlay_draws_a_run_that_logged_the_metric_once_as_a_level() -> None:
    curve = charts.ComparedSeries(
        "candidate",
        [MetricSeries(key="auc", steps=list(range(50)), values=[0.8 + i / 500 for i in range(50)])],
    )
    final_only = charts.ComparedSeries("baseline", [MetricSeries(key="auc", steps=[0], values=[0.87])])
    nothing = charts.ComparedSeries("baseline", [])
    with_level = charts.render_overlay([curve, final_only], dashed_last=True)
    without = charts.render_overlay([curve, nothing], dashed_last=True)
    assert with_level.png is not None and without.png is not None
    assert with_level.panels == without.panels == [("auc",)]
    baseline_colour = charts._run_colour(1)
    assert _pixels_of(with_level.png, baseline_colour) > _pixels_of(without.png, baseline_colour) + 100


def _pixels_of(png: bytes, colour: str) -> int:
    """How many pixels are (nearly) this colour."""
    from matplotlib.colors import to_rgb

    target = [round(c * 255) for c in to_rgb(colour)]
    image = _image(png).convert("RGB")
    return sum(
        1 for pixel in image.getdata() if all(abs(p - t) <= 30 for p, t in zip(pixel, target, strict=True))
    )


def test_final_bars_one_panel_per_metric_with_some_value() -> None:
    chart = charts.render_final_bars(
        ["A", "B", "C"],
        [("auc", [0.9, 0.95, None]), ("gone", [None, math.nan, None]), ("loss", [0.3, 0.2, 0.25])],
    )
    assert chart.png is not None and _image(chart.png).height > 0
    assert chart.panels == [("auc",), ("loss",)]
    assert charts.render_final_bars(["A"], []) == MetricChart(png=None)


def test_table_png_grows_with_its_rows() -> None:
    small = charts.render_table(["", "A", "B"], [["auc", "0.9", "0.95"]])
    big = charts.render_table(["", "A", "B"], [[f"m{i}", "0.9", "0.95"] for i in range(100)], "title")
    assert small is not None and big is not None
    assert _image(big).height > _image(small).height * 10


def test_comparison_chart_failures_are_logged_and_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> bytes:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(charts, "_render_overlay_png", broken)
    monkeypatch.setattr(charts, "_render_bars_png", broken)
    with caplog.at_level(logging.ERROR, logger="bot.charts"):
        assert charts.render_overlay(_runs(2, 1, 10)).png is None
        assert charts.render_final_bars(["A"], [("auc", [1.0])]).png is None
    assert [r.getMessage() for r in caplog.records] == [
        "comparison chart failed to render; leaving it out",
        "final-metrics chart failed to render; leaving it out",
    ]
