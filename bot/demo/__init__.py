"""`make demo`: a local MLflow store with scikit-learn runs (store.py), the notes on them (notes.py),
and a preview of their review without Slack (preview.py).

The training set-up is shared by the runs and the notes that describe them.
"""

RANDOM_SEED = 39
VALIDATION_FRACTION = 0.25
GBM_ESTIMATORS = 150
