"""Input files that are damaged or unusual, read through the real commands: mixed and legacy encodings, BOM-less
UTF-16, a legacy line deep inside a streamed file, and Label Studio exports with missing or unreadable results."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import datasets
import pytest

from tests.helpers import INLINE_LABELS, arabic_text, labelled_articles, run_cli, write_config

NO_EXTRA_FIELDS = {"title": None, "date": None, "source": None}


def jsonl_bytes(articles: list[dict], encoding: str = "utf-8", odd: dict[int, str] | None = None) -> bytes:
    """JSONL in `encoding`; the lines numbered (from 1) in `odd` are written in another encoding."""
    odd = odd or {}
    return b"".join((json.dumps(a, ensure_ascii=False) + "\n").encode(odd.get(number, encoding))
                    for number, a in enumerate(articles, start=1))


def build_config(tmp_path: Path, data: bytes, name: str = "articles.jsonl", source: dict | None = None,
                 **overrides) -> Path:
    (tmp_path / name).write_bytes(data)
    entry = {"path": str(tmp_path / name), "labels": dict(INLINE_LABELS), **(source or {})}
    return write_config(tmp_path / "data.yaml", {"sources": [entry], "output": str(tmp_path / "built"), **overrides})


def built_rows(tmp_path: Path) -> dict[str, dict]:
    built = datasets.load_from_disk(str(tmp_path / "built"))
    return {row["id"]: row for split in built.values() for row in split}


def report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))


def rejects(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "built" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# -- item 1: one bad line never re-decodes the whole file --------------------------------------------------------------
def test_one_legacy_line_in_a_utf8_file_fails_the_build_naming_the_line(tmp_path):
    articles = labelled_articles(20)
    config = build_config(tmp_path, jsonl_bytes(articles, odd={5: "cp1256"}))
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert "articles.jsonl:5: " in result.output and "not UTF-8" in result.output
    assert "1 problem(s)" in result.output
    assert not (tmp_path / "built").exists()


def test_one_legacy_line_is_rejected_and_the_rest_stays_utf8(tmp_path):
    articles = labelled_articles(20)
    config = build_config(tmp_path, jsonl_bytes(articles, odd={5: "cp1256"}), validation={"on_invalid": "reject"})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    rows = built_rows(tmp_path)
    assert "a004" not in rows and len(rows) == 19
    assert all(row["raw_text"] == arabic_text(int(i[1:])) for i, row in rows.items())
    [reject] = rejects(tmp_path)
    assert reject["where"].endswith("articles.jsonl:5") and reject["kind"] == "encoding"
    assert "not UTF-8" in reject["reason"]
    assert report(tmp_path)["sources"][0]["encodings"] == ["utf-8"]


def test_a_utf8_line_in_a_windows_1256_file_is_reported(tmp_path):
    articles = labelled_articles(20)
    config = build_config(tmp_path, jsonl_bytes(articles, "cp1256", odd={7: "utf-8"}),
                          validation={"on_invalid": "reject"})
    assert run_cli("data", "build", config).exit_code == 0
    rows = built_rows(tmp_path)
    assert "a006" not in rows and rows["a010"]["raw_text"] == arabic_text(10)
    [reject] = rejects(tmp_path)
    assert reject["where"].endswith("articles.jsonl:7") and "UTF-8" in reject["reason"]
    assert report(tmp_path)["sources"][0]["encodings"] == ["windows-1256"]


CODE_PAGES = [  # (Python codec, `encoding:` value or auto, the encoding the report names)
    ("cp1256", "auto", "windows-1256"),
    ("cp1256", "windows-1256", "windows-1256"),
    ("iso8859_6", "auto", "iso-8859-6"),
    ("iso8859_6", "iso-8859-6", "iso-8859-6"),
    ("utf_16_le", "auto", "utf-16-le"),
    ("utf_16_be", "auto", "utf-16-be"),
    ("utf_16_le", "utf-16", "utf-16-le"),
    ("utf_16_be", "utf-16", "utf-16-be"),
]


@pytest.mark.parametrize(("codec", "declared", "named"), CODE_PAGES)
def test_arabic_code_pages_and_bomless_utf16_are_read_right(tmp_path, codec, declared, named):
    articles = labelled_articles(12)
    config = build_config(tmp_path, jsonl_bytes(articles, codec), source={"encoding": declared},
                          normalization={"remove_diacritics": False, "normalize_alef": False})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    rows = built_rows(tmp_path)
    assert {i: row["raw_text"] for i, row in rows.items()} == {a["id"]: a["text"] for a in articles}
    assert report(tmp_path)["sources"][0]["encodings"] == [named]


def test_damaged_utf16_is_refused_naming_the_line(tmp_path):
    data = jsonl_bytes(labelled_articles(6), "utf_16_le")
    lines = data.split("\n".encode("utf_16_le"))
    lines[3] = lines[3][:20] + "\ud800".encode("utf_16_le", "surrogatepass") + lines[3][20:]  # a lone surrogate
    config = build_config(tmp_path, "\n".encode("utf_16_le").join(lines), source={"encoding": "utf-16"})
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert "articles.jsonl:4: not valid utf-16-le" in result.output and "`encoding:`" in result.output


def test_utf16_csv_with_bom_is_read_right(tmp_path):
    articles = labelled_articles(6)
    table = "id,text,topic,bilateral_security_cooperation,stance\n" + "".join(
        f'{a["id"]},"{a["text"]}",{a["topic"]},{a["bilateral_security_cooperation"]},{a["stance"]}\n' for a in articles)
    config = build_config(tmp_path, codecs.BOM_UTF16_LE + table.encode("utf_16_le"), name="a.csv",
                          source={"fields": NO_EXTRA_FIELDS})
    assert run_cli("data", "build", config).exit_code == 0
    assert built_rows(tmp_path)["a003"]["raw_text"] == arabic_text(3)


@pytest.mark.parametrize(("codec", "guess"), [("utf_32_le", "utf_32"), ("cp1251", "cp1251")])
def test_a_file_in_no_supported_encoding_is_refused_naming_the_setting(tmp_path, codec, guess):
    russian = "Министр иностранных дел заявил, что переговоры продолжатся"
    rows = [{**a, "title": "Заголовок", "text": russian} for a in labelled_articles(8)]
    result = run_cli("data", "build", build_config(tmp_path, jsonl_bytes(rows, codec)))
    assert result.exit_code == 1
    assert "articles.jsonl: " in result.output and guess in result.output
    assert "`encoding:`" in result.output and "convert it to UTF-8" in result.output


def test_a_legacy_line_in_an_annotation_file_names_its_line(tmp_path):
    articles = [{k: v for k, v in a.items() if k != "topic"} for a in labelled_articles(10)]
    (tmp_path / "topics.csv").write_bytes(b"".join(
        line.encode("cp1256" if number == 4 else "utf-8") for number, line in enumerate(
            ["id,topic,note\n"] + [f"{a['id']},{a['topic']},ملاحظة\n" for a in labelled_articles(10)], start=1)))
    labels = {task: task for task in INLINE_LABELS if task != "topic"}
    config = build_config(tmp_path, jsonl_bytes(articles), source={"labels": labels},
                          annotations=[{"path": str(tmp_path / "topics.csv"), "annotator": "amal"}])
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert "topics.csv:4: " in result.output and "not UTF-8" in result.output


def test_a_legacy_line_in_a_txt_article_names_the_file_and_line(tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text("name: t\ntasks:\n  - name: topic\n    labels: [sports, health]\n", encoding="utf-8")
    for i, topic in enumerate(["sports", "health"] * 5):
        (tmp_path / "corpus" / topic).mkdir(parents=True, exist_ok=True)
        lines = [arabic_text(i, 10), arabic_text(100 + i, 10), arabic_text(200 + i, 10)]
        encodings = ["utf-8", "cp1256" if i == 3 else "utf-8", "utf-8"]
        (tmp_path / "corpus" / topic / f"{i}.txt").write_bytes(
            b"\n".join(line.encode(enc) for line, enc in zip(lines, encodings, strict=True)))
    config = write_config(tmp_path / "d.yaml", {
        "schema": str(schema), "output": str(tmp_path / "built"), "validation": {"on_invalid": "reject"},
        "sources": [{"path": str(tmp_path / "corpus"), "format": "txt_folder", "folder_task": "topic"}]})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    [reject] = rejects(tmp_path)
    assert reject["where"].endswith("health/3.txt:2") and "not UTF-8" in reject["reason"]
    assert len(built_rows(tmp_path)) == 9


# -- item 3: a legacy line deep in a streamed file ---------------------------------------------------------------------
def long_utf8_file_with_a_legacy_line(path: Path) -> tuple[list[dict], int]:
    """Over 64 KB of UTF-8 articles, then one line in Windows-1256, then more UTF-8; returns the articles and the
    legacy line's number."""
    articles = [{"id": f"b{i:03d}", "text": arabic_text(i, 120)} for i in range(100)]
    head = jsonl_bytes(articles[:70])
    assert len(head) > 65536
    path.write_bytes(jsonl_bytes(articles, odd={80: "cp1256"}))
    return articles, 80


def test_predict_reports_a_legacy_line_after_64kb_and_predicts_the_rest(trained, tmp_path):
    articles, bad_line = long_utf8_file_with_a_legacy_line(tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    result = run_cli("predict", trained["model_dir"], "--input", tmp_path / "in.jsonl", "--output", output)
    assert result.exit_code == 0, result.output
    assert f"in.jsonl:{bad_line}: " in result.output and "not UTF-8" in result.output
    assert "99 article(s) predicted" in result.output
    predicted = [json.loads(line)["id"] for line in output.read_text(encoding="utf-8").splitlines()]
    assert predicted == [a["id"] for i, a in enumerate(articles, start=1) if i != bad_line]


def test_suggest_reports_a_legacy_line_after_64kb(trained, tmp_path):
    _, bad_line = long_utf8_file_with_a_legacy_line(tmp_path / "pool.jsonl")
    result = run_cli("annotate", "suggest", trained["model_dir"], "--input", tmp_path / "pool.jsonl", "--n", "3",
                     "--output", tmp_path / "tasks.json")
    assert result.exit_code == 0, result.output
    assert f"pool.jsonl:{bad_line}: " in result.output and "not UTF-8" in result.output
    assert "3 of 99 article(s) suggested" in result.output


# -- item 4: Label Studio exports that hold no readable choice ---------------------------------------------------------
TOPIC_ONLY = "name: topics\ntasks:\n  - name: topic\n    labels: [politics, security, sports]\n"


def choice(label: str, name: str = "topic") -> dict:
    return {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": [label]}}


DEFAULT = object()


def export_task(i: int, results=DEFAULT, annotations=DEFAULT) -> dict:
    """One task of a Label Studio JSON export, as Label Studio writes it (one annotator choosing politics)."""
    if annotations is DEFAULT:
        annotations = [{"id": 500 + i, "completed_by": 7, "was_cancelled": False, "lead_time": 3.2,
                        "result": [choice("politics")] if results is DEFAULT else results}]
    return {"id": 1000 + i, "data": {"id": f"n{i}", "text": "..."}, "annotations": annotations, "predictions": []}


def labelstudio_build(tmp_path: Path, export: list[dict], **extra) -> Path:
    schema = tmp_path / "schema.yaml"
    schema.write_text(TOPIC_ONLY, encoding="utf-8")
    (tmp_path / "a.jsonl").write_bytes(jsonl_bytes([{"id": f"n{i}", "text": arabic_text(100 + i)}
                                                    for i in range(len(export))]))
    (tmp_path / "export.json").write_text(json.dumps(export), encoding="utf-8")
    return write_config(tmp_path / "data.yaml", {
        "schema": str(schema), "output": str(tmp_path / "built"),
        "sources": [{"path": str(tmp_path / "a.jsonl"), "fields": NO_EXTRA_FIELDS}],
        "annotations": [{"path": str(tmp_path / "export.json"), "format": "labelstudio"}], **extra})


TEXTAREA = {"from_name": "topic", "to_name": "text", "type": "textarea", "value": {"text": ["politics"]}}
SPANS = {"from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": 0, "end": 3, "text": "...", "labels": ["politics"]}}
BROKEN_EXPORTS = [  # (what is wrong with task 1003, what the message says)
    ("annotations null", {"annotations": None}, "`annotations` is null"),
    ("result null", {"results": None}, "`result` is null"),
    ("a textarea for the task", {"results": [TEXTAREA]}, "a textarea result for topic"),
    ("only span labels", {"results": [SPANS]}, "no choices result"),
    ("no result", {"results": []}, "no choices result"),
    ("choices null", {"results": [{**choice("x"), "value": {"choices": None}}]}, "no list of choices"),
]


@pytest.mark.parametrize(("case", "broken", "message"), BROKEN_EXPORTS, ids=[case[0] for case in BROKEN_EXPORTS])
def test_label_studio_task_without_a_readable_choice_fails_naming_the_task(tmp_path, case, broken, message):
    export = [export_task(i) for i in range(6)]
    export[3] = export_task(3, **broken)
    # Missing labels allowed: the broken task must not pass as an article still waiting for annotation.
    config = labelstudio_build(tmp_path, export, validation={"allow_missing_labels": True})
    result = run_cli("data", "build", config)
    assert result.exit_code == 1, result.output
    assert "export.json#task 1003 [n3]: " in result.output and message in result.output
    assert not (tmp_path / "built").exists()


def test_label_studio_problems_are_rejected_with_the_reason(tmp_path):
    export = [export_task(i) for i in range(6)]
    export[2] = export_task(2, annotations=None)
    export[4] = export_task(4, results=[choice("security"), {**TEXTAREA, "from_name": "notes"}])  # notes: not a task
    config = labelstudio_build(tmp_path, export, validation={"on_invalid": "reject"})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    reasons = {r["kind"]: r for r in rejects(tmp_path)}
    assert set(reasons) == {"annotation_format", "missing_label"} and {r["id"] for r in reasons.values()} == {"n2"}
    assert reasons["annotation_format"]["where"].endswith("export.json#task 1002")
    assert "`annotations` is null" in reasons["annotation_format"]["reason"]
    built = datasets.load_from_disk(str(tmp_path / "built"))
    topics = {row["id"]: built[name].features["topic"].names[row["topic"]] for name in built for row in built[name]}
    assert topics == {"n0": "politics", "n1": "politics", "n3": "politics", "n4": "security", "n5": "politics"}
