"""The notebooks run end to end (the sample dataset, a temporary MLflow store, an empty one) and are committed
without outputs; the `train.data.explore` and `train.tracking.explore` functions they call add up."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from tests.helpers import ROOT, experiment_file, run_cli
from train.data import explore as data_explore
from train.errors import TaawunError
from train.tracking import explore

NOTEBOOKS = ROOT / "notebooks"
DATASET_NOTEBOOK = NOTEBOOKS / "01_dataset.ipynb"
EXPERIMENTS_NOTEBOOK = NOTEBOOKS / "02_experiments.ipynb"
CELL_TIMEOUT = 300


@pytest.fixture(scope="module")
def store(tmp_path_factory, sample_dataset) -> dict:
    """A temporary store: two TF-IDF training runs on the sample (logreg, complement NB) and an evaluation run."""
    folder = tmp_path_factory.mktemp("explore_store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    run_ids = []
    for classifier in ("logreg", "complement_nb"):
        config = experiment_file(folder, sample_dataset, model={"classifier": classifier},
                                 tracking={"run_name": classifier})
        result = run_cli("train", config)
        assert result.exit_code == 0, result.output
        run_ids.append(re.search(r"^run (\w+) logged", result.output, re.M).group(1))
    result = run_cli("evaluate", f"runs:/{run_ids[0]}/model", "--input", sample_dataset, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    return {"uri": uri, "run_ids": run_ids, "dataset": sample_dataset}


def execute(path: Path, monkeypatch, **env: str) -> nbformat.NotebookNode:
    """Run a notebook in a fresh python3 kernel started in notebooks/ (as Jupyter would), with `env` set.

    The kernel inherits this process's environment and runs this interpreter (jupyter_client puts sys.executable
    for the kernelspec's `python`); any failing cell raises nbclient's CellExecutionError with its traceback.
    """
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode, mime: str | None = None) -> list:
    """Every output of the notebook's code cells, or only those carrying `mime`."""
    found = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    return [output for output in found if mime is None or mime in output.get("data", {})]


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's cells printed to stdout."""
    return "".join(o.text for o in outputs(notebook) if o.output_type == "stream" and o.name == "stdout")


def test_dataset_notebook_runs_on_the_sample(sample_dataset, monkeypatch):
    notebook = execute(DATASET_NOTEBOOK, monkeypatch, TAAWUN_DATASET=str(sample_dataset))
    report = data_explore.load_report(sample_dataset)
    articles = sum(split["articles"] for split in report["splits"].values())
    assert f"; {articles} articles" in printed(notebook)
    # one label chart per task and the text lengths; the examples of every task rendered right to left
    assert len(outputs(notebook, "image/png")) == len(report["tasks"]) + 1
    rtl_tables = [o for o in outputs(notebook, "text/html") if "direction: rtl" in o.data["text/html"]]
    assert len(rtl_tables) >= len(report["tasks"])


def test_experiments_notebook_compares_the_runs(store, monkeypatch):
    notebook = execute(EXPERIMENTS_NOTEBOOK, monkeypatch, MLFLOW_TRACKING_URI=store["uri"])
    assert "2 training run(s)" in printed(notebook)
    tasks = data_explore.load_report(store["dataset"])["tasks"]
    # the macro-F1 chart, then one figure of confusion matrices per task
    assert len(outputs(notebook, "image/png")) == 1 + len(tasks)
    html = "".join(o.data["text/html"] for o in outputs(notebook, "text/html"))
    assert "direction: rtl" in html  # the worst errors, Arabic text right to left


def test_experiments_notebook_says_when_the_store_is_empty(tmp_path, monkeypatch):
    database = tmp_path / "mlflow.db"
    notebook = execute(EXPERIMENTS_NOTEBOOK, monkeypatch, MLFLOW_TRACKING_URI=f"sqlite:///{database}")
    assert "No training runs in" in printed(notebook) and "make demo" in printed(notebook)
    assert not outputs(notebook, "image/png")
    assert not database.exists()  # reading an absent store does not create one


@pytest.mark.parametrize("path", [DATASET_NOTEBOOK, EXPERIMENTS_NOTEBOOK], ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "make demo" in first.source


def test_label_distribution_sums_to_the_split_sizes(sample_dataset):
    frame = data_explore.load_dataset_frame(sample_dataset)
    report = data_explore.load_report(sample_dataset)
    sizes = {name: split["articles"] for name, split in report["splits"].items()}
    for task in report["tasks"]:
        table = data_explore.label_distribution(frame, task)
        assert table.sum(axis=1).to_dict() == sizes
        assert list(table.columns) == list(report["splits"]["train"]["labels"][task])  # schema order, zeros kept
        assert table.loc["test"].to_dict() == report["splits"]["test"]["labels"][task]


def test_text_lengths_match_the_build_report(sample_dataset):
    table = data_explore.text_lengths(data_explore.load_dataset_frame(sample_dataset))
    for name, split in data_explore.load_report(sample_dataset)["splits"].items():
        assert table.loc[name, ("articles", "")] == split["articles"]
        assert table.loc[name, ("words", "median")] == split["words"]["median"]
        assert table.loc[name, ("chars", "max")] == split["chars"]["max"]


def test_load_runs_has_one_row_per_training_run(store):
    runs = explore.load_runs(store["uri"])
    assert sorted(runs["run_id"]) == sorted(store["run_ids"])  # the evaluation run is left out
    assert list(runs["run_id"]) == store["run_ids"][::-1]  # newest first
    assert set(runs["model_kind"]) == {"tfidf"} and set(runs["status"]) == {"FINISHED"}
    scores = explore.task_scores(runs)
    assert len(scores) == 2 * 3
    assert ((scores["ci_low"] <= scores["ci_high"]) & scores["macro_f1"].between(0, 1)).all()
    assert explore.load_runs(store["uri"], experiment="tests")["run_id"].tolist() == runs["run_id"].tolist()
    with pytest.raises(TaawunError, match="no experiment 'nope'"):
        explore.load_runs(store["uri"], experiment="nope")
    latest = explore.latest_per_kind(runs)
    assert latest["run_id"].tolist() == [store["run_ids"][1]]


def test_confusion_tables_and_worst_errors_come_from_the_artifacts(store):
    uri, run_id = store["uri"], store["run_ids"][0]
    test_articles = data_explore.load_report(store["dataset"])["splits"]["test"]["articles"]
    table = explore.confusion_table(uri, run_id, "topic")
    assert table.to_numpy().sum() == test_articles and list(table.index) == list(table.columns)
    assert explore.confusion_table(uri, run_id, "no_such_task") is None
    figure = explore.confusion_matrices(uri, store["run_ids"], "topic")
    assert len(figure.axes) >= len(store["run_ids"])
    errors = explore.worst_errors(uri, run_id, n=5)
    assert 0 < len(errors) <= 5 and (errors["true"] != errors["predicted"]).all()
    assert errors["confidence"].is_monotonic_decreasing
    assert (errors["true_probability"] <= errors["confidence"]).all()


def test_rtl_styles_arabic_columns_only_and_escapes_html():
    frame = pd.DataFrame({"id": ["s001"], "text": ["<b>وزير الخارجية</b>"], "score": [0.5]})
    html = explore.rtl(frame).to_html()
    style = html.split("</style>")[0]
    assert "direction: rtl" in style and "_col1" in style and "_col0" not in style and "_col2" not in style
    assert "&lt;b&gt;" in html and "<b>" not in html
