"""`--field KEY=COLUMN` mistakes in `taawun evaluate`, `taawun predict` and `taawun annotate suggest` are errors that
name the key, the column and what would be right, never a task dropped or ids replaced in silence."""

from __future__ import annotations

import pytest

from tests.helpers import SCHEMA, run_cli, write_jsonl


def raw_rows(n: int = 20) -> list[dict]:
    """Sample articles under other column names, with topic and stance labels."""
    import csv
    import json

    root = SCHEMA.parents[1] / "data" / "sample"
    rows = [json.loads(line) for line in (root / "articles.jsonl").read_text(encoding="utf-8").splitlines()][:n]
    with open(root / "annotations" / "annotator_a.csv", encoding="utf-8") as handle:
        gold = {r["id"]: r for r in csv.DictReader(handle)}
    return [{"article_id": r["id"], "body": r["text"], "headline": r["title"], "section": gold[r["id"]]["topic"],
             "stance": gold[r["id"]]["stance"]} for r in rows]


EVALUATE_MISTAKES = [  # (the --field options, what the error must say)
    (["topic=lable"], ["--field topic=lable", "no column 'lable'", "'section'"]),
    (["topc=section"], ["--field topc=section", "'topc' is not a key", "did you mean 'topic'", "'stance'"]),
    (["txt=body"], ["--field txt=body", "'txt' is not a key", "did you mean 'text'"]),
    (["id=articleid"], ["--field id=articleid", "no column 'articleid'", "'article_id'"]),
]


@pytest.mark.parametrize(("mapping", "expected"), EVALUATE_MISTAKES, ids=[m[0][0] for m in EVALUATE_MISTAKES])
def test_evaluate_field_mistake_is_an_error(trained, tmp_path, mapping, expected):
    rows = [{**row, "text": row["body"]} for row in raw_rows()]
    path = write_jsonl(tmp_path / "heldout.jsonl", rows)
    options = [arg for pair in mapping for arg in ("--field", pair)]
    if not any(pair.startswith(("topic=", "topc=")) for pair in mapping):
        options += ["--field", "topic=section"]
    result = run_cli("evaluate", trained["model_dir"], "--input", path, *options, "--no-log", "--json")
    assert result.exit_code == 1, result.output
    for fragment in expected:
        assert fragment in result.output


PREDICT_MISTAKES = [
    (["id=articleid"], ["--field id=articleid", "no column 'articleid'", "'article_id'"]),
    (["titel=headline"], ["--field titel=headline", "'titel' is not a key", "did you mean 'title'"]),
    (["topic=section"], ["--field topic=section", "'topic' is not a key", "'id', 'text', 'title'"]),
    (["text=body", "text=headline"], ["--field text", "given twice"]),
]


@pytest.mark.parametrize(("mapping", "expected"), PREDICT_MISTAKES, ids=[m[0][-1] for m in PREDICT_MISTAKES])
def test_predict_field_mistake_is_an_error(trained, tmp_path, mapping, expected):
    path = write_jsonl(tmp_path / "new.jsonl", [{**row, "text": row["body"]} for row in raw_rows(5)])
    options = [arg for pair in mapping for arg in ("--field", pair)]
    result = run_cli("predict", trained["model_dir"], "--input", path, "--output", tmp_path / "out.jsonl", *options)
    assert result.exit_code == 1, result.output
    for fragment in expected:
        assert fragment in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_suggest_field_mistake_is_an_error(trained, tmp_path):
    rows = [{"id": row["article_id"], "text": row["body"], "headline": row["headline"]} for row in raw_rows()]
    path = write_jsonl(tmp_path / "pool.jsonl", rows)
    result = run_cli("annotate", "suggest", trained["model_dir"], "--input", path, "--n", "3", "--output",
                     tmp_path / "tasks.json", "--field", "titel=headline")
    assert result.exit_code == 1, result.output
    assert "--field titel=headline" in result.output and "did you mean 'title'" in result.output
    assert not (tmp_path / "tasks.json").exists()


def test_evaluate_with_a_correct_mapping_reads_every_mapped_task(trained, tmp_path):
    path = write_jsonl(tmp_path / "heldout.jsonl", raw_rows())
    result = run_cli("evaluate", trained["model_dir"], "--input", path, "--field", "text=body", "--field",
                     "id=article_id", "--field", "title=headline", "--field", "topic=section", "--no-log", "--json")
    assert result.exit_code == 0, result.output
    assert '"topic"' in result.output and '"stance"' in result.output


def test_evaluate_field_on_a_built_dataset_is_an_error(trained, sample_dataset):
    result = run_cli("evaluate", trained["model_dir"], "--input", sample_dataset, "--field", "topic=lable", "--no-log")
    assert result.exit_code == 1, result.output
    assert "--field topic=lable" in result.output and "built dataset" in result.output
