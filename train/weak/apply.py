"""`taawun weak apply`: label unlabelled articles with a schema's rules and write a silver annotation file.

The articles are cleaned and normalized as a data build does by default, every task's rules vote, and one label
model per task (Dawid-Skene, fitted on these articles' votes alone: no gold label is used) turns the votes into
posteriors. An article gets a task's label where the posterior reaches `min_confidence`; a task that applies only
when another task has some labels (`applies_when`) gets one only where that task's silver label is one of them.
The silver file (JSONL: `id`, one column per task with rules, `<task>_confidence`) is an `annotations:` source of
a data config as it is; its report (`<output stem>.report.json`) has each rule's coverage, overlap and conflict,
and, with gold articles, each rule's accuracy and the label model's on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.data.table import ARTICLE_KEYS, ArticleReader, label_indices
from train.errors import TaawunError
from train.files import atomic_file, write_json_atomically
from train.schema import Task, load_schema
from train.text.clean import CleaningOptions, NormalizationOptions, TextPipeline
from train.weak.label_model import DawidSkene
from train.weak.report import describe, gold_figures, rule_figures
from train.weak.rules import RuleSet


@dataclass
class Votes:
    """Articles' ids and each task's votes (articles x rules), with gold labels (-1: none) when known."""

    ids: list[str]
    votes: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] | None = None


@dataclass
class WeakResult:
    """What `weak_apply` wrote, and its report."""

    output: Path
    report_file: Path
    report: dict[str, Any]
    malformed: list[str]

    def describe(self) -> str:
        """The report as text for the terminal."""
        return describe(self.report)


def weak_apply(schema_path: Path, source: Path, output: Path, fields: dict[str, str], gold: Path | None = None,
               gold_fields: dict[str, str] | None = None, min_confidence: float = 0.8) -> WeakResult:
    """Vote on the articles of `source`, combine the votes, write the silver labels and the report (atomically)."""
    started = time.perf_counter()
    schema = load_schema(schema_path)
    rules = RuleSet.of(schema)
    if not rules.tasks:
        raise TaawunError(f"{schema_path}: declares no rules; give a task `rules:` (configs/schema.yaml has examples)")
    gold_votes = read_gold(rules, gold, gold_fields or {}) if gold else None
    malformed: list[str] = []
    articles = vote_file(rules, source, fields, malformed)
    models = {task.name: DawidSkene(len(task.labels)).fit(articles.votes[task.name]) for task in rules.tasks}
    labels, confidence = silver_labels(rules.tasks, models, articles.votes, min_confidence)
    report = {"schema": str(schema_path), "input": str(source), "articles": len(articles.ids),
              "malformed": malformed, "min_confidence": min_confidence, "gold": str(gold) if gold else None,
              "tasks": {}}
    for task in rules.tasks:
        figures = rule_figures(task, articles.votes[task.name], labels[task.name], models[task.name])
        if gold_votes is not None:
            gold_figures(task, figures, gold_votes, models[task.name], min_confidence)
        report["tasks"][task.name] = figures
    report["seconds"] = round(time.perf_counter() - started, 2)
    report_file = output.with_name(f"{output.name.removesuffix('.jsonl')}.report.json")
    write_silver(output, articles.ids, rules.tasks, labels, confidence)
    write_json_atomically(report_file, report)
    return WeakResult(output, report_file, report, malformed)


def vote_file(rules: RuleSet, source: Path, fields: dict[str, str], malformed: list[str]) -> Votes:
    """Clean each article of a JSONL/CSV/Parquet file as a data build does, and collect every rule's vote."""
    reader = ArticleReader(source, fields, ARTICLE_KEYS, ["id", "text"],
                           {"id": " (the silver labels join the articles by id)"})
    pipeline = TextPipeline(CleaningOptions(), NormalizationOptions())
    ids, first_line = [], {}
    votes: dict[str, list[list[int]]] = {task.name: [] for task in rules.tasks}
    for line, record in reader:
        article_id = record["id"].strip()
        if not article_id:
            raise TaawunError(f"{source}:{line}: empty id; every article needs one to join its silver labels")
        if article_id in first_line:
            raise TaawunError(f"{source}:{line}: id {article_id!r} appears twice (first at line "
                              f"{first_line[article_id]}); ids must be unique to join the silver labels")
        first_line[article_id] = line
        ids.append(article_id)
        for task, task_votes in rules.vote(pipeline(record["title"]).text, pipeline(record["text"]).text).items():
            votes[task].append(task_votes)
    malformed.extend(reader.malformed)
    return Votes(ids, _matrices(rules, votes))


def _matrices(rules: RuleSet, votes: dict[str, list[list[int]]]) -> dict[str, np.ndarray]:
    """Each task's votes as an articles x rules array (its shape kept when there are no articles)."""
    return {task.name: np.asarray(votes[task.name], dtype=np.int64).reshape(-1, len(task.rules))
            for task in rules.tasks}


def silver_labels(tasks: list[Task], models: dict[str, DawidSkene], votes: dict[str, np.ndarray],
                  min_confidence: float) -> tuple[dict[str, list[str | None]], dict[str, np.ndarray]]:
    """Per task: the label where the posterior reaches `min_confidence` (else None), and the top posterior."""
    labels, confidence = {}, {}
    for task in tasks:
        proba = models[task.name].predict_proba(votes[task.name])
        covered = ~np.isnan(proba).any(axis=1)
        top = np.where(covered, np.nan_to_num(proba).max(axis=1), np.nan)
        best = np.nan_to_num(proba).argmax(axis=1)
        labels[task.name] = [task.label_names[k] if ok and p >= min_confidence else None
                             for k, ok, p in zip(best, covered, top, strict=True)]
        confidence[task.name] = top
    for task in tasks:
        if task.applies_when:
            parent = labels.get(task.applies_when.task, [None] * len(labels[task.name]))
            labels[task.name] = [label if up in task.applies_when.labels else None
                                 for label, up in zip(labels[task.name], parent, strict=True)]
    return labels, confidence


def write_silver(output: Path, ids: list[str], tasks: list[Task], labels: dict[str, list[str | None]],
                 confidence: dict[str, np.ndarray]) -> None:
    """One JSONL row per article that has at least one silver label, atomically."""
    import json

    with atomic_file(output) as handle:
        for i, article_id in enumerate(ids):
            if all(labels[task.name][i] is None for task in tasks):
                continue
            row: dict[str, Any] = {"id": article_id}
            for task in tasks:
                top = confidence[task.name][i]
                row[task.name] = labels[task.name][i]
                row[f"{task.name}_confidence"] = None if np.isnan(top) else round(float(top), 4)
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_gold(rules: RuleSet, gold: Path, fields: dict[str, str]) -> Votes:
    """Gold articles (a built dataset folder or data config, or a raw labelled file), their votes and labels."""
    if gold.is_dir() or gold.suffix in (".yaml", ".yml"):
        titles, texts, labels = _dataset_gold(rules, gold)
    else:
        titles, texts, labels = _file_gold(rules, gold, fields)
    pipeline = TextPipeline(CleaningOptions(), NormalizationOptions())
    votes: dict[str, list[list[int]]] = {task.name: [] for task in rules.tasks}
    for title, text in zip(titles, texts, strict=True):
        for task, task_votes in rules.vote(pipeline(title).text, pipeline(text).text).items():
            votes[task].append(task_votes)
    return Votes([], _matrices(rules, votes), labels)


def _dataset_gold(rules: RuleSet, folder: Path) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """Every split of a built dataset: its raw title and text (cleaned again here) and its labels, by label name."""
    from train.data.build import open_dataset

    dataset, _, _ = open_dataset(folder)
    titles, texts, labels = [], [], {task.name: [] for task in rules.tasks}
    for split in dataset.values():
        titles += list(split["raw_title"]) if "raw_title" in split.column_names else list(split["title"])
        texts += list(split["raw_text"]) if "raw_text" in split.column_names else list(split["text"])
        for task in rules.tasks:
            if task.name not in split.column_names:
                labels[task.name] += [-1] * len(split)
                continue
            names = split.features[task.name].names
            if not set(names) <= set(task.label_names):
                raise TaawunError(f"{folder}: task {task.name!r} has labels {names} in the dataset, and "
                                  f"{task.label_names} in the schema; build the gold data with this schema")
            labels[task.name] += [task.label_names.index(names[k]) if k >= 0 else -1 for k in split[task.name]]
    return titles, texts, {task: np.asarray(values, dtype=np.int64) for task, values in labels.items()}


def _file_gold(rules: RuleSet, path: Path, fields: dict[str, str]) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """A raw JSONL/CSV/Parquet file with one label column per task (`--gold-field TASK=COLUMN`), aliases applied."""
    reader = ArticleReader(path, fields, [*ARTICLE_KEYS, *(task.name for task in rules.tasks)], ["text"])
    records = list(reader)
    column = reader.column
    if reader.malformed:
        raise TaawunError("unreadable gold records:\n  " + "\n  ".join(reader.malformed[:20]))
    if not any(column[task.name] in reader.present for task in rules.tasks):
        raise TaawunError(f"{path}: no label column for any task with rules {[t.name for t in rules.tasks]}; map one "
                          f"with --gold-field TASK=COLUMN (columns: {sorted(reader.present)})")
    labels = label_indices(path, records, rules.tasks, "the schema's")
    return ([r["title"] for _, r in records], [r["text"] for _, r in records],
            {task: np.asarray(values, dtype=np.int64) for task, values in labels.items()})
