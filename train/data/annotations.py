"""Annotations: reading label files (tables, Label Studio and doccano exports), and merging annotators' votes.

Several annotators per article are merged by majority vote; an adjudication file overrides; ties without an
adjudication are problems, listed for adjudication.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.data.agreement import agreement_for_task
from train.data.config import AnnotationConfig
from train.data.readers import Article, Problem, as_text, read_labelstudio_export, read_rows
from train.errors import TaawunError
from train.schema import Schema

ADJUDICATION = "adjudication"
SILVER = "silver:"  # prefix of the annotator names of silver (machine) labels


@dataclass
class Vote:
    """One annotator's label for one article and task, as written in the file."""

    article_id: str
    task: str
    annotator: str
    label: str
    where: str


@dataclass
class Merged:
    """The outcome of merging: final labels per article, problems, disagreements and agreement per task."""

    labels: dict[str, dict[str, str | None]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    annotators: list[str] = field(default_factory=list)
    silver_unmatched: int = 0


def read_annotations(config: AnnotationConfig, schema: Schema) -> tuple[list[Vote], list[Problem]]:
    """Read one annotation file into votes; unreadable records become problems."""
    fmt = config.format
    if fmt == "auto":
        fmt = _detect_annotation_format(config.path)
    if fmt == "labelstudio":
        return _labelstudio_votes(config, schema)
    if fmt == "doccano":
        return _doccano_votes(config, schema)
    return _table_votes(config, fmt, schema)


def _detect_annotation_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last == ".json":
        return "labelstudio"
    if last in (".csv", ".tsv", ".jsonl"):
        return last[1:]
    raise TaawunError(f"{path}: set `format:` to csv, tsv, jsonl, labelstudio or doccano")


def _annotator_of(config: AnnotationConfig, values: dict[str, Any], where: str) -> str:
    if config.role == ADJUDICATION:
        return ADJUDICATION
    if config.role == "silver":
        return SILVER + (config.annotator or "weak")
    if config.annotator_field:
        name = as_text(values.get(config.annotator_field)).strip()
        if name:
            return name
        raise TaawunError(f"{where}: empty annotator column {config.annotator_field!r}")
    if config.annotator:
        return config.annotator
    raise TaawunError(f"{config.path}: name the annotator: set `annotator:` (one per file) or `annotator_field:`")


def _table_votes(config: AnnotationConfig, fmt: str, schema: Schema) -> tuple[list[Vote], list[Problem]]:
    rows, _ = read_rows(config.path, fmt, config.encoding)
    columns = set().union(*(row.values or {} for row in rows)) if rows else set()
    mapping = config.labels or {task: task for task in schema.task_names if task in columns}
    if rows and config.id_field not in columns:
        raise TaawunError(f"{config.path}: no id column {config.id_field!r} (set `id_field:`); columns: {sorted(columns)}")
    if rows and not mapping:
        raise TaawunError(
            f"{config.path}: no column is named like a schema task {schema.task_names}; map them with `labels:`"
        )
    missing = [column for column in mapping.values() if rows and column not in columns]
    if missing:
        raise TaawunError(f"{config.path}: columns {missing} (from `labels:`) are not in the file: {sorted(columns)}")
    votes, problems = [], []
    for where, values in _readable(rows, config.path, problems):
        annotator = _annotator_of(config, values, where)
        article_id = as_text(values.get(config.id_field)).strip()
        for task, column in mapping.items():
            label = as_text(values.get(column)).strip()
            if label:
                votes.append(Vote(article_id, task, annotator, label, where))
    return votes, problems


def _readable(rows, path: Path, problems: list[Problem]):
    """(`file:line`, values) of each readable row; unreadable ones become problems."""
    for row in rows:
        where = f"{path}:{row.line}"
        if row.error:
            problems.append(Problem(where, None, row.kind, row.error))
        else:
            yield where, row.values


def _labelstudio_votes(config: AnnotationConfig, schema: Schema) -> tuple[list[Vote], list[Problem]]:
    """A Label Studio JSON export: a list of tasks, each with `data` and `annotations[].result[]` choices.

    Every submitted annotation must give its tasks' labels as choices results: a null or malformed part, a task
    answered with another kind of result, or an annotation without any choice is a problem naming the export's task,
    never an article that silently got no vote. Results of other kinds for names that are not tasks (a notes
    textarea) are not labels and are left alone.
    """
    tasks, _ = read_labelstudio_export(config.path, config.encoding)
    from_names = {source: task for task, source in config.labels.items()}
    votes, problems = [], []
    for index, item in enumerate(tasks):
        where = f"{config.path}#task {item.get('id', index)}" if isinstance(item, dict) else f"{config.path}#{index}"
        data = item.get("data") if isinstance(item, dict) else None
        article_id = as_text(data.get(config.id_field)).strip() if isinstance(data, dict) else ""
        if not article_id:
            raise TaawunError(f"{where}: no `data.{config.id_field}`; set `id_field:` to the task field with the "
                              "article id")
        annotations = item.get("annotations", [])
        if not isinstance(annotations, list):
            problems.append(Problem(where, article_id, "annotation_format",
                f"`annotations` is {_kind(annotations)}, not a list of annotations; export the project again as JSON"))
            continue
        for annotation in annotations:
            if isinstance(annotation, dict) and annotation.get("was_cancelled"):
                continue
            read, issues = _annotation_votes(config, annotation, from_names, schema)
            votes += [Vote(article_id, task, annotator, label, where) for task, annotator, label in read]
            problems += [Problem(where, article_id, "annotation_format", issue) for issue in issues]
    return votes, problems


def _annotation_votes(config: AnnotationConfig, annotation: Any, from_names: dict[str, str],
                      schema: Schema) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(task, annotator, label) of one submitted annotation's choices, and what in it could not be read."""
    if not isinstance(annotation, dict):
        return [], [f"an annotation is {_kind(annotation)}, not an object"]
    annotator = _labelstudio_annotator(config, annotation)
    results = annotation.get("result")
    if not isinstance(results, list):
        return [], [f"`result` is {_kind(results)} in {annotator}'s annotation, not a list of results"]
    read, issues = [], []
    for result in results:
        if not isinstance(result, dict):
            issues.append(f"{annotator}'s annotation holds a result that is {_kind(result)}, not an object")
            continue
        name = result.get("from_name")
        task = from_names.get(name, name)
        if result.get("type") != "choices":
            if task in schema.task_names:
                issues.append(f"{annotator} gave a {result.get('type')} result for {task}, not choices; a task's label "
                              "is read from a choices result (the labeling config `taawun schema labelstudio` prints)")
            continue
        value = result.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not choices:
            issues.append(f"{annotator}'s {name} result holds no list of choices (`value.choices` is {_kind(choices)})")
            continue
        read += [(task, annotator, str(choice)) for choice in choices]
    if not read and not issues:
        kinds = ", ".join(sorted({str(result.get("type")) for result in results})) or "none"
        issues.append(f"{annotator}'s annotation holds no choices result (its results: {kinds}); nothing to read. "
                      "Label the task in Label Studio, or skip it there (a skipped annotation is cancelled and ignored)")
    return read, issues


def _kind(value: Any) -> str:
    """How a JSON value reads in a message: null, an empty list, or its type."""
    if value is None:
        return "null"
    return f"an empty {type(value).__name__}" if value == [] or value == {} else f"a {type(value).__name__}"


def _labelstudio_annotator(config: AnnotationConfig, annotation: dict[str, Any]) -> str:
    if config.role == ADJUDICATION:
        return ADJUDICATION
    if config.annotator:
        return config.annotator
    who = annotation.get("completed_by")
    if isinstance(who, dict) and who.get("email"):  # an export snapshot with the annotators expanded (annotate pull)
        return str(who["email"])
    # Label Studio's plain export gives the user's id only: unique within that server, not a person's name.
    return f"labelstudio:{who.get('id') if isinstance(who, dict) else who}"


def _doccano_votes(config: AnnotationConfig, schema: Schema) -> tuple[list[Vote], list[Problem]]:
    """A doccano text-classification JSONL export: `label` is a list of labels, plain or written `task:label`."""
    rows, _ = read_rows(config.path, "jsonl", config.encoding)
    votes, problems = [], []
    for where, values in _readable(rows, config.path, problems):
        article_id = as_text(values.get(config.id_field)).strip()
        annotator = _annotator_of(config, values, where)
        labels = values.get("label", values.get("labels", []))
        for label in labels if isinstance(labels, list) else [labels]:
            task, _, name = str(label).partition(":")
            if not name or task not in schema.task_names:
                if not config.task:
                    raise TaawunError(f"{where}: label {label!r} names no task; write `task:label` or set `task:`")
                task, name = config.task, str(label)
            votes.append(Vote(article_id, task, annotator, name.strip(), where))
    return votes, problems


def inline_votes(articles: list[Article]) -> list[Vote]:
    """Labels that came with the articles themselves, as votes of the source's annotator."""
    return [
        Vote(article.id, task, article.annotator, label.strip(), article.where)
        for article in articles
        for task, label in article.labels.items()
    ]


def merge_votes(votes: list[Vote], where_of: dict[str, str], schema: Schema, allow_missing: bool,
                optional: frozenset[str] = frozenset()) -> Merged:
    """Resolve every vote to a schema label and merge them into one label per article and task.

    `where_of` maps each article id to the `file:line` it was read from; the `optional` articles (of auxiliary
    sources) may lack labels. Silver votes count only where no annotator voted on the task; silver votes for articles
    no source contains are counted (`merged.silver_unmatched`), not errors: a silver file may cover a whole corpus.
    """
    article_ids = where_of.keys()
    merged = Merged()
    by_item: dict[tuple[str, str], dict[str, Vote]] = defaultdict(dict)
    refused: set[tuple[str, str]] = set()
    votes = _drop_unmatched_silver(votes, article_ids, merged)
    for vote in votes:
        resolved = _resolve_vote(vote, article_ids, schema, merged.problems)
        if resolved is None:
            refused.add((vote.article_id, vote.task))
            continue
        earlier = by_item[vote.article_id, vote.task].get(vote.annotator)
        if earlier and earlier.label != resolved.label:
            merged.problems.append(Problem(vote.where, vote.article_id, "conflicting_votes",
                f"{vote.annotator} labelled {vote.task} twice: {earlier.label!r} ({earlier.where}) and {resolved.label!r}"))
            continue
        by_item[vote.article_id, vote.task][vote.annotator] = resolved
    for article_id in sorted(article_ids):
        merged.labels[article_id] = {}
        for task in schema.tasks:
            merged.labels[article_id][task.name] = _final_label(article_id, task.name, by_item, merged)
    _apply_dependencies(schema, by_item, merged, where_of, allow_missing, refused | _optional_items(optional, schema))
    merged.agreement = _agreement(by_item, schema)
    merged.annotators = sorted({a for item in by_item.values() for a in item if _is_annotator(a)})
    return merged


def _is_annotator(name: str) -> bool:
    """A person's votes (not an adjudication, not silver labels)."""
    return name != ADJUDICATION and not name.startswith(SILVER)


def _drop_unmatched_silver(votes: list[Vote], article_ids, merged: Merged) -> list[Vote]:
    kept = [v for v in votes if not v.annotator.startswith(SILVER) or v.article_id in article_ids]
    merged.silver_unmatched = len({v.article_id for v in votes} - set(article_ids) - {v.article_id for v in kept})
    return kept


def _optional_items(optional: frozenset[str], schema: Schema) -> set[tuple[str, str]]:
    return {(article_id, task) for article_id in optional for task in schema.task_names}


def _resolve_vote(vote: Vote, article_ids, schema: Schema, problems: list[Problem]) -> Vote | None:
    if vote.task not in schema.task_names:
        problems.append(Problem(vote.where, vote.article_id, "unknown_task",
                                f"task {vote.task!r} is not in the schema; tasks: {schema.task_names}"))
        return None
    if vote.article_id not in article_ids:
        problems.append(Problem(vote.where, vote.article_id, "unknown_article",
                                f"annotation for article id {vote.article_id!r}, which no source contains"))
        return None
    task = schema.task(vote.task)
    label = task.resolve(vote.label)
    if label is None:
        problems.append(Problem(vote.where, vote.article_id, "unknown_label",
            f"unknown {task.name} label {vote.label!r}; did you mean {task.suggest(vote.label)!r}? "
            f"Valid labels: {task.label_names} (or add an alias to the schema)"))
        return None
    return Vote(vote.article_id, vote.task, vote.annotator, label, vote.where)


def _final_label(article_id: str, task: str, by_item: dict, merged: Merged) -> str | None:
    """Adjudication, else the annotators' majority; a tie is left unresolved (None) and listed."""
    votes = by_item.get((article_id, task), {})
    if all(annotator.startswith(SILVER) for annotator in votes):  # only machine labels: their majority, no dispute
        counts = Counter(vote.label for vote in votes.values()).most_common(2)
        return counts[0][0] if counts and (len(counts) == 1 or counts[0][1] > counts[1][1]) else None
    votes = {annotator: vote for annotator, vote in votes.items() if not annotator.startswith(SILVER)}
    adjudicated = votes.get(ADJUDICATION)
    ballots = {annotator: vote.label for annotator, vote in votes.items() if annotator != ADJUDICATION}
    counts = Counter(ballots.values()).most_common()
    if len(counts) > 1 or (adjudicated and counts and counts[0][0] != adjudicated.label):
        resolution = "adjudicated" if adjudicated else ("majority" if counts[0][1] > counts[1][1] else "unresolved")
        final = adjudicated.label if adjudicated else (counts[0][0] if resolution == "majority" else None)
        merged.disagreements.append({"id": article_id, "task": task, "votes": ballots, "resolution": resolution,
                                     "final": final})
        if resolution == "unresolved":
            where = next(iter(votes.values())).where
            merged.problems.append(Problem(where, article_id, "unresolved_disagreement",
                f"annotators disagree on {task} ({_describe(ballots)}) with no majority; "
                f"add a line to an adjudication file (role: adjudication)"))
        return final
    if adjudicated:
        return adjudicated.label
    return counts[0][0] if counts else None


def _describe(ballots: dict[str, str]) -> str:
    return ", ".join(f"{annotator}: {label}" for annotator, label in sorted(ballots.items()))


def _apply_dependencies(
    schema: Schema, by_item: dict, merged: Merged, where_of: dict[str, str], allow_missing: bool, refused: set
) -> None:
    """Labels for tasks that do not apply are problems; a task that applies needs a label (unless allowed).

    `refused` holds the (article, task) pairs whose votes were already refused with a problem of their own.
    """
    for article_id, labels in merged.labels.items():
        for task in schema.tasks:
            applies = task.applies_when is None or labels.get(task.applies_when.task) in task.applies_when.labels
            votes = by_item.get((article_id, task.name), {})
            if not applies and votes:
                where = next(iter(votes.values())).where
                merged.problems.append(Problem(where, article_id, "not_applicable",
                    f"{task.name} is labelled ({labels[task.name]!r}) but applies only when {task.applies_when.task} "
                    f"is one of {task.applies_when.labels} (here {labels.get(task.applies_when.task)!r}); "
                    "remove the label or fix the other task"))
                labels[task.name] = None
            elif applies and not votes and not allow_missing and (article_id, task.name) not in refused:
                merged.problems.append(Problem(where_of[article_id], article_id, "missing_label",
                    f"no {task.name} label; annotate it, or set validation.allow_missing_labels: true"))


def _agreement(by_item: dict, schema: Schema) -> dict[str, Any]:
    """Agreement per task among annotators (adjudications excluded), when at least two annotators labelled."""
    report = {}
    for task in schema.task_names:
        per_annotator: dict[str, dict[str, str]] = defaultdict(dict)
        for (article_id, name), votes in by_item.items():
            if name != task:
                continue
            for annotator, vote in votes.items():
                if _is_annotator(annotator):
                    per_annotator[annotator][article_id] = vote.label
        if len(per_annotator) >= 2:
            report[task] = agreement_for_task(per_annotator)
    return report
