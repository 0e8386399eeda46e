"""The Markdown notes the demo's engineers wrote on each run (what `mlflow.note.content` holds)."""

from __future__ import annotations

from bot.demo import GBM_ESTIMATORS, RANDOM_SEED, VALIDATION_FRACTION


def baseline_note(metrics: dict[str, float]) -> str:
    return f"""## Summary

**Baseline** for the benign/malignant classifier: a standardised _logistic regression_, the model
currently serving as `@champion`. Validation AUC is **{metrics["val_auc"]:.4f}**.

- Features: all 30 columns of the Wisconsin data set, scaled with `StandardScaler`
  - no feature selection, no interaction terms
- Split: stratified {VALIDATION_FRACTION:.0%} validation hold-out, seed `{RANDOM_SEED}`
- Solver defaults, `max_iter=500` to converge; see the
  [LogisticRegression docs](https://scikit-learn.org/stable/modules/linear_model.html#logistic-regression)

```python
make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
```
"""


def forest_note(metrics: dict[str, float]) -> str:
    return f"""## Summary

Quick **random forest** check to see whether a _non-linear_ model buys anything over the
baseline. Validation AUC **{metrics["val_auc"]:.4f}**, recall {metrics["val_recall"]:.3f}.

- 100 trees, default depth, `random_state={RANDOM_SEED}`
  - not tuned: exploration only, not proposed for promotion
- See the [ensemble user guide](https://scikit-learn.org/stable/modules/ensemble.html#random-forests)

```python
RandomForestClassifier(n_estimators=100, random_state={RANDOM_SEED})
```
"""


def candidate_note(metrics: dict[str, float], baseline: dict[str, float], best_step: int) -> str:
    def row(label: str, values: dict[str, float]) -> str:
        cells = " | ".join(f"{values[key]:.4f}" for key in ("val_auc", "val_f1", "val_recall"))
        return f"| {label} | {cells} |"

    return f"""## Summary

**Gradient boosting candidate**, proposed as _challenger_ to the logistic-regression champion.
Validation AUC **{metrics["val_auc"]:.4f}** against {baseline["val_auc"]:.4f} for the baseline
({metrics["val_auc"] - baseline["val_auc"]:+.4f}).

- {GBM_ESTIMATORS} trees, `learning_rate=0.1`, `max_depth=3`
  - `val_loss` is lowest at tree {best_step}; no early stopping yet
- Same stratified split and seed as the baseline, so the numbers compare directly
- Background: [gradient boosting in scikit-learn](https://scikit-learn.org/stable/modules/ensemble.html#gradient-boosting)

| model | val AUC | val F1 | val recall |
|---|---|---|---|
{row("logreg-baseline", baseline)}
{row("gbm-candidate", metrics)}

```python
GradientBoostingClassifier(n_estimators={GBM_ESTIMATORS}, learning_rate=0.1, max_depth=3)
```

> Reviewer note: recall is what matters clinically here; please check the confusion matrix
> before approving, not only the AUC.
"""
