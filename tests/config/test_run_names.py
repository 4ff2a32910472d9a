"""Run names follow the config: `{model.classifier}`-style placeholders in `tracking.run_name`, filled from the
resolved config, so that `--set model.classifier=linear_svm` does not log a run called "tfidf-logreg"."""

from __future__ import annotations

import mlflow
import pytest
import yaml

from tests.helpers import ROOT, experiment_file, run_cli

EXPERIMENTS = ROOT / "configs" / "experiments"


def shown_run_name(config, *overrides: str) -> str:
    args = [item for pair in overrides for item in ("--set", pair)]
    result = run_cli("config", "show", config, *args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)["tracking"]["run_name"]


def test_the_tfidf_run_name_follows_the_classifier():
    names = {classifier: shown_run_name(EXPERIMENTS / "tfidf.yaml", f"model.classifier={classifier}")
             for classifier in ("logreg", "linear_svm", "complement_nb")}
    assert names == {"logreg": "tfidf-logreg", "linear_svm": "tfidf-linear_svm", "complement_nb": "tfidf-complement_nb"}


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_run_name_resolves(path):
    name = shown_run_name(path)
    assert name and "{" not in name and "}" not in name
    if path.name == "base.yaml":
        assert name == "tfidf"  # no run name given: the model kind


def test_sentence_encoder_names_follow_features_and_head():
    assert shown_run_name(EXPERIMENTS / "sentence_encoder.yaml") == "sentence-encoder-logreg"
    assert shown_run_name(EXPERIMENTS / "sentence_encoder.yaml", "model.head=mlp") == "sentence-encoder-mlp"
    assert shown_run_name(EXPERIMENTS / "sentence_encoder_tfidf.yaml") == "sentence-encoder+tfidf-logreg"


def test_the_logged_run_carries_the_resolved_name(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, tasks=["stance"],
                             tracking={"run_name": "{model.kind}-{model.classifier}-C{model.params.C}"},
                             evaluation={"splits": ["test"], "bootstrap": 0})
    result = run_cli("train", config, "--set", "model.classifier=linear_svm")
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id)
    assert run.info.run_name == "tfidf-linear_svm-C0.5"
    assert run.data.params["tracking.run_name"] == "tfidf-linear_svm-C0.5"


def test_a_placeholder_naming_no_key_is_an_error(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, tracking={"run_name": "tfidf-{model.clasifier}"})
    result = run_cli("train", config)
    assert result.exit_code == 1
    assert f"{config}: tracking.run_name: {{model.clasifier}} names no key of the config" in result.stderr
    assert "model.classifier" in result.stderr  # the closest key, suggested
    assert not (tmp_path / "mlflow.db").exists()  # refused before any work
