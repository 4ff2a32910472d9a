"""`taawun data build` through the real CLI: outputs, features, bad input, encodings, splits, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from tests.helpers import (
    SCHEMA,
    arabic_text,
    labelled_articles,
    run_cli,
    write_config,
    write_jsonl,
)
from train.schema import load_schema


def load_built(folder: Path) -> datasets.DatasetDict:
    return datasets.load_from_disk(str(folder))


def test_build_writes_dataset_with_schema_features(corpus, tmp_path):
    result = run_cli("data", "build", corpus())
    assert result.exit_code == 0, result.output
    built = load_built(tmp_path / "built")
    assert set(built) == {"train", "validation", "test"}
    assert sum(len(split) for split in built.values()) == 40
    schema = load_schema(SCHEMA)
    for task in schema.tasks:
        feature = built["train"].features[task.name]
        assert isinstance(feature, datasets.ClassLabel)
        assert feature.names == task.label_names
    row = next(r for split in built.values() for r in split if r["id"] == "a005")
    assert built["train"].features["topic"].int2str(row["topic"]) == "culture"
    assert row["raw_text"] == arabic_text(5)
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))
    assert report["fingerprint"] and len(report["fingerprint"]) == 64
    assert (tmp_path / "built" / "report.md").read_text(encoding="utf-8").startswith("# Dataset report")
    settings = json.loads((tmp_path / "built" / "taawun.json").read_text(encoding="utf-8"))
    assert settings["normalization"]["remove_diacritics"] is True


def test_same_config_same_fingerprint_and_splits(corpus, tmp_path):
    config = corpus()
    run_cli("data", "build", config)
    first = json.loads((tmp_path / "built" / "report.json").read_text())
    run_cli("data", "build", config)
    second = json.loads((tmp_path / "built" / "report.json").read_text())
    assert first["fingerprint"] == second["fingerprint"]


def test_report_command_prints_report(corpus, tmp_path):
    run_cli("data", "build", corpus())
    result = run_cli("data", "report", tmp_path / "built")
    assert result.exit_code == 0
    assert "## Splits" in result.output and "## Labels" in result.output


def _bad(corpus, tmp_path, articles, **overrides):
    """Build bad data; return the CLI result after checking that nothing was written."""
    result = run_cli("data", "build", corpus(articles, **overrides))
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "built").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".built")]
    return result


def test_unknown_label_names_line_and_suggests(corpus, tmp_path):
    articles = labelled_articles(10)
    articles[3]["topic"] = "politcs"
    result = _bad(corpus, tmp_path, articles)
    assert "articles.jsonl:4" in result.output
    assert "unknown topic label 'politcs'" in result.output and "did you mean 'politics'" in result.output


def test_alias_maps_external_label(corpus, tmp_path):
    articles = labelled_articles(10)
    articles[3]["topic"] = "Finance"
    assert run_cli("data", "build", corpus(articles)).exit_code == 0
    built = load_built(tmp_path / "built")
    row = next(r for split in built.values() for r in split if r["id"] == "a003")
    assert built["train"].features["topic"].int2str(row["topic"]) == "economy"


def test_empty_text_is_an_error(corpus, tmp_path):
    articles = labelled_articles(10)
    articles[2]["text"] = "   "
    del articles[5]["text"]
    result = _bad(corpus, tmp_path, articles)
    assert "articles.jsonl:3 [a002]: missing or empty text" in result.output
    assert "articles.jsonl:6 [a005]: missing or empty text" in result.output


def test_duplicate_id_with_other_content_is_an_error(corpus, tmp_path):
    articles = labelled_articles(10)
    articles.append({**articles[4], "text": arabic_text(999)})
    result = _bad(corpus, tmp_path, articles)
    assert "articles.jsonl:11 [a004]" in result.output and "already used at" in result.output


def test_malformed_json_line_is_reported_with_its_line(corpus, tmp_path):
    path = corpus(labelled_articles(5))
    articles = tmp_path / "articles.jsonl"
    lines = articles.read_text(encoding="utf-8").splitlines()
    lines.insert(2, '{"id": "broken", "text": ')
    articles.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("data", "build", path)
    assert result.exit_code == 1
    assert "articles.jsonl:3: malformed JSON" in result.output


def test_label_for_task_that_does_not_apply(tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "name: dep\ntasks:\n  - name: coop\n    kind: binary\n    labels: ['yes', 'no']\n"
        "  - name: kind\n    labels: [military, police]\n    applies_when: {task: coop, labels: ['yes']}\n",
        encoding="utf-8",
    )
    articles = [{"id": f"x{i}", "text": arabic_text(i), "coop": "yes" if i % 2 else "no",
                 "kind": "military" if i % 2 else ""} for i in range(12)]
    articles[4]["kind"] = "police"
    source = {"path": str(write_jsonl(tmp_path / "a.jsonl", articles)), "labels": {"coop": "coop", "kind": "kind"},
              "fields": {"title": None, "date": None, "source": None}}
    config = write_config(tmp_path / "d.yaml", {"schema": str(schema), "sources": [source],
                                                "output": str(tmp_path / "built")})
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert "a.jsonl:5 [x4]: kind is labelled ('police') but applies only when coop is one of ['yes']" in result.output
    # Without the stray label the task is -1 (no label) where it does not apply.
    articles[4]["kind"] = ""
    write_jsonl(tmp_path / "a.jsonl", articles)
    assert run_cli("data", "build", config).exit_code == 0
    built = load_built(tmp_path / "built")
    rows = [r for split in built.values() for r in split]
    assert all((r["kind"] == -1) == (r["coop"] == 1) for r in rows)


def test_report_only_lists_all_problems_and_writes_nothing(corpus, tmp_path):
    articles = labelled_articles(12)
    articles[1]["topic"] = "sportz"
    articles[2]["stance"] = "against"
    articles[3]["text"] = ""
    result = run_cli("data", "build", corpus(articles), "--report-only")
    assert result.exit_code == 1
    for fragment in ("[a001]: unknown topic label 'sportz'", "[a002]: unknown stance label 'against'",
                     "[a003]: missing or empty text", "3 problem(s) found; nothing was written"):
        assert fragment in result.output
    assert not (tmp_path / "built").exists()


def test_reject_policy_sets_bad_records_aside(corpus, tmp_path):
    articles = labelled_articles(20)
    articles[1]["topic"] = "sportz"
    articles[3]["text"] = ""
    result = run_cli("data", "build", corpus(articles, validation={"on_invalid": "reject"}))
    assert result.exit_code == 0, result.output
    built = load_built(tmp_path / "built")
    assert sum(len(s) for s in built.values()) == 18
    rejects = [json.loads(line) for line in (tmp_path / "built" / "rejects.jsonl").read_text().splitlines()]
    assert {(r["id"], r["kind"]) for r in rejects} == {("a001", "unknown_label"), ("a003", "empty_text")}
    assert next(r for r in rejects if r["id"] == "a001")["record"]["text"] == articles[1]["text"]


def test_unknown_config_key_names_the_key(corpus, tmp_path):
    result = run_cli("data", "build", corpus(dedupe={"threshold": 0.5}))
    assert result.exit_code == 1
    assert "data.yaml: dedupe: unknown key" in result.output


def test_missing_column_names_the_mapping(corpus, tmp_path):
    result = run_cli("data", "build", corpus(source={"fields": {"text": "body"}}))
    assert result.exit_code == 1
    assert "column 'body' (mapped by `fields.text`" in result.output


def test_windows_1256_csv_reads_correctly(tmp_path):
    articles = labelled_articles(12)
    header = "id,text,topic,bilateral_security_cooperation,stance\n"
    body = "".join(f'{a["id"]},"{a["text"]}",{a["topic"]},{a["bilateral_security_cooperation"]},{a["stance"]}\n'
                   for a in articles)
    (tmp_path / "legacy.csv").write_bytes((header + body).encode("cp1256"))
    source = {"path": str(tmp_path / "legacy.csv"), "labels": {t: t for t in
              ("topic", "bilateral_security_cooperation", "stance")},
              "fields": {"title": None, "date": None, "source": None}}
    config = write_config(tmp_path / "d.yaml", {"sources": [source], "output": str(tmp_path / "built"),
                                                "normalization": {"remove_diacritics": False, "normalize_alef": False}})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for split in load_built(tmp_path / "built").values() for r in split}
    assert rows["a007"]["raw_text"] == arabic_text(7)
    report = json.loads((tmp_path / "built" / "report.json").read_text())
    assert report["sources"][0]["encodings"] == ["windows-1256"]


def test_utf8_bom_tsv_gz_and_parquet_read(tmp_path):
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    articles = labelled_articles(16)
    tsv = "id\ttext\ttopic\tbilateral_security_cooperation\tstance\n" + "".join(
        f'{a["id"]}\t{a["text"]}\t{a["topic"]}\t{a["bilateral_security_cooperation"]}\t{a["stance"]}\n'
        for a in articles[:8])
    (tmp_path / "a.tsv.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + tsv.encode("utf-8")))
    pq.write_table(pa.Table.from_pylist(articles[8:]), tmp_path / "b.parquet")
    labels = {t: t for t in ("topic", "bilateral_security_cooperation", "stance")}
    sources = [{"path": str(tmp_path / "a.tsv.gz"), "labels": labels,
                "fields": {"title": None, "date": None, "source": None}},
               {"path": str(tmp_path / "b.parquet"), "labels": labels}]
    config = write_config(tmp_path / "d.yaml", {"sources": sources, "output": str(tmp_path / "built")})
    assert run_cli("data", "build", config).exit_code == 0
    rows = {r["id"]: r for split in load_built(tmp_path / "built").values() for r in split}
    assert len(rows) == 16 and rows["a000"]["raw_text"] == arabic_text(0)
    report = json.loads((tmp_path / "built" / "report.json").read_text())
    assert report["sources"][0]["encodings"] == ["utf-8-sig"]


def test_txt_folder_labels_from_subfolders(tmp_path):
    for i, topic in enumerate(["sports", "health"] * 6):
        folder = tmp_path / "corpus" / topic
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_text(arabic_text(i), encoding="utf-8")
    source = {"path": str(tmp_path / "corpus"), "folder_task": "topic", "outlet": "folder-news"}
    schema = tmp_path / "topic.yaml"
    schema.write_text("name: t\ntasks:\n  - name: topic\n    labels: [sports, health]\n", encoding="utf-8")
    config = write_config(tmp_path / "d.yaml", {"schema": str(schema), "sources": [source],
                                                "output": str(tmp_path / "built")})
    assert run_cli("data", "build", config).exit_code == 0
    rows = [r for split in load_built(tmp_path / "built").values() for r in split]
    names = load_built(tmp_path / "built")["train"].features["topic"].names
    assert {(r["id"].split("/")[0], names[r["topic"]]) for r in rows} == {("sports", "sports"), ("health", "health")}
    assert {r["source"] for r in rows} == {"folder-news"}


def test_seed_article_footer_removed(tmp_path):
    from tests.helpers import shared_file

    seed = shared_file("seed/article.txt").read_text(encoding="utf-8")
    title, _, body = seed.partition("\n")
    articles = [{"id": "seed", "title": title, "text": body, "topic": "security",
                 "bilateral_security_cooperation": "yes", "stance": "supportive"}] + labelled_articles(9)
    source = {"path": str(write_jsonl(tmp_path / "a.jsonl", articles)),
              "labels": {t: t for t in ("topic", "bilateral_security_cooperation", "stance")},
              "fields": {"date": None, "source": None}}
    config = write_config(tmp_path / "d.yaml", {"sources": [source], "output": str(tmp_path / "built")})
    assert run_cli("data", "build", config).exit_code == 0
    row = next(r for s in load_built(tmp_path / "built").values() for r in s if r["id"] == "seed")
    assert "اترك تعليقاً" in row["raw_text"] and "بريدك الإلكتروني" in row["raw_text"]
    assert "تعليق" not in row["text"] and "بريدك" not in row["text"]
    assert row["text"].rstrip().endswith("طموحات الشعب المصري.")


def test_interrupted_write_leaves_previous_dataset(corpus, tmp_path, monkeypatch):
    config = corpus()
    assert run_cli("data", "build", config).exit_code == 0
    before = (tmp_path / "built" / "report.json").read_text()

    def crash(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", crash)
    with pytest.raises(OSError):
        run_cli("data", "build", config)
    assert (tmp_path / "built" / "report.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_that_is_not_a_dataset_is_not_overwritten(corpus, tmp_path):
    (tmp_path / "built").mkdir()
    (tmp_path / "built" / "notes.txt").write_text("mine")
    result = run_cli("data", "build", corpus())
    assert result.exit_code == 1 and "is not a dataset built by taawun" in result.output
    assert (tmp_path / "built" / "notes.txt").read_text() == "mine"


def test_an_auxiliary_copy_never_disputes_the_target_articles_label(tmp_path):
    """An article of the target data and its exact copy in an auxiliary corpus with another (mapped) label: the target
    article is kept with its own label, neither is rejected as a conflict."""
    schema = tmp_path / "schema.yaml"
    schema.write_text("name: s\ntasks:\n  - name: topic\n    labels: [security, health]\n", encoding="utf-8")
    target = [{"id": f"t{i}", "text": arabic_text(i), "topic": "security" if i % 2 else "health"} for i in range(10)]
    auxiliary = [{"id": "a0", "text": target[1]["text"], "section": "Health"},
                 {"id": "a1", "text": arabic_text(100), "section": "Health"}]
    fields = {"title": None, "date": None, "source": None}
    config = write_config(tmp_path / "d.yaml", {"schema": str(schema), "output": str(tmp_path / "built"), "sources": [
        {"path": str(write_jsonl(tmp_path / "aux.jsonl", auxiliary)), "labels": {"topic": "section"},
         "label_map": {"topic": {"health": "Health"}}, "auxiliary": True, "fields": fields, "name": "aux"},
        {"path": str(write_jsonl(tmp_path / "t.jsonl", target)), "labels": {"topic": "topic"}, "fields": fields}]})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for split in load_built(tmp_path / "built").values() for r in split}
    assert rows["t1"]["topic"] == 0 and "a0" not in rows  # security, the annotator's label; the copy merged into it
    assert "a1" in rows
    report = json.loads((tmp_path / "built" / "report.json").read_text())
    assert report["duplicates"]["conflicts"] == [] and report["rejects"]["count"] == 0
