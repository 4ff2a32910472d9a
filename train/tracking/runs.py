"""Reading runs back: the one paged query for taawun's runs, and `taawun runs` (a table, or two runs side by side)."""

from __future__ import annotations

from typing import Any

from train.errors import TaawunError
from train.tracking.store import check_store

# Runs that taawun logged (training and evaluation runs) carry this tag.
TAAWUN_RUNS = "tags.`taawun.model_kind` != ''"


def search_runs(client: Any, experiment_ids: list[str], limit: int | None = None) -> list[Any]:
    """taawun's runs in these experiments, newest first, across result pages (at most `limit`)."""
    runs, token = [], None
    while experiment_ids and (limit is None or len(runs) < limit):
        page = client.search_runs(experiment_ids, filter_string=TAAWUN_RUNS, order_by=["attributes.start_time DESC"],
                                  max_results=min(1000, limit - len(runs)) if limit else 1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def run_table(uri: str, experiment: str | None = None, limit: int = 50) -> str:
    """One line per run and task: experiment, run, model kind, task, macro-F1 on test (or the evaluated split)."""
    import mlflow

    check_store(uri)
    client = mlflow.MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()
                   if experiment is None or e.name == experiment}
    if experiment and not experiments:
        raise TaawunError(f"no experiment {experiment!r} in {uri}")
    runs = search_runs(client, list(experiments), limit)
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


