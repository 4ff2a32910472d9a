"""The levers for few labels (issue 12), each through `taawun train` on the sample, with a floor it needs to pass."""

from __future__ import annotations

import csv
import json
import re

from tests.helpers import ROOT, SCHEMA, experiment_file, run_cli, write_config, write_jsonl

RARE = {"sports": "Sport", "health": "Health", "culture": "Culture", "technology": "Tech"}


def _sample() -> list[dict]:
    """The sample's articles with annotator A's labels inline."""
    labels = {row["id"]: row for row in csv.DictReader(open(ROOT / "data/sample/annotations/annotator_a.csv",
                                                            encoding="utf-8"))}
    rows = [json.loads(line) for line in (ROOT / "data/sample/articles.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{**row, **{k: v for k, v in labels[row["id"]].items() if k != "id"}} for row in rows]


def _test_metrics(output: str, run_dir) -> dict:
    run_id = re.search(r"^run (\w+) ", output, re.M).group(1)
    return json.loads(next(run_dir.glob(f"runs/tests/{run_id}/evaluation/metrics.json")).read_text())["test"]


def test_an_auxiliary_corpus_teaches_the_labels_the_target_data_lacks(tmp_path):
    """The target's training articles have no sports, health, culture or technology; an auxiliary corpus does."""
    articles = _sample()
    rare = [a for a in articles if a["topic"] in RARE]
    held = {a["id"] for i, a in enumerate(rare) if i % 2 == 0}
    target = [a for a in articles if a["topic"] not in RARE]
    test = [a for a in rare if a["id"] in held] + target[::4]
    train = [a for a in target if a not in test]
    auxiliary = [{"id": f"aux-{a['id']}", "title": a["title"], "text": a["text"], "section": RARE[a["topic"]]}
                 for a in rare if a["id"] not in held]
    labels = {task: task for task in ("topic", "bilateral_security_cooperation", "stance")}
    sources = [{"path": str(write_jsonl(tmp_path / "train.jsonl", train)), "labels": labels},
               {"path": str(write_jsonl(tmp_path / "test.jsonl", test)), "labels": labels, "split": "test"}]
    aux_source = {"path": str(write_jsonl(tmp_path / "aux.jsonl", auxiliary)), "name": "sections",
                  "fields": {"date": None, "source": None}, "labels": {"topic": "section"},
                  "label_map": {"topic": {value: key for key, value in RARE.items()}}, "auxiliary": True,
                  "weight": 0.5}
    scores = {}
    for name, extra in (("without", []), ("with", [aux_source])):
        data = write_config(tmp_path / f"data-{name}.yaml", {
            "schema": str(SCHEMA), "sources": sources + extra, "split": {"strategy": "file", "train": 0.85,
                                                                         "validation": 0.15, "test": 0.0},
            "output": str(tmp_path / f"built-{name}")})
        folder = tmp_path / name
        folder.mkdir()
        result = run_cli("train", experiment_file(folder, data, evaluation={"splits": ["test"], "bootstrap": 0}))
        assert result.exit_code == 0, result.output
        scores[name] = _test_metrics(result.output, folder)["topic"]
    report = json.loads((tmp_path / "built-with" / "report.json").read_text())
    added = report["split"]["auxiliary"]  # (the sample's exact duplicates are read once)
    assert added["train"] == added["articles"] >= len(auxiliary) - 3 and added["left_out"] == 0
    assert report["splits"]["validation"].get("auxiliary") is None  # training data only
    assert max(m["f1"] for label, m in scores["without"]["per_class"].items() if label in RARE) == 0.0
    assert scores["without"]["macro_f1"] <= 0.5  # four of eight labels never predicted
    assert scores["with"]["macro_f1"] >= 0.5 and scores["with"]["macro_f1"] - scores["without"]["macro_f1"] >= 0.25
    assert min(scores["with"]["per_class"][label]["f1"] for label in RARE) > 0
