"""`taawun annotate` without a server: the pre-annotations' scores, and push/pull faults reported clearly.

The round trip against a real Label Studio server is tests/workflows/test_annotate_live.py (slow).
"""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest

from tests.helpers import run_cli, write_config, write_jsonl
from tests.workflows.test_suggest import expected_uncertainty, sample_articles
from train.models.predictor import load_predictor


def test_prediction_score_is_the_models_confidence(tmp_path, trained):
    records = sample_articles()[:30]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    output = tmp_path / "tasks.json"
    result = run_cli("annotate", "suggest", trained["model_dir"], "--input", pool, "--n", "6", "--output", output)
    assert result.exit_code == 0, result.output
    tasks = json.loads(output.read_text(encoding="utf-8"))
    uncertainty = expected_uncertainty(trained["model_dir"], records)
    predictor = load_predictor(trained["model_dir"])
    by_id = {r["id"]: r for r in records}
    for task in tasks:
        (prediction,) = task["predictions"]
        # Label Studio sorts tasks by this score, and reads it as the model's confidence: sure predictions score high.
        assert prediction["score"] == pytest.approx(1 - uncertainty[task["data"]["id"]], abs=1e-6)
        record = by_id[task["data"]["id"]]
        proba = predictor.predict_raw([record["title"]], [record["text"]], {})
        for item in prediction["result"]:
            assert item["score"] == pytest.approx(float(np.max(proba[item["from_name"]][0])), abs=1e-6)
    scores = [task["predictions"][0]["score"] for task in tasks]
    assert scores == sorted(scores)  # the least confident first: the order the articles were picked in


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_push_to_an_unreachable_server_fails_fast_naming_the_url(tmp_path, trained, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    pool = write_jsonl(tmp_path / "pool.jsonl", sample_articles()[:5])
    push = ("annotate", "push", trained["model_dir"], "--input", pool, "--n", "2")
    missing = run_cli(*push, "--url", "http://127.0.0.1:9")
    assert missing.exit_code == 1 and "--api-key" in missing.output and "LABEL_STUDIO_API_KEY" in missing.output
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.perf_counter()
    result = run_cli(*push, "--url", url, "--api-key", "k" * 40)
    assert result.exit_code == 1
    assert f"error: cannot reach Label Studio at {url}" in result.output
    assert "Traceback" not in result.output and time.perf_counter() - started < 15
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "k" * 40)
    pull = run_cli("annotate", "pull", "--project", "news", "--output", tmp_path / "export.json")
    assert pull.exit_code == 1 and f"cannot reach Label Studio at {url}" in pull.output
    assert not (tmp_path / "export.json").exists()


def test_pull_refuses_a_data_config_that_does_not_read_the_export(tmp_path):
    config = write_config(tmp_path / "data.yaml", {"sources": [{"path": str(tmp_path / "a.jsonl")}],
                                                   "output": str(tmp_path / "built")})
    result = run_cli("annotate", "pull", "--url", "http://127.0.0.1:9", "--api-key", "k" * 40, "--project", "news",
                     "--output", tmp_path / "export.json", "--data-config", config)
    assert result.exit_code == 1
    assert "does not read" in result.output and "export.json" in result.output
    assert "format: labelstudio" in result.output
