"""Confidence intervals that `taawun evaluate` reports are honest: a perfect model gets [1, 1]."""

from __future__ import annotations

import json

from tests.helpers import ROOT, run_cli, write_jsonl


def test_evaluating_a_perfect_model_gives_the_interval_1_1(trained, tmp_path):
    articles = [json.loads(line) for line in (ROOT / "data" / "sample" / "articles.jsonl").read_text(
        encoding="utf-8").splitlines()][:60]
    source = write_jsonl(tmp_path / "articles.jsonl", [{k: a[k] for k in ("id", "title", "text")} for a in articles])
    predicted = tmp_path / "predicted.jsonl"
    assert run_cli("predict", trained["model_dir"], "--input", source, "--output", predicted).exit_code == 0
    # Gold labels equal to the model's own predictions: whatever the resample, every article is right.
    rows = [json.loads(line) for line in predicted.read_text(encoding="utf-8").splitlines()]
    labelled = write_jsonl(tmp_path / "labelled.jsonl", [{**a, **{task: row[task] for task in (
        "topic", "bilateral_security_cooperation", "stance")}} for a, row in zip(articles, rows, strict=True)])
    result = run_cli("evaluate", trained["model_dir"], "--input", labelled, "--json", "--no-log")
    assert result.exit_code == 0, result.output
    for task, metrics in json.loads(result.output)["heldout"].items():
        assert metrics["macro_f1"] == 1.0, task
        assert metrics["macro_f1_ci"] == [1.0, 1.0], task
