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
    assert choices["stance"].get("visibleWhen") == "choice-selected"
    assert choices["stance"].get("whenTagName") == "coop" and choices["stance"].get("whenChoiceValue") == "yes"
    assert any(t.get("value") == "$claim" for t in view.iter("Text"))


def test_default_schema_labelstudio_config_parses():
    result = run_cli("schema", "labelstudio", SCHEMA)
    names = [c.get("name") for c in ET.fromstring(result.output).iter("Choices")]
    assert names == ["topic", "bilateral_security_cooperation", "stance"]
