"""`taawun tune`: model kinds and hyperparameters compared by grouped cross-validation, the best one trained.

Every trial is scored on out-of-fold probabilities of the training split (folds of whole duplicate clusters); the
validation and test splits play no part in the choice. The chosen model (a trial, or a weighted ensemble of the best
trials) is then trained and evaluated as `taawun train` does, and the trials are logged as its MLflow child runs.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from train.config.experiment import ExperimentConfig, TuneConfig, deep_merge, flatten
from train.errors import TaawunError
from train.evaluation.metrics import labelled_macro_f1
from train.models import registry
from train.models.base import Articles, FitContext, split_labels
from train.models.selection import adapted_out_of_fold, grouped_folds, out_of_fold_proba, scored_labels, target_mask
from train.schema import Schema, Task


@dataclass
class Trial:
    """One candidate model and its cross-validated scores."""

    name: str
    config: BaseModel
    scores: dict[str, float]
    proba: dict[str, np.ndarray]
    auxiliary_weight: float | None = None
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> held-out group -> macro-F1

    @property
    def objective(self) -> float:
        """What the choice maximizes: macro-F1 averaged over the tasks."""
        return float(np.mean(list(self.scores.values())))


@dataclass
class TuneResult:
    """The trials, the chosen model config, and the training run of the chosen model."""

    trials: list[Trial]
    chosen: Trial
    run: Any

    def table(self) -> str:
        """The trials, best first, with their cross-validated macro-F1 per task."""
        tasks = list(self.trials[0].scores)
        rows = [[trial.name, *(f"{trial.scores[t]:.3f}" for t in tasks), f"{trial.objective:.3f}",
                 "<- chosen" if trial is self.chosen else ""]
                for trial in sorted(self.trials, key=lambda t: -t.objective)]
        header = ["trial", *tasks, "mean", ""]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                         for row in [header, ["-" * w for w in widths], *rows])


def expand(tune: TuneConfig) -> list[tuple[str, BaseModel]]:
    """(name, model config) of every trial: each candidate once per combination of its grid."""
    trials = []
    for index, candidate in enumerate(tune.candidates):
        base = {key: value for key, value in candidate.items() if key != "grid"}
        grid = candidate.get("grid", {})
        for values in itertools.product(*grid.values()):
            settings = dict(zip(grid, values, strict=True))
            config = deep_merge(base, _nested(settings))
            name = f"{index}:{config['kind']}" + "".join(f" {key}={value}" for key, value in settings.items())
            try:
                trials.append((name, registry.model_config(config)))
            except (ValueError, TaawunError) as err:
                raise TaawunError(f"tune.candidates.{index} ({name}): {err}") from None
    return trials


def _nested(dotted: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        cursor = nested
        *parents, last = key.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
        cursor[last] = value
    return nested


def choose(config: ExperimentConfig, split, tasks: list[Task], schema: Schema | None = None,
           progress=None) -> tuple[list[Trial], Trial]:
    """Score every trial (and the ensemble of the best) on out-of-fold probabilities of `split`, a training split
    (`schema`: the dataset's, with its gazetteers, for candidates that read the labelling rules)."""
    tune = config.tune
    targets = [task.target_field for task in tasks if task.target_field]
    labels = split_labels(split, tasks)
    whole = Articles.from_split(split, targets)
    splits = tune_folds(tune, split, whole, labels, tasks, config.seed)
    scored = scored_labels(whole, labels)  # auxiliary articles train in every fold, unscored

    groups = column_groups(split, tune.group_by) if tune.group_by else None

    def score(proba: dict[str, np.ndarray]) -> dict[str, Any]:
        """A trial's macro-F1 per task, pooled and per held-out value of `tune.group_by`."""
        if tune.adapt_priors:
            proba = adapted_out_of_fold(tasks, proba, scored, splits, groups)
        by_group = {} if groups is None else {task: _group_scores(scored[task], p, groups) for task, p in proba.items()}
        return {"scores": _scores(scored, proba), "by_group": by_group}

    context = FitContext(seed=config.seed, schema=schema,
                         work_dir=config.output_dir / config.tracking.experiment / "tune-work")
    trials = []
    for weight in tune.auxiliary_weights or [config.auxiliary_weight]:
        articles = Articles.from_split(split, targets, weight)
        for name, model_config in expand(tune):
            kind = registry.model_class(model_config.kind)
            proba = out_of_fold_proba(lambda k=kind, c=model_config: k(c, tasks), articles, labels, splits, context)
            name = name if weight is None or not tune.auxiliary_weights else f"{name} auxiliary_weight={weight}"
            trials.append(Trial(name, model_config, proba=proba, auxiliary_weight=weight, **score(proba)))
            if progress:
                progress(trials[-1])
    best = max(trials, key=lambda t: t.objective)
    if tune.ensemble >= 2 and len(trials) >= 2:
        same_weight = [t for t in trials if t.auxiliary_weight == best.auxiliary_weight]
        ensemble = _ensemble_trial(sorted(same_weight, key=lambda t: -t.objective)[: tune.ensemble], scored, tasks,
                                    score)
        trials.append(ensemble)
        if progress:
            progress(ensemble)
        best = max(trials, key=lambda t: t.objective)
    return trials, best


def tune_folds(tune: TuneConfig, split, articles: Articles, labels: dict[str, np.ndarray], tasks: list[Task],
               seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds the trials are compared on (`articles`: the split's): whole duplicate clusters, or whole values of
    `tune.group_by`."""
    if tune.group_by:
        articles = replace(articles, groups=column_groups(split, tune.group_by))
        values = sorted(set(articles.groups[target_mask(articles.auxiliary, len(articles))]))
        if len(values) < tune.folds:
            raise TaawunError(f"tune.group_by: {tune.group_by}: the training split has {len(values)} distinct values "
                              f"({', '.join(values)}) for {tune.folds} folds; set tune.folds to at most {len(values)}")
    return grouped_folds(articles, labels, tasks, tune.folds, seed)


def column_groups(split, column: str) -> np.ndarray:
    """Each article's value of `column`, a duplicate cluster taking its first article's (clusters stay whole)."""
    if column not in split.column_names:
        raise TaawunError(f"tune.group_by: the dataset has no column {column!r}; it has "
                          f"{', '.join(split.column_names)}")
    first: dict[Any, str] = {}
    clusters = split["cluster"] if "cluster" in split.column_names else range(len(split))
    values = [str(first.setdefault(cluster, value)) for cluster, value in zip(clusters, split[column], strict=True)]
    return np.asarray(values)


def _scores(labels: dict[str, np.ndarray], proba: dict[str, np.ndarray]) -> dict[str, float]:
    return {task: labelled_macro_f1(labels[task], p) for task, p in proba.items()}


def _group_scores(y: np.ndarray, proba: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Macro-F1 of each group that has articles labelled in `y`, on those articles."""
    return {str(value): labelled_macro_f1(np.where(groups == value, y, -1), proba)
            for value in np.unique(groups[y >= 0])}


def _ensemble_trial(top: list[Trial], labels: dict[str, np.ndarray], tasks: list[Task], score) -> Trial:
    """The best trials averaged, with each task's weights chosen on their out-of-fold probabilities (unadapted), the
    mixture scored by `score`."""
    from train.models.ensemble.model import best_weights

    step = registry.config_class("ensemble").model_fields["step"].default
    weights = {task.name: best_weights([t.proba[task.name] for t in top], labels[task.name], step) for task in tasks}
    proba = {task.name: sum(w * t.proba[task.name] for w, t in zip(weights[task.name], top, strict=True))
             for task in tasks}
    config = registry.model_config({"kind": "ensemble", "members": [t.config.model_dump() for t in top],
                                    "weights": {task: w.tolist() for task, w in weights.items()}})
    name = "ensemble of " + ", ".join(t.name for t in top)
    return Trial(name, config, proba=proba, auxiliary_weight=top[0].auxiliary_weight, **score(proba))


def tune(config: ExperimentConfig, register: str | None = None) -> TuneResult:
    """Choose the model on the training split, then train, evaluate and log it; the trials become child runs."""
    from train.workflows.train import load_training_data, train

    if config.tune is None:
        raise TaawunError("the experiment has no `tune:` section: list the candidate models there "
                          "(see configs/experiments/tune.yaml)")
    dataset, _, _, schema, tasks = load_training_data(config)
    trials, chosen = choose(config, dataset["train"], tasks, schema, progress=_report)
    final = config.model_copy(update={"model": chosen.config, "tune": None,
                                      "auxiliary_weight": chosen.auxiliary_weight})
    run = train(final, final.model_dump(mode="json"), register=register)
    _log_trials(run, trials, chosen, config.tune)
    return TuneResult(trials, chosen, run)


def _report(trial: Trial) -> None:
    """The trial's score on stderr, and each held-out group's (macro-F1 averaged over the tasks) when folds group."""
    groups = sorted({group for scores in trial.by_group.values() for group in scores})
    means = {group: np.mean([s[group] for s in trial.by_group.values() if group in s]) for group in groups}
    detail = f" ({', '.join(f'{group} {mean:.3f}' for group, mean in means.items())})" if means else ""
    print(f"trial {trial.name}: cross-validated macro-F1 {trial.objective:.3f}{detail}", file=sys.stderr, flush=True)


def _log_trials(run, trials: list[Trial], chosen: Trial, tune: TuneConfig) -> None:
    """Each trial as a child run of the chosen model's run: its config and its cross-validated scores."""
    import mlflow

    from train.tracking.names import leaf
    from train.tracking.store import log_params, uninterrupted

    mlflow.set_tracking_uri(run.tracking_uri)
    with mlflow.start_run(run_id=run.run_id):
        grouped = f"grouped by {tune.group_by}" if tune.group_by else "grouped by duplicate cluster"
        adapted = f", label priors adapted to each held-out {tune.group_by}" if tune.adapt_priors else ""
        mlflow.set_tag("taawun.tuned", f"{len(trials)} trials, {tune.folds}-fold cross-validation {grouped}{adapted}, "
                                       "scored on the target articles (auxiliary ones train in every fold)")
        for trial in trials:
            with uninterrupted(), mlflow.start_run(run_name=f"trial {trial.name}", nested=True):
                mlflow.set_tags({"taawun.trial": trial.name, "taawun.trial_chosen": str(trial is chosen).lower()})
                log_params(flatten(trial.config.model_dump(mode="json"), "model."))
                mlflow.log_metrics({f"cv/{task}/macro_f1": value for task, value in trial.scores.items()}
                                   | {"cv/mean_macro_f1": trial.objective}
                                   | {f"cv/{task}/macro_f1_by_group/{leaf(group)}": value
                                      for task, groups in trial.by_group.items() for group, value in groups.items()})
