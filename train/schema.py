"""The labeling schema: tasks, their ordered labels, aliases and dependencies. Everything downstream reads it."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from train.config.loading import load_config

# Columns the dataset builder writes itself; a task or target field may not take these names.
RESERVED_COLUMNS = frozenset({"id", "title", "text", "raw_title", "raw_text", "date", "source", "cluster", "origin"})
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Label(BaseModel):
    """One label of a task, with the short description annotators see."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    description: str = ""


class AppliesWhen(BaseModel):
    """A task is annotated only when another task has one of the given labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    task: str
    labels: list[str] = Field(min_length=1)


class Task(BaseModel):
    """One labeling task: a column of the dataset and a head of the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=IDENTIFIER)
    kind: Literal["single_label", "binary"] = "single_label"
    description: str = ""
    labels: list[Label] = Field(min_length=2)
    positive: str | None = None
    aliases: dict[str, str] = {}
    target_field: str | None = Field(default=None, pattern=IDENTIFIER)
    applies_when: AppliesWhen | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_strings(cls, value: object) -> object:
        """Accept `- politics` as shorthand for `- {name: politics}`."""
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _check_labels(self) -> Task:
        names = self.label_names
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"duplicate labels {repeated}; each label must appear once")
        if self.kind == "binary" and len(names) != 2:
            raise ValueError(f"a binary task has exactly two labels, got {len(names)}: {names}")
        if self.positive is not None and self.positive not in names:
            raise ValueError(f"positive label {self.positive!r} is not one of {names}")
        for alias, target in self.aliases.items():
            if target not in names:
                raise ValueError(f"alias {alias!r} maps to {target!r}, which is not one of {names}")
        return self

    @property
    def label_names(self) -> list[str]:
        """Label names in schema order (the ClassLabel and id2label order)."""
        return [label.name for label in self.labels]

    @property
    def positive_label(self) -> str | None:
        """For binary tasks: the positive class (`positive`, else `yes` when present, else the first label)."""
        if self.kind != "binary":
            return None
        if self.positive:
            return self.positive
        return "yes" if "yes" in self.label_names else self.label_names[0]

    def resolve(self, value: str) -> str | None:
        """Map an external label to a schema label (exact, alias, then case-insensitive); None when unknown."""
        if value in self.label_names:
            return value
        if value in self.aliases:
            return self.aliases[value]
        folded = {name.casefold(): name for name in self.label_names}
        folded.update({alias.casefold(): name for alias, name in self.aliases.items()})
        return folded.get(value.strip().casefold())

    def suggest(self, value: str) -> str:
        """The closest valid label to `value`, for error messages."""
        matches = difflib.get_close_matches(value, self.label_names, n=1, cutoff=0.0)
        return matches[0] if matches else self.label_names[0]


class Schema(BaseModel):
    """A labeling schema: an ordered list of tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    description: str = ""
    tasks: list[Task] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_tasks(self) -> Schema:
        names = [task.name for task in self.tasks]
        for index, task in enumerate(self.tasks):
            where = f"tasks.{index}"
            if names.count(task.name) > 1:
                raise ValueError(f"{where}.name: task {task.name!r} is defined twice")
            for column in (task.name, task.target_field):
                if column in RESERVED_COLUMNS:
                    raise ValueError(f"{where}: {column!r} is a column the dataset builder writes; rename it")
            if task.applies_when:
                _check_applies_when(task, names[:index], {t.name: t for t in self.tasks}, where)
        return self

    def task(self, name: str) -> Task:
        """The task called `name`; a clear error listing the schema's tasks when there is none."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"schema {self.name!r} has no task {name!r}; its tasks: {self.task_names}")

    @property
    def task_names(self) -> list[str]:
        """Task names in schema order."""
        return [task.name for task in self.tasks]


def _check_applies_when(task: Task, earlier: list[str], tasks: dict[str, Task], where: str) -> None:
    """`applies_when` must name an earlier task and labels it has (earlier: no cycles)."""
    ref = task.applies_when
    if ref.task not in tasks:
        raise ValueError(f"{where}.applies_when.task: no task {ref.task!r}; tasks: {list(tasks)}")
    if ref.task not in earlier:
        raise ValueError(f"{where}.applies_when.task: {ref.task!r} must be defined before {task.name!r}")
    unknown = [label for label in ref.labels if label not in tasks[ref.task].label_names]
    if unknown:
        raise ValueError(
            f"{where}.applies_when.labels: {unknown} are not labels of {ref.task!r} ({tasks[ref.task].label_names})"
        )


def load_schema(path: str | Path) -> Schema:
    """Load and validate a schema YAML file."""
    return load_config(Schema, path)


def describe_schema(schema: Schema) -> str:
    """A short human-readable summary of a schema."""
    lines = [f"schema {schema.name!r}: {len(schema.tasks)} task(s)"]
    for task in schema.tasks:
        extra = []
        if task.kind == "binary":
            extra.append(f"positive={task.positive_label}")
        if task.target_field:
            extra.append(f"target_field={task.target_field}")
        if task.applies_when:
            extra.append(f"applies when {task.applies_when.task} in {task.applies_when.labels}")
        if task.aliases:
            extra.append(f"{len(task.aliases)} alias(es)")
        suffix = f" ({', '.join(extra)})" if extra else ""
        lines.append(f"  {task.name} [{task.kind}]{suffix}")
        lines.extend(f"    - {label.name}: {label.description}".rstrip(": ") for label in task.labels)
    return "\n".join(lines)


