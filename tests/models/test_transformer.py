"""The transformer path through the real CLI, with a tiny BERT built from the sample (no hub, no network)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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
    write_jsonl,
)

TINY = yaml.safe_load((ROOT / "configs" / "experiments" / "tiny_bert.yaml").read_text(encoding="utf-8"))["model"]
QUICK = {**TINY, "epochs": 2, "tiny": {**TINY["tiny"], "hidden_size": 32, "intermediate_size": 64, "heads": 2},
         "early_stopping_patience": None, "max_length": 128}


def _run_id(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("run "))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, sample_dataset):
    """tiny_bert.yaml, as shipped, trained once on the sample through the CLI."""
    folder = tmp_path_factory.mktemp("tiny")
    result = run_cli("train", experiment_file(folder, sample_dataset, model=TINY, evaluation={"bootstrap": 200}))
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.output)
    return {"folder": folder, "run_id": run_id, "uri": f"sqlite:///{folder / 'mlflow.db'}",
            "model_dir": folder / "runs" / "tests" / run_id / "model"}


def test_tiny_bert_trains_logs_and_predicts_raw_text(tiny):
    client = mlflow.MlflowClient(tiny["uri"])
    run = client.get_run(tiny["run_id"])
    metrics = run.data.metrics
    assert run.data.tags["taawun.model_kind"] == "transformer"
    assert metrics["test/topic/macro_f1"] > 0.3 and metrics["test/stance/macro_f1"] > 0.35  # floors on the sample
    assert len(client.get_metric_history(tiny["run_id"], "epoch/validation/topic/macro_f1")) >= 3
    assert len(client.get_metric_history(tiny["run_id"], "train/loss")) >= 3
    assert "model.task_weights" in run.data.params  # dict-valued params are logged, not refused
    files = {p.name for p in tiny["model_dir"].rglob("*")}
    assert {"model.safetensors", "heads.safetensors", "tokenizer.json", "model.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pkl", ".pt"))]
    mlflow.set_tracking_uri(tiny["uri"])
    model = mlflow.pyfunc.load_model(f"runs:/{tiny['run_id']}/model")
    out = model.predict(pd.DataFrame({"text": ["<p>فاز المنتخب في المباراة النهائية للبطولة بهدفين</p>",
                                               "ارتفعت أسعار النفط في الأسواق العالمية"]}))
    assert list(out["topic"]) and set(out["stance"]) <= {"supportive", "neutral", "critical"}
    probabilities = out[[c for c in out.columns if c.startswith("topic.proba.")]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_tiny_tokenizer_covers_arabic(tiny, sample_dataset):
    import datasets
    from transformers import AutoTokenizer

    from train.models.transformer.tiny import unknown_rate

    tokenizer = AutoTokenizer.from_pretrained(tiny["model_dir"] / "encoder")
    test = datasets.load_from_disk(str(sample_dataset))["test"]
    assert unknown_rate(tokenizer, list(test["text"])) < 0.02
    assert tokenizer.unk_token not in tokenizer.tokenize("الارهاب والتعاون الامني")  # normalized text, as models see it


def test_tiny_bert_is_the_same_when_built_twice(sample_dataset, tmp_path):
    """Same texts and seed, same vocabulary and weights: before the fix the vocabulary changed with every build."""
    import datasets
    from safetensors.numpy import load_file

    from train.models.transformer.config import TinyBertConfig
    from train.models.transformer.tiny import build_tiny_bert

    texts = list(datasets.load_from_disk(str(sample_dataset))["train"]["text"])
    config = TinyBertConfig(vocab_size=1500, min_frequency=2, hidden_size=32, layers=1, heads=2, intermediate_size=64)
    builds = [build_tiny_bert(texts, config, tmp_path / str(i), seed=5) for i in range(3)]
    vocabularies = [(folder / "tokenizer.json").read_text(encoding="utf-8") for folder in builds]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]
    weights = [load_file(str(folder / "model.safetensors")) for folder in builds]
    assert all(np.array_equal(weights[0][name], w[name]) for w in weights[1:] for name in weights[0])


def test_predict_and_evaluate_with_the_transformer(tiny, sample_dataset, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": arabic_text(1)}, {"id": "b", "text": "خبر"}])
    result = run_cli("predict", tiny["model_dir"], "--input", source, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    evaluated = run_cli("evaluate", tiny["model_dir"], "--input", sample_dataset, "--no-log", "--json")
    logged = mlflow.MlflowClient(tiny["uri"]).get_run(tiny["run_id"]).data.metrics
    metrics = json.loads(evaluated.output[: evaluated.output.rindex("}") + 1])
    assert metrics["test"]["stance"]["macro_f1"] == pytest.approx(logged["test/stance/macro_f1"])


@pytest.mark.parametrize("mode", ["head", "head_tail", "chunks"])
def test_truncation_windows(mode):
    from transformers import BertTokenizerFast

    from train.models.transformer.config import TransformerConfig
    from train.models.transformer.encoding import encode

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(100)])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=False)
    config = TransformerConfig(max_length=22, truncation=mode, head_tokens=5, chunk_overlap=4)
    text = " ".join(f"w{i}" for i in range(50))
    features = encode(tokenizer, [text, "w1 w2"], None, config).features
    body = [[t - 5 for t in f["input_ids"][1:-1]] for f in features]
    if mode == "head":
        assert body[0] == list(range(20))
    elif mode == "head_tail":
        assert body[0] == list(range(5)) + list(range(35, 50))
    else:  # windows of 20 tokens overlapping by 4 cover the whole article
        assert body[:3] == [list(range(0, 20)), list(range(16, 36)), list(range(32, 50))]
    assert body[-1] == [1, 2] and all(len(f["input_ids"]) <= 22 for f in features)


def test_chunks_train_and_average(tmp_path, sample_dataset):
    model = {**QUICK, "truncation": "chunks", "max_length": 48, "chunk_overlap": 8, "epochs": 1}
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model=model, tasks=["topic"],
                                              evaluation={"splits": ["test"], "bootstrap": 0}))
    assert result.exit_code == 0, result.output
    from train.models.predictor import load_predictor

    predictor = load_predictor(tmp_path / "runs" / "tests" / _run_id(result.output) / "model")
    long_text = " ".join(arabic_text(i, words=60) for i in range(4))
    encoded_windows = predictor.model.documents([""], [long_text])
    assert encoded_windows and predictor.predict_raw([""], [long_text], {})["topic"].shape == (1, 8)


def test_class_weights_come_from_the_training_split(tmp_path, sample_dataset):
    import datasets
    from safetensors.torch import load_file

    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model={**QUICK, "class_weights": True,
                                                                              "epochs": 1},
                                              tasks=["bilateral_security_cooperation"],
                                              evaluation={"splits": ["test"], "bootstrap": 0}))
    assert result.exit_code == 0, result.output
    heads = load_file(tmp_path / "runs" / "tests" / _run_id(result.output) / "model" / "heads.safetensors")
    train = np.asarray(datasets.load_from_disk(str(sample_dataset))["train"]["bilateral_security_cooperation"])
    counts = np.bincount(train, minlength=2)
    expected = len(train) / (2 * counts)
    np.testing.assert_allclose(heads["class_weight_bilateral_security_cooperation"].numpy(), expected, rtol=1e-5)


def test_pair_task_reads_target_and_text(tmp_path):
    data = pair_task_data(tmp_path, 60)
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    result = run_cli("train", experiment_file(tmp_path, data, model={**QUICK, "use_title": False},
                                              evaluation={"group_field": None, "bootstrap": 0}))
    assert result.exit_code == 0, result.output
    from train.models.predictor import load_predictor

    predictor = load_predictor(tmp_path / "runs" / "tests" / _run_id(result.output) / "model")
    assert predictor.target_fields == ["claim"]
    one = predictor.predict_raw([""], [rows[0]["text"]], {"claim": [rows[0]["claim"]]})["stance"]
    other = predictor.predict_raw([""], [rows[0]["text"]], {"claim": [arabic_text(5)]})["stance"]
    assert not np.allclose(one, other)  # the target is part of the input


def test_hub_name_offline_is_a_clear_error(tmp_path, sample_dataset, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    model = {"kind": "transformer", "name": "aubmindlab/bert-base-arabertv02"}
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model=model))
    assert result.exit_code == 1
    assert "'aubmindlab/bert-base-arabertv02' is not in the local Hugging Face cache" in result.output
    assert "HF_HUB_OFFLINE=1" in result.output and "local folder" in result.output


def test_farasa_models_fail_before_training(tmp_path, sample_dataset):
    model = {**QUICK, "arabert_preprocess": "aubmindlab/bert-base-arabertv2"}
    started = time.perf_counter()
    result = run_cli("train", experiment_file(tmp_path, sample_dataset, model=model))
    assert result.exit_code == 1 and "Farasa" in result.output and "bert-base-arabertv02" in result.output
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_resume_after_an_interrupted_run(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, model={**QUICK, "epochs": 40},
                             evaluation={"splits": ["test"], "bootstrap": 0}, tasks=["topic"])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "train", "train", str(config)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "runs" / "tests"
    deadline = time.time() + 180
    while not list(checkpoints.glob("work-*/checkpoints/checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "training ended before it could be interrupted"
        assert time.time() < deadline, "no checkpoint within 180 s"
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = max(int(p.name.split("-")[1]) for p in checkpoints.glob("work-*/checkpoints/checkpoint-*"))
    result = run_cli("train", config, "--resume")
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # the interrupted run, continued and finished
    assert "test/topic/macro_f1" in runs[0].data.metrics
    # Steps the killed process logged after its last checkpoint are logged again by the resumed one: MLflow keeps
    # both. What must hold: training went on past the interruption, and no logging step is missing.
    steps = sorted({m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")})
    assert max(steps) > interrupted
    assert steps == list(range(steps[0], steps[-1] + 1, steps[0]))


@pytest.mark.slow
def test_data_parallel_run_on_two_processes(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, model=QUICK, evaluation={"bootstrap": 0})
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
                             str(__import__("train.tracking.ui", fromlist=["free_port"]).free_port()), "-m", "train",
                             "train", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert len(runs) == 1, "only the main process logs"
    assert len(list((tmp_path / "runs" / "tests").glob("*/model/model.json"))) == 1
    assert result.stdout.count("logged to") == 1
