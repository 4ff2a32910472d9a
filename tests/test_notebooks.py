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


def train_run(folder: Path, data: Path, **overrides) -> str:
    """Train through the CLI into the store under `folder`; the run's id."""
    result = run_cli("train", experiment_file(folder, data, **overrides))
    assert result.exit_code == 0, result.output
    return re.search(r"^run (\w+) logged", result.output, re.MULTILINE).group(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory, sample_dataset) -> dict:
    """A temporary store: two TF-IDF training runs on the sample (logreg, complement NB, named after their
    classifier) and an evaluation run in experiment `tests`, and a logreg run in experiment `other` on the sample
    split with another seed (another dataset)."""
    folder = tmp_path_factory.mktemp("explore_store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    run_ids = [train_run(folder, sample_dataset, model={"classifier": classifier},
                         tracking={"run_name": "{model.classifier}"}) for classifier in ("logreg", "complement_nb")]
    result = run_cli("evaluate", f"runs:/{run_ids[0]}/model", "--input", sample_dataset, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    reseeded = folder / "reseeded.yaml"
    reseeded.write_text((sample_dataset.parent / "sample.yaml").read_text(encoding="utf-8").replace(
        f"output: {sample_dataset}", f"output: {folder / 'reseeded'}") + "seed: 7\n", encoding="utf-8")
    other = train_run(folder, reseeded, tracking={"experiment": "other"}, evaluation={"bootstrap": 100})
    return {"uri": uri, "run_ids": run_ids, "other": other, "dataset": sample_dataset, "other_dataset": folder / "reseeded"}


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
    # the labels together: topic x bilateral_security_cooperation x stance, every article counted once
    crosstab = next(o.data["text/html"] for o in outputs(notebook, "text/html") if "supportive" in o.data["text/html"]
                    and "politics" in o.data["text/html"] and "yes" in o.data["text/html"])
    assert "total" in crosstab and f">{articles}<" in crosstab
    rtl_tables = [o for o in outputs(notebook, "text/html") if "direction: rtl" in o.data["text/html"]]
    assert len(rtl_tables) >= len(report["tasks"])


def test_experiments_notebook_compares_every_run_of_every_experiment(store, monkeypatch):
    notebook = execute(EXPERIMENTS_NOTEBOOK, monkeypatch, MLFLOW_TRACKING_URI=store["uri"])
    assert "3 training run(s)" in printed(notebook) and "compared: 3 run(s) on 2 dataset(s)" in printed(notebook)
    tasks = data_explore.load_report(store["dataset"])["tasks"]
    # per dataset: the macro-F1 chart, F1 per label, macro-F1 per outlet, and one figure of confusion matrices per task
    assert len(outputs(notebook, "image/png")) == 2 * (3 + len(tasks))
    assert "No run has learning curves" in printed(notebook) and "only the transformer kind logs them" in printed(
        notebook)
    html = "".join(o.data["text/html"] for o in outputs(notebook, "text/html"))
    assert "direction: rtl" in html  # the worst errors, Arabic text right to left
    assert html.count(store["other"][:7]) >= 2 and all(html.count(run_id[:7]) >= 2 for run_id in store["run_ids"])


def test_the_experiments_notebook_compares_the_experiment_its_first_cell_names(store):
    notebook = nbformat.read(EXPERIMENTS_NOTEBOOK, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].startswith("EXPERIMENT = None  #") and "explore.load_runs(uri, EXPERIMENT)" in code[1]
    chosen = explore.newest_per_name(explore.load_runs(store["uri"], "other"))
    assert chosen["run_id"].tolist() == [store["other"]]


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
    assert list(runs["run_id"]) == [store["other"], *store["run_ids"][::-1]]  # newest first; no evaluation run
    assert set(runs["model_kind"]) == {"tfidf"} and set(runs["status"]) == {"FINISHED"}
    scores = explore.task_scores(runs)
    assert len(scores) == 3 * 3
    assert ((scores["ci_low"] <= scores["ci_high"]) & scores["macro_f1"].between(0, 1)).all()
    assert explore.load_runs(store["uri"], experiment="tests")["run_id"].tolist() == store["run_ids"][::-1]
    with pytest.raises(TaawunError, match="no experiment 'nope'"):
        explore.load_runs(store["uri"], experiment="nope")


def test_newest_per_name_keeps_every_run_name_of_every_dataset(store):
    compared = explore.newest_per_name(explore.load_runs(store["uri"]))
    # the newest dataset first (the reseeded one, trained last), then the sample's runs by name; one kind, three runs
    assert compared["run_id"].tolist() == [store["other"], store["run_ids"][1], store["run_ids"][0]]
    assert compared["run_name"].tolist() == ["tfidf", "complement_nb", "logreg"]
    labels = compared["dataset_label"].tolist()
    assert labels[0].startswith("reseeded (") and labels[1] == labels[2] != labels[0]


def test_per_class_and_per_outlet_scores_add_up_to_the_test_split(store):
    runs = explore.load_runs(store["uri"], experiment="tests")
    report = data_explore.load_report(store["dataset"])
    test_articles = report["splits"]["test"]["articles"]
    per_class = explore.per_class_scores(store["uri"], runs)
    for (_, task), table in per_class.groupby(["run_id", "task"]):
        assert table["support"].sum() == test_articles, task
        assert table["class"].tolist() == list(report["splits"]["test"]["labels"][task])  # schema order
    assert per_class["f1"].between(0, 1).all()
    outlets = explore.per_outlet_scores(store["uri"], runs)
    frame = data_explore.load_dataset_frame(store["dataset"])
    expected = frame[frame["split"] == "test"]["source"].value_counts().to_dict()
    for _, table in outlets.groupby(["run_id", "task"]):
        assert dict(zip(table["outlet"], table["n"], strict=True)) == expected
    assert len(explore.plot_per_class(per_class).axes) == len(report["tasks"])
    assert len(explore.plot_per_outlet(outlets).axes) == len(report["tasks"])


def test_label_crosstab_counts_every_article_once(sample_dataset):
    frame = data_explore.load_dataset_frame(sample_dataset)
    tasks = data_explore.load_report(sample_dataset)["tasks"]
    table = data_explore.label_crosstab(frame, tasks)
    assert table.loc["total", ("total", "")] == len(frame)
    assert table["total"].drop("total").to_dict() == frame[tasks[0]].value_counts().to_dict()
    test = data_explore.label_crosstab(frame, tasks, split="test")
    assert test.loc["total", ("total", "")] == (frame["split"] == "test").sum()
    assert list(table.index[:-1]) == list(frame[tasks[0]].cat.categories)  # schema order, zeros kept


@pytest.mark.slow
def test_learning_curves_of_a_transformer_run(tmp_path, sample_dataset, monkeypatch):
    """A transformer run logs a validation macro-F1 per task after each epoch: its curves, and the notebook shows
    them (a TF-IDF run beside it has none, and the notebook says so)."""
    from tests.models.test_transformer import QUICK

    transformer = train_run(tmp_path, sample_dataset, model=QUICK, evaluation={"bootstrap": 0})
    tfidf = train_run(tmp_path, sample_dataset, evaluation={"bootstrap": 0})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = explore.load_runs(uri)
    history = explore.learning_history(uri, runs)
    assert set(history["run_id"]) == {transformer}
    scores = history[history["curve"] == "validation macro-F1"]
    tasks = data_explore.load_report(sample_dataset)["tasks"]
    assert set(scores["task"]) == {*tasks, "mean"}
    assert all(group["epoch"].tolist() == [1, 2] for _, group in scores.groupby("task"))  # epochs: 2
    assert (history["curve"] == "training loss").any()
    assert len([ax for ax in explore.plot_learning_curves(history).axes if ax.axison]) == len(tasks) + 2
    message = explore.curves_message(runs, history)
    assert transformer[:7] in message.splitlines()[0] and tfidf[:7] in message.splitlines()[1]
    notebook = execute(EXPERIMENTS_NOTEBOOK, monkeypatch, MLFLOW_TRACKING_URI=uri)
    assert "Learning curves of 1 run(s)" in printed(notebook)


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
