"""The MLflow UI as a person reads it: taawun's experiments open on their runs, a run page sums the run up, metrics
group by split and task, the input example shows Arabic, a registered version carries a model card, and train and
evaluate print the run's page. The run page is checked in headless Chromium against `taawun ui`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import mlflow
import pytest

from tests.helpers import chromium_page, experiment_file, run_cli
from train.tracking.ui import free_port

KIND = "mlflow.experimentKind"
VIEW_TAG = "mlflow.sharedViewState.taawun"  # a saved view of the runs table, as MLflow's UI stores one
TASKS = ["topic", "bilateral_security_cooperation", "stance"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory, sample_dataset):
    """A TF-IDF run on the sample, registered as `news-tfidf`, in an experiment made before taawun tagged them."""
    folder = tmp_path_factory.mktemp("registered")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.MlflowClient(uri).create_experiment("tests", artifact_location=(folder / "artifacts").as_uri())
    config = experiment_file(folder, sample_dataset, evaluation={"bootstrap": 50})
    result = run_cli("train", config, "--register", "news-tfidf")
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    return {"uri": uri, "run_id": run_id, "client": mlflow.MlflowClient(uri)}


def _run(trained):
    return mlflow.MlflowClient(trained["uri"]).get_run(trained["run_id"])


def test_experiments_are_marked_as_model_training_also_when_made_before(trained, registered):
    for uri, run_id in ((trained["uri"], trained["run_id"]), (registered["uri"], registered["run_id"])):
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment(client.get_run(run_id).info.experiment_id)
        assert experiment.tags[KIND] == "custom_model_development"
        assert "Model training" in experiment.tags["mlflow.note.content"]  # what to choose in MLflow's sidebar


def test_run_description_sums_up_the_run(trained, sample_dataset):
    run = _run(trained)
    metrics, description = run.data.metrics, run.data.tags["mlflow.note.content"]
    # First (what the UI shows before "Show more"): the test scores of every task.
    assert description.startswith("| task | test macro-F1 [95% CI] | positive-class F1 | accuracy | n |")
    for split in ("test", "validation"):
        assert f"| task | {split} macro-F1 [95% CI] |" in description
        for task in TASKS:
            m = {key.rsplit("/", 1)[1]: value for key, value in metrics.items() if key.startswith(f"{split}/{task}/")}
            assert (f"| {task} | **{m['macro_f1']:.3f}** [{m['macro_f1_ci_low']:.3f}, {m['macro_f1_ci_high']:.3f}] "
                    in description)
    assert f"{metrics['test/bilateral_security_cooperation/positive_f1']:.3f} (yes)" in description
    assert run.data.tags["taawun.dataset_fingerprint"][:12] in description
    assert "tfidf (logreg)" in description
    assert "| outlet | topic | bilateral_security_cooperation | stance |" in description
    assert (f"taawun evaluate runs:/{trained['run_id']}/model --input {sample_dataset} --split test "
            f"--tracking-uri {trained['uri']}") in description
    assert f"taawun predict runs:/{trained['run_id']}/model --input " in description


def test_metric_names_group_by_split_and_task(trained):
    metrics = _run(trained).data.metrics
    # The UI charts a metric in the section named by what comes before its last "/".
    sections = Counter(name.rsplit("/", 1)[0] for name in metrics if "/" in name)
    assert {section for section, count in sections.items() if count == 1} == {"test", "validation"}  # speed
    outlets = {section for section in sections if "group" in section}
    assert outlets == {f"{split}/{task}/macro_f1_by_group" for split in ("test", "validation") for task in TASKS}
    assert sections["test/topic/macro_f1_by_group"] == 5  # the sample's five outlets, in one section
    assert "test/topic/macro_f1_by_group/nile-wire" in metrics


def test_runs_table_view_shows_the_test_scores(trained):
    client = mlflow.MlflowClient(trained["uri"])
    experiment = client.get_experiment(_run(trained).info.experiment_id)
    view = json.loads(experiment.tags[VIEW_TAG])
    columns = json.loads(view["state"])["selectedColumns"]
    assert view["name"] == "taawun: test scores"
    # the training run's test scores first; evaluation runs of the experiment (other tests) add their split's after
    assert [c for c in columns if c.startswith("metrics.")][:4] == [
        "metrics.`test/topic/macro_f1`", "metrics.`test/bilateral_security_cooperation/macro_f1`",
        "metrics.`test/bilateral_security_cooperation/positive_f1`", "metrics.`test/stance/macro_f1`"]


def test_input_example_shows_arabic_as_arabic(trained):
    mlflow.set_tracking_uri(trained["uri"])
    info = mlflow.models.get_model_info(f"runs:/{trained['run_id']}/model")
    location = mlflow.get_logged_model(info.model_id).artifact_location
    for name in ("input_example.json", "serving_input_example.json"):
        text = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{name}")).read_text("utf-8")
        assert "\\u06" not in text and re.search("[\u0627-\u064a]{3}", text), text[:200]
    example = json.loads(Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"{location}/input_example.json")).read_text("utf-8"))
    assert example["columns"] == ["title", "text"] and len(example["data"]) == 2  # what MLflow wrote, as values


def test_registered_version_carries_a_model_card(registered):
    client = registered["client"]
    version = client.get_model_version("news-tfidf", "1")
    card = version.description
    run = client.get_run(registered["run_id"])
    assert card.startswith("# Model card: tfidf (logreg) for topic, bilateral_security_cooperation, stance")
    assert run.data.tags["taawun.dataset_fingerprint"][:12] in card
    assert "| topic | single_label | politics (18), security (22)," in card  # labels with training articles
    assert "| bilateral_security_cooperation | binary, positive `yes` | yes (22), no (94) |" in card
    assert f"| topic | **{run.data.metrics['test/topic/macro_f1']:.3f}** [" in card
    assert "## Intended use" in card
    assert ("Trained on 116 articles from 5 outlets (gulf-observer, al-waha, sahil-news, nile-wire, maghreb-daily)"
            in card)
    assert "come from outlets it was trained on" in card
    with_card = Path(mlflow.artifacts.download_artifacts(run_id=registered["run_id"], artifact_path="model_card.md",
                                                         tracking_uri=registered["uri"]))
    assert with_card.read_text(encoding="utf-8") == card


def test_train_and_evaluate_print_the_run_page(trained, sample_dataset, tmp_path):
    experiment = _run(trained).info.experiment_id
    assert (f"MLflow UI: http://127.0.0.1:5050/#/experiments/{experiment}/runs/{trained['run_id']}"
            f"?workflowType=machine_learning  (served by: taawun ui --tracking-uri {trained['uri']})"
            in trained["output"])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # an evaluation of a model folder goes to experiment "taawun"
    made = mlflow.MlflowClient(uri).create_experiment("taawun", artifact_location=(tmp_path / "art").as_uri())
    result = run_cli("evaluate", trained["model_dir"], "--input", sample_dataset, "--split", "test",
                     "--tracking-uri", uri, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    run_id = re.search(r"evaluation run (\w+) logged", result.stderr).group(1)
    assert (f"MLflow UI: http://127.0.0.1:5050/#/experiments/{made}/runs/{run_id}?workflowType=machine_learning"
            in result.stderr)
    client = mlflow.MlflowClient(uri)
    assert client.get_experiment(made).tags[KIND] == "custom_model_development"
    assert client.get_run(run_id).data.tags["mlflow.note.content"].startswith("| task | ")


@pytest.fixture
def ui(trained, tmp_path):
    """`taawun ui` on the trained store, on a free port; yields the lines it printed first."""
    process = subprocess.Popen([sys.executable, "-m", "train", "ui", "--tracking-uri", trained["uri"], "--port",
                                str(free_port())], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        address = lines[0].split()[4]
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2):
                    break
            except OSError:
                assert time.time() < deadline and process.poll() is None, "taawun ui did not answer within 90 s"
                time.sleep(0.5)
        yield address, lines
    finally:
        process.send_signal(signal.SIGTERM)  # stops the server's processes too (SIGINT may be ignored in background)
        process.wait(timeout=30)


def test_run_page_and_runs_table_in_chromium(trained, ui, tmp_path):
    address, lines = ui
    run = _run(trained)
    # The run page, at the address `taawun train` printed (on this test's port).
    printed = re.search(r"MLflow UI: (\S+)", trained["output"]).group(1)
    page = chromium_page(printed.replace("http://127.0.0.1:5050", address), tmp_path / "run.png", "1400,1400")
    text = re.sub(r"<[^>]+>", "", page)
    assert "test macro-F1 [95% CI]" in text  # the description's summary table
    m = run.data.metrics
    assert f"{m['test/topic/macro_f1']:.3f} [{m['test/topic/macro_f1_ci_low']:.3f}, " in text
    # The sidebar leads to the experiment's runs and models (model training), not its traces and chat sessions (GenAI).
    experiment = run.info.experiment_id
    assert f"#/experiments/{experiment}/models?workflowType=machine_learning" in page
    assert f"#/experiments/{experiment}/chat-sessions" not in page
    # The experiment, at the address `taawun ui` printed: its runs table, the test scores as columns.
    assert lines[1].startswith(f"  runs of tests: {address}/#/experiments/{experiment}/runs?")
    table = chromium_page(lines[1].split()[-1], tmp_path / "runs.png", "2200,900")
    assert 'col-id="metrics.`test/topic/macro_f1`"' in table
    assert 'col-id="metrics.`test/bilateral_security_cooperation/positive_f1`"' in table
    assert (tmp_path / "run.png").stat().st_size > 10_000 and (tmp_path / "runs.png").stat().st_size > 10_000
