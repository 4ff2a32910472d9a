"""A Label Studio JSON export as its own article source (`format: labelstudio`), and its annotators named by e-mail."""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from tests.helpers import arabic_text, run_cli, write_config

TOPICS = ["politics", "security", "economy", "sports"]


def export_tasks(n: int) -> list[dict]:
    """What Label Studio exports (an export snapshot, annotators expanded) for `n` tasks taawun pushed."""
    tasks = []
    for i in range(n):
        data = {"id": f"n{i}", "title": f"عنوان {i}", "text": arabic_text(i), "date": f"2024-03-0{i % 9 + 1}",
                "source": ["out1", "out2"][i % 2]}
        votes = [{"id": 10 * i + k, "completed_by": {"id": k + 1, "email": email, "first_name": "", "last_name": ""},
                  "was_cancelled": False, "result": [
                      {"from_name": "topic", "to_name": "text", "type": "choices",
                       "value": {"choices": [TOPICS[i % 4]]}},
                      {"from_name": "bilateral_security_cooperation", "to_name": "text", "type": "choices",
                       "value": {"choices": ["yes" if i % 3 == 0 else "no"]}},
                      {"from_name": "stance", "to_name": "text", "type": "choices", "value": {"choices": ["neutral"]}}]}
                 for k, email in enumerate(["amal@example.org", "omar@example.org"])]
        tasks.append({"id": 500 + i, "data": data, "annotations": votes, "predictions": []})
    return tasks


def build(tmp_path: Path, export: list[dict], **extra) -> object:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    config = write_config(tmp_path / "data.yaml", {
        "sources": [{"path": str(path), "format": "labelstudio", "name": "labelstudio"}],
        "annotations": [{"path": str(path), "format": "labelstudio"}],
        "split": {"strategy": "random", "train": 0.6, "validation": 0.2, "test": 0.2},
        "output": str(tmp_path / "built"), **extra})
    return run_cli("data", "build", config)


def test_an_export_is_its_own_article_source(tmp_path):
    result = build(tmp_path, export_tasks(20))
    assert result.exit_code == 0, result.output
    dataset = datasets.load_from_disk(str(tmp_path / "built"))
    rows = {row["id"]: row for split in dataset.values() for row in split}
    assert sorted(rows) == sorted(f"n{i}" for i in range(20))
    names = dataset["train"].features["topic"].names
    for i in range(20):
        row = rows[f"n{i}"]
        assert names[row["topic"]] == TOPICS[i % 4]
        assert row["raw_text"] == arabic_text(i) and row["source"] == ["out1", "out2"][i % 2]
        assert row["origin"] == f"{tmp_path / 'export.json'}#task {500 + i}"  # where: the export's task
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))
    assert report["annotations"]["annotators"] == ["amal@example.org", "omar@example.org"]


def test_a_task_without_text_in_an_export_source_is_named(tmp_path):
    export = export_tasks(10)
    export[4]["data"]["text"] = ""
    result = build(tmp_path, export)
    assert result.exit_code == 1
    assert "export.json#task 504 [n4]" in result.output


def test_a_source_export_that_is_not_a_list_of_tasks_is_refused(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('{"tasks": []}', encoding="utf-8")
    config = write_config(tmp_path / "data.yaml", {"sources": [{"path": str(path), "format": "labelstudio"}],
                                                   "output": str(tmp_path / "built")})
    result = run_cli("data", "build", config)
    assert result.exit_code == 1 and "Label Studio JSON export (a list of tasks)" in result.output
