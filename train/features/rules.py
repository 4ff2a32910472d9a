"""The schema's labelling rules as features: one column per rule, `weight` where the rule votes, else 0.

The rules (`rules:` of the schema's tasks, weak supervision) see what TF-IDF cannot: two different states named in
one sentence with a cooperation term, a topic word in the title. Every rule of every task is a column for every task's
head (a topic rule can inform stance). The model keeps the rules and copies of their gazetteers in its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from train import progress
from train.errors import TaawunError
from train.schema import Schema, Task, load_gazetteers, save_gazetteers
from train.weak.rules import RuleSet

RULES_FILE = "rules.json"


class RuleFeatures:
    """Rule votes of articles as a sparse block."""

    def __init__(self, schema: Schema, weight: float):
        self.schema = schema
        self.weight = weight
        self.rules = RuleSet.of(schema)

    @classmethod
    def fit(cls, schema: Schema | None, weight: float) -> RuleFeatures:
        """The features of a loaded schema's rules; a clear error when there are none to read."""
        if schema is None or not any(task.rules for task in schema.tasks):
            name = "no schema" if schema is None else f"schema {schema.name!r}"
            raise TaawunError(f"rules_weight: {name} declares no labelling rules (`rules:` of a task) to use as "
                              "features; declare some, or set rules_weight: 0")
        try:
            return cls(schema, weight)
        except TaawunError as err:  # a dataset built before datasets kept their schema's gazetteers
            raise TaawunError(f"rules_weight: {err}. A dataset built by an earlier taawun lacks the "
                              "gazetteers: build it again (`taawun data build`), or set rules_weight: 0") from None

    @property
    def columns(self) -> list[str]:
        """`task/rule` of every column, in order."""
        return [f"{task.name}/{rule.name}" for task in self.rules.tasks for rule in task.rules]

    def transform(self, titles: list[str], texts: list[str]) -> sp.csr_matrix:
        """`weight` where a rule votes, one row per article."""
        if len(texts) > 1000:
            progress.step(f"applying {len(self.columns)} labelling rules to {len(texts)} articles")
        rows = []
        for title, text in zip(titles, texts, strict=True):
            votes = self.rules.vote(title, text)
            rows.append([vote >= 0 for task in self.rules.tasks for vote in votes[task.name]])
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(texts), len(self.columns))
        return sp.csr_matrix(matrix * self.weight)

    def save(self, folder: Path) -> None:
        """The rules' tasks and gazetteers, so that the model applies the same rules wherever it goes."""
        rule_tasks = [task.model_dump(mode="json") for task in self.rules.tasks]
        (folder / RULES_FILE).write_text(json.dumps({"gazetteers": self.schema.gazetteers, "tasks": rule_tasks},
                                                    ensure_ascii=False, indent=1), encoding="utf-8")
        save_gazetteers(self.schema, folder)

    @classmethod
    def load(cls, folder: Path, weight: float) -> RuleFeatures:
        """What `save` wrote."""
        saved = json.loads((folder / RULES_FILE).read_text(encoding="utf-8"))
        tasks = [Task.model_validate(task) for task in saved["tasks"]]
        schema = Schema.model_construct(name="rules", gazetteers=saved["gazetteers"], tasks=tasks)
        return cls(load_gazetteers(schema, folder), weight)
