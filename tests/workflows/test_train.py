"""`taawun train` with the TF-IDF baseline: what lands in MLflow, loading by URI, determinism, failures."""

from __future__ import annotations

import json
import time

import mlflow
import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT, experiment_file, run_cli


def _client(trained):
    return mlflow.MlflowClient(trained["uri"])


def test_run_logs_config_dataset_metrics_and_artifacts(trained, sample_dataset):
    run = _client(trained).get_run(trained["run_id"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["model.classifier"] == "logreg" and params["model.features.min_df"] == "2"
    assert tags["taawun.model_kind"] == "tfidf"
    assert tags["taawun.tasks"] == "topic,bilateral_security_cooperation,stance"
    assert len(tags["mlflow.source.git.commit"]) == 40
    report = json.loads((sample_dataset / "report.json").read_text())
    assert tags["taawun.dataset_fingerprint"] == report["fingerprint"]
    assert run.inputs.dataset_inputs[0].dataset.digest == report["fingerprint"][:32]
    local = json.loads((trained["folder"] / "runs" / "tests" / trained["run_id"] / "evaluation" / "metrics.json")
                       .read_text())
    for task in ("topic", "bilateral_security_cooperation", "stance"):
        assert metrics[f"test/{task}/macro_f1"] == pytest.approx(local["test"][task]["macro_f1"])
        assert metrics[f"test/{task}/macro_f1_ci_low"] <= metrics[f"test/{task}/macro_f1"]
    assert metrics["test/bilateral_security_cooperation/positive_f1"] >= 0
    assert metrics["test/topic/macro_f1"] > 0.5 and metrics["test/stance/macro_f1"] > 0.4  # floors on the sample
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=trained["run_id"], tracking_uri=trained["uri"])}
    assert {"config.yaml", "evaluation", "dataset"} <= artifacts
    evaluation = mlflow.artifacts.download_artifacts(run_id=trained["run_id"], artifact_path="evaluation",
                                                     tracking_uri=trained["uri"])
    for name in ("confusion/test_topic.png", "confusion/test_topic.csv", "pr_curve/test_bilateral_security_cooperation.png",
                 "misclassified/test.jsonl", "metrics.json"):
        assert (__import__("pathlib").Path(evaluation) / name).is_file(), name


def test_model_loads_by_uri_and_predicts_raw_text(trained):
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model(f"runs:/{trained['run_id']}/model")
    frame = pd.DataFrame({"title": ["مصر وبريطانيا"], "text": [
        "<p>استقبل وزير الداخلية المصري السفير البريطاني، وأكد الجانبان التعاون الأمني وتبادل المعلومات لمكافحة "
        "الإرهاب، وأشاد الوزير بالتعاون مع بريطانيا.</p> اترك تعليقاً"]})
    out = model.predict(frame)
    assert out.loc[0, "topic"] in {"security", "politics"}
    assert out.loc[0, "bilateral_security_cooperation"] == "yes"
    probabilities = [c for c in out.columns if c.startswith("topic.proba.")]
    assert len(probabilities) == 8 and out.loc[0, probabilities].sum() == pytest.approx(1.0)
    signature = model.metadata.get_input_schema().input_names()
    assert "text" in signature and "title" in signature


def test_same_config_same_metrics(tmp_path, sample_dataset, trained):
    result = run_cli("train", experiment_file(tmp_path, sample_dataset))
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    first = _client(trained).get_run(trained["run_id"]).data.metrics
    second = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id).data.metrics
    for key in first:
        if "/macro_f1" in key or "/accuracy" in key:
            assert first[key] == second[key], key


@pytest.mark.parametrize("classifier", ["linear_svm", "complement_nb"])
def test_other_classifiers_train(tmp_path, sample_dataset, classifier):
    config = experiment_file(tmp_path, sample_dataset, model={"classifier": classifier},
                             tasks=["topic", "bilateral_security_cooperation"], evaluation={"splits": ["test"]})
    result = run_cli("train", config)
    assert result.exit_code == 0, result.output
    assert "bilateral_security_cooperation" in result.output and "stance" not in result.output


def test_an_experiment_evaluates_with_its_priors_adapted_when_asked(tmp_path, sample_dataset):
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, tasks=["topic", "stance"],
                                              evaluation={"adapt_priors": True, "splits": ["test"]}))
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    metrics = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id).data.metrics
    for task, labels in (("topic", 8), ("stance", 3)):
        estimated = [value for key, value in metrics.items() if key.startswith(f"test/{task}/estimated_prior/")]
        assert len(estimated) == labels and sum(estimated) == pytest.approx(1, abs=1e-4)
        assert f"note: {task}: probabilities adapted to the label proportions estimated in these articles" in \
            result.output
    info = json.loads((tmp_path / "runs" / "tests" / run_id / "model" / "model.json").read_text(encoding="utf-8"))
    # The sample has a validation split: the temperature was fit there.
    assert {reference["from"] for reference in info["label_priors"].values()} == {"validation"}


def test_a_split_too_small_to_estimate_label_proportions_from_is_refused_before_training(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "data" / "sample.yaml").read_text(encoding="utf-8"))
    config["schema"] = str(ROOT / config["schema"])
    for entry in config["sources"] + config["annotations"]:
        entry["path"] = str(ROOT / entry["path"])
    config.update(output=str(tmp_path / "built"), split={**config["split"], "validation": 0.22, "test": 0.08})
    data = tmp_path / "small_test.yaml"
    data.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    experiment = experiment_file(tmp_path, data, evaluation={"adapt_priors": True})
    result = run_cli("train", experiment, "--dry-run")
    assert result.exit_code == 1
    assert "evaluation.adapt_priors estimates the label proportions of each evaluated split, and test (" in result.output
    assert "has fewer than 20 articles: drop it from evaluation.splits" in result.output
    assert run_cli("train", experiment, "--dry-run", "--set", "evaluation.splits=[validation]").exit_code == 0


def test_search_trials_are_child_runs(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, tasks=["topic"],
                             model={"search": {"grid": {"C": [1.0, 10.0]}, "on": "cv", "folds": 2}})
    result = run_cli("train", config)
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children = client.search_runs([client.get_run(run_id).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(c.data.params["trial.C"] for c in children) == ["1.0", "10.0"]
    assert all(0 <= c.data.metrics["search/topic/macro_f1"] <= 1 for c in children)


def test_unreachable_tracking_server_fails_fast(tmp_path, sample_dataset):
    from train.tracking.ui import free_port

    config = experiment_file(tmp_path, sample_dataset, tracking={"uri": f"http://127.0.0.1:{free_port()}"})
    started = time.perf_counter()
    result = run_cli("train", config)
    assert result.exit_code == 1
    assert "cannot reach the MLflow tracking server" in result.output
    assert time.perf_counter() - started < 30
    assert not (tmp_path / "runs").exists()  # failed before any training


def test_logging_failure_keeps_model_and_metrics(tmp_path, sample_dataset, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("store went away")

    monkeypatch.setattr(mlflow, "log_metrics", broken)
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, evaluation={"splits": ["test"]}))
    assert result.exit_code == 1
    assert "training finished, but logging to MLflow" in result.output and "store went away" in result.output
    folder = next(p for p in (tmp_path / "runs" / "tests").iterdir() if not p.name.startswith("work-"))
    assert str(folder) in result.output
    assert (folder / "model" / "model.json").is_file() and (folder / "evaluation" / "metrics.json").is_file()


def test_unknown_task_and_bad_config_key(tmp_path, sample_dataset):
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, tasks=["sentiment"]))
    assert result.exit_code == 1 and "tasks ['sentiment'] are not in the dataset's schema" in result.output
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model={"clasifier": "logreg"}))
    assert result.exit_code == 1 and "model.clasifier: unknown key" in result.output


def test_runs_table_and_compare(trained, tmp_path, sample_dataset):
    result = run_cli("runs", "--tracking-uri", trained["uri"])
    assert result.exit_code == 0
    assert trained["run_id"] in result.output and "tfidf" in result.output and "stance" in result.output
    other = run_cli("train", experiment_file(trained["folder"], sample_dataset, model={"params": {"C": 1.0}},
                                             evaluation={"splits": ["test"]}))
    other_id = next(line.split()[1] for line in other.output.splitlines() if line.startswith("run "))
    compared = run_cli("runs", "--tracking-uri", trained["uri"], "--compare", trained["run_id"], other_id)
    assert compared.exit_code == 0
    assert "param: model.params.C" in compared.output and "test/topic/macro_f1" in compared.output


def test_pair_task_uses_the_target(tmp_path):
    """A stance-toward-a-claim task: trained through the CLI; the prediction depends on the claim."""
    from tests.helpers import arabic_text, write_config, write_jsonl

    schema = tmp_path / "schema.yaml"
    schema.write_text("name: pairs\ntasks:\n  - name: stance\n    target_field: claim\n"
                      "    labels: [agree, disagree, other]\n", encoding="utf-8")
    rows = []
    for i in range(90):
        claim = arabic_text(1000 + i, words=8)
        kind = ["agree", "disagree", "other"][i % 3]
        text = {"agree": claim, "disagree": "نفى " + claim.replace(".", "") + " غير صحيح",
                "other": arabic_text(5000 + i, words=8)}[kind]
        rows.append({"id": f"p{i}", "claim": claim, "text": text, "label": kind})
    source = {"path": str(write_jsonl(tmp_path / "pairs.jsonl", rows)), "targets": {"claim": "claim"},
              "labels": {"stance": "label"}, "fields": {"title": None, "date": None, "source": None}}
    data = write_config(tmp_path / "data.yaml", {"schema": str(schema), "sources": [source],
                                                 "output": str(tmp_path / "built")})
    result = run_cli("train", experiment_file(tmp_path, data, evaluation={"group_field": None},
                                              model={"features": {"use_title": False, "min_df": 1}}))
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    text = rows[0]["text"]
    out = model.predict(pd.DataFrame({"text": [text, text], "claim": [rows[0]["claim"], arabic_text(77, words=8)]}))
    assert out.loc[0, "stance"] == "agree"
    assert out.loc[0, "stance.proba.agree"] > out.loc[1, "stance.proba.agree"]
    assert mlflow.MlflowClient().get_run(run_id).data.metrics["test/stance/macro_f1"] > 0.6


@pytest.mark.slow
def test_ui_command_serves_the_store(trained):
    import signal
    import subprocess
    import sys
    import urllib.request

    process = subprocess.Popen([sys.executable, "-m", "train", "ui", "--tracking-uri", trained["uri"]],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"MLflow UI for {trained['uri']}: http://127.0.0.1:")
        url = line.split()[4]
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.time() < deadline, "the MLflow UI did not answer within 90 s"
                time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
