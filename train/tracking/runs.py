"""Reading runs back: `taawun runs` (a table, or two runs side by side), `taawun evaluate`, and `taawun ui`."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from train.errors import TaawunError
from train.evaluation.metrics import flat_metrics, write_evaluation
from train.config.experiment import EvaluationConfig
from train.tracking.store import check_store, tracking_uri, use_experiment


def run_table(uri: str, experiment: str | None = None, limit: int = 50) -> str:
    """One line per run and task: experiment, run, model kind, task, macro-F1 on test (or the evaluated split)."""
    import mlflow

    check_store(uri)
    client = mlflow.MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()
                   if experiment is None or e.name == experiment}
    if experiment and not experiments:
        raise TaawunError(f"no experiment {experiment!r} in {uri}")
    runs = client.search_runs(list(experiments), filter_string="tags.`taawun.model_kind` != ''",
                              order_by=["attributes.start_time DESC"], max_results=limit) if experiments else []
    rows = []
    for run in runs:
        kind = "evaluate" if "taawun.evaluation_of" in run.data.tags else "train"
        for task in run.data.tags.get("taawun.tasks", "").split(","):
            split = next((s for s in ("test", "heldout", "validation") if f"{s}/{task}/macro_f1" in run.data.metrics),
                         "test")
            metric = run.data.metrics.get(f"{split}/{task}/macro_f1")
            low, high = (run.data.metrics.get(f"{split}/{task}/macro_f1_ci_{end}") for end in ("low", "high"))
            interval = f"[{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
            rows.append([experiments[run.info.experiment_id], run.info.run_id, run.info.run_name or "", kind,
                         run.data.tags.get("taawun.model_kind", ""), task, split,
                         f"{metric:.3f}" if metric is not None else "-", interval])
    if not rows:
        return f"no taawun runs in {uri}" + (f" (experiment {experiment!r})" if experiment else "")
    return _table(["experiment", "run id", "run name", "run", "model", "task", "split", "macro-F1", "95% CI"], rows)


def compare_runs(uri: str, first: str, second: str) -> str:
    """Two runs side by side: params that differ, then every metric."""
    import mlflow

    check_store(uri)
    client = mlflow.MlflowClient(uri)
    runs = []
    for run_id in (first, second):
        try:
            runs.append(client.get_run(run_id))
        except Exception:  # MLflow raises its own error type for an unknown run id
            raise TaawunError(f"no run {run_id!r} in {uri}; `taawun runs` lists the run ids") from None
    a, b = (run.data for run in runs)
    rows = [["param: " + key, a.params.get(key, ""), b.params.get(key, "")]
            for key in sorted(set(a.params) | set(b.params)) if a.params.get(key) != b.params.get(key)]
    rows += [[key, _number(a.metrics.get(key)), _number(b.metrics.get(key))]
             for key in sorted(set(a.metrics) | set(b.metrics))]
    return _table(["", first, second], rows)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def evaluate_model(model: str, source: Path, split: str, fields: dict[str, str], evaluation: EvaluationConfig,
                   uri: str | None, log: bool = True) -> tuple[dict[str, dict], str | None]:
    """Evaluate a model on a built dataset's split or a raw file; log an evaluation run linked to its training run."""
    from train.data.build import open_dataset
    from train.models.predictor import load_predictor
    from train.evaluation.scoring import dataset_columns, raw_file_columns, score

    uri = tracking_uri(uri)
    if log:
        check_store(uri)
    predictor = load_predictor(model)
    if source.is_dir() or source.suffix in (".yaml", ".yml"):
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
    run_id = _log_evaluation(uri, predictor, model, source, results, predictions) if log else None
    return results, run_id


def _log_evaluation(uri: str, predictor, model: str, source: Path, results, predictions) -> str:
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
    tags = {"taawun.evaluation_of": model, "taawun.evaluated_on": str(source),
            "taawun.model_kind": predictor.model.kind, "taawun.tasks": ",".join(t.name for t in predictor.tasks)}
    if training_run:
        tags.update({"taawun.training_run_id": training_run, "mlflow.parentRunId": training_run})
    with mlflow.start_run(run_name=f"evaluate {source.name}", tags=tags) as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_metrics(flat_metrics(results))
        write_evaluation(results, predictions, Path(tmp))
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
    return run.info.run_id


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ui_command(uri: str, port: int) -> list[str]:
    """The command that serves the MLflow UI for the project's store on 127.0.0.1."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port)]
    if uri.startswith("sqlite:///"):
        from train.tracking.store import artifact_root

        command += ["--default-artifact-root", artifact_root(uri)]
    return command


def serve_ui(uri: str, port: int | None) -> None:
    """Start the MLflow UI and wait until interrupted."""
    check_store(uri)
    port = port or free_port()
    print(f"MLflow UI for {uri}: http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    process = subprocess.Popen(ui_command(uri, port))
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)


def describe(results: dict[str, Any]) -> str:
    """Evaluation results as the terminal table."""
    from train.evaluation.metrics import format_table

    return "\n\n".join(f"[{split}]\n{format_table(results, split)}" for split in results)
