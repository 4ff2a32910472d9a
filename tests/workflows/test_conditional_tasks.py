"""A task that applies only when another task has some labels (`applies_when`): no label where it does not apply.

`taawun predict` (JSONL and CSV), the MLflow pyfunc model and `Predictor.predict_frame` agree: where the task it
depends on is predicted with another label, the task's label is empty and it has no probabilities.
"""

from __future__ import annotations

import csv
import json
import math
import random

import mlflow
import pandas as pd
import pytest

from tests.helpers import experiment_file, run_cli, write_config, write_jsonl

SCHEMA = """name: conditional
tasks:
  - name: topic
    labels: [politics, security, economy]
  - name: cooperation
    kind: binary
    labels: ["yes", "no"]
    applies_when: {task: topic, labels: [security]}
"""
VOCABULARY = {
    "politics": "البرلمان الانتخابات الأحزاب الحكومة الرئيس المعارضة الدستور التصويت".split(),
    "security": "الجيش الأمن الشرطة الإرهاب الحدود الضباط المخابرات العسكرية".split(),
    "economy": "السوق النفط البنك الأسعار التضخم الاستثمار البورصة الشركات".split(),
}
COOPERATION = {"yes": "التعاون الاتفاق تبادل المعلومات الشراكة".split(), "no": "الهجوم الانفجار الضحايا".split()}


def _text(topic: str, cooperation: str | None, seed: int) -> str:
    rng = random.Random(seed)
    words = [rng.choice(VOCABULARY[topic]) for _ in range(25)]
    if cooperation:
        words += [rng.choice(COOPERATION[cooperation]) for _ in range(8)]
    return " ".join(words) + "."


def _articles(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        topic = ["politics", "security", "economy"][i % 3]
        cooperation = ("yes" if i % 2 else "no") if topic == "security" else None
        rows.append({"id": f"c{i:03d}", "title": "", "text": _text(topic, cooperation, i), "topic": topic,
                     "cooperation": cooperation})
    return rows


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A TF-IDF model of the conditional schema, trained through the CLI."""
    folder = tmp_path_factory.mktemp("conditional")
    (folder / "schema.yaml").write_text(SCHEMA, encoding="utf-8")
    source = {"path": str(write_jsonl(folder / "articles.jsonl", _articles(90))),
              "labels": {"topic": "topic", "cooperation": "cooperation"},
              "fields": {"date": None, "source": None}}
    data = write_config(folder / "data.yaml", {"schema": str(folder / "schema.yaml"), "sources": [source],
                                               "output": str(folder / "built")})
    config = experiment_file(folder, data, evaluation={"group_field": None, "splits": ["test"]},
                             model={"features": {"min_df": 1}})
    result = run_cli("train", config)
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    new = [{"id": f"n{i}", "text": _text(topic, "yes" if topic == "security" else None, 1000 + i)}
           for i, topic in enumerate(["politics", "security", "economy", "politics", "security"])]
    return {"folder": folder, "run_id": run_id, "uri": f"sqlite:///{folder / 'mlflow.db'}",
            "input": write_jsonl(folder / "new.jsonl", new)}


def _model_folder(run: dict):
    return run["folder"] / "runs" / "tests" / run["run_id"] / "model"


def _check(topics: list[str], cooperation: list, probabilities: list[dict | None]) -> None:
    """Cooperation has a label and probabilities exactly where the predicted topic is security."""
    assert "security" in topics and "politics" in topics  # both cases are exercised
    for topic, label, proba in zip(topics, cooperation, probabilities, strict=True):
        if topic == "security":
            assert label in ("yes", "no") and sum(proba.values()) == pytest.approx(1.0)
        else:
            assert label == "" and proba is None, (topic, label, proba)


def test_predict_jsonl_leaves_a_task_empty_where_it_does_not_apply(conditional_run, tmp_path):
    output = tmp_path / "out.jsonl"
    result = run_cli("predict", _model_folder(conditional_run), "--input", conditional_run["input"], "--output",
                     output)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    _check([r["topic"] for r in rows], [r["cooperation"] for r in rows],
           [r["cooperation_probabilities"] for r in rows])


def test_predict_csv_leaves_a_task_empty_where_it_does_not_apply(conditional_run, tmp_path):
    output = tmp_path / "out.csv"
    result = run_cli("predict", _model_folder(conditional_run), "--input", conditional_run["input"], "--output",
                     output)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(output.open(encoding="utf-8")))
    columns = ["cooperation.proba.yes", "cooperation.proba.no"]
    probabilities = [None if all(r[c] == "" for c in columns) else {c: float(r[c]) for c in columns} for r in rows]
    _check([r["topic"] for r in rows], [r["cooperation"] for r in rows], probabilities)


def test_pyfunc_model_leaves_a_task_empty_where_it_does_not_apply(conditional_run):
    mlflow.set_tracking_uri(conditional_run["uri"])
    model = mlflow.pyfunc.load_model(f"runs:/{conditional_run['run_id']}/model")
    frame = pd.read_json(conditional_run["input"], lines=True)
    out = model.predict(frame[["text"]])
    columns = ["cooperation.proba.yes", "cooperation.proba.no"]
    probabilities = [None if all(math.isnan(out.loc[i, c]) for c in columns) else
                     {c: out.loc[i, c] for c in columns} for i in range(len(out))]
    _check(list(out["topic"]), list(out["cooperation"]), probabilities)


def test_spark_refuses_to_adapt_the_priors_of_a_task_that_applies_only_sometimes(conditional_run, tmp_path):
    """Spark's predictions leave no probabilities where cooperation does not apply, and adaptation may make it apply
    there: refused before Spark starts, pointing to the local engine, which adapts it."""
    result = run_cli("predict", _model_folder(conditional_run), "--input", conditional_run["input"], "--output",
                     tmp_path / "out.jsonl", "--engine", "spark", "--adapt-priors")
    assert result.exit_code == 1 and "task(s) ['cooperation'] apply only when another task" in result.output
    assert "use --engine local" in result.output and not (tmp_path / "out.jsonl").exists()
