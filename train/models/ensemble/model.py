"""The ensemble kind: models of other kinds fit on the same articles, their probabilities averaged per task.

The weights are chosen without the test split: out-of-fold probabilities of each member on the training articles
(grouped cross-validation), then a grid over the weights per task for the best macro-F1. Members are built through
the registry, so this kind imports no other kind.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from train import progress
from train.errors import TaawunError
from train.evaluation.metrics import labelled_macro_f1
from train.models import registry
from train.models.base import Articles, FitContext, ModelKind
from train.models.ensemble.config import EnsembleConfig
from train.models.selection import grouped_folds, out_of_fold_proba, scored_labels
from train.schema import Task

ENSEMBLE_FILE = "ensemble.json"


class EnsembleModel(ModelKind):
    """Members of other kinds; probabilities are the weighted mean of theirs, per task."""

    kind = "ensemble"
    config_class = EnsembleConfig

    def __init__(self, config: EnsembleConfig, tasks: list[Task]):
        super().__init__(config, tasks)
        self.members = [registry.model_class(member.kind)(member, tasks) for member in config.members]
        self.weights: dict[str, np.ndarray] = {task: np.asarray(w, dtype=float) / sum(w)
                                               for task, w in (config.weights or {}).items()}

    @property
    def requirements(self) -> tuple[str, ...]:  # the members' packages
        return tuple(dict.fromkeys(r for member in self.members for r in member.requirements))

    def fit(self, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> EnsembleModel:
        """Choose each task's weights on out-of-fold probabilities (unless given), then fit every member on all."""
        if self.config.weights is None:
            self.weights = self._choose_weights(articles, labels, context)
        for index, member in enumerate(self.members):
            member.fit(articles, labels, _member_context(context, index))
        return self

    def _choose_weights(self, articles: Articles, labels: dict[str, np.ndarray],
                        context: FitContext) -> dict[str, np.ndarray]:
        """Each task's weights, said on the terminal and logged as `fit/<task>/weight/<i>-<member>` metrics."""
        splits = grouped_folds(articles, labels, self.tasks, self.config.folds, context.seed)
        oof = []
        for index, member_config in enumerate(self.config.members):
            kind = registry.model_class(member_config.kind)
            oof.append(out_of_fold_proba(lambda k=kind, c=member_config: k(c, self.tasks), articles, labels, splits,
                                         _member_context(context, index)))
        scored = scored_labels(articles, labels)
        names = [member_name(member) for member in self.config.members]
        chosen, logged = {}, {}
        for task in self.tasks:
            probas = [proba[task.name] for proba in oof]
            weights = chosen[task.name] = best_weights(probas, scored[task.name], self.config.step)
            mixed = sum(w * p for w, p in zip(weights, probas, strict=True))
            shown = ", ".join(f"{w:.2f} {name}" for w, name in zip(weights, names, strict=True))
            progress.step(f"{task.name}: ensemble weights {shown} (out-of-fold macro-F1 "
                          f"{labelled_macro_f1(scored[task.name], mixed):.3f})")
            logged.update({f"fit/{task.name}/weight/{index}-{name}": float(w)
                           for index, (name, w) in enumerate(zip(names, weights, strict=True), 1)})
        if context.log_metrics:
            context.log_metrics(logged, 0)
        return chosen

    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """The weighted mean of the members' probabilities, per task."""
        each = [member.predict_proba(articles) for member in self.members]
        return {task.name: sum(w * proba[task.name] for w, proba in zip(self.weights[task.name], each, strict=True))
                for task in self.tasks}

    @property
    def evidence_tasks(self) -> list[str]:
        """The tasks some member points at evidence sentences for."""
        return list(dict.fromkeys(t for member in self.members for t in getattr(member, "evidence_tasks", [])))

    def evidence(self, articles: Articles) -> dict[str, list[dict]]:
        """The evidence sentences of the members that give some (the first member's, for a task several give)."""
        found: dict[str, list[dict]] = {}
        for member in self.members:
            for task, rows in (getattr(member, "evidence", lambda _: {})(articles)).items():
                found.setdefault(task, rows)
        return found

    def save(self, folder: Path) -> None:
        """Each member in `member-<i>/`, the weights in ensemble.json."""
        for index, member in enumerate(self.members):
            (folder / f"member-{index}").mkdir(parents=True, exist_ok=True)
            member.save(folder / f"member-{index}")
        weights = {task: w.tolist() for task, w in self.weights.items()}
        (folder / ENSEMBLE_FILE).write_text(json.dumps({"weights": weights}), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, config: EnsembleConfig, tasks: list[Task]) -> EnsembleModel:
        """Load what `save` wrote."""
        path = folder / ENSEMBLE_FILE
        if not path.is_file():
            raise TaawunError(f"{folder}: no {ENSEMBLE_FILE}; the model folder is incomplete (copy it again, or "
                              "retrain)")
        model = cls(config, tasks)
        model.members = [registry.model_class(member.kind).load(folder / f"member-{index}", member, tasks)
                         for index, member in enumerate(config.members)]
        saved = json.loads(path.read_text(encoding="utf-8"))["weights"]
        model.weights = {task: np.asarray(weights) for task, weights in saved.items()}
        return model


def member_name(config) -> str:
    """A member's short name from its config: its kind, classifier or head, features and rule weight
    (`tfidf-complement_nb`, `sentence_encoder-logreg-encoder_tfidf-rules1`); a valid MLflow metric key part."""
    parts = [config.kind, getattr(config, "classifier", None) or getattr(config, "head", None)]
    features = getattr(config, "features", None)
    if isinstance(features, list):
        parts.append("_".join(features))
    if getattr(config, "rules_weight", 0):
        parts.append(f"rules{config.rules_weight:g}")
    return "-".join(part for part in parts if part)


def _member_context(context: FitContext, index: int) -> FitContext:
    from dataclasses import replace

    return replace(context, work_dir=None if context.work_dir is None else context.work_dir / f"member-{index}")


def best_weights(probas: list[np.ndarray], y: np.ndarray, step: float) -> np.ndarray:
    """The weights (on a grid of `step`, summing to 1) whose mixture of `probas` has the best macro-F1 on `y`.

    Ties go to the most even mixture (least variance of the weights), then to grid order.
    """
    from train.evaluation.metrics import labelled_macro_f1

    n = len(probas)
    units = round(1 / step)
    best, best_key = None, None
    for split in itertools.product(range(units + 1), repeat=n - 1):
        if sum(split) > units:
            continue
        weights = np.array([*split, units - sum(split)], dtype=float) / units
        score = labelled_macro_f1(y, sum(w * p for w, p in zip(weights, probas, strict=True)))
        key = (round(score, 12), -float(np.var(weights)))
        if best_key is None or key > best_key:
            best, best_key = weights, key
    return best
