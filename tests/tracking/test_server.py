"""Against a real MLflow tracking server (SQLite backend, 127.0.0.1, random port): train, register, load, browse."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pandas as pd
import pytest

from tests.helpers import chromium_page, experiment_file, run_cli, wait_until_answering, write_jsonl
from train.tracking.ui import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An `mlflow server` process for this module, stopped afterwards."""
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'store.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=open(folder / "server.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/health", process, folder / "server.log", "mlflow server")
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def served_run(server, sample_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    config = experiment_file(folder, sample_dataset, tracking={"uri": server, "experiment": "served",
                                                               "run_name": "tfidf-served"},
                             evaluation={"splits": ["test"]})  # one split: half the files sent over HTTP
    result = run_cli("train", config, "--register", "taawun-sample")
    assert result.exit_code == 0, result.output
    assert f"MLflow UI: {server}/#/experiments/" in result.output  # the run's page, on the server itself
    return next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))


def test_train_logs_and_registers_on_the_server(server, served_run):
    client = mlflow.MlflowClient(server)
    run = client.get_run(served_run)
    assert run.data.tags["taawun.model_kind"] == "tfidf" and "test/topic/macro_f1" in run.data.metrics
    versions = client.search_model_versions("name = 'taawun-sample'")
    assert [v.version for v in versions] == ["1"] and versions[0].run_id == served_run
    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model("models:/taawun-sample/1")
    out = model.predict(pd.DataFrame({"text": ["فاز المنتخب الوطني في المباراة النهائية للبطولة بهدفين"]}))
    assert out.loc[0, "topic"] == "sports"


def test_predict_by_registered_model_uri(server, served_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "x", "text": "ارتفعت أسعار النفط في الأسواق العالمية وتراجع الدولار"}\n', encoding="utf-8")
    result = run_cli("predict", "models:/taawun-sample/1", "--input", source, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert '"id": "x"' in (tmp_path / "out.jsonl").read_text(encoding="utf-8")


def test_mlflow_ui_shows_the_run_in_chromium(server, served_run, tmp_path):
    experiment = mlflow.MlflowClient(server).get_experiment_by_name("served").experiment_id
    screenshot = tmp_path / "run.png"
    dom = chromium_page(f"{server}/#/experiments/{experiment}/runs/{served_run}", screenshot)
    assert screenshot.stat().st_size > 10_000
    assert "tfidf-served" in dom  # the run, by name
    assert "test/topic/macro_f1" in dom  # its metrics
    assert "served" in dom  # the experiment


def test_commands_load_models_from_the_tracking_uri_they_are_given(server, served_run, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    texts = ["فاز المنتخب الوطني في المباراة النهائية للبطولة بهدفين", "ارتفعت أسعار النفط في الأسواق العالمية",
             "استقبل وزير الخارجية نظيره لبحث العلاقات الثنائية"]
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": f"x{i}", "text": text, "topic": "sports"}
                                                 for i, text in enumerate(texts)])
    for model in (f"runs:/{served_run}/model", "models:/taawun-sample/1"):
        for command in (["predict", model, "--input", source, "--output", tmp_path / "out.jsonl"],
                        ["evaluate", model, "--input", source, "--no-log"],
                        ["annotate", "suggest", model, "--input", source, "--n", "1", "--output",
                         tmp_path / "tasks.json"]):
            result = run_cli(*command, "--tracking-uri", server, cwd=tmp_path)
            assert result.exit_code == 0, (command, result.output)
    assert not (tmp_path / "mlflow.db").exists()  # nothing was looked up in the default store
