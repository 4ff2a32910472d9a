"""`taawun export`: a tiny BERT as a Hugging Face pipeline folder and as ONNX, both predicting as taawun does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli

# The tiny BERT of tests/models/test_contract.py, trained longer (8 epochs) so that its probabilities differ from
# article to article: a parity check on a model that answers everything alike could not fail. `truncation: head`
# cuts where a pipeline's `truncation=True` cuts.
TINY = {"tiny": {"vocab_size": 800, "hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64},
        "max_length": 128, "truncation": "head", "epochs": 8, "learning_rate": 3e-3, "early_stopping_patience": None,
        "arabert_preprocess": "aubmindlab/bert-base-arabertv02"}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_model(sample_dataset, tmp_path_factory) -> Path:
    """A tiny BERT fitted on the sample's train split and saved as `taawun train` saves it."""
    import datasets

    from train.models import registry
    from train.models.base import Articles, FitContext, split_labels
    from train.models.predictor import Predictor
    from train.schema import Schema

    folder = tmp_path_factory.mktemp("export-model")
    settings = json.loads((sample_dataset / "taawun.json").read_text(encoding="utf-8"))
    schema = Schema.model_validate(settings["schema"])
    train = datasets.load_from_disk(str(sample_dataset))["train"]
    model = registry.model_class("transformer")(registry.config_class("transformer")(**TINY), schema.tasks)
    model.fit(Articles.from_split(train), split_labels(train, schema.tasks), FitContext(seed=3, work_dir=folder))
    preprocessing = {key: settings[key] for key in ("cleaning", "normalization", "schema")}
    Predictor(model, schema, schema.tasks, preprocessing, {}).save(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def articles(sample_dataset) -> dict:
    """A few raw test articles of the sample (titles and texts)."""
    import datasets

    test = datasets.load_from_disk(str(sample_dataset))["test"].select(range(6))
    return {"titles": list(test["raw_title"]), "texts": list(test["raw_text"])}


def _taawun(model: Path, articles: dict) -> tuple[dict[str, np.ndarray], list[str], object]:
    """taawun's probabilities for the articles, the text its network reads, and the predictor."""
    from train.models.predictor import load_predictor
    from train.models.transformer.export import encoder_text

    predictor = load_predictor(model)
    proba = predictor.predict_raw(articles["titles"], articles["texts"], {})
    return proba, encoder_text(predictor, articles["titles"], articles["texts"]), predictor


def test_hf_export_loads_in_a_pipeline_with_taawuns_probabilities(tiny_model, articles, tmp_path):
    from transformers import pipeline

    expected, inputs, predictor = _taawun(tiny_model, articles)
    for task in predictor.tasks:
        assert expected[task.name].std(axis=0).max() > 100 * TOLERANCE  # the articles get different answers
        output = tmp_path / task.name
        result = run_cli("export", tiny_model, "--format", "hf", "--task", task.name, "--output", output)
        assert result.exit_code == 0, result.output
        config = json.loads((output / "config.json").read_text(encoding="utf-8"))
        assert config["architectures"] == ["BertForSequenceClassification"]
        assert config["id2label"] == {str(i): label for i, label in enumerate(task.label_names)}
        classify = pipeline("text-classification", model=str(output), top_k=None)
        scores = classify(inputs, truncation=True)
        got = np.array([[{s["label"]: s["score"] for s in row}[label] for label in task.label_names] for row in scores])
        np.testing.assert_allclose(got, expected[task.name], atol=TOLERANCE)


def test_onnx_export_gives_every_tasks_probabilities(tiny_model, articles, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'taawun[export]' (make test installs it)")
    from transformers import AutoTokenizer

    expected, inputs, predictor = _taawun(tiny_model, articles)
    output = tmp_path / "onnx"
    result = run_cli("export", tiny_model, "--format", "onnx", "--output", output)
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(output / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    manifest = json.loads((output / "taawun_export.json").read_text(encoding="utf-8"))
    tokens = AutoTokenizer.from_pretrained(output)(inputs, truncation=True, max_length=manifest["max_length"],
                                                   padding=True, return_tensors="np")
    logits = session.run(None, {name: tokens[name] for name in ("input_ids", "attention_mask", "token_type_ids")})
    assert [o.name for o in session.get_outputs()] == [f"logits_{t.name}" for t in predictor.tasks]
    for task, values in zip(predictor.tasks, logits, strict=True):
        assert manifest["tasks"][task.name]["labels"] == task.label_names
        exp = np.exp(values - values.max(axis=1, keepdims=True))
        np.testing.assert_allclose(exp / exp.sum(axis=1, keepdims=True), expected[task.name], atol=TOLERANCE)


def test_export_refuses_other_kinds_and_foreign_folders(trained, tiny_model, tmp_path):
    result = run_cli("export", trained["model_dir"], "--format", "onnx", "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert "is a tfidf model: only the transformer kind exports" in result.output
    assert not (tmp_path / "out").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    result = run_cli("export", tiny_model, "--format", "hf", "--task", "topic", "--output", tmp_path / "mine")
    assert result.exit_code == 1 and "is not an earlier output of this command" in result.output
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep me"
    result = run_cli("export", tiny_model, "--format", "hf", "--output", tmp_path / "hf")
    assert result.exit_code == 1 and "add --task, one of ['topic', 'bilateral_security_cooperation'" in result.output
