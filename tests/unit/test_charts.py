"""Unit tests for bot.charts: metric pairing, downsampling, PNG rendering, thread safety."""

from __future__ import annotations

import io
import logging
import math
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from matplotlib import font_manager
from PIL import Image

from bot import charts, envelope
from bot.charts import (
    DPI,
    FIGURE_WIDTH_IN,
    PANEL_HEIGHT_IN,
    TITLE_HEIGHT_IN,
    MetricChart,
    pair_metrics,
    render_metric_history,
)
from bot.models import MetricSeries

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MLFLOW_INF = sys.float_info.max  # how MLflow's SQL stores give back +inf
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


def test_render_handles_awkward_names_and_huge_series() -> None:
    series = [
        MetricSeries(key="cost_$x$", steps=list(range(5000)), values=[float(i % 13) for i in range(5000)]),
        _series("_private"),
        _series("val__private"),
    ]
    chart = render_metric_history(series, title="price in $ and $$")
    assert chart.png is not None and chart.png.startswith(PNG_MAGIC)


def _line_rows(png: bytes, colour: str) -> set[int]:
    """The pixel rows in which this (line) colour appears."""
    from matplotlib.colors import to_rgb

    target = tuple(round(c * 255) for c in to_rgb(colour))
    image = _image(png).convert("RGB")
    width = image.width
    return {
        index // width
        for index, pixel in enumerate(image.getdata())
        if all(abs(p - t) <= 20 for p, t in zip(pixel, target, strict=True))
    }


def test_a_one_step_spike_in_100000_steps_is_drawn() -> None:
    values = [2.0] * 100_000
    flat = MetricSeries(key="loss", steps=list(range(100_000)), values=values)
    values = list(values)
    values[61_234] = 25.0
    spiky = MetricSeries(key="loss", steps=list(range(100_000)), values=values)
    spike_chart, flat_chart = render_metric_history([spiky]), render_metric_history([flat])
    assert spike_chart.png is not None and flat_chart.png is not None
    colour = charts.LINE_COLOURS[0]
    # The spike is a vertical line most of the panel high; the flat line alone is a few rows thick.
    spike_rows, flat_rows = _line_rows(spike_chart.png, colour), _line_rows(flat_chart.png, colour)
    assert max(spike_rows) - min(spike_rows) > 150
    assert max(flat_rows) - min(flat_rows) < 5


def test_panels_reduce_to_their_pixel_width() -> None:
    env = envelope.build("loss", [(s, s, math.sin(s / 50)) for s in range(100_000)], charts.HISTORY_WIDTH_PX)
    assert charts.panel_width_px(charts.MAX_COLUMNS) == charts.HISTORY_WIDTH_PX
    assert len(env.x) <= 4 * charts.HISTORY_WIDTH_PX
    assert charts.panel_width_px(1) > charts.panel_width_px(2) > charts.panel_width_px(3) > 250


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 0.5, MLFLOW_INF, -MLFLOW_INF, 0.25],  # MLflow's stored ±inf: "arange: cannot compute length"
        [1.0, math.nan, 0.5, math.inf, 0.25, -math.inf, 0.1],
        [0.5, 0.4, MLFLOW_INF],  # only +inf: the panel was blank
        [1e308, -1e308, 0.0],  # finite, but their range overflows
    ],
)
def test_non_finite_values_are_charted_and_named(values: list[float]) -> None:
    series = MetricSeries(key="grad_norm", steps=list(range(len(values))), values=values)
    chart = render_metric_history([series, _series("loss")])
    assert chart.png is not None and chart.png.startswith(PNG_MAGIC) and not chart.failed
    assert chart.panels == [("grad_norm",), ("loss",)]
    has_nonfinite = any(not math.isfinite(v) or abs(v) == MLFLOW_INF for v in values)
    assert chart.nonfinite == (["grad_norm"] if has_nonfinite else [])


def test_a_metric_with_no_finite_value_gets_a_panel_that_says_so() -> None:
    series = MetricSeries(key="diverged", steps=[0, 1, 2], values=[MLFLOW_INF, math.nan, MLFLOW_INF])
    chart = render_metric_history([series])
    assert chart.png is not None and chart.panels == [("diverged",)] and chart.nonfinite == ["diverged"]
    assert charts.NO_FINITE_VALUE.format(counts="1 × nan, 2 × inf")  # the text the panel shows


def test_where_non_finite_values_are_is_said_on_the_panels_axis() -> None:
    steps = envelope.build("loss", [(10, 0, 1.0), (20, 1, math.nan), (30, 2, math.nan)], 100)
    assert charts._where(steps, steps.nonfinite[0]) == "2 steps, step 20–30"
    order = envelope.build("val", [(0, 0, 1.0), (0, 1, math.inf)], 100)
    assert charts._where(order, order.nonfinite[0]) == "value #1"


def test_steps_that_never_advance_are_labelled_as_logging_order() -> None:
    keras = envelope.build("validation_loss", [(0, t, 1 / (t + 1)) for t in range(10)], 100)
    train = envelope.build("loss", [(t, t, 1 / (t + 2)) for t in range(10)], 100)
    assert charts._x_label([keras]) == charts.X_LABEL_LOGGING_ORDER.format(step=0)
    assert charts._x_label([train]) == charts.X_LABEL
    assert charts._x_label([train, keras]) == charts.X_LABEL_MIXED
    chart = render_metric_history([keras, train])
    assert chart.png is not None and chart.panels == [("loss", "validation_loss")]


def test_render_puts_the_named_metrics_first() -> None:
    series = [_series("alpha"), _series("zeta"), _series("beta")]
    assert render_metric_history(series, first=["zeta"]).panels == [("zeta",), ("alpha",), ("beta",)]
    assert charts.charted_keys(["alpha", "zeta", "beta"], ["zeta"], max_panels=2) == ["zeta", "alpha"]


def test_sampled_histories_are_listed() -> None:
    sampled = envelope.build("loss", [(s, s, 1.0 / (s + 1)) for s in range(10)], 100, sampled=True)
    chart = render_metric_history([sampled, _series("acc")])
    assert chart.sampled == ["loss"]


# --- fonts ------------------------------------------------------------------------------------------

NON_LATIN = "損失 精度 🔥🚀 学習率"


def _glyph_warnings(
    monkeypatch: pytest.MonkeyPatch, family: tuple[str, ...] | None
) -> tuple[bytes, list[str]]:
    if family is not None:
        monkeypatch.setattr(charts, "font_family", lambda: family)
    series = [_series(f"loss {NON_LATIN}"), _series(f"val_loss {NON_LATIN}")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart = render_metric_history(series, title="Metric history: 実験 🚀")
    assert chart.png is not None
    return chart.png, [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_the_font_chain_has_a_glyph_for_every_cjk_and_emoji_character() -> None:
    family = charts.font_family()
    assert family[:1] == ("DejaVu Sans",)
    assert {"Droid Sans Fallback", "Symbola"} <= set(family), "install fonts-droid-fallback and fonts-symbola"
    fonts = [
        font_manager.get_font(font_manager.findfont(font_manager.FontProperties(family=f))) for f in family
    ]
    for char in NON_LATIN.replace(" ", ""):
        assert any(font.get_char_index(ord(char)) for font in fonts), f"no font has {char!r}"
    # DejaVu Sans alone has none of them: the chain is what draws them.
    assert not any(fonts[0].get_char_index(ord(char)) for char in NON_LATIN.replace(" ", ""))


def test_cjk_and_emoji_names_render_without_missing_glyphs(monkeypatch: pytest.MonkeyPatch) -> None:
    chained, missing = _glyph_warnings(monkeypatch, None)
    assert missing == []
    tofu, missing_alone = _glyph_warnings(monkeypatch, ("DejaVu Sans",))
    assert missing_alone, "DejaVu Sans alone should miss these glyphs (else this test proves nothing)"
    assert chained != tofu  # boxes are other pixels than the glyphs


def test_emoji_presentation_selectors_are_dropped() -> None:
    assert charts._literal("🔥\ufe0f x$y$") == "🔥 x\\$y\\$"


def test_render_failure_is_logged_and_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise RuntimeError("agg exploded")

    monkeypatch.setattr(charts, "_render_png", broken)
    with caplog.at_level(logging.ERROR, logger="bot.charts"):
        chart = render_metric_history([_series("loss")])
    assert chart.png is None and chart.failed
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
        [
            ("auc", [0.9, 0.95, None]),
            ("gone", [None, None, None]),
            ("diverged", [math.nan, MLFLOW_INF, 0.5]),  # named "nan", "inf" where the bar would be
            ("loss", [0.3, 0.2, 0.25]),
        ],
    )
    assert chart.png is not None and _image(chart.png).height > 0
    assert chart.panels == [("auc",), ("diverged",), ("loss",)]
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


def test_a_line_identical_to_another_in_its_panel_is_dashed_and_named_as_the_same() -> None:
    """Keras' `val_accuracy` (one per epoch) and MLflow's `validation_accuracy` copy (logging order) are
    the same points: drawn plainly, the first would vanish under the second."""
    from matplotlib.figure import Figure

    val = envelope.build("val_accuracy", [(t, t, 0.5 + t / 10) for t in range(5)], 100)
    copy = envelope.build("validation_accuracy", [(0, t, 0.5 + t / 10) for t in range(5)], 100)
    other = envelope.build("accuracy", [(t, t, 0.4 + t / 10) for t in range(5)], 100)
    axes = Figure().add_subplot()
    lines = [("accuracy", other, "#000000", "-"), ("val_accuracy", val, "#111111", "-")]
    lines.append(("validation_accuracy", copy, "#222222", "-"))
    charts._draw_lines(axes, "accuracy", lines, 100, lowest=True, legend=True, levels=())
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels[0] == "accuracy" and labels[1] == "val_accuracy"
    assert labels[2].startswith("validation_accuracy") and labels[2].endswith(
        charts.SAME_VALUES.format(other="val_accuracy")
    )
    styles = [line.get_linestyle() for line in axes.get_lines()]
    assert styles[:2] == ["-", "-"] and styles[2] != "-"
