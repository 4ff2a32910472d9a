"""`taawun train`: fit a model on a built dataset, evaluate it, and track everything in MLflow.

The model and its metrics are written to a local run folder first; MLflow gets them after. When logging fails,
nothing is lost: the error names the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from train import progress
from train.config.experiment import ExperimentConfig, flatten
from train.data.build import open_dataset
from train.errors import TaawunError
from train.evaluation.artifacts import write_evaluation
from train.evaluation.scoring import dataset_columns, score
from train.evaluation.tables import format_table
from train.models import registry
from train.models.base import Articles, FitContext, Labelled, split_labels
from train.models.predictor import MIN_ARTICLES_TO_ADAPT, Predictor
from train.models.priors import reference_priors
from train.models.selection import grouped_folds, out_of_fold_proba, scored_labels
from train.models.self_training import self_train
from train.models.thresholds import tune_thresholds
from train.schema import Schema, load_gazetteers
from train.tracking.cards import model_card, run_description, training_facts
from train.tracking.names import flat_metrics, headline_names
from train.tracking.store import (
    check_store,
    git_commit,
    log_dataset,
    log_model,
    log_params,
    process_tags,
    tracking_option,
    tracking_uri,
    uninterrupted,
    use_experiment,
    write_problem,
)
from train.tracking.ui import show_metric_columns


@dataclass
class RunResult:
    """What a training run produced."""

    run_id: str
    model_uri: str
    folder: Path
    results: dict[str, dict[str, dict]]
    tracking_uri: str

    def table(self) -> str:
        """The test (else validation) metrics as a terminal table."""
        split = "test" if "test" in self.results else next(iter(self.results))
        return format_table(self.results, split)


def train(config: ExperimentConfig, resolved: dict[str, Any], register: str | None = None,
          resume: bool = False) -> RunResult | None:
    """Train, evaluate, save and log one experiment; `resolved` is the merged config file (logged as is).

    Under torchrun every process trains; only the main one (rank 0) evaluates, saves and logs, and returns a result.
    """
    import mlflow

    main = int(os.environ.get("RANK", "0")) == 0
    uri = tracking_uri(config.tracking.uri)
    if main:  # before any training: an unwritable folder or a wrong store fails in seconds
        check_output_dir(config)
        progress.step(f"opening the tracking store {uri}")
        check_store(uri, write=True)
    dataset, data_folder, settings, schema, tasks = load_training_data(config, build=main)
    work_dir = config.output_dir / config.tracking.experiment / f"work-{_digest(resolved)}"
    if not main:
        context = _context(config, dataset, schema, tasks, work_dir, resume, False)
        _fit(config, dataset, schema, tasks, settings, {}, context, priors=False)
        return None
    use_experiment(uri, config.tracking.experiment)
    report = json.loads((data_folder / "report.json").read_text(encoding="utf-8"))
    with mlflow.start_run(run_id=_resumed_run(work_dir) if resume else None,
                          run_name=config.tracking.run_name) as run, \
            _interrupt_reported(run.info.run_id, uri, _run_folder(config, run.info.run_id)):
        # First: a run killed from here on can be found (`taawun runs --stale`), and is listed as taawun's.
        mlflow.set_tags({**process_tags(), "taawun.model_kind": config.model.kind,
                         "taawun.tasks": ",".join(t.name for t in tasks)})
        work_dir.mkdir(parents=True, exist_ok=True)  # checkpoints live there; --resume finds this run again
        (work_dir / "mlflow_run_id").write_text(run.info.run_id, encoding="utf-8")
        folder = _run_folder(config, run.info.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        # The whole config, defaults included: what ran, not only what the file said.
        full = config.model_dump(mode="json")
        (folder / "config.yaml").write_text(yaml.safe_dump(full, allow_unicode=True, sort_keys=False), "utf-8")
        if not resume:
            progress.step(f"starting MLflow run {run.info.run_id} ({config.tracking.run_name}): config and dataset")
            _log_start(config, full, folder, data_folder, report["fingerprint"])
        info = {"run_id": run.info.run_id, "dataset_fingerprint": report["fingerprint"], "seed": config.seed}
        context = _context(config, dataset, schema, tasks, work_dir, resume, True)
        progress.step(f"training {config.model.kind} on {len(dataset['train'])} articles")
        predictor, seconds = _fit(config, dataset, schema, tasks, settings, info, context)
        results, predictions = _evaluate(predictor, dataset, config)
        progress.step(f"writing the evaluation and the model to {folder}")
        _save_locally(folder, predictor, results, predictions, seconds, config.evaluation.misclassified_limit)
        try:
            progress.step(f"logging the run to MLflow ({uri})")
            model_uri = _log_results(folder, predictor, results, seconds, dataset, register)
        except Exception as err:  # any logging failure: the work is on disk, say where
            raise TaawunError(f"training finished, but logging to MLflow ({uri}) failed: {err}\n"
                              f"The model and metrics are kept in {folder} (model: {folder / 'model'}).") from None
    return RunResult(run.info.run_id, model_uri, folder, results, uri)


def load_training_data(config: ExperimentConfig, build: bool = True):
    """The experiment's dataset (built first when needed), its folder, settings and schema, and the tasks to train;
    the tasks must be in the schema and the splits to train and evaluate on must hold articles."""
    progress.step(f"opening the dataset {config.data}")
    dataset, data_folder, settings = open_dataset(config.data, build=build)
    schema = load_gazetteers(Schema.model_validate(settings["schema"]), data_folder)
    tasks = _pick_tasks(config, schema)
    _check_splits(dataset, config)
    return dataset, data_folder, settings, schema, tasks


def check_output_dir(config: ExperimentConfig) -> None:
    """Fail unless the run folders can be written under `output_dir`."""
    problem = write_problem(config.output_dir / config.tracking.experiment)
    if problem:
        raise TaawunError(f"output_dir {config.output_dir}: cannot write there ({problem}). Give another output_dir "
                          "(--set output_dir=PATH) or make it writable")


def _run_folder(config: ExperimentConfig, run_id: str) -> Path:
    """The local folder of a run: its config, model and evaluation, whatever happens to MLflow."""
    return config.output_dir / config.tracking.experiment / run_id


@contextmanager
def _interrupt_reported(run_id: str, uri: str, folder: Path) -> Iterator[None]:
    """Ctrl-C (or SIGTERM, which the CLI turns into Ctrl-C) inside a run: an error saying what became of the run.

    The error leaves the MLflow run context, which ends the run FAILED; the local run folder is kept.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise TaawunError(f"interrupted: MLflow run {run_id} ended FAILED in {uri}; what it wrote so far is kept in "
                          f"{folder}") from None


def _digest(resolved: dict[str, Any]) -> str:
    """A short digest of the resolved config: the same experiment finds its checkpoints again (--resume)."""
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def _resumed_run(work_dir: Path) -> str:
    path = work_dir / "mlflow_run_id"
    if not path.is_file():
        raise TaawunError(f"--resume: no interrupted run of this config in {work_dir}; start it without --resume")
    return path.read_text(encoding="utf-8").strip()


def _pick_tasks(config: ExperimentConfig, schema: Schema):
    names = config.tasks or schema.task_names
    unknown = [name for name in names if name not in schema.task_names]
    if unknown:
        raise TaawunError(f"tasks {unknown} are not in the dataset's schema {schema.name!r} ({schema.task_names})")
    return [schema.task(name) for name in names]


def _check_splits(dataset, config: ExperimentConfig) -> None:
    if not len(dataset["train"]):
        raise TaawunError(f"{config.data}: the train split is empty")
    empty = [split for split in config.evaluation.splits if not len(dataset[split])]
    if empty:
        raise TaawunError(f"{config.data}: the {empty} split(s) are empty; drop them from evaluation.splits or "
                          "give them a share in the data config's split section")
    few = [f"{split} ({len(dataset[split])})" for split in config.evaluation.splits
           if config.evaluation.adapt_priors and len(dataset[split]) < MIN_ARTICLES_TO_ADAPT]
    if few:
        raise TaawunError(f"{config.data}: evaluation.adapt_priors estimates the label proportions of each evaluated "
                          f"split, and {', '.join(few)} has fewer than {MIN_ARTICLES_TO_ADAPT} articles: drop it from "
                          "evaluation.splits, or set evaluation.adapt_priors: false")


def _log_start(config, resolved, folder: Path, data_folder: Path, fingerprint: str) -> None:
    import mlflow

    mlflow.set_tags({**git_commit(), "taawun.dataset": str(data_folder), "taawun.dataset_fingerprint": fingerprint})
    log_params(flatten(resolved))
    mlflow.log_artifact(str(folder / "config.yaml"))
    log_dataset(data_folder, fingerprint, data_folder.name)


def _context(config: ExperimentConfig, dataset, schema: Schema, tasks, work_dir: Path, resume: bool,
             main: bool) -> FitContext:
    """Validation data, checkpoints, and (in the main process) MLflow reporting for fitting."""
    validation = dataset["validation"]
    targets = [task.target_field for task in tasks if task.target_field]
    return FitContext(seed=config.seed, schema=schema,
                      validation=Labelled(Articles.from_split(validation, targets), split_labels(validation, tasks)),
                      work_dir=work_dir, resume=resume, log_metrics=_log_step_metrics if main else None,
                      on_trial=_log_trial if main else None)


def _fit(config, dataset, schema: Schema, tasks, settings, info: dict[str, Any], context,
         priors: bool = True) -> tuple[Predictor, float]:
    """Fit the model the config describes on the train split; with `priors`, also the reference label priors that
    prior adaptation starts from (`train.models.priors.reference_priors`)."""
    started = time.perf_counter()
    split = dataset["train"]
    articles = Articles.from_split(split, [task.target_field for task in tasks if task.target_field],
                                   config.auxiliary_weight)
    labels = split_labels(split, tasks)
    try:
        model, facts = fit_model(config, tasks, articles, labels, context)
    except ValueError as err:
        key = _invalid_parameter(err, config.model)
        if key is None:
            raise
        raise TaawunError(f"{key}: {err} Fix it in the experiment config, or with --set {key}=VALUE") from None
    info.update(facts)
    if priors:  # the main process: what `--adapt-priors` adapts from
        held = context.validation if context.has_validation else None
        info["label_priors"] = reference_priors(tasks, labels, articles.weights, held.labels if held else None,
                                                model.predict_proba(held.articles) if held else None)
    seconds = time.perf_counter() - started
    preprocessing = {key: settings[key] for key in ("cleaning", "normalization", "schema")}
    return Predictor(model, schema, tasks, preprocessing, info), seconds


def fit_model(config: ExperimentConfig, tasks, articles: Articles, labels, context: FitContext):
    """The experiment's model fit on `articles` (self-trained when asked), and what the fit decided.

    The facts (saved in model.json) are the pseudo-labels added per self-training round and the decision thresholds
    of binary tasks, tuned on held-out predictions of the training data.
    """
    kind = registry.model_class(config.model.kind)
    facts: dict[str, Any] = {}
    if config.self_training:
        model, facts["self_training"] = self_train(lambda: kind(config.model, tasks), articles, labels, context,
                                                   config.self_training, tasks)
    else:
        model = kind(config.model, tasks).fit(articles, labels, context)
    thresholds = _thresholds(config, kind, tasks, articles, labels, model, context)
    if thresholds:
        facts["thresholds"] = thresholds
    return model, facts


def _thresholds(config, kind, tasks, articles: Articles, labels, model, context) -> dict[str, float]:
    """Decision thresholds of the binary tasks, on held-out predictions of the training data (never the test's)."""
    choice = config.thresholds
    if choice.tune == "none":
        return {}
    if choice.tune == "validation":
        if not context.has_validation:
            raise TaawunError("thresholds.tune: validation needs a non-empty validation split; use thresholds.tune: cv")
        held_labels, proba = context.validation.labels, model.predict_proba(context.validation.articles)
    else:
        splits = grouped_folds(articles, labels, tasks, choice.folds, config.seed)
        proba = out_of_fold_proba(lambda: kind(config.model, tasks), articles, labels, splits, context)
        held_labels = scored_labels(articles, labels)
    return tune_thresholds(tasks, held_labels, proba, choice.tasks or None)


def _invalid_parameter(err: ValueError, model_config) -> str | None:
    """The config key of a parameter scikit-learn refused when fitting (its InvalidParameterError), else None."""
    match = re.match(r"The '(\w+)' parameter of \w+ must be", str(err))
    if type(err).__name__ != "InvalidParameterError" or not match:
        return None
    name = match.group(1)
    search = getattr(model_config, "search", None)
    return f"model.search.grid.{name}" if search and name in search.grid else f"model.params.{name}"


def _log_step_metrics(metrics: dict[str, float], step: int) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        with uninterrupted():
            mlflow.log_metrics(metrics, step=step)


def _log_trial(task: str, params: dict[str, Any], value: float) -> None:
    import mlflow

    with uninterrupted(), mlflow.start_run(run_name=f"search {task} {params}", nested=True, tags=process_tags()):
        mlflow.set_tag("taawun.trial_task", task)
        mlflow.log_params({f"trial.{k}": v for k, v in params.items()})
        mlflow.log_metric(f"search/{task}/macro_f1", value)


def _evaluate(predictor: Predictor, dataset, config: ExperimentConfig):
    results, predictions = {}, {}
    for split in config.evaluation.splits:
        progress.step(f"evaluating on {split} ({len(dataset[split])} articles, "
                      f"{config.evaluation.bootstrap} bootstrap resamples)")
        columns, labels = dataset_columns(dataset[split], predictor)
        results[split], predictions[split] = score(predictor, columns, labels, False, config.evaluation.group_field,
                                                   config.evaluation)
    return results, predictions


def _save_locally(folder: Path, predictor: Predictor, results, predictions, seconds: float,
                  misclassified_limit: int | None) -> None:
    write_evaluation(results, predictions, folder / "evaluation", misclassified_limit)
    predictor.save(folder / "model")
    (folder / "train_seconds.txt").write_text(f"{seconds:.3f}\n", encoding="utf-8")


def _log_results(folder: Path, predictor: Predictor, results, seconds: float, dataset, register) -> str:
    """Log the metrics, the evaluation files, the model and its card; describe the run for the MLflow UI."""
    import mlflow

    metrics = flat_metrics(results)
    metrics["train_seconds"] = seconds
    for split, per_task in results.items():
        speed = next(iter(per_task.values())).get("articles_per_second")
        if speed:
            metrics[f"{split}/articles_per_second"] = speed
    metrics.update(_fit_metrics(predictor.info))
    mlflow.log_metrics(metrics)
    mlflow.log_artifacts(str(folder / "evaluation"), artifact_path="evaluation")
    run = mlflow.active_run()
    uri = mlflow.get_tracking_uri()
    facts = training_facts(run.info.run_id, predictor, results, {name: len(part) for name, part in dataset.items()},
                           dataset["train"], mlflow.get_run(run.info.run_id).data.tags.get("taawun.dataset", ""),
                           tracking_option(uri))
    card = model_card(facts)
    mlflow.log_text(card, "model_card.md")
    example = _input_example(dataset["train"], predictor)
    model_uri = log_model(folder / "model", example, predictor.predict_frame(example), register,
                          predictor.model.requirements, card)
    # Last: the description sums up what the run holds, and the runs table shows its scores.
    mlflow.set_tag("mlflow.note.content", run_description(facts))
    show_metric_columns(uri, run.info.experiment_id, headline_names(results))
    return model_uri


def _fit_metrics(info: dict[str, Any]) -> dict[str, float]:
    """What the fit decided, as metrics: each binary task's decision threshold, and the pseudo-labels each
    self-training round added per task (a step per round)."""
    metrics = {f"fit/{task}/threshold": value for task, value in (info.get("thresholds") or {}).items()}
    for round_number, added in enumerate(info.get("self_training") or [], start=1):
        metrics.update({f"fit/{task}/pseudo_labels_round_{round_number}": count for task, count in added.items()})
    return metrics


def _input_example(split, predictor: Predictor):
    """Two raw articles (shortened) as the model's input example."""
    import pandas as pd

    rows = split.select(range(min(2, len(split))))
    frame = {"title": list(rows["raw_title"]), "text": [text[:400] for text in rows["raw_text"]]}
    for name in predictor.target_fields:
        frame[name] = list(rows[name])
    return pd.DataFrame(frame)
