"""`taawun evaluate`: score a model on held-out articles and log an evaluation run beside its training run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from train.config.experiment import EvaluationConfig
from train.errors import TaawunError
from train.evaluation.artifacts import write_evaluation
from train.evaluation.tables import format_table
from train.tracking.cards import RunFacts, evaluation_description, model_name
from train.tracking.names import flat_metrics, headline_names
from train.tracking.store import check_store, process_tags, tracking_uri, use_experiment
from train.tracking.ui import show_metric_columns


def evaluate_model(model: str, source: Path, split: str, fields: dict[str, str], evaluation: EvaluationConfig,
                   uri: str | None, log: bool = True) -> tuple[dict[str, dict], str | None]:
    """Evaluate a model on a built dataset's split or a raw file; log an evaluation run linked to its training run.

    `uri` is the tracking store: where an MLflow model URI is loaded from, and where the evaluation run is logged.
    """
    from train.data.build import open_dataset
    from train.evaluation.scoring import dataset_columns, raw_file_columns, score
    from train.models.predictor import load_predictor

    uri = tracking_uri(uri)
    if log:
        check_store(uri, write=True)
    predictor = load_predictor(model, uri)
    if source.is_dir() or source.suffix in (".yaml", ".yml"):
        if fields:
            raise TaawunError(f"--field {' '.join(f'{k}={v}' for k, v in fields.items())}: {source} is a built dataset "
                              "(or its data config), whose columns are the schema's tasks; --field maps the columns "
                              "of a raw JSONL/CSV/Parquet file. Drop --field, or give the raw file")
        dataset, _, _ = open_dataset(source)
        if split not in dataset:
            raise TaawunError(f"{source}: no split {split!r}; splits: {list(dataset)}")
        columns, labels = dataset_columns(dataset[split], predictor)
        clean, name = False, split
    else:
        columns, labels = raw_file_columns(source, predictor, fields)
        clean, name = True, "heldout"
    results, predictions = score(predictor, columns, labels, clean, evaluation.group_field, evaluation)
    results, predictions = {name: results}, {name: predictions}
    run_id = _log_evaluation(uri, predictor, model, source, results, predictions, evaluation) if log else None
    return results, run_id


def _log_evaluation(uri: str, predictor, model: str, source: Path, results, predictions,
                    evaluation: EvaluationConfig) -> str:
    import mlflow

    training_run = predictor.info.get("run_id")
    experiment = "taawun"
    if training_run:
        try:
            run = mlflow.MlflowClient(uri).get_run(training_run)
            experiment = mlflow.MlflowClient(uri).get_experiment(run.info.experiment_id).name
        except Exception:  # the training run lives in another store: log under the default experiment
            training_run = None
    use_experiment(uri, experiment)
    tags = {**process_tags(), "taawun.evaluation_of": model, "taawun.evaluated_on": str(source),
            "taawun.model_kind": predictor.model.kind, "taawun.tasks": ",".join(t.name for t in predictor.tasks)}
    if training_run:
        tags.update({"taawun.training_run_id": training_run, "mlflow.parentRunId": training_run})
    if evaluation.adapt_priors:
        tags["taawun.adapt_priors"] = "true"
    with mlflow.start_run(run_name=f"evaluate {source.name}", tags=tags) as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_metrics(flat_metrics(results))
        write_evaluation(results, predictions, Path(tmp), evaluation.misclassified_limit)
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
        facts = RunFacts(run.info.run_id, model_name(predictor.model), predictor.tasks, results, str(source))
        mlflow.set_tag("mlflow.note.content", evaluation_description(facts, model))
        show_metric_columns(uri, run.info.experiment_id, headline_names(results))
    return run.info.run_id


def describe(results: dict[str, Any]) -> str:
    """Evaluation results as the terminal table."""
    return "\n\n".join(f"[{split}]\n{format_table(results, split)}" for split in results)
