"""Sweeps: a parent run (a hyperparameter search) and its child runs, tagged `mlflow.parentRunId`.

rules.py picks the metric that decides the best child and ranks the children (pure), blocks.py says it on
the card and in the thread (pure), service.py reads the children from MLflow.
"""
