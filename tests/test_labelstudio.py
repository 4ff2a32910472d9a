"""The Label Studio labeling config generated from a schema, checked by Label Studio's own SDK, offline.

`label_studio_sdk.label_interface.LabelInterface.validate()` is the check Label Studio's server applies to a labeling
config (its JSON schema of tags, unique names, every `toName` naming an object tag); `validate_prediction` checks a
pre-annotation against the config. The live round trip against a real server is tests/workflows/test_annotate_live.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from label_studio_sdk.label_interface import LabelInterface

from tests.helpers import SCHEMA, run_cli
from train.labelstudio import labelstudio_config, labelstudio_tasks
from train.schema import Schema, load_schema

CONDITIONAL = Schema.model_validate({"name": "s", "tasks": [
    {"name": "coop", "kind": "binary", "labels": ["yes", "no"]},
    {"name": "kind", "labels": ["military", "police"], "applies_when": {"task": "coop", "labels": ["yes"]}},
    {"name": "stance", "target_field": "claim", "labels": ["agree", "disagree", "other"],
     "applies_when": {"task": "kind", "labels": ["military"]}}]})


@pytest.mark.parametrize("schema", [load_schema(SCHEMA), CONDITIONAL], ids=["default", "conditional_with_target"])
def test_generated_config_and_predictions_pass_label_studio_validation(schema):
    config = labelstudio_config(schema)
    interface = LabelInterface(config)
    interface.validate()  # raises LabelStudioValidationErrorSentryIgnored with Label Studio's message
    assert {control.name for control in interface.controls} == set(schema.task_names)
    targets = {task.target_field for task in schema.tasks if task.target_field}
    assert {obj.name for obj in interface.objects} == {"text", *targets}
    for task in schema.tasks:
        assert interface.get_control(task.name).labels == task.label_names
    proba = {task.name: np.tile(np.eye(len(task.labels))[0] * 0.7 + 0.3 / len(task.labels), (2, 1))
             for task in schema.tasks}
    columns = {"id": ["a", "b"], "title": ["", ""], "text": ["x", "y"], "claim": ["c", "d"]}
    for record in labelstudio_tasks(columns, [0, 1], proba, np.array([0.2, 0.4]), schema.tasks, "m"):
        (prediction,) = record["predictions"]
        assert interface.validate_prediction(prediction, return_errors=True) == []


def _parents(root: ElementTree.Element) -> dict[ElementTree.Element, ElementTree.Element]:
    return {child: parent for parent in root.iter() for child in parent}


def _ancestors(element, parents):
    while element in parents:
        element = parents[element]
        yield element


def test_each_conditional_question_is_one_view_that_hides_its_header():
    root = ElementTree.fromstring(labelstudio_config(CONDITIONAL))
    parents = _parents(root)
    for name, when, value in (("kind", "coop", "yes"), ("stance", "kind", "military")):
        choices = next(c for c in root.iter("Choices") if c.get("name") == name)
        view = parents[choices]
        assert view.tag == "View"
        assert (view.get("visibleWhen"), view.get("whenTagName"), view.get("whenChoiceValue")) == (
            "choice-selected", when, value)
        headers = [h.get("value") for h in view.iter("Header")]
        assert headers and headers[0].startswith(name)  # the question's header hides with its choices
    coop = next(c for c in root.iter("Choices") if c.get("name") == "coop")
    assert all(a.get("visibleWhen") is None for a in _ancestors(coop, parents))


def test_arabic_fields_read_right_to_left():
    result = run_cli("schema", "labelstudio", SCHEMA)
    assert result.exit_code == 0, result.output
    for config in (result.output, labelstudio_config(CONDITIONAL)):
        root = ElementTree.fromstring(config)
        parents = _parents(root)
        arabic = [*root.iter("Text"), *(h for h in root.iter("Header") if h.get("value") == "$title")]
        assert len(arabic) >= 2
        for element in arabic:  # the headline, the article and a target (a claim) are Arabic
            styles = " ".join(a.get("style") or "" for a in _ancestors(element, parents))
            assert "direction: rtl" in styles, element.attrib
        questions = [h for h in root.iter("Header") if h.get("value") != "$title"]
        for element in questions:  # the task names and English hints stay left to right
            assert all("rtl" not in (a.get("style") or "") for a in _ancestors(element, parents))


def test_a_question_under_a_hidden_question_gets_no_pre_annotation():
    # coop = no hides `kind`, and with it `stance`, although the model's `kind` (military) would show `stance`.
    proba = {"coop": np.array([[0.2, 0.8]]), "kind": np.array([[0.9, 0.1]]), "stance": np.array([[0.5, 0.3, 0.2]])}
    columns = {"id": ["a"], "title": [""], "text": ["x"], "claim": ["c"]}
    (record,) = labelstudio_tasks(columns, [0], proba, np.array([0.5]), CONDITIONAL.tasks, "m")
    assert [item["from_name"] for item in record["predictions"][0]["result"]] == ["coop"]


def test_pre_annotations_use_the_decision_threshold_and_show_the_evidence_sentence():
    schema = load_schema(SCHEMA)
    config = labelstudio_config(schema, evidence_tasks=["bilateral_security_cooperation"])
    interface = LabelInterface(config)
    interface.validate()
    assert "bilateral_security_cooperation_evidence" in {obj.name for obj in interface.objects}
    proba = {task.name: np.tile(np.full(len(task.labels), 1 / len(task.labels)), (2, 1)) for task in schema.tasks}
    proba["bilateral_security_cooperation"] = np.array([[0.3, 0.7], [0.3, 0.7]])  # columns in schema order: yes, no
    columns = {"id": ["a", "b"], "title": ["", ""], "text": ["x. y", "z"]}
    evidence = {"bilateral_security_cooperation": [{"sentence": "y", "score": 0.3}, None]}
    records = labelstudio_tasks(columns, [1, 0], proba, np.array([0.2, 0.4]), schema.tasks, "m",
                                {"bilateral_security_cooperation": 0.25}, evidence)
    # argmax says "no"; the model's threshold (0.25 on "yes") says "yes", as `taawun predict` does
    choices = {r["from_name"]: r["value"]["choices"] for r in records[0]["predictions"][0]["result"]}
    assert choices["bilateral_security_cooperation"] == ["yes"]
    assert [r["data"]["bilateral_security_cooperation_evidence"] for r in records] == ["y", ""]
    for record in records:
        assert interface.validate_prediction(record["predictions"][0], return_errors=True) == []
