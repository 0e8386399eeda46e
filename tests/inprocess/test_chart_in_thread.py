"""The metric chart in a review's thread, in-process: what the thread says about histories is true."""

from __future__ import annotations

import math
import sys

import pytest

from bot import charts
from bot.reviews.thread import CHART_FAILED, CHART_NONFINITE, NO_HISTORY
from bot.services import Services
from tests import support
from tests.inprocess.fakes import FakeMlflow
from tests.inprocess.harness import Told, run_ref, thread_texts
from tests.scenarios.helpers import cards_for, uploads_in_thread
from tests.slack_api_server import SlackTestServer

MLFLOW_INF = sys.float_info.max  # how MLflow's SQL stores give back +inf


def _thread(
    services: Services, slack: SlackTestServer, told: Told, run_id: str
) -> tuple[list[str], list[str]]:
    services.publisher.publish(
        run_ref(run_id), requested_by=support.ANA, origin_channel=support.DEV_CHANNEL, notify=told
    )
    [card] = cards_for(slack, run_id)
    uploads = uploads_in_thread(slack, card["channel"], card["ts"])
    comments = [m.get("text", "") for m in slack.thread(card["channel"], card["ts"])]
    return [f.filename for f in uploads], [*thread_texts(slack, card), *comments]


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 0.5, MLFLOW_INF, -MLFLOW_INF, math.nan],  # diverged, as MLflow stores it
        [MLFLOW_INF, MLFLOW_INF, MLFLOW_INF],  # no finite value at all
    ],
)
def test_a_diverged_run_is_charted_not_called_single_step(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told, values: list[float]
) -> None:
    run_id = fake_mlflow.add_run("diverged", histories={"grad_norm": values, "loss": [1.0, 0.5, 0.2]})
    files, texts = _thread(services, slack, told, run_id)
    assert "metric-history.png" in files
    assert NO_HISTORY not in texts and not any("more than one step" in t for t in texts)
    assert any(CHART_NONFINITE.format(keys="`grad_norm`") in t for t in texts), texts


def test_a_chart_that_fails_to_render_is_not_called_missing(
    services: Services,
    fake_mlflow: FakeMlflow,
    slack: SlackTestServer,
    told: Told,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> bytes:
        raise RuntimeError("agg exploded")

    monkeypatch.setattr(charts, "_render_png", broken)
    run_id = fake_mlflow.add_run("broken", histories={"loss": [1.0, 0.5, 0.2]})
    files, texts = _thread(services, slack, told, run_id)
    assert "metric-history.png" not in files
    assert CHART_FAILED in texts and NO_HISTORY not in texts


def test_metrics_logged_once_have_no_history_chart(
    services: Services, fake_mlflow: FakeMlflow, slack: SlackTestServer, told: Told
) -> None:
    run_id = fake_mlflow.add_run("final scores only", metrics={"val_auc": 0.91, "val_loss": 0.3})
    files, texts = _thread(services, slack, told, run_id)
    assert "metric-history.png" not in files and NO_HISTORY in texts
