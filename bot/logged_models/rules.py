"""The rules of a LoggedModel's metrics: grouped by the dataset they were computed on, and compared with
a baseline model only on the same data (the same dataset digest). Pure: no MLflow, no Slack.

MLflow 3 logs a model's metrics with the dataset's name and digest. Two models' values of `accuracy`
say which is better only when they were measured on the same rows; a dataset of the same name with
another digest is other data (a newer split, a resample), so it is listed as differing, never compared.
Metrics logged without a dataset are not compared either: nothing says what they were measured on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.compare.rules import MetricDelta, Verdict, metric_deltas
from bot.models import Direction, LoggedModelInfo, ModelMetric


@dataclass(frozen=True)
class DatasetMetrics:
    """A model's metrics on one dataset ("" name and digest: logged without one), each key's value at
    its latest step."""

    name: str
    digest: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def has_dataset(self) -> bool:
        return bool(self.name or self.digest)


@dataclass(frozen=True)
class ComparedMetric:
    """One metric on one dataset both models were measured on: `change` holds this model's value
    (`candidate`), the baseline's, the delta and the verdict (never judged for an UNKNOWN direction)."""

    dataset_name: str
    dataset_digest: str
    change: MetricDelta

    @property
    def key(self) -> str:
        return self.change.key

    @property
    def verdict(self) -> Verdict:
        return self.change.verdict


@dataclass(frozen=True)
class SharedDataset:
    """A dataset (by digest) both models have metrics on."""

    name: str
    digest: str
    rows: list[ComparedMetric]
    only_model: list[str]  # metric keys only this model has on it
    only_baseline: list[str]


@dataclass(frozen=True)
class DifferingDataset:
    """A dataset name both models used, with other data behind it (digests differ): not compared."""

    name: str
    digest: str  # this model's
    baseline_digest: str


@dataclass(frozen=True)
class ModelComparison:
    shared: list[SharedDataset]
    differing: list[DifferingDataset]
    only_model: list[DatasetMetrics]  # datasets (by digest) only this model has metrics on
    only_baseline: list[DatasetMetrics]
    # Keys of metrics logged without a dataset (no digest), which are never compared.
    undated_model: list[str] = field(default_factory=list)
    undated_baseline: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[ComparedMetric]:
        return [row for dataset in self.shared for row in dataset.rows]


def metrics_by_dataset(metrics: Iterable[ModelMetric]) -> list[DatasetMetrics]:
    """A model's metrics grouped by dataset: those logged without one first, then by dataset name and
    digest; within a group each key's value at its highest step (of equal steps, the later one given),
    keys in name order."""
    latest: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for metric in metrics:
        group = latest.setdefault((metric.dataset_name, metric.dataset_digest), {})
        seen = group.get(metric.key)
        if seen is None or metric.step >= seen[0]:
            group[metric.key] = (metric.step, metric.value)
    order = sorted(latest, key=lambda k: (bool(k[0] or k[1]), k[0], k[1]))
    return [
        DatasetMetrics(
            name=name,
            digest=digest,
            metrics={k: latest[(name, digest)][k][1] for k in sorted(latest[(name, digest)])},
        )
        for name, digest in order
    ]


def compare_by_dataset(
    model: LoggedModelInfo, baseline: LoggedModelInfo, directions: Mapping[str, Direction] | None = None
) -> ModelComparison:
    """`model` against `baseline`, metric by metric, only on datasets with the same digest; a dataset
    name both have with different digests is listed as differing; the rest as one side's only."""
    mine = metrics_by_dataset(model.metrics)
    theirs = metrics_by_dataset(baseline.metrics)
    my_data = _by_digest(mine)
    their_data = _by_digest(theirs)
    shared = []
    for digest, dataset in my_data.items():
        other = their_data.get(digest)
        if other is None:
            continue
        deltas = metric_deltas(dataset.metrics, other.metrics, directions)
        shared.append(
            SharedDataset(
                name=dataset.name,
                digest=digest,
                rows=[ComparedMetric(dataset.name, digest, delta) for delta in deltas],
                only_model=sorted(set(dataset.metrics) - set(other.metrics)),
                only_baseline=sorted(set(other.metrics) - set(dataset.metrics)),
            )
        )
    my_rest = [d for digest, d in my_data.items() if digest not in their_data]
    their_rest = [d for digest, d in their_data.items() if digest not in my_data]
    their_names = {d.name: d for d in their_rest if d.name}
    differing = [
        DifferingDataset(name=d.name, digest=d.digest, baseline_digest=their_names[d.name].digest)
        for d in my_rest
        if d.name in their_names
    ]
    named = {d.name for d in differing}
    return ModelComparison(
        shared=shared,
        differing=differing,
        only_model=[d for d in my_rest if d.name not in named],
        only_baseline=[d for d in their_rest if d.name not in named],
        undated_model=_undated(mine),
        undated_baseline=_undated(theirs),
    )


def _by_digest(groups: list[DatasetMetrics]) -> dict[str, DatasetMetrics]:
    """The datasets with a digest (MLflow always logs a dataset's name with its digest), in the given
    order; a digest logged under two names is one dataset (the same data): metrics merged, first name kept."""
    found: dict[str, DatasetMetrics] = {}
    for group in groups:
        if not group.digest:
            continue
        first = found.get(group.digest)
        if first is None:
            found[group.digest] = group
        else:
            merged = {**group.metrics, **first.metrics}
            found[group.digest] = DatasetMetrics(first.name, first.digest, dict(sorted(merged.items())))
    return found


def _undated(groups: list[DatasetMetrics]) -> list[str]:
    return sorted({key for group in groups if not group.digest for key in group.metrics})
