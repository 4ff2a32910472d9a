"""`taawun weak apply` end to end through the CLI: silver labels, the per-rule report, gold figures, a data build."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli, write_config, write_jsonl
from tests.weak.test_rules import GAZETTEER, RULES

ARTICLES = [
    {"id": "a1", "title": "مصر وفرنسا تبحثان التعاون الأمني",
     "text": "استقبل وزير الداخلية المصري نظيره الفرنسي وبحثا مكافحة الإرهاب."},
    {"id": "a2", "title": "مباراة الأهلي", "text": "انتهت مباراة كرة القدم بفوز الأهلي بهدفين بعد هدف مبكر."},
    {"id": "a3", "title": "لقاح جديد", "text": "أعلنت منظمة الصحة العالمية عن لقاح جديد في المستشفى."},
    {"id": "a4", "title": "مباراة خيرية في المستشفى", "text": "أقيمت مباراة لكرة القدم لدعم المستشفى."},
    {"id": "a5", "title": "زيارة", "text": "زار وزير مصري الولايات المتحدة. وبحث التعاون الأمني."},
    {"id": "a6", "title": "خبر", "text": "<p>نص بلا قواعد.</p>"},
]
# Five copies of each (ids a1.0 ... a6.4): shares stay those of the six, and the label model has some data to fit.
CORPUS = [{**article, "id": f"{article['id']}.{copy}"} for copy in range(5) for article in ARTICLES]
GOLD = {"a1": ("yes", "other"), "a2": ("no", "sports"), "a3": ("no", "health"), "a4": ("no", "health"),
        "a5": ("yes", "other"), "a6": ("no", "other")}


@pytest.fixture
def weak_files(tmp_path):
    (tmp_path / "states.yaml").write_text(GAZETTEER, encoding="utf-8")
    (tmp_path / "schema.yaml").write_text(RULES, encoding="utf-8")
    write_jsonl(tmp_path / "articles.jsonl", CORPUS)
    gold = [{**article, "coop": GOLD[article["id"]][0], "topic": GOLD[article["id"]][1]} for article in ARTICLES]
    write_jsonl(tmp_path / "gold.jsonl", gold)
    return tmp_path


def apply(folder, *extra):
    return run_cli("weak", "apply", folder / "schema.yaml", "--input", folder / "articles.jsonl",
                   "--output", folder / "silver.jsonl", *extra)


def rule_rows(report, task):
    return {rule["name"]: rule for rule in report["tasks"][task]["rules"]}


def test_apply_writes_silver_labels_and_the_report(weak_files):
    result = apply(weak_files, "--gold", weak_files / "gold.jsonl", "--min-confidence", "0.6")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in map(json.loads, (weak_files / "silver.jsonl").read_text().splitlines())}
    assert {name.split(".")[0] for name in rows} == {"a1", "a2", "a3", "a4"}  # a5 and a6: no rule voted
    assert all(rows[f"{name.split('.')[0]}.0"] == {**row, "id": f"{name.split('.')[0]}.0"} for name, row in rows.items())
    silver = {name.split(".")[0]: row for name, row in rows.items()}
    assert silver["a1"]["coop"] == "yes" and silver["a1"]["topic"] is None
    assert silver["a2"]["coop"] == "no" and silver["a2"]["topic"] == "sports"
    assert silver["a3"]["topic"] == "health" and silver["a3"]["coop"] is None
    assert silver["a4"]["coop"] == "no"
    assert all(0.6 <= row["coop_confidence"] <= 1 for row in silver.values() if row["coop"])
    assert silver["a4"]["topic_confidence"] < silver["a3"]["topic_confidence"]  # two rules disagree on a4

    report = json.loads((weak_files / "silver.report.json").read_text())
    assert report["articles"] == 30 and report["min_confidence"] == 0.6
    coop, topic = rule_rows(report, "coop"), rule_rows(report, "topic")
    sixth = pytest.approx(1 / 6)
    third = pytest.approx(2 / 6)
    assert (coop["two_states"]["coverage"], coop["two_states"]["overlap"], coop["two_states"]["conflict"]) == (
        sixth, 0, 0)
    assert coop["twice"]["coverage"] == 0  # a1 has the term in one sentence only
    assert (coop["sport"]["coverage"], coop["sport"]["overlap"], coop["sport"]["conflict"]) == (third, 0, 0)
    assert (topic["health"]["coverage"], topic["health"]["overlap"], topic["health"]["conflict"]) == (
        third, sixth, sixth)
    assert (topic["sports_title"]["coverage"], topic["sports_title"]["overlap"],
            topic["sports_title"]["conflict"]) == (third, third, sixth)
    assert topic["goals"]["coverage"] == sixth and topic["goals"]["conflict"] == 0

    # Gold: each rule's accuracy on the gold articles it votes on, and the label model's.
    assert coop["two_states"]["gold"] == {"n": 1, "accuracy": 1.0}
    assert coop["sport"]["gold"] == {"n": 2, "accuracy": 1.0}
    assert topic["sports_title"]["gold"] == {"n": 2, "accuracy": 0.5}
    model = report["tasks"]["coop"]["label_model"]["gold"]
    assert model["n"] == 6 and model["labelled"] == 3 and model["accuracy"] == 1.0
    assert model["positive"] == {"label": "yes", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3)}
    assert "two_states" in result.output and "16.7%" in result.output  # the printed table


def test_silver_file_is_an_annotation_source_of_a_data_build(weak_files):
    assert apply(weak_files, "--min-confidence", "0.6").exit_code == 0
    source = {"path": str(weak_files / "articles.jsonl"), "fields": {"date": None, "source": None}}
    config = write_config(weak_files / "data.yaml", {
        "schema": str(weak_files / "schema.yaml"), "sources": [source],
        "annotations": [{"path": str(weak_files / "silver.jsonl"), "annotator": "weak"}],
        "validation": {"allow_missing_labels": True},
        "split": {"train": 0.5, "validation": 0.25, "test": 0.25}, "output": str(weak_files / "built")})
    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    import datasets

    rows = {row["id"]: row for split in datasets.load_from_disk(str(weak_files / "built")).values() for row in split}
    assert rows["a1.0"]["coop"] == 0 and rows["a2.0"]["coop"] == 1 and rows["a5.0"]["coop"] == -1  # yes, no, none
    assert rows["a3.0"]["topic"] == 0


def test_field_mapping_and_a_built_gold_dataset(weak_files):
    write_jsonl(weak_files / "renamed.jsonl", [{"doc": a["id"], "headline": a["title"], "body": a["text"]}
                                               for a in CORPUS])
    gold_source = {"path": str(weak_files / "gold.jsonl"), "labels": {"coop": "coop", "topic": "topic"},
                   "fields": {"date": None, "source": None}}
    gold_config = write_config(weak_files / "gold-data.yaml", {
        "schema": str(weak_files / "schema.yaml"), "sources": [gold_source],
        "split": {"train": 0.5, "validation": 0.25, "test": 0.25}, "output": str(weak_files / "gold-built")})
    assert run_cli("data", "build", gold_config).exit_code == 0
    result = run_cli("weak", "apply", weak_files / "schema.yaml", "--input", weak_files / "renamed.jsonl",
                     "--field", "id=doc", "--field", "title=headline", "--field", "text=body",
                     "--output", weak_files / "silver.jsonl", "--gold", weak_files / "gold-built",
                     "--min-confidence", "0.6")
    assert result.exit_code == 0, result.output
    report = json.loads((weak_files / "silver.report.json").read_text())
    assert rule_rows(report, "topic")["sports_title"]["gold"] == {"n": 2, "accuracy": 0.5}
    assert report["tasks"]["coop"]["label_model"]["gold"]["accuracy"] == 1.0


@pytest.mark.parametrize(("change", "message"), [
    ({"input": "no-id.jsonl"}, "no column 'id' for id"),
    ({"gold": "bad-gold.jsonl"}, "bad-gold.jsonl:2: unknown topic label 'sport'; did you mean 'sports'?"),
    ({"gold": "many-bad-gold.jsonl"}, "many-bad-gold.jsonl:20: unknown topic label 'sport'"),
    ({"gold": "many-bad-gold.jsonl"}, "... and 3 more"),  # the first 20 are listed, the rest counted, none hidden
    ({"schema": "plain.yaml"}, "declares no rules"),
    ({"input": "twice.jsonl"}, "twice.jsonl:2: id 'a1' appears twice (first at line 1)"),
])
def test_bad_input_is_an_error_naming_the_file(weak_files, change, message):
    write_jsonl(weak_files / "no-id.jsonl", [{"title": "t", "text": "نص"}])
    write_jsonl(weak_files / "twice.jsonl", [ARTICLES[0], ARTICLES[0]])
    write_jsonl(weak_files / "bad-gold.jsonl", [{"id": "a1", "text": "نص", "topic": "health"},
                                                {"id": "a2", "text": "نص", "topic": "sport"}])
    write_jsonl(weak_files / "many-bad-gold.jsonl", [{"id": f"b{k}", "text": "نص", "topic": "sport"} for k in range(23)])
    (weak_files / "plain.yaml").write_text("name: p\ntasks:\n  - name: t\n    labels: [a, b]\n", encoding="utf-8")
    files = {"schema": "schema.yaml", "input": "articles.jsonl", **change}
    extra = ["--gold", weak_files / files["gold"]] if "gold" in files else []
    result = run_cli("weak", "apply", weak_files / files["schema"], "--input", weak_files / files["input"],
                     "--output", weak_files / "silver.jsonl", *extra)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not (weak_files / "silver.jsonl").exists()


def test_a_conditional_task_gets_silver_labels_only_where_it_applies(tmp_path):
    (tmp_path / "schema.yaml").write_text(
        "name: c\ntasks:\n  - name: coop\n    kind: binary\n    labels: [yes, no]\n    rules:\n"
        "      - {name: coop_words, label: yes, keywords: [تعاون]}\n      - {name: sport, label: no, keywords: [مباراة]}\n"
        "  - name: stance\n    labels: [supportive, critical]\n    applies_when: {task: coop, labels: [yes]}\n"
        "    rules:\n      - {name: praise, label: supportive, keywords: [أشاد]}\n", encoding="utf-8")
    write_jsonl(tmp_path / "articles.jsonl", [
        {"id": "c1", "title": "", "text": "أشاد الوزير بالتعاون"},
        {"id": "c2", "title": "", "text": "أشاد المدرب بالمباراة"},
        {"id": "c3", "title": "", "text": "أشاد الكاتب بالرواية"}])
    result = run_cli("weak", "apply", tmp_path / "schema.yaml", "--input", tmp_path / "articles.jsonl",
                     "--output", tmp_path / "silver.jsonl", "--min-confidence", "0.5")
    assert result.exit_code == 0, result.output
    silver = {row["id"]: row for row in map(json.loads, (tmp_path / "silver.jsonl").read_text().splitlines())}
    assert silver["c1"]["stance"] == "supportive"
    assert silver["c2"]["stance"] is None and "c3" not in silver  # coop is no, or unknown: stance does not apply


def test_a_malformed_record_is_reported_and_the_rest_labelled(weak_files):
    lines = (weak_files / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    (weak_files / "broken.jsonl").write_text("\n".join([lines[0], '{"id": "x", "text": ', *lines[1:]]) + "\n",
                                             encoding="utf-8")
    result = run_cli("weak", "apply", weak_files / "schema.yaml", "--input", weak_files / "broken.jsonl",
                     "--output", weak_files / "silver.jsonl")
    assert result.exit_code == 0, result.output
    assert "broken.jsonl:2:" in result.output and "skipped" in result.output
    report = json.loads((weak_files / "silver.report.json").read_text())
    assert report["articles"] == 30 and len(report["malformed"]) == 1
