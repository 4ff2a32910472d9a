"""MLflow tracking shared by every model kind: the store, runs, params, dataset inputs, metrics and models.

The default store is a SQLite database in the project (`sqlite:///mlflow.db`, artifacts in `mlartifacts/` beside
it); MLFLOW_TRACKING_URI or the config's `tracking.uri` point elsewhere, e.g. a team's tracking server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from train.errors import TaawunError

DEFAULT_URI = "sqlite:///mlflow.db"
# Progress bars for artifact downloads of a few kilobytes are noise in a command's output.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
PID_TAG, HOST_TAG = "taawun.pid", "taawun.host"
# MLflow 3's UI opens an experiment on its traces (GenAI) or its runs (model training): earlier 3.x releases decide by
# the experiment's kind tag, later ones (3.17) by a switch in the sidebar, which the links taawun prints set (ui.py).
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": "taawun's training and evaluation runs: choose *Model training* in the sidebar, and the "
                           "view *taawun: test scores* for their scores as columns.",
}


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then take effect as they would have.

    For MLflow writes in the middle of training (a search trial's child run, a step's metrics): an interrupt inside
    one cuts its SQLite transaction in half, and ending the run FAILED then finds the database locked. Outside the
    main thread, where signals cannot be handled, the block runs as it is.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, frame: pending.append(signum)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(signum, handler)
    for signum in dict.fromkeys(pending):
        signal.raise_signal(signum)


def tracking_uri(configured: str | None) -> str:
    """The config's URI, else MLFLOW_TRACKING_URI, else the project's SQLite store."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def tracking_option(uri: str) -> str:
    """The `--tracking-uri` option a command needs to reach `uri` ("" for the default store)."""
    return "" if uri == DEFAULT_URI else f" --tracking-uri {uri}"


def check_store(uri: str, timeout: float = 5.0, write: bool = False) -> None:
    """Fail in seconds, before any work, when the tracking store cannot be reached or opened.

    `write`: the command logs to the store, so it must be writable; a missing SQLite store is created (under a file
    lock beside it, as two processes creating one at once break MLflow's migrations). Otherwise a missing SQLite
    store is an error rather than a new empty database.
    """
    if uri.startswith(("http://", "https://")):
        _check_server(uri, timeout)
        return
    if uri.startswith("sqlite:///"):
        _check_sqlite(uri, write)
    import mlflow

    try:
        with store_lock(uri):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # the store's own error types vary by backend
        raise TaawunError(f"cannot open the MLflow tracking store {uri}: {err}") from None


def _check_server(uri: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            if response.status != 200:
                raise TaawunError(f"tracking server {uri} answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as err:
        raise TaawunError(
            f"cannot reach the MLflow tracking server {uri} ({getattr(err, 'reason', err)}). Start it, fix "
            "tracking.uri / MLFLOW_TRACKING_URI / --tracking-uri, or unset them to use the local sqlite:///mlflow.db"
        ) from None


def _check_sqlite(uri: str, write: bool) -> None:
    """The database's folder exists; the database exists (unless it is to be created), and is writable if need be."""
    path = sqlite_path(uri)
    if not path.parent.resolve().is_dir():
        raise TaawunError(f"tracking store {uri}: folder {path.parent} does not exist")
    if not write:
        if not path.is_file():
            raise TaawunError(f"no MLflow tracking store at {path} ({uri}): nothing was logged there yet. Check "
                              "--tracking-uri / MLFLOW_TRACKING_URI, or train a model first")
        return
    # SQLite writes a journal beside the database, so the folder must take new files, and the file must open for
    # writing (as root, permission bits say nothing: try it).
    problem = write_problem(path.parent)
    try:
        if not problem and path.exists():
            open(path, "r+b").close()
    except OSError as err:
        problem = f"{path}: {err.strerror}"
    if problem:
        raise TaawunError(f"tracking store {uri}: cannot write ({problem}). Make it writable, or log to another "
                          "store (tracking.uri, --tracking-uri)")


def write_problem(folder: Path) -> str | None:
    """Why no file can be created in `folder`, or None when one can.

    A missing folder is judged by its nearest existing parent. Nothing created here stays.
    """
    existing = next(path for path in [folder, *folder.parents] if path.exists() or path == Path("."))
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".taawun-write-check-"):
            pass
    except OSError as err:
        return f"{existing}: {err.strerror or err}"
    return None


def sqlite_path(uri: str) -> Path:
    """The database file of a `sqlite:///` URI."""
    return Path(uri.removeprefix("sqlite:///"))


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on `<database>.lock` beside a SQLite store; nothing for other stores.

    Where the folder takes no new file, no lock is taken: nothing can create a database there either.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    path = sqlite_path(uri)
    try:
        handle = open(path.with_name(path.name + ".lock"), "a")
    except OSError:
        yield
        return
    with handle:  # closing the file releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def artifact_root(uri: str, experiment: str = "") -> str | None:
    """For a SQLite store: artifacts in `mlartifacts/` beside the database file (None: the store decides)."""
    if uri.startswith("sqlite:///"):
        folder = sqlite_path(uri).resolve().parent / "mlartifacts"
        return (folder / re.sub(r"[^\w.-]+", "_", experiment) if experiment else folder).as_uri()
    return None


def use_experiment(uri: str, name: str) -> str:
    """Point MLflow at `uri` and experiment `name` (created with artifacts beside a SQLite store); returns its id.

    The experiment is marked as one of model training (`EXPERIMENT_TAGS`), also when it was created before taawun
    did so; a kind or description someone set is kept.
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    with store_lock(uri):  # two processes creating the same experiment at once: one would fail
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = client.create_experiment(name, artifact_location=artifact_root(uri, name),
                                                     tags=EXPERIMENT_TAGS)
        else:
            experiment_id = experiment.experiment_id
            for key, value in EXPERIMENT_TAGS.items():
                if key not in experiment.tags:
                    client.set_experiment_tag(experiment_id, key, value)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_params(params: dict[str, str]) -> None:
    """Log params, cutting values MLflow would refuse (the whole config is also logged as a file)."""
    import mlflow

    safe = {k: (v if len(v) <= MAX_PARAM_LENGTH else v[: MAX_PARAM_LENGTH - 20] + "...[truncated]")
            for k, v in params.items()}
    items = list(safe.items())
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        mlflow.log_params(dict(items[start : start + 100]))


def log_dataset(folder: Path, fingerprint: str, name: str, context: str = "training") -> None:
    """Record the dataset as the run's input (with its content fingerprint) and attach its report."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # a local folder matches two equivalent local source types; either is right
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(folder.resolve()))
    mlflow.log_input(MetaDataset(source=source, name=name, digest=fingerprint[:32]), context=context)
    for report in ("report.json", "report.md"):
        if (folder / report).is_file():
            mlflow.log_artifact(str(folder / report), artifact_path="dataset")


def process_tags() -> dict[str, str]:
    """The process and host running a run, as tags: `taawun runs --stale` finds runs whose process is gone."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def git_commit() -> dict[str, str]:
    """The project's git commit (and whether the tree had changes), as MLflow tags; empty outside a git checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit, "taawun.git_dirty": str(bool(dirty)).lower()}


def log_model(model_folder: Path, input_example, output_example, register: str | None,
              requirements: tuple[str, ...] = (), card: str | None = None) -> str:
    """Log the model folder as an MLflow pyfunc model (code-based, no pickle); returns its model URI.

    A version registered under `register` gets `card` (Markdown) as its description.
    """
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    code = Path(__file__).with_name("pyfunc.py")
    # The title is optional: a model predicts from the text alone.
    inputs = Schema([ColSpec("string", name, required=name != "title") for name in input_example.columns])
    signature = ModelSignature(inputs=inputs, outputs=infer_signature(input_example, output_example).outputs,
                               params=ParamSchema([ParamSpec("adapt_priors", "boolean", False)]))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(code),
        artifacts={"model": str(model_folder)},
        signature=signature,
        input_example=input_example,
        pip_requirements=_requirements(requirements),
        code_paths=[str(Path(__file__).resolve().parents[1])],  # the `train` package: the model loads without taawun
        registered_model_name=register,
    )
    _readable_examples(info)
    if register and card and info.registered_model_version:
        mlflow.MlflowClient().update_model_version(register, str(info.registered_model_version), description=card)
    return info.model_uri


def _readable_examples(info) -> None:
    """Rewrite the model's input examples with Arabic as Arabic: MLflow writes JSON with ASCII escapes ("\\u0627").

    The same JSON values, so MLflow reads them as before.
    """
    import mlflow

    names = [name for key, name in (info.saved_input_example_info or {}).items()
             if key in ("artifact_path", "serving_input_path")]
    location = mlflow.get_logged_model(info.model_id).artifact_location
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{name}", dst_path=tmp))
            value = json.loads(path.read_text(encoding="utf-8"))
            indent = 2 if name == "serving_input_example.json" else None  # as MLflow writes each
            path.write_text(json.dumps(value, ensure_ascii=False, indent=indent), encoding="utf-8")
            mlflow.MlflowClient().log_model_artifact(info.model_id, str(path))


def _requirements(extra: tuple[str, ...]) -> list[str]:
    """The core packages and the model kind's own, pinned to the installed versions."""
    from importlib.metadata import version

    names = ["scikit-learn", "skops", "numpy", "scipy", "pandas", "pydantic", "pyyaml", "mlflow", *extra]
    return [f"{name}=={version(name)}" for name in dict.fromkeys(names)]
