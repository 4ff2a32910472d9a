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

RTL = "direction: rtl; text-align: right"  # Label Studio shows Text inline: the View's direction reaches it


def labelstudio_config(schema: Schema, text_field: str = "text", title_field: str = "title",
                       evidence_tasks: Sequence[str] = ()) -> str:
    """A Label Studio labeling configuration (XML) with one Choices block per task of the schema.

    For each of `evidence_tasks` (a model that scores sentences, see `labelstudio_tasks`) the sentence the model read
    as its evidence shows under the article, from the task data's `<task>_evidence` field.

    The Arabic fields (headline, article, a task's target) read right to left; the questions stay left to right. A
    task with `applies_when` is one View shown only when the other task has one of the given labels, so its header
    hides with its choices (and Label Studio requires an answer only while it shows); a task with a `target_field`
    shows the target above its choices.
    """
    lines = ["<View>", f"  <View style={quoteattr(RTL)}>", f'    <Header value="${title_field}"/>',
             f'    <Text name="text" value="${text_field}"/>', "  </View>"]
    for name in evidence_tasks:
        lines.extend([f"  <Header value={quoteattr(f'{name}: the sentence the model read as evidence')} size=\"6\"/>",
                      f"  <View style={quoteattr(RTL)}><Text name={quoteattr(evidence_field(name))} "
                      f"value={quoteattr('$' + evidence_field(name))}/></View>"])
    for task in schema.tasks:
        lines.extend(_question(task))
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _question(task: Task) -> list[str]:
    """The Label Studio XML lines for one task: its header, its target, its choices."""
    header = f"{task.name}: {task.description}" if task.description else task.name
    lines = [f"<Header value={quoteattr(header)}/>"]
    if task.target_field:
        lines.append(f'<View style={quoteattr(RTL)}><Text name="{task.target_field}" value="${task.target_field}"/>'
                     "</View>")
    lines.append(f'<Choices name={quoteattr(task.name)} toName="text" choice="single" required="true">')
    for label in task.labels:
        hint = f" hint={quoteattr(label.description)}" if label.description else ""
        lines.append(f"  <Choice value={quoteattr(label.name)}{hint}/>")
    lines.append("</Choices>")
    if not task.applies_when:
        return [f"  {line}" for line in lines]
    # Several values: commas. Label Studio hides a View's children with it, and hides a question whose parent hides.
    values = ",".join(task.applies_when.labels)
    view = (f'  <View visibleWhen="choice-selected" whenTagName={quoteattr(task.applies_when.task)}'
            f" whenChoiceValue={quoteattr(values)}>")
    return [view, *(f"    {line}" for line in lines), "  </View>"]


# -- Label Studio -----------------------------------------------------------------------------------------------------
def evidence_field(task: str) -> str:
    """The task data field holding the evidence sentence of `task`."""
    return f"{task}_evidence"


def labelstudio_tasks(columns: dict[str, list[str]], picked: Sequence[int], proba: dict[str, np.ndarray],
                      uncertainty: np.ndarray, tasks: Sequence[Task], model_version: str,
                      thresholds: dict[str, float] | None = None,
                      evidence: dict[str, list[dict]] | None = None) -> list[dict[str, Any]]:
    """Label Studio tasks: `data` (id, raw title and text, date, source, target fields) and the model's pre-annotations.

    The names match `labelstudio_config`: one `choices` result per task (`from_name` the task, `to_name` "text"),
    scored with the probability of the predicted label. The predicted label is the one `taawun predict` gives: a
    binary task's decision threshold (`thresholds`) applies. `evidence` ({task: [{"sentence", "score"}] in the order
    of `picked`}) fills each task's `<task>_evidence` field (and the field stays empty where there is none).

    The prediction's `score` is the model's confidence, 1 minus the article's `uncertainty` (see
    train.workflows.suggest): Label Studio sorts and filters tasks by it, so the least sure come first in ascending
    order. A task whose `applies_when` the predicted labels do not meet gets no
    pre-annotation: Label Studio hides it, and a hidden choice kept in the annotation would be refused when the export
    is imported.
    """
    from train.evaluation.metrics import decide

    by_name = {task.name: task for task in tasks}
    thresholds = thresholds or {}
    decided = {task.name: decide(np.asarray(proba[task.name])[list(picked)], task.positive_index,
                                 thresholds.get(task.name)) for task in tasks}
    records = []
    for order, index in enumerate(picked):
        data = {key: values[index] for key, values in columns.items()}
        for name, rows in (evidence or {}).items():
            data[evidence_field(name)] = rows[order]["sentence"] if rows[order] else ""
        best = {task.name: int(decided[task.name][order]) for task in tasks}
        predicted = {task.name: task.label_names[best[task.name]] for task in tasks}
        result = [{"from_name": task.name, "to_name": "text", "type": "choices",
                   "value": {"choices": [predicted[task.name]]},
                   "score": round(float(proba[task.name][index][best[task.name]]), 6)}
                  for task in tasks if _shown(task, predicted, by_name)]
        confidence = round(1.0 - float(uncertainty[index]), 6)
        records.append({"data": data, "predictions": [
            {"model_version": model_version, "score": confidence, "result": result}]})
    return records


def _shown(task: Task, predicted: dict[str, str], by_name: dict[str, Task]) -> bool:
    """Whether Label Studio shows the task's question under the predicted labels (a hidden parent hides it too)."""
    condition = task.applies_when
    if condition is None or condition.task not in predicted:
        return True
    return predicted[condition.task] in condition.labels and _shown(by_name[condition.task], predicted, by_name)
