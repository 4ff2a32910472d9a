"""The labeling schema: tasks, their ordered labels, aliases and dependencies. Everything downstream reads it.

A task may also declare labelling rules (weak supervision, `taawun weak apply`), and the schema the gazetteers its
co-occurrence rules name; a schema without them is written out (`model_dump`) exactly as before they existed.
"""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_serializer,
    model_validator,
)

from train.config.loading import load_config
from train.errors import TaawunError
from train.weak.terms import parse_term

if TYPE_CHECKING:
    from train.weak.gazetteer import Gazetteer

# Columns the dataset builder writes itself; a task or target field may not take these names.
RESERVED_COLUMNS = frozenset({"id", "title", "text", "raw_title", "raw_text", "date", "source", "cluster", "origin"})
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
GAZETTEER_FOLDER = "gazetteers"


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


def _omit(data: dict, keys: tuple[str, ...]) -> dict:
    """A dump without the optional keys left empty, so schemas without rules are saved as before rules existed."""
    return {key: value for key, value in data.items() if key not in keys or value not in (None, False, [], {})}


class Cooccurrence(BaseModel):
    """Within one sentence: at least `distinct` different entries of a gazetteer, one of the `terms` and, when
    given, one of `also` (a cooperation word and a security word)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    gazetteer: str
    distinct: int = Field(default=2, ge=1)
    terms: list[str] = Field(min_length=1)
    also: list[str] | None = Field(default=None, min_length=1)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _omit(handler(self), ("also",))

    @field_validator("terms", "also")
    @classmethod
    def _check_terms(cls, terms: list[str] | None) -> list[str] | None:
        return None if terms is None else _checked_terms(terms)


class Rule(BaseModel):
    """A labelling rule: it votes `label` for an article its one matcher finds at least `min_count` times.

    `scope`: the whole article, its `lead` (the title and the text's first two sentences) or its `title`. With
    `absent: true` it votes where its matcher finds fewer than `min_count` matches (no cooperation words: `no`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=IDENTIFIER)
    label: str
    keywords: list[str] | None = Field(default=None, min_length=1)
    regex: str | None = None
    cooccur: Cooccurrence | None = None
    scope: Literal["article", "lead", "title"] = "article"
    min_count: int = Field(default=1, ge=1)
    absent: bool = False

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _omit(handler(self), ("keywords", "regex", "cooccur", "absent"))

    @field_validator("keywords")
    @classmethod
    def _check_keywords(cls, keywords: list[str] | None) -> list[str] | None:
        return None if keywords is None else _checked_terms(keywords)

    @field_validator("regex")
    @classmethod
    def _check_regex(cls, pattern: str | None) -> str | None:
        """Compile at load: a bad pattern fails here, naming the key, not on the first article."""
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {err}. Escape literal ( [ * + ? "
                             "with a backslash") from None
        if compiled.fullmatch(""):
            raise ValueError(f"{pattern!r} matches the empty string, so it would vote everywhere; make it require "
                             "at least one character")
        return pattern

    @model_validator(mode="after")
    def _one_matcher(self) -> Rule:
        given = [name for name in ("keywords", "regex", "cooccur") if getattr(self, name) is not None]
        if not given:
            raise ValueError("give one matcher: keywords, regex or cooccur")
        if len(given) > 1:
            raise ValueError(f"give one matcher, not {len(given)} ({', '.join(given)})")
        return self


def _checked_terms(terms: list[str]) -> list[str]:
    for term in terms:
        parse_term(term)  # its ValueError names the term and the fix
    return terms


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
    rules: list[Rule] = []

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

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _omit(handler(self), ("rules",))

    @property
    def label_names(self) -> list[str]:
        """Label names in schema order (the ClassLabel and id2label order)."""
        return [label.name for label in self.labels]

    @property
    def positive_index(self) -> int | None:
        """For binary tasks: the positive class's index in `label_names`; None for other tasks."""
        return self.label_names.index(self.positive_label) if self.positive_label else None

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
    gazetteers: dict[str, str] = Field(default={}, description="name -> gazetteer file, relative to the schema file")
    tasks: list[Task] = Field(min_length=1)
    _loaded: dict[str, Gazetteer] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Equal declarations are equal schemas, whether their gazetteers were loaded from files or not."""
        return type(other) is type(self) and self.model_dump() == other.model_dump()

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
            _check_rules(task, set(self.gazetteers), where)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _omit(handler(self), ("gazetteers",))

    def gazetteer(self, name: str) -> Gazetteer:
        """A gazetteer the schema declares, as `load_schema` loaded it from its file."""
        if name not in self._loaded:
            raise TaawunError(f"schema {self.name!r}: gazetteer {name!r} is not loaded; load the schema from its file "
                              "(taawun reads gazetteers relative to it)")
        return self._loaded[name]

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


def _check_rules(task: Task, gazetteers: set[str], where: str) -> None:
    """Rules vote for labels of their task, have names unique in it, and name declared gazetteers."""
    seen = set()
    for index, rule in enumerate(task.rules):
        key = f"{where}.rules.{index}"
        if rule.name in seen:
            raise ValueError(f"{key}.name: rule {rule.name!r} is defined twice in task {task.name!r}")
        seen.add(rule.name)
        if rule.label not in task.label_names:
            raise ValueError(f"{key}.label: {rule.label!r} is not a label of {task.name!r} ({task.label_names}); "
                             f"did you mean {task.suggest(rule.label)!r}?")
        if rule.cooccur and rule.cooccur.gazetteer not in gazetteers:
            raise ValueError(f"{key}.cooccur.gazetteer: no gazetteer {rule.cooccur.gazetteer!r}; declare it under "
                             f"`gazetteers:` (declared: {sorted(gazetteers)})")


def load_schema(path: str | Path) -> Schema:
    """Load and validate a schema YAML file, and the gazetteers it declares (paths relative to the file)."""
    from train.weak.gazetteer import load_gazetteer

    path = Path(path)
    schema = load_config(Schema, path)
    for name, relative in schema.gazetteers.items():
        file = path.parent / relative
        if not file.is_file():
            raise TaawunError(f"{path}: gazetteers.{name}: {file}: no such file (gazetteer paths are relative to "
                              "the schema's folder)")
        schema._loaded[name] = load_gazetteer(file)
    return schema


def save_gazetteers(schema: Schema, folder: Path) -> None:
    """Copies of the gazetteer files the schema loaded, as FOLDER/gazetteers/NAME.yaml: a built dataset, and a model
    whose features read the rules, keep what the rules need wherever the schema file goes."""
    for name, gazetteer in schema._loaded.items():
        target = folder / GAZETTEER_FOLDER / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gazetteer.path, target)


def load_gazetteers(schema: Schema, folder: Path) -> Schema:
    """The schema with the gazetteers that `save_gazetteers` wrote into `folder` loaded (those present)."""
    from train.weak.gazetteer import load_gazetteer

    for name in schema.gazetteers:
        file = folder / GAZETTEER_FOLDER / f"{name}.yaml"
        if file.is_file():
            schema._loaded[name] = load_gazetteer(file)
    return schema


def describe_schema(schema: Schema) -> str:
    """A short human-readable summary of a schema."""
    lines = [f"schema {schema.name!r}: {len(schema.tasks)} task(s)"]
    lines.extend(f"  gazetteer {name}: {path}" for name, path in schema.gazetteers.items())
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
        if task.rules:
            extra.append(f"{len(task.rules)} rule(s)")
        suffix = f" ({', '.join(extra)})" if extra else ""
        lines.append(f"  {task.name} [{task.kind}]{suffix}")
        lines.extend(f"    - {label.name}: {label.description}".rstrip(": ") for label in task.labels)
    return "\n".join(lines)


