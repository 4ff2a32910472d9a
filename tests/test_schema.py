"""The labeling schema: loading, validation errors with key paths, the Label Studio config."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.helpers import ROOT, SCHEMA, run_cli
from train.schema import load_schema


def test_default_schema_follows_the_guideline():
    schema = load_schema(SCHEMA)
    assert schema.task_names == ["topic", "bilateral_security_cooperation", "stance"]
    assert schema.task("topic").label_names == ["politics", "security", "economy", "sports", "health", "culture",
                                                "technology", "society"]
    binary = schema.task("bilateral_security_cooperation")
    assert binary.kind == "binary" and binary.label_names == ["yes", "no"] and binary.positive_label == "yes"
    assert schema.task("stance").label_names == ["supportive", "neutral", "critical"]
    assert all(label.description for task in schema.tasks for label in task.labels)
    assert schema.task("topic").resolve("Finance") == "economy"
    assert schema.task("topic").resolve("astrology") is None


def test_ant_sections_schema():
    schema = load_schema(ROOT / "configs" / "schemas" / "ant_sections.yaml")
    assert schema.task_names == ["section"]
    assert len(schema.task("section").labels) == 6


def test_schema_check_prints_summary():
    result = run_cli("schema", "check", SCHEMA)
    assert result.exit_code == 0
    assert "bilateral_security_cooperation [binary] (positive=yes" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: s\ntasks:\n  - name: t\n    labels: [a, b]\n    colour: red\n", "tasks.0.colour: unknown key"),
        ("name: s\ntasks:\n  - name: t\n    labels: [a, b, a]\n", "tasks.0: duplicate labels ['a']"),
        ("name: s\ntasks:\n  - name: t\n    labels: [a]\n", "tasks.0.labels: List should have at least 2 items"),
        ("name: s\ntasks:\n  - name: t\n    kind: binary\n    labels: [a, b, c]\n", "a binary task has exactly two"),
        ("name: s\ntasks:\n  - name: t\n    labels: [a, b]\n    aliases: {x: z}\n", "alias 'x' maps to 'z'"),
        ("name: s\ntasks:\n  - name: t\n    labels: [a, b]\n    applies_when: {task: u, labels: [a]}\n",
         "tasks.0.applies_when.task: no task 'u'"),
        ("name: s\ntasks:\n  - name: t\n    labels: [a, b]\n  - name: u\n    labels: [c, d]\n"
         "    applies_when: {task: t, labels: [z]}\n", "tasks.1.applies_when.labels: ['z'] are not labels of 't'"),
        ("name: s\ntasks:\n  - name: text\n    labels: [a, b]\n", "'text' is a column the dataset builder writes"),
        ("name: s\ntasks:\n  - name: t\n    labels: [a, b]\n  - name: t\n    labels: [a, b]\n", "defined twice"),
        ("name: s\ntasks: [\n", "not valid YAML"),
    ],
)
def test_bad_schema_gives_key_path(tmp_path, text, message):
    path = tmp_path / "schema.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("schema", "check", path)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_yes_and_no_stay_labels_in_yaml(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text("name: s\ntasks:\n  - name: t\n    kind: binary\n    labels: [yes, no]\n", encoding="utf-8")
    assert load_schema(path).task("t").label_names == ["yes", "no"]


def test_labelstudio_config_has_every_label(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text(
        "name: s\ntasks:\n  - name: coop\n    kind: binary\n    labels: [yes, no]\n"
        "  - name: stance\n    target_field: claim\n    labels: [agree, disagree, other]\n"
        "    applies_when: {task: coop, labels: [yes]}\n", encoding="utf-8")
    result = run_cli("schema", "labelstudio", path)
    assert result.exit_code == 0
    view = ET.fromstring(result.output)
    choices = {c.get("name"): c for c in view.iter("Choices")}
    assert [c.get("value") for c in choices["coop"]] == ["yes", "no"]
    assert [c.get("value") for c in choices["stance"]] == ["agree", "disagree", "other"]
    (shown_when,) = [view for view in view.iter("View") if choices["stance"] in list(view)]  # header and choices
    assert shown_when.get("visibleWhen") == "choice-selected"
    assert shown_when.get("whenTagName") == "coop" and shown_when.get("whenChoiceValue") == "yes"
    assert any(t.get("value") == "$claim" for t in view.iter("Text"))


def test_default_schema_labelstudio_config_parses():
    result = run_cli("schema", "labelstudio", SCHEMA)
    names = [c.get("name") for c in ET.fromstring(result.output).iter("Choices")]
    assert names == ["topic", "bilateral_security_cooperation", "stance"]


# Weak supervision: labelling rules and gazetteers declared in the schema.

RULE_SCHEMA = "name: s\n{gazetteers}tasks:\n  - name: t\n    kind: binary\n    labels: [yes, no]\n    rules:\n{rules}"


@pytest.mark.parametrize(
    ("gazetteers", "rules", "message"),
    [
        ("", "      - {name: r, label: maybe, keywords: [تعاون]}\n",
         "tasks.0.rules.0.label: 'maybe' is not a label of 't' (['yes', 'no'])"),
        ("", "      - {name: r, label: yes, keyword: [تعاون]}\n", "tasks.0.rules.0.keyword: unknown key"),
        ("", "      - {name: r, label: yes, regex: '(تعاون'}\n",
         "tasks.0.rules.0.regex: '(تعاون' is not a valid regular expression"),
        ("", "      - {name: r, label: yes, regex: 'x*'}\n", "tasks.0.rules.0.regex: 'x*' matches the empty string"),
        ("", "      - {name: r, label: yes}\n", "tasks.0.rules.0: give one matcher: keywords, regex or cooccur"),
        ("", "      - {name: r, label: yes, keywords: [a], regex: b}\n",
         "tasks.0.rules.0: give one matcher, not 2 (keywords, regex)"),
        ("", "      - {name: r, label: yes, keywords: ['*']}\n",
         "tasks.0.rules.0.keywords: '*' has no word; write words separated by spaces"),
        ("", "      - {name: r, label: yes, keywords: [تع*اون]}\n", "tasks.0.rules.0.keywords: 'تع*اون': '*' may only end a word"),
        ("", "      - {name: r, label: yes, keywords: [a]}\n      - {name: r, label: no, keywords: [b]}\n",
         "tasks.0.rules.1.name: rule 'r' is defined twice"),
        ("", "      - {name: r, label: yes, cooccur: {gazetteer: states, terms: [تعاون]}}\n",
         "tasks.0.rules.0.cooccur.gazetteer: no gazetteer 'states'; declare it under `gazetteers:`"),
        ("gazetteers: {states: absent.yaml}\n",
         "      - {name: r, label: yes, cooccur: {gazetteer: states, terms: [تعاون]}}\n",
         "absent.yaml: no such file (gazetteer paths are relative to the schema's folder)"),
        ("gazetteers: {states: bad.yaml}\n",
         "      - {name: r, label: yes, cooccur: {gazetteer: states, terms: [تعاون]}}\n",
         "bad.yaml: entries.0.code: required key is missing"),
        ("gazetteers: {states: states.yaml}\n",
         "      - {name: r, label: yes, cooccur: {gazetteer: states, distinct: 0, terms: [تعاون]}}\n",
         "tasks.0.rules.0.cooccur.distinct: Input should be greater than or equal to 1"),
    ],
)
def test_bad_rules_give_key_path(tmp_path, gazetteers, rules, message):
    (tmp_path / "states.yaml").write_text("entries:\n  - {code: EG, names: [مصر]}\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("entries:\n  - {names: [مصر]}\n", encoding="utf-8")
    path = tmp_path / "schema.yaml"
    path.write_text(RULE_SCHEMA.format(gazetteers=gazetteers, rules=rules), encoding="utf-8")
    result = run_cli("schema", "check", path)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_schema_without_rules_dumps_as_before():
    schema = load_schema(ROOT / "configs" / "schemas" / "ant_sections.yaml")
    dumped = schema.model_dump(mode="json")
    assert set(dumped) == {"name", "description", "tasks"}
    assert all(set(task) == {"name", "kind", "description", "labels", "positive", "aliases", "target_field",
                             "applies_when"} for task in dumped["tasks"])


def test_the_default_schema_declares_rules_and_survives_a_json_round_trip():
    from train.schema import Schema

    schema = load_schema(SCHEMA)
    assert {rule.label for rule in schema.task("bilateral_security_cooperation").rules} == {"yes", "no"}
    assert len(schema.gazetteer("states").entries) == 197
    again = Schema.model_validate(schema.model_dump(mode="json"))
    assert again == schema and again.task("topic").rules == schema.task("topic").rules
    assert "rule(s)" in run_cli("schema", "check", SCHEMA).output
