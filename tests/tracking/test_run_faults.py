"""Faults around runs and the tracking store: signals, killed processes, concurrent stores, unwritable folders.

Signals and kills go to real `taawun` processes (the console script of this virtualenv). Folders and files are made
unwritable with `chattr +i`, which stops root too (chmod does not); where chattr is unavailable the tests use chmod when
not root, and skip with a message otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest

from tests.helpers import experiment_file, run_cli
from train.tracking.ui import free_port

TAAWUN = Path(sys.executable).with_name("taawun")
# A search long enough (hundreds of fits) that a run is still fitting when a signal comes.
LONG_SEARCH = {"search": {"grid": {"C": [round(0.1 * k, 1) for k in range(1, 301)]}, "on": "cv", "folds": 3}}


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _start(command: list, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(TAAWUN), *map(str, command)], cwd=cwd, env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _long_training(folder: Path, data: Path, uri: str) -> subprocess.Popen:
    """`taawun train` with a long search, writing its run folder under `folder` and logging to `uri`."""
    folder.mkdir(exist_ok=True)
    config = experiment_file(folder, data, tasks=["topic"], model=LONG_SEARCH, evaluation={"splits": ["test"]},
                             tracking={"uri": uri, "experiment": "tests"})
    return _start(["train", config], folder)


def _wait_for_run(folder: Path, process: subprocess.Popen) -> str:
    """The id of the run `process` started, once its local run folder exists (the MLflow run is RUNNING then)."""
    runs = folder / "runs" / "tests"
    deadline = time.time() + 120
    while time.time() < deadline:
        started = [p.name for p in runs.glob("*") if p.is_dir() and not p.name.startswith("work-")]
        if started:
            time.sleep(1)  # into the search
            return started[0]
        if process.poll() is not None:
            pytest.fail(f"taawun train exited with {process.returncode}: {process.communicate()}")
        time.sleep(0.2)
    process.kill()
    pytest.fail("taawun train did not start a run within 120 s")


def _status(uri: str, run_id: str) -> str:
    return mlflow.MlflowClient(uri).get_run(run_id).info.status


def _children(uri: str, run_id: str) -> list:
    client = mlflow.MlflowClient(uri)
    experiment = client.get_run(run_id).info.experiment_id
    return client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")


def test_sigterm_during_training_ends_the_run_failed_and_keeps_its_folder(tmp_path, sample_dataset):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    process = _long_training(tmp_path, sample_dataset, uri)
    run_id = _wait_for_run(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in err and f"interrupted: MLflow run {run_id}" in err, err
    assert _status(uri, run_id) == "FAILED"
    assert all(child.info.status != "RUNNING" for child in _children(uri, run_id))
    assert (tmp_path / "runs" / "tests" / run_id / "config.yaml").is_file()  # the local run folder is kept


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupt_waits_for_the_mlflow_write_in_progress(signum):
    """SIGTERM or Ctrl-C in the middle of an MLflow write (a search trial's child run, a step's metrics) used to cut
    the write's SQLite transaction in half: ending the run then found the database locked and printed a traceback.
    The interrupt now takes effect once the write is done."""
    from train.cli import sigterm_as_interrupt
    from train.tracking.store import uninterrupted

    written = []
    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # the signal is delivered here
            written.append("the whole write")
    assert written == ["the whole write"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


@pytest.mark.slow
def test_runs_left_running_by_a_killed_process_are_listed_and_cleaned(tmp_path, sample_dataset):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = _long_training(tmp_path / "killed", sample_dataset, uri)
    killed_id = _wait_for_run(tmp_path / "killed", killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    alive = _long_training(tmp_path / "alive", sample_dataset, uri)
    try:
        alive_id = _wait_for_run(tmp_path / "alive", alive)
        assert _status(uri, killed_id) == "RUNNING"  # what a SIGKILL leaves behind

        listed = run_cli("runs", "--tracking-uri", uri, "--stale")
        assert listed.exit_code == 0, listed.output
        assert killed_id in listed.output and alive_id not in listed.output
        table = run_cli("runs", "--tracking-uri", uri)
        assert "RUNNING" in table.output and "status" in table.output

        cleaned = run_cli("runs", "--tracking-uri", uri, "--clean-stale")
        assert cleaned.exit_code == 0, cleaned.output
        assert killed_id in cleaned.output and "FAILED" in cleaned.output
        assert _status(uri, killed_id) == "FAILED" and _status(uri, alive_id) == "RUNNING"
        assert all(child.info.status != "RUNNING" for child in _children(uri, killed_id))  # its search trials too
        assert killed_id not in run_cli("runs", "--tracking-uri", uri, "--stale").output
    finally:
        alive.send_signal(signal.SIGTERM)
        alive.communicate(timeout=60)
    assert _status(uri, alive_id) == "FAILED"


@pytest.mark.slow
def test_two_trainings_on_a_new_store_both_succeed(tmp_path, sample_dataset):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    processes = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        config = experiment_file(tmp_path / name, sample_dataset, tasks=["topic"], evaluation={"splits": ["test"]},
                                 tracking={"uri": uri, "experiment": "tests"})
        processes.append(_start(["train", config], tmp_path / name))
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert sorted(run.info.status for run in runs) == ["FINISHED", "FINISHED"]


def _server_processes(process: subprocess.Popen) -> list[psutil.Process]:
    """The processes under `taawun ui`, once `mlflow ui` has started its server (a grandchild)."""
    deadline = time.time() + 90
    while time.time() < deadline:
        children = psutil.Process(process.pid).children(recursive=True)
        if any(child.children() for child in children):
            return children
        if process.poll() is not None:
            pytest.fail(f"taawun ui exited: {process.communicate()}")
        time.sleep(0.2)
    pytest.fail("mlflow ui did not start its server within 90 s")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGHUP"])
def test_ui_stopped_by_a_signal_stops_its_server(tmp_path, sig):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()  # an existing, empty store
    default_free = _port_free(5050)
    process = _start(["ui", "--tracking-uri", uri], tmp_path)
    children: list[psutil.Process] = []
    try:
        line = process.stdout.readline()
        url = line.split()[4]
        if default_free:
            assert url == "http://127.0.0.1:5050", line  # the stable default port
        children = _server_processes(process)
        process.send_signal(sig)
        process.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"still running after {sig.name}: {[p.cmdline() for p in alive]}"
    finally:
        for child in [process, *children]:  # only what this test started
            try:
                psutil.Process(child.pid).kill()
            except psutil.NoSuchProcess:
                pass


def test_ui_falls_back_to_a_free_port_when_the_default_is_busy_and_takes_a_host(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 5050))
        except OSError:
            pass  # busy already: what this test needs
        busy.listen()
        process = _start(["ui", "--tracking-uri", uri, "--host", "127.0.0.1"], tmp_path)
        try:
            line = process.stdout.readline()
            assert "5050 is busy" in line, line
            url = line.split()[4]
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":5050")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_unreachable_tracking_server_fails_loading_commands_in_seconds(tmp_path, trained):
    uri = f"http://127.0.0.1:{free_port()}"
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "x", "text": "نص"}\n', encoding="utf-8")
    for command in (["predict", f"runs:/{trained['run_id']}/model", "--input", source, "--output",
                     tmp_path / "out.jsonl"],
                    ["evaluate", f"runs:/{trained['run_id']}/model", "--input", source, "--no-log"],
                    ["annotate", "suggest", f"runs:/{trained['run_id']}/model", "--input", source, "--n", "1",
                     "--output", tmp_path / "tasks.json"]):
        started = time.perf_counter()
        result = run_cli(*command, "--tracking-uri", uri, cwd=tmp_path)
        assert result.exit_code == 1, result.output
        assert "cannot reach the MLflow tracking server" in result.output
        assert time.perf_counter() - started < 15
    assert not (tmp_path / "mlflow.db").exists()


# -- unwritable folders and stores --------------------------------------------------------------------------------
@pytest.fixture
def read_only():
    """A function making a file or folder unwritable for this test, root included (see the module docstring)."""
    frozen: list[Path] = []

    def freeze(path: Path) -> None:
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode == 0:
            frozen.append(path)
        elif os.geteuid() != 0:
            path.chmod(0o555 if path.is_dir() else 0o444)
        else:
            pytest.skip("running as root without a working chattr: cannot make a folder read-only")

    yield freeze
    for path in frozen:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_output_folder_is_a_clear_error_before_any_run(tmp_path, sample_dataset, read_only):
    config = experiment_file(tmp_path, sample_dataset, tasks=["topic"], evaluation={"splits": ["test"]})
    (tmp_path / "runs").mkdir()
    read_only(tmp_path / "runs")
    result = run_cli("train", config)
    assert result.exit_code == 1, result.output
    assert f"output_dir {tmp_path / 'runs'}" in result.output and "cannot write" in result.output
    assert not (tmp_path / "mlflow.db").exists()  # failed before any run was started


@pytest.mark.parametrize("frozen", ["database", "folder"])
def test_read_only_store_is_a_clear_error(tmp_path, sample_dataset, read_only, frozen):
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()  # an existing store
    read_only(store / "mlflow.db" if frozen == "database" else store)
    config = experiment_file(tmp_path, sample_dataset, tasks=["topic"], evaluation={"splits": ["test"]},
                             tracking={"uri": uri, "experiment": "tests"})
    result = run_cli("train", config)
    assert result.exit_code == 1, result.output
    assert f"tracking store {uri}" in result.output and "cannot write" in result.output
    assert not (tmp_path / "runs").exists()


def test_invalid_classifier_parameter_names_the_key(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, tasks=["topic"], evaluation={"splits": ["test"]})
    result = run_cli("train", config, "--set", "model.params.C=-1")
    assert result.exit_code == 1
    assert "model.params.C" in result.output and "Got -1 instead" in result.output
