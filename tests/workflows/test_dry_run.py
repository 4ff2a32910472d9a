"""`taawun train CONFIG --dry-run`: checks the config, the data, the tasks, the splits and the tracking store, prints
what would run, and trains and logs nothing."""

from __future__ import annotations

import json

from tests.helpers import experiment_file, labelled_articles, run_cli

SPLIT = {"train": 0.6, "validation": 0.2, "test": 0.2}


def test_dry_run_builds_the_data_and_says_what_would_run(tmp_path, corpus):
    data = corpus(split=SPLIT)
    config = experiment_file(tmp_path, data, tracking={"run_name": "tfidf-{model.classifier}"})
    result = run_cli("train", config, "--dry-run", "--set", "model.classifier=linear_svm")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "nothing was trained or logged" in out
    assert "run name    tfidf-linear_svm" in out and "model.classifier = linear_svm" in out
    assert "tasks       topic, bilateral_security_cooperation, stance" in out
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))  # built: it was missing
    for split, stats in report["splits"].items():
        row = next(line.split() for line in out.splitlines() if line.startswith(f"{split} "))
        assert int(row[1]) == stats["articles"], row
    assert "does not exist yet" in out  # the SQLite store: its folder is writable, the first run creates it
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()


def test_dry_run_on_an_existing_store_logs_nothing(tmp_path, trained, sample_dataset):
    import mlflow

    client = mlflow.MlflowClient(trained["uri"])
    before = [run.info.run_id for run in client.search_runs([e.experiment_id for e in client.search_experiments()])]
    config = experiment_file(tmp_path, sample_dataset, tracking={"uri": trained["uri"]})
    result = run_cli("train", config, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"in {trained['uri']} (reachable)" in result.stdout
    after = [run.info.run_id for run in client.search_runs([e.experiment_id for e in client.search_experiments()])]
    assert after == before


def test_dry_run_refuses_a_task_the_data_lacks(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, tasks=["topic", "sentiment"])
    result = run_cli("train", config, "--dry-run")
    assert result.exit_code == 1 and "tasks ['sentiment'] are not in the dataset's schema" in result.stderr


def test_dry_run_refuses_a_task_with_one_label_in_train(tmp_path, corpus):
    articles = [{**article, "stance": "neutral"} for article in labelled_articles(40)]
    config = experiment_file(tmp_path, corpus(articles, split=SPLIT))
    result = run_cli("train", config, "--dry-run")
    assert result.exit_code == 1 and "task 'stance': the training split has only ['neutral'] labels" in result.stderr


def test_dry_run_refuses_an_empty_evaluation_split(tmp_path, corpus):
    data = corpus(split={"train": 0.8, "validation": 0.0, "test": 0.2})
    result = run_cli("train", experiment_file(tmp_path, data), "--dry-run")
    assert result.exit_code == 1 and "the ['validation'] split(s) are empty" in result.stderr


def test_dry_run_refuses_an_unreachable_tracking_server(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, tracking={"uri": "http://127.0.0.1:9"})
    result = run_cli("train", config, "--dry-run")
    assert result.exit_code == 1 and "cannot reach the MLflow tracking server http://127.0.0.1:9" in result.stderr
