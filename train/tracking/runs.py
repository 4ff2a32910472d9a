"""Reading runs back: the one paged query for taawun's runs, and `taawun runs` (a table, two runs side by side, or
the runs a dead process left RUNNING)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from train.errors import TaawunError
from train.tracking.store import HOST_TAG, PID_TAG, check_store

# Runs that taawun logged (training and evaluation runs) carry this tag.
TAAWUN_RUNS = "tags.`taawun.model_kind` != ''"
# Runs (search trials included) that recorded their process and host.
RECORDED = f"tags.`{PID_TAG}` != '' and tags.`{HOST_TAG}` != ''"


def search_runs(client: Any, experiment_ids: list[str], limit: int | None = None,
                filter_string: str = TAAWUN_RUNS) -> list[Any]:
    """taawun's runs in these experiments, newest first, across result pages (at most `limit`)."""
    runs, token = [], None
    while experiment_ids and (limit is None or len(runs) < limit):
        page = client.search_runs(experiment_ids, filter_string=filter_string, order_by=["attributes.start_time DESC"],
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
                         run.info.status, run.data.tags.get("taawun.model_kind", ""), task, split,
                         f"{metric:.3f}" if metric is not None else "-", interval])
    if not rows:
        return f"no taawun runs in {uri}" + (f" (experiment {experiment!r})" if experiment else "")
    return _table(["experiment", "run id", "run name", "run", "status", "model", "task", "split", "macro-F1",
                   "95% CI"], rows)


def stale_runs(uri: str, clean: bool = False) -> str:
    """Runs left RUNNING by a process that is gone (killed, or its machine restarted); `clean` marks them FAILED.

    A run records the id and host of the process that runs it (tags). Only runs of this host can be checked; those of
    other hosts are counted, to be checked there. A process id now used by a process that started after the run did
    is someone else's: the run's process is gone.
    """
    import mlflow

    check_store(uri, write=clean)
    client = mlflow.MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    running = search_runs(client, list(experiments), filter_string=f"attributes.status = 'RUNNING' and {RECORDED}")
    here = socket.gethostname()
    stale = [run for run in running if run.data.tags[HOST_TAG] == here
             and not _process_alive(int(run.data.tags[PID_TAG]), run.info.start_time / 1000)]
    elsewhere = sorted({run.data.tags[HOST_TAG] for run in running} - {here})
    for run in stale if clean else []:
        client.set_tag(run.info.run_id, "taawun.ended_by", "taawun runs --clean-stale")
        client.set_terminated(run.info.run_id, "FAILED")
    rows = [[experiments[run.info.experiment_id], run.info.run_id, run.info.run_name or "",
             _started(run.info.start_time), run.data.tags[PID_TAG], "FAILED (cleaned)" if clean else "RUNNING"]
            for run in stale]
    lines = [_table(["experiment", "run id", "run name", "started", "pid", "status"], rows) if rows else
             f"no stale runs in {uri} (runs RUNNING whose process on {here} is gone)"]
    if stale and not clean:
        lines.append("`taawun runs --clean-stale` marks them FAILED")
    if elsewhere:
        lines.append(f"RUNNING runs of other hosts were not checked (run `taawun runs --stale` there): "
                     f"{', '.join(elsewhere)}")
    return "\n".join(lines)


def _process_alive(pid: int, run_started: float) -> bool:
    """Whether process `pid` of this host runs, and is not a newer process that took over the id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    started = _process_start(pid)
    return started is None or started <= run_started + 1  # a second of slack: /proc's boot time is in whole seconds


def _process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from Linux's /proc; None where that is unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time, in clock ticks


def _started(milliseconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(milliseconds / 1000))


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


