"""Annotations from files and annotation tools, majority vote, adjudication, and agreement figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pytest
from sklearn.metrics import cohen_kappa_score

from tests.helpers import arabic_text, run_cli, write_config, write_jsonl
from train.data.agreement import cohen_kappa, krippendorff_alpha

TOPIC_ONLY = "name: topics\ntasks:\n  - name: topic\n    labels: [politics, security, sports]\n    aliases: {sport: sports}\n"


def _articles(n: int) -> list[dict]:
    return [{"id": f"n{i}", "text": arabic_text(100 + i)} for i in range(n)]


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _config(tmp_path: Path, n: int, annotations: list[dict], **extra) -> Path:
    schema = tmp_path / "schema.yaml"
    schema.write_text(TOPIC_ONLY, encoding="utf-8")
    source = {"path": str(write_jsonl(tmp_path / "articles.jsonl", _articles(n))),
              "fields": {"title": None, "date": None, "source": None}}
    return write_config(tmp_path / "data.yaml", {"schema": str(schema), "sources": [source],
                                                 "annotations": annotations, "output": str(tmp_path / "built"),
                                                 **extra})


def _report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))


def _labels(tmp_path: Path) -> dict[str, str]:
    built = datasets.load_from_disk(str(tmp_path / "built"))
    names = built["train"].features["topic"].names
    return {row["id"]: names[row["topic"]] for split in built.values() for row in split}


# Two annotators on ten articles: 8 agreements; by hand, Cohen's kappa = (0.8 - 0.5) / (1 - 0.5) = 0.6 and
# Krippendorff's alpha = 1 - (4/20) / ((10*10 + 10*10) / (20*19)) = 0.62.
FIRST = ["politics"] * 5 + ["security"] * 5
SECOND = ["politics"] * 4 + ["security"] * 5 + ["politics"]


def test_agreement_matches_hand_computed_values(tmp_path):
    a = _write_csv(tmp_path / "a.csv", [{"id": f"n{i}", "topic": label} for i, label in enumerate(FIRST)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": f"n{i}", "topic": label} for i, label in enumerate(SECOND)])
    adjudication = _write_csv(tmp_path / "adj.csv", [{"id": "n4", "topic": "security"}, {"id": "n9", "topic": "security"}])
    config = _config(tmp_path, 10, [{"path": str(a), "annotator": "amal"}, {"path": str(b), "annotator": "badr"},
                                    {"path": str(adjudication), "role": "adjudication"}])
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    agreement = _report(tmp_path)["annotations"]["agreement"]["topic"]
    assert agreement["pairs"][0]["kappa"] == pytest.approx(0.6)
    assert agreement["pairs"][0]["agreement"] == pytest.approx(0.8)
    assert agreement["krippendorff_alpha"] == pytest.approx(0.62)
    assert _labels(tmp_path)["n4"] == "security" and _labels(tmp_path)["n9"] == "security"
    with open(tmp_path / "built" / "disagreements.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["amal"], r["badr"], r["resolution"]) for r in rows] == [
        ("n4", "politics", "security", "adjudicated"), ("n9", "security", "politics", "adjudicated")]


def test_tie_without_adjudication_is_listed_and_fails(tmp_path):
    a = _write_csv(tmp_path / "a.csv", [{"id": f"n{i}", "topic": label} for i, label in enumerate(FIRST)])
    b = _write_csv(tmp_path / "b.csv", [{"id": f"n{i}", "topic": label} for i, label in enumerate(SECOND)])
    config = _config(tmp_path, 10, [{"path": str(a), "annotator": "amal"}, {"path": str(b), "annotator": "badr"}])
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert "[n4]: annotators disagree on topic (amal: politics, badr: security) with no majority" in result.output
    assert not (tmp_path / "built").exists()


def test_majority_of_three_annotators_wins(tmp_path):
    rows = [{"id": f"n{i}", "annotator": who, "topic": label}
            for i in range(6) for who, label in (("a", "sports"), ("b", "sport"), ("c", "politics"))]
    votes = _write_csv(tmp_path / "votes.csv", rows)
    config = _config(tmp_path, 6, [{"path": str(votes), "annotator_field": "annotator"}])
    assert run_cli("data", "build", config).exit_code == 0
    assert set(_labels(tmp_path).values()) == {"sports"}
    report = _report(tmp_path)
    assert report["annotations"]["annotators"] == ["a", "b", "c"]
    assert report["annotations"]["disagreements"]["majority"] == 6


def test_label_studio_export_is_an_annotation_source(tmp_path):
    def task(i: int, label: str, who: int, cancelled: bool = False) -> dict:
        return {"id": 1000 + i, "data": {"id": f"n{i}", "text": "..."},
                "annotations": [{"completed_by": who, "was_cancelled": cancelled, "result": [
                    {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}]}

    export = [task(i, "security" if i % 2 else "politics", 7) for i in range(8)]
    export[3]["annotations"].append({"completed_by": {"email": "x@example.org"}, "was_cancelled": True, "result": [
        {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["sports"]}}]})
    (tmp_path / "export.json").write_text(json.dumps(export), encoding="utf-8")
    config = _config(tmp_path, 8, [{"path": str(tmp_path / "export.json"), "format": "labelstudio"}])
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    assert _labels(tmp_path) == {f"n{i}": "security" if i % 2 else "politics" for i in range(8)}
    assert _report(tmp_path)["annotations"]["annotators"] == ["labelstudio:7"]


def test_doccano_export_with_task_prefixed_labels(tmp_path):
    rows = [{"id": i, "article_id": f"n{i}", "text": "...", "label": [f"topic:{'sports' if i < 3 else 'politics'}"]}
            for i in range(6)]
    path = write_jsonl(tmp_path / "doccano.jsonl", rows)
    config = _config(tmp_path, 6, [{"path": str(path), "format": "doccano", "annotator": "d",
                                    "id_field": "article_id"}])
    assert run_cli("data", "build", config).exit_code == 0
    assert _labels(tmp_path)["n0"] == "sports" and _labels(tmp_path)["n5"] == "politics"


def test_annotation_for_unknown_article_names_the_file_line(tmp_path):
    rows = [{"id": f"n{i}", "topic": "politics"} for i in range(4)] + [{"id": "ghost", "topic": "politics"}]
    a = _write_csv(tmp_path / "a.csv", rows)
    config = _config(tmp_path, 4, [{"path": str(a), "annotator": "amal"}])
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert "a.csv:6 [ghost]: annotation for article id 'ghost', which no source contains" in result.output


def test_cohen_kappa_agrees_with_scikit_learn():
    first = ["a", "b", "c", "a", "a", "b", "c", "c", "b", "a", "a", "c"]
    second = ["a", "b", "b", "a", "c", "b", "c", "a", "b", "a", "b", "c"]
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))
    assert cohen_kappa(FIRST, SECOND) == pytest.approx(0.6)


def test_krippendorff_alpha_on_krippendorffs_own_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: alpha = 0.743.
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[c[u] for c in coders if c[u] is not None] for u in range(12)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None
