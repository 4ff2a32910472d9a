"""`taawun ui`: the MLflow UI on the project's tracking store, served on 127.0.0.1:5050 by default; and the links
taawun prints into it: a run's page, an experiment's runs table with its scores as columns."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

from train.errors import TaawunError
from train.tracking.store import artifact_root, check_store, store_lock

# A stable address to bookmark. Not MLflow's 5000, which macOS's AirPlay receiver takes.
DEFAULT_PORT = 5050
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Recent MLflow 3 releases open experiments in GenAI mode (on their traces) unless the sidebar's switch, or this URL
# parameter, says model training.
MODEL_TRAINING = "workflowType=machine_learning"
# A saved view of the runs table (an experiment tag the UI lists under Views), opened by the links taawun prints.
VIEW_KEY = "taawun"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_NAME = "taawun: test scores"
FIXED_COLUMNS = ["attributes.`Run Name`", "runDateAndNestInfo", "duration"]  # the table always shows these
DEFAULT_COLUMNS = ["attributes.`Models`"]


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host`:`port` now."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ui_command(uri: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command that serves the MLflow UI for the store `uri` on `host`:`port`."""
    # One worker: one person browses it; MLflow's default of four starts four copies of the server.
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", artifact_root(uri)]
    return command


def serve_ui(uri: str, port: int | None, host: str = "127.0.0.1") -> None:
    """Start the MLflow UI and wait until Ctrl-C, SIGTERM or SIGHUP, which stop the server with all its processes."""
    check_store(uri)
    port, note = _pick_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"MLflow UI for {uri}: http://{shown}:{port}  (Ctrl-C to stop){note}", flush=True)
    for name, experiment_id in _taawun_experiments(uri):
        print(f"  runs of {name}: {runs_table_url(f'http://{shown}:{port}', experiment_id)}", flush=True)
    if host not in LOOPBACK:
        print(f"warning: the UI has no login; whoever can reach {host}:{port} can see, rename and delete the runs",
              file=sys.stderr, flush=True)
    # In a session of its own, the server and its workers can be stopped together. Signals sent to our terminal no
    # longer reach it then, so SIGTERM, and SIGHUP (the terminal closed) unless ignored (nohup), stop us as Ctrl-C does.
    stopping = [signal.SIGTERM] + ([signal.SIGHUP] if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL else [])
    previous = {sig: signal.signal(sig, _interrupt) for sig in stopping}
    process = None
    try:
        process = subprocess.Popen(ui_command(uri, port, host), start_new_session=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process is not None:
            _stop(process)


def _taawun_experiments(uri: str) -> list[tuple[str, str]]:
    """(name, id) of the experiments taawun logged runs to, newest first."""
    import mlflow

    experiments = mlflow.MlflowClient(uri).search_experiments(order_by=["last_update_time DESC"])
    return [(e.name, e.experiment_id) for e in experiments if VIEW_TAG in e.tags]


def _pick_port(host: str, requested: int | None) -> tuple[int, str]:
    """The port to serve on, and a note for the user when it is not the one expected."""
    if requested is not None:
        if not port_is_free(host, requested):
            raise TaawunError(f"port {requested} on {host} is busy; choose another with --port")
        return requested, ""
    if port_is_free(host, DEFAULT_PORT):
        return DEFAULT_PORT, ""
    return free_port(host), f"  [port {DEFAULT_PORT} is busy]"


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL for whatever is left after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _group_alive(process):
            return
        with contextlib.suppress(ProcessLookupError):  # it may have ended just now
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(process):
            time.sleep(0.1)


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether any process of the server's group runs (its leader is reaped first, else it would count)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def ui_address(uri: str) -> str | None:
    """Where the MLflow UI of store `uri` is: a tracking server's own address, or what `taawun ui` serves for a local
    store (None for other stores, e.g. Databricks)."""
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        return f"http://127.0.0.1:{DEFAULT_PORT}"
    return None


def run_url(uri: str, run_id: str) -> str | None:
    """The UI page of run `run_id` of store `uri` (None where the store has no UI taawun knows)."""
    import mlflow

    address = ui_address(uri)
    if address is None:
        return None
    experiment_id = mlflow.MlflowClient(uri).get_run(run_id).info.experiment_id
    return f"{address}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"


def runs_table_url(address: str, experiment_id: str) -> str:
    """The runs table of an experiment, in taawun's view: the scores as columns."""
    return f"{address}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}&viewStateShareKey={VIEW_KEY}"


def show_metric_columns(uri: str, experiment_id: str, metrics: list[str]) -> None:
    """Add `metrics` as columns of the experiment's taawun view of the runs table (kept with those of earlier runs).

    MLflow's runs table shows no metric by default; its saved views are experiment tags of this form.
    """
    import time

    import mlflow

    client = mlflow.MlflowClient(uri)
    with store_lock(uri):  # runs of one experiment ending at once: each adds its columns
        columns = [*DEFAULT_COLUMNS, *_view_columns(client.get_experiment(experiment_id).tags.get(VIEW_TAG))]
        columns += [column for column in (f"metrics.`{name}`" for name in metrics) if column not in columns]
        # The UI gives a metric column room for a few characters of its name: widen them to show whole names (about
        # 6.5 pixels a character). It applies widths to the columns it is given an order for.
        widths = {column: 30 + int(6.5 * (len(column) - len("metrics.``"))) for column in columns
                  if column.startswith("metrics.")}
        state = {"selectedColumns": columns, "columnOrder": [*FIXED_COLUMNS, *columns], "columnWidths": widths}
        now = int(time.time() * 1000)
        client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(
            {"name": VIEW_NAME, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}))


def _view_columns(tag: str | None) -> list[str]:
    """The metric columns of an earlier taawun view (none when there is none, or MLflow changed its format)."""
    try:
        columns = json.loads(json.loads(tag)["state"])["selectedColumns"]
    except (TypeError, ValueError, KeyError):
        return []
    return [column for column in columns if isinstance(column, str) and column.startswith("metrics.")]
