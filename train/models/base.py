"""The contract every model kind follows, and the column-wise articles it reads.

A kind is a class with `kind` (its name in configs and model folders) and `config_class` (its pydantic config), built
as `Kind(config, tasks)`, that follows scikit-learn's estimator contract in our terms:

- `fit(articles, labels, context) -> self`: learn from the training articles; `labels[task]` holds class indices in
  schema order, -1 where the article has no label for that task;
- `predict_proba(articles) -> {task: (n, labels) array}`, in schema label order, rows summing to 1;
- `save(folder)` writes only safe formats (JSON, NumPy without pickle, safetensors, skops);
- `load(folder, config, tasks)` (a classmethod) reads what `save` wrote.

`train.models.registry` maps kind names to these classes; `tests/models/test_contract.py` checks every registered kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from train.schema import Schema, Task

Trial = Callable[[str, dict[str, Any], float], None]
MetricLogger = Callable[[dict[str, float], int], None]


@dataclass
class Articles:
    """Articles column-wise, as models read them: cleaned titles and texts, and the tasks' target fields.

    `groups` is each article's duplicate cluster (articles of one cluster stay together in cross-validation; None:
    every article its own); `weights` each article's sample weight (None: 1 for all); `task_weights` a task's own
    weights where they differ from the article's (pseudo-labels of self-training); `auxiliary` marks the articles of
    auxiliary sources (training data whose labels are mapped or silver: choices are never scored on them; None: none).
    """

    titles: list[str]
    texts: list[str]
    targets: dict[str, list[str]] = field(default_factory=dict)
    groups: np.ndarray | None = None
    weights: np.ndarray | None = None
    task_weights: dict[str, np.ndarray] = field(default_factory=dict)
    auxiliary: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.texts)
        if len(self.titles) != n or any(len(values) != n for values in self.targets.values()):
            raise ValueError(f"Articles: titles ({len(self.titles)}), texts ({n}) and every target field must have "
                             "one entry per article")
        for name in ("groups", "weights", "auxiliary"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value))
                if len(getattr(self, name)) != n:
                    raise ValueError(f"Articles: {name} has {len(value)} entries for {n} articles")

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_split(cls, split, target_fields: Sequence[str] = (), auxiliary_weight: float | None = None) -> Articles:
        """A built dataset's split (`datasets.Dataset` with title, text, cluster, weight and target columns).

        `auxiliary_weight` replaces the weight of the articles of auxiliary sources.
        """
        names = split.column_names
        weights = np.asarray(split["weight"], dtype=float) if "weight" in names else None
        if auxiliary_weight is not None and "auxiliary" in names:
            weights = np.where(np.asarray(split["auxiliary"], dtype=bool), auxiliary_weight,
                               np.ones(len(split)) if weights is None else weights)
        return cls(titles=list(split["title"]), texts=list(split["text"]),
                   targets={name: list(split[name]) for name in target_fields},
                   groups=np.asarray(split["cluster"]) if "cluster" in names else None, weights=weights,
                   auxiliary=np.asarray(split["auxiliary"], dtype=bool) if "auxiliary" in names else None)

    def select(self, rows: Sequence[int] | np.ndarray) -> Articles:
        """The articles at `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return Articles(titles=[self.titles[i] for i in rows], texts=[self.texts[i] for i in rows],
                        targets={name: [values[i] for i in rows] for name, values in self.targets.items()},
                        groups=None if self.groups is None else self.groups[rows],
                        weights=None if self.weights is None else self.weights[rows],
                        task_weights={task: w[rows] for task, w in self.task_weights.items()},
                        auxiliary=None if self.auxiliary is None else self.auxiliary[rows])

    def weight_array(self) -> np.ndarray:
        """Each article's sample weight (1 when none were given)."""
        return np.ones(len(self)) if self.weights is None else self.weights.astype(float)

    def weights_for(self, task: str) -> np.ndarray:
        """The sample weights of a task's labels: its own when set, else the articles'."""
        return self.task_weights[task] if task in self.task_weights else self.weight_array()

    def group_array(self) -> np.ndarray:
        """Each article's group for grouped cross-validation (its own index when none were given)."""
        return np.arange(len(self)) if self.groups is None else self.groups


def split_labels(split, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
    """The class index of every article of a built dataset's split, per task (-1: no label)."""
    return {task.name: np.asarray(split[task.name], dtype=np.int64) for task in tasks}


@dataclass
class Labelled:
    """Articles with their labels (validation data for early stopping, threshold tuning, search)."""

    articles: Articles
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.articles)


@dataclass
class FitContext:
    """What fitting may use beyond the training data.

    `validation`: held-out labelled articles (None or empty: there are none). `work_dir`: where a kind may keep
    checkpoints; `resume` continues from them. `log_metrics(metrics, step)` and `on_trial(task, params, score)`
    report progress (MLflow in `taawun train`); both may be None. `schema`: the dataset's schema with its gazetteers
    (the labelling rules that `rules_weight` turns into features read it).
    """

    seed: int = 13
    schema: Schema | None = None
    validation: Labelled | None = None
    work_dir: Path | None = None
    resume: bool = False
    log_metrics: MetricLogger | None = None
    on_trial: Trial | None = None

    @property
    def has_validation(self) -> bool:
        """Whether there are validation articles."""
        return self.validation is not None and len(self.validation) > 0


class ModelKind(ABC):
    """A model kind: probabilities over each task's labels, in schema order, for articles."""

    kind: ClassVar[str]
    config_class: ClassVar[type[BaseModel]]
    # PyPI packages the kind needs beyond taawun's core (scikit-learn, numpy, ...): pinned in the logged MLflow model.
    requirements: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BaseModel, tasks: list[Task]):
        self.config = config
        self.tasks = tasks

    @property
    def target_fields(self) -> list[str]:
        """The per-example target columns the tasks read (stance toward a claim)."""
        return list(dict.fromkeys(task.target_field for task in self.tasks if task.target_field))

    @abstractmethod
    def fit(self, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> ModelKind:
        """Learn from the training articles; returns self."""

    @abstractmethod
    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """{task: (articles, labels) probabilities} in schema label order."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the model's files into `folder` (which exists), in safe formats only."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, config: BaseModel, tasks: list[Task]) -> ModelKind:
        """Read what `save` wrote."""
