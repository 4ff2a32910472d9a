"""`taawun tune`: candidates compared on the training split alone; the test split changes nothing it chooses."""

from __future__ import annotations

import json
import re
import shutil

import yaml

from tests.helpers import experiment_file, run_cli

TUNE = {"folds": 3, "ensemble": 2,
        "candidates": [{"kind": "tfidf", "grid": {"params.C": [1.0, 10.0]}},
                       {"kind": "tfidf", "classifier": "complement_nb"}]}


def _tune(folder, data) -> tuple[dict, dict]:
    folder.mkdir()
    config = experiment_file(folder, data, tune=TUNE, thresholds={"tune": "cv", "folds": 3},
                             evaluation={"splits": ["test"], "bootstrap": 0})
    result = run_cli("tune", config)
    assert result.exit_code == 0, result.output
    chosen = yaml.safe_load(result.output.split("use as they are):\n", 1)[1].split("\n\n", 1)[0])
    run_id = re.search(r"^run (\w+) ", result.output, re.M).group(1)
    model = json.loads(next(folder.glob(f"runs/tests/{run_id}/model/model.json")).read_text())
    assert "<- chosen" in result.output
    metrics = json.loads(next(folder.glob(f"runs/tests/{run_id}/evaluation/metrics.json")).read_text())["test"]
    return chosen, {**model, "test_metrics": metrics}


def test_tune_chooses_on_the_training_split_only(tmp_path, sample_dataset):
    import datasets

    chosen, model = _tune(tmp_path / "a", sample_dataset)
    assert chosen["model"]["kind"] in ("tfidf", "ensemble")
    # The same dataset with every test label changed: the choice, its weights and thresholds must not move.
    changed = tmp_path / "changed"
    shutil.copytree(sample_dataset, changed)
    dataset = datasets.load_from_disk(str(sample_dataset))
    test = dataset["test"].map(lambda row: {"topic": (row["topic"] + 1) % 8,
                                            "bilateral_security_cooperation": 1 - row["bilateral_security_cooperation"]})
    shutil.rmtree(changed / "test")
    test.save_to_disk(str(changed / "test"))
    chosen_again, model_again = _tune(tmp_path / "b", changed)
    assert chosen_again == chosen
    assert model_again.get("thresholds") == model.get("thresholds")
    assert model_again["model"] == model["model"]
    assert model_again["test_metrics"] != model["test_metrics"]  # the labels did change what the test split says
