"""Records the Keras autolog fixture (keras_autolog_run.json) in a scratch venv outside the repo.

TensorFlow is too heavy for the test extras, so a real `mlflow.keras.autolog()` run is made once with
Keras 3 on the torch backend, on a file: tracking store, and its metric histories and params are exported;
tests/autolog_runs.py replays them into the test server. Run it as (see README.md beside it):

    python -m venv /tmp/kerasenv
    /tmp/kerasenv/bin/pip install keras mlflow-skinny==3.17.2 torch==2.13.0 pandas
    cd tests/data && /tmp/kerasenv/bin/python record_keras_autolog.py keras_autolog_run.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from importlib.metadata import version

os.environ.setdefault("KERAS_BACKEND", "torch")
# mlflow-skinny has no SQL store; MLflow 3.17 refuses its file store unless told it is wanted.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

EPOCHS = 5


def main(out: str) -> None:
    store = tempfile.mkdtemp(prefix="keras-autolog-")
    uri = f"file://{store}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("keras-autolog")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype("float32")
    model = keras.Sequential(
        [
            keras.Input(shape=(8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy", "auc"]
    )
    mlflow.keras.autolog(log_models=False)
    with mlflow.start_run(run_name="keras-dense") as run:
        model.fit(
            x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=EPOCHS, batch_size=64, verbose=0
        )
    client = MlflowClient(uri)
    data = client.get_run(run.info.run_id).data
    histories = {
        key: [[m.step, m.timestamp, m.value] for m in client.get_metric_history(run.info.run_id, key)]
        for key in sorted(data.metrics)
    }
    first = min(point[1] for points in histories.values() for point in points)
    fixture = {
        "produced_by": "tests/data/record_keras_autolog.py: mlflow.keras.autolog(log_models=False), "
        f"model.fit(..., validation_data=..., epochs={EPOCHS}) on a file: tracking store",
        "versions": {name: version(name) for name in ("keras", "mlflow-skinny", "torch", "numpy")},
        "keras_backend": keras.backend.backend(),
        "run_name": run.info.run_name,
        "params": dict(sorted(data.params.items())),
        "tags": {k: v for k, v in sorted(data.tags.items()) if not k.startswith("mlflow.")},
        # [step, milliseconds since the run's first metric, value]
        "metrics": {
            key: [[step, timestamp - first, value] for step, timestamp, value in points]
            for key, points in histories.items()
        },
    }
    with open(out, "w") as handle:
        json.dump(fixture, handle, indent=1)
        handle.write("\n")
    for key, points in histories.items():
        print(key, [(s, round(v, 4)) for s, _, v in points])


if __name__ == "__main__":
    main(sys.argv[1])
