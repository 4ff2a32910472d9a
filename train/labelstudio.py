"""Label Studio: the labeling configuration generated from the schema, and import tasks with pre-annotations.

Label Studio's JSON export of those tasks, once annotated, is read back by `train.data.annotations` (`format:
labelstudio`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from train.schema import Schema, Task


def labelstudio_config(schema: Schema, text_field: str = "text", title_field: str = "title") -> str:
    """A Label Studio labeling configuration (XML) with one Choices block per task of the schema.

    Tasks with `applies_when` are shown only when the other task has one of the given labels; tasks with a
    `target_field` show the target beside the task's choices.
    """
    lines = ["<View>", f'  <Header value="${title_field}"/>', f'  <Text name="text" value="${text_field}"/>']
    for task in schema.tasks:
        lines.extend(_choices_block(task))
    lines.append("</View>")
    return "\n".join(lines) + "\n"



def _choices_block(task: Task) -> list[str]:
    """The Label Studio XML lines for one task."""
    header = f"{task.name}: {task.description}" if task.description else task.name
    lines = [f"  <Header value={quoteattr(header)}/>"]
    if task.target_field:
        lines.append(f'  <Text name="{task.target_field}" value="${task.target_field}"/>')
    visible = ""
    if task.applies_when:
        # Shown (and required) only when the other task has one of the given labels; several values: commas.
        values = ",".join(task.applies_when.labels)
        visible = (
            f' visibleWhen="choice-selected" whenTagName={quoteattr(task.applies_when.task)}'
            f" whenChoiceValue={quoteattr(values)}"
        )
    lines.append(f'  <Choices name={quoteattr(task.name)} toName="text" choice="single" required="true"{visible}>')
    for label in task.labels:
        hint = f" hint={quoteattr(label.description)}" if label.description else ""
        lines.append(f"    <Choice value={quoteattr(label.name)}{hint}/>")
    lines.append("  </Choices>")
    return lines


# -- Label Studio -----------------------------------------------------------------------------------------------------
def labelstudio_tasks(columns: dict[str, list[str]], picked: Sequence[int], proba: dict[str, np.ndarray], scores: np.ndarray,
                      tasks: Sequence[Task], model_version: str) -> list[dict[str, Any]]:
    """Label Studio tasks: `data` (id, raw title and text, target fields) and the model's pre-annotations.

    The names match `labelstudio_config`: one `choices` result per task (`from_name` the task,
    `to_name` "text"). A task whose `applies_when` the predicted labels do not meet gets no pre-annotation: Label
    Studio hides it, and a hidden choice kept in the annotation would be refused when the export is imported.
    """
    records = []
    for index in picked:
        data = {key: values[index] for key, values in columns.items()}
        predicted = {task.name: task.label_names[int(np.argmax(proba[task.name][index]))] for task in tasks}
        result = [{"from_name": task.name, "to_name": "text", "type": "choices",
                   "value": {"choices": [predicted[task.name]]}}
                  for task in tasks if _shown(task, predicted)]
        records.append({"data": data, "predictions": [
            {"model_version": model_version, "score": round(float(scores[index]), 6), "result": result}]})
    return records



def _shown(task: Task, predicted: dict[str, str]) -> bool:
    condition = task.applies_when
    return condition is None or condition.task not in predicted or predicted[condition.task] in condition.labels
