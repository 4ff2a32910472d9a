"""`taawun data build`: raw articles and annotations -> a cleaned, de-duplicated, split Hugging Face dataset.

Data flows one way: read -> clean and normalize -> label (merge annotators) -> validate -> de-duplicate -> split
-> write. Nothing is dropped silently: every record left out is in `rejects.jsonl` or the report's duplicates.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train import __version__, progress
from train.data.annotations import Merged, inline_votes, merge_votes, read_annotations
from train.data.config import DataConfig
from train.data.dataset import (
    PREPROCESSING_FILE,
    build_lock,
    config_digest,
    features_for,
    fingerprint,
    preprocessing_settings,
    recover,
    restore_interrupted,
    split_stats,
    write_dataset,
)
from train.data.dates import parse_date
from train.data.inputs import changed_inputs, record_inputs
from train.data.readers import Article, Problem, read_source
from train.data.splits import SPLITS, assign_splits
from train.errors import TaawunError
from train.schema import Schema
from train.text.clean import TextPipeline
from train.text.dedup import find_duplicates

NOT_BUILT = "not built yet"


class BuildFailed(TaawunError):
    """The data has problems and the config says to fail on them; nothing was written."""

    def __init__(self, problems: list[Problem], report: dict[str, Any]):
        self.problems = problems
        self.report = report
        shown = "\n".join(f"  {problem}" for problem in problems[:30])
        more = f"\n  ... and {len(problems) - 30} more (run with --report-only to list them all)" if len(problems) > 30 else ""
        super().__init__(
            f"{len(problems)} problem(s) in the data; nothing was written:\n{shown}{more}\n"
            "Fix the records above, or set validation.on_invalid: reject to set bad records aside in rejects.jsonl."
        )


@dataclass
class Record:
    """An article on its way through the build: raw fields, cleaned text, final labels."""

    article: Article
    text: str = ""
    title: str = ""
    date: str = ""
    labels: dict[str, str | None] = field(default_factory=dict)
    cluster: int = -1


@dataclass
class BuildResult:
    """What a build produced: the report, the problems found, and where it was written (None: not written)."""

    report: dict[str, Any]
    problems: list[Problem]
    output: Path | None


def build_dataset(config: DataConfig, schema: Schema, report_only: bool = False) -> BuildResult:
    """Build the dataset described by `config`; with `report_only`, check everything and write nothing.

    A build holds a lock beside its output: a second build of the same output meanwhile fails, naming the process
    that holds it. It first repairs what killed builds left there (see `train.data.dataset`).
    """
    if report_only:
        return _build(config, schema, report_only=True)
    with build_lock(config.output, wait=False):
        recover(config.output)
        return _build(config, schema)


def _build(config: DataConfig, schema: Schema, report_only: bool = False) -> BuildResult:
    started = time.perf_counter()
    # Recorded before reading: an input edited during the build makes the dataset stale, not silently current.
    inputs = None if report_only else record_inputs(config)
    timings: dict[str, float] = {}
    report: dict[str, Any] = {"taawun_version": __version__, "schema": schema.name, "tasks": schema.task_names}
    rejects: list[dict[str, Any]] = []

    mark = time.perf_counter()
    articles, problems, report["sources"] = _read_all(config)
    articles, report["repeated_records"] = _drop_repeated(articles, problems)
    timings["read"] = time.perf_counter() - mark

    mark = time.perf_counter()
    records, report["cleaning"] = _clean_all(articles, config, problems)
    timings["clean"] = time.perf_counter() - mark

    progress.step("labelling: inline labels" + (f" and {len(config.annotations)} annotation file(s)"
                                                if config.annotations else ""))
    merged = _label_all(records, config, schema, problems)
    report["annotations"] = _annotation_report(merged)

    bad_ids = {problem.record_id for problem in problems}
    if problems and config.validation.on_invalid == "fail" and not report_only:
        raise BuildFailed(problems, report)
    rejects += _reject_problems(problems, records)
    valid = [record for record in records if record.article.id not in bad_ids]

    mark = time.perf_counter()
    progress.step(f"de-duplicating {len(valid)} articles (exact, then near-duplicates by MinHash)")
    valid, report["duplicates"], dup_problems = _deduplicate(valid, config, schema, rejects)
    problems += dup_problems
    if dup_problems and not report_only:
        raise BuildFailed(dup_problems, report)
    timings["dedup"] = time.perf_counter() - mark

    progress.step(f"splitting ({config.split.strategy})")
    assignment, report["split"] = _split(valid, config, schema, rejects)
    if not any(assignment) and not config.validation.allow_empty:
        empty = Problem(", ".join(str(source.path) for source in config.sources), None, "empty_dataset",
                        _empty_message(report, rejects, config))
        if not report_only:
            raise TaawunError(str(empty))
        problems.append(empty)
    report["problems"] = [str(problem) for problem in problems]
    report["rejects"] = {"count": len(rejects), "by_reason": dict(Counter(r["kind"] for r in rejects))}

    mark = time.perf_counter()
    progress.step(f"assembling {sum(split is not None for split in assignment)} articles into a dataset")
    dataset = _to_dataset(valid, assignment, schema)
    report["splits"] = split_stats(dataset, schema)
    report["fingerprint"] = fingerprint(dataset, schema)
    timings["dataset"] = time.perf_counter() - mark
    report["timings_s"] = {key: round(value, 2) for key, value in timings.items()}
    report["settings"] = preprocessing_settings(config, schema)
    if report_only:
        return BuildResult(report, problems, None)

    report["timings_s"]["total_before_write"] = round(time.perf_counter() - started, 2)
    progress.step(f"writing the dataset to {config.output}")
    write_dataset(config.output, dataset, report, rejects, merged, schema, config, inputs)
    return BuildResult(report, problems, config.output)


def _empty_message(report: dict[str, Any], rejects: list[dict], config: DataConfig) -> str:
    """Why there is nothing to write, and how to get past it."""
    read = sum(source["records"] for source in report["sources"])
    reasons = ", ".join(f"{kind}: {count}" for kind, count in Counter(r["kind"] for r in rejects).most_common())
    kept = f"; the dataset already in {config.output} is kept" if config.output.exists() else ""
    return (f"no articles to write: {read} record(s) read, {len(rejects)} rejected" + (f" ({reasons})" if reasons
            else "") + f". Nothing was written{kept}. Check the sources (--report-only lists every problem), or "
            "set validation.allow_empty: true in the data config to write an empty dataset.")


def _read_all(config: DataConfig) -> tuple[list[Article], list[Problem], list[dict]]:
    import numpy as np

    articles, problems, facts = [], [], []
    rng = np.random.default_rng(config.seed)
    for source in config.sources:
        progress.step(f"reading {source.path}")
        read, unreadable, source_facts = read_source(source)
        if source.limit is not None and len(read) > source.limit:  # a seeded sample, as the config asks
            read = [read[i] for i in np.sort(rng.choice(len(read), source.limit, replace=False))]
            source_facts["sampled"] = source.limit
        articles += read
        problems += unreadable
        facts.append(source_facts)
    return articles, problems, facts


def _drop_repeated(articles: list[Article], problems: list[Problem]) -> tuple[list[Article], int]:
    """A record repeated with the same content is read once; the same id with other content is a problem."""
    first: dict[str, Article] = {}
    kept, repeated = [], 0
    for article in articles:
        if not article.id:
            problems.append(Problem(article.where, None, "missing_id", "record has no id; give every article an id"))
            continue
        seen = first.get(article.id)
        if seen is None:
            first[article.id] = article
            kept.append(article)
        elif (seen.text, seen.title) == (article.text, article.title):
            repeated += 1
            _merge_inline_labels(seen, article)
        else:
            problems.append(Problem(article.where, article.id, "duplicate_id",
                f"id {article.id!r} was already used at {seen.where} for a different article; ids must be unique"))
    return kept, repeated


def _merge_inline_labels(seen: Article, again: Article) -> None:
    for task, label in again.labels.items():
        seen.labels.setdefault(task, label)


def _clean_all(articles: list[Article], config: DataConfig, problems: list[Problem]) -> tuple[list[Record], dict]:
    """Clean and normalize text and title; an empty text (raw or after cleaning) is a problem."""
    pipeline = TextPipeline(config.cleaning, config.normalization)
    removed: Counter[str] = Counter()
    changed, records, undated = 0, [], 0
    progress.step(f"cleaning and normalizing {len(articles)} articles")
    for article in progress.bar(articles, total=len(articles), unit="articles"):
        cleaned = pipeline(article.text)
        removed.update(cleaned.removed)
        changed += cleaned.removed.get("chars", 0) > 0
        title = pipeline(article.title).text if article.title else ""
        date = parse_date(article.date, config.split.date_format)
        undated += date is None
        _check_date(article, date, config, problems)
        records.append(Record(article, cleaned.text, title, article.date if date is None else date))
        if not article.text.strip():
            problems.append(Problem(article.where, article.id, "empty_text", "missing or empty text"))
        elif not cleaned.text.strip():
            problems.append(Problem(article.where, article.id, "empty_text",
                "text is empty after cleaning (all of it matched boilerplate, markup or links); check the patterns"))
    return records, {"removed": dict(removed), "articles_changed": changed, "dates_not_understood": undated}


def _check_date(article: Article, date: str | None, config: DataConfig, problems: list[Problem]) -> None:
    """With a date split, an article must have a date taawun understands: else it could land on either side."""
    if config.split.strategy != "date":
        return
    if date is None:
        problems.append(Problem(article.where, article.id, "bad_date",
            f"date {article.date!r} not understood, and the split is by date; taawun reads ISO 8601, RFC 2822, "
            "day-first numeric dates (18/02/2018, 18-02-2018, 18.02.2018) and month names (18 فبراير 2018, "
            "18 شباط 2018): set split.date_format (a strptime format such as '%m/%d/%Y') for others"))
    elif not date:
        problems.append(Problem(article.where, article.id, "bad_date",
            "no date, and the split is by date: give the article a date, or set validation.on_invalid: reject"))


def _label_all(records: list[Record], config: DataConfig, schema: Schema, problems: list[Problem]) -> Merged:
    """Merge inline labels and annotation files into one label per article and task."""
    votes = inline_votes([record.article for record in records])
    for annotation in config.annotations:
        file_votes, unreadable = read_annotations(annotation, schema)
        votes += file_votes
        problems += unreadable
    where_of = {record.article.id: record.article.where for record in records}
    optional = frozenset(record.article.id for record in records if record.article.auxiliary)
    merged = merge_votes(votes, where_of, schema, config.validation.allow_missing_labels, optional)
    problems += merged.problems
    for record in records:
        record.labels = merged.labels[record.article.id]
    return merged


def _annotation_report(merged: Merged) -> dict[str, Any]:
    resolutions = Counter(item["resolution"] for item in merged.disagreements)
    report = {"annotators": merged.annotators, "agreement": merged.agreement,
              "disagreements": {"count": len(merged.disagreements), **resolutions}}
    if merged.silver_unmatched:
        report["silver_labels_for_absent_articles"] = merged.silver_unmatched
    return report


def _reject_problems(problems: list[Problem], records: list[Record]) -> list[dict[str, Any]]:
    """One rejects line per problem, with the record's raw fields when the record was read."""
    by_id = {record.article.id: record.article for record in records}
    rejects = []
    for problem in problems:
        article = by_id.get(problem.record_id)
        raw = {"title": article.title, "text": article.text, "source": article.source} if article else None
        rejects.append({"where": problem.where, "id": problem.record_id, "kind": problem.kind,
                        "reason": problem.message, "record": raw})
    return rejects


def _deduplicate(
    records: list[Record], config: DataConfig, schema: Schema, rejects: list[dict]
) -> tuple[list[Record], dict, list[Problem]]:
    """Keep one record per exact-duplicate group (labels merged by the conflict policy); report near clusters."""
    # For pair tasks the unit is (target, text): one headline under two claims is two examples, not a duplicate.
    targets = [task.target_field for task in schema.tasks if task.target_field]
    keys = [record.text + "".join(f"\n{record.article.targets.get(t, '')}" for t in targets) for record in records]
    found = find_duplicates(keys, config.dedup)
    for record, cluster in zip(records, found.cluster, strict=True):
        record.cluster = int(cluster)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(found.exact_group):
        groups[int(group)].append(index)
    keep, removed_groups, conflicts, problems = [], [], [], []
    for members in groups.values():
        kept = _resolve_group(members, records, schema, config, conflicts, problems, rejects)
        if kept is not None:
            keep.append(kept)
            if len(members) > 1:
                removed_groups.append({"kept": records[kept].article.id,
                                       "removed": [records[i].article.id for i in members if i != kept]})
    keep.sort()
    near_conflicts = _near_conflicts(found, records, schema)
    if config.dedup.drop_near:
        keep, dropped_near = _drop_near(keep, found.cluster, records)
    else:
        dropped_near = []
    report = {
        "exact_groups": sum(len(m) > 1 for m in groups.values()),
        "exact_removed": sum(len(g["removed"]) for g in removed_groups),
        "near_pairs": len(found.near_pairs),
        "near_clusters": sum(len(m) > 1 for m in found.members()),
        "near_removed": len(dropped_near),
        "conflicts": conflicts,
        "near_conflicts": near_conflicts,
        "groups": removed_groups + dropped_near,
        "clusters": [[records[i].article.id for i in m] for m in found.members()],
    }
    return [records[i] for i in keep], report, problems


def _resolve_group(members, records, schema, config, conflicts, problems, rejects) -> int | None:
    """The index kept for one exact-duplicate group, with its labels merged; None when the group is dropped.

    An article of the target data (not of an auxiliary source) is kept before an auxiliary copy, and its labels
    prevail: an auxiliary corpus's mapped or silver label never disputes an annotator's.
    """
    target = [i for i in members if not records[i].article.auxiliary]
    first = (target or members)[0]
    if len(members) == 1:
        return first
    disputed = {}
    for task in schema.task_names:
        voters = [i for i in target if records[i].labels[task] is not None] or members
        labels = Counter(records[i].labels[task] for i in voters if records[i].labels[task] is not None)
        if len(labels) > 1:
            disputed[task] = labels
    if not disputed:
        return first
    ids = [records[i].article.id for i in members]
    conflict = {"ids": ids, "labels": {t: dict(c) for t, c in disputed.items()}, "action": config.dedup.on_conflict}
    conflicts.append(conflict)
    reason = f"exact duplicates {ids} carry conflicting labels {conflict['labels']}"
    if config.dedup.on_conflict == "majority":
        ties = [task for task, counts in disputed.items() if _is_tie(counts)]
        if not ties:
            for task, labels in disputed.items():
                records[first].labels[task] = labels.most_common(1)[0][0]
            return first
        conflict["action"] = "no majority"
        reason += f"; no majority for {ties}"
    if config.dedup.on_conflict == "fail" or (conflict["action"] == "no majority"
                                             and config.validation.on_invalid == "fail"):
        fix = "; fix the labels, or set dedup.on_conflict: majority or drop"
        if conflict["action"] == "no majority":
            fix = "; fix the labels, or set dedup.on_conflict: drop (or validation.on_invalid: reject)"
        problems.append(Problem(records[first].article.where, records[first].article.id, "duplicate_conflict",
                                reason + fix))
        return first
    for i in members:
        rejects.append({"where": records[i].article.where, "id": records[i].article.id, "kind": "duplicate_conflict",
                        "reason": reason, "record": {"title": records[i].article.title, "text": records[i].article.text,
                                                     "source": records[i].article.source}})
    return None


def _is_tie(counts: Counter) -> bool:
    top = counts.most_common(2)
    return len(top) == 2 and top[0][1] == top[1][1]


def _near_conflicts(found, records: list[Record], schema: Schema) -> list[dict[str, Any]]:
    """Near-duplicate clusters whose members carry different labels (reported; not resolved)."""
    conflicts = []
    for members in found.members():
        labels = {task: sorted({str(records[i].labels[task]) for i in members}) for task in schema.task_names}
        disputed = {task: values for task, values in labels.items() if len(values) > 1}
        if disputed:
            conflicts.append({"ids": [records[i].article.id for i in members], "labels": disputed})
    return conflicts


def _drop_near(keep: list[int], cluster, records: list[Record]) -> tuple[list[int], list[dict]]:
    """With dedup.drop_near, keep the first article of each near-duplicate cluster."""
    first_of: dict[int, int] = {}
    dropped: dict[int, list[str]] = defaultdict(list)
    kept = []
    for index in keep:
        c = int(cluster[index])
        if c in first_of:
            dropped[first_of[c]].append(records[index].article.id)
        else:
            first_of[c] = index
            kept.append(index)
    groups = [{"kept": records[k].article.id, "removed": ids, "near": True} for k, ids in dropped.items()]
    return kept, groups


def _split(records, config: DataConfig, schema: Schema, rejects) -> tuple[list[str | None], dict]:
    """Assign splits; duplicates of held-out test articles are left out of train (into rejects, with the reason).

    The articles of auxiliary sources take no part in the split (its fractions, strata and folds are the target
    data's): they go to train, unless a duplicate of theirs is in validation or test, which leaves them out.
    """
    split = config.split
    stratify = split.stratify_by or schema.task_names[0]
    target = [i for i, record in enumerate(records) if not record.article.auxiliary]
    chosen = [records[i] for i in target]
    result = assign_splits([r.cluster for r in chosen], [r.labels.get(stratify) for r in chosen],
                           [_forced_test(record, config) for record in chosen],
                           {"train": split.train, "validation": split.validation,
                            "test": split.test if split.strategy == "random" else 0.0}, config.seed,
                           fold=(split.fold, split.folds) if split.folds else None)
    assignment: list[str | None] = [None] * len(records)
    for position, index in enumerate(target):
        assignment[index] = result.assignment[position]
    for position, twin in result.excluded.items():
        _reject_crossing(records[target[position]], records[target[twin]], "held-out test", rejects)
    auxiliary = _assign_auxiliary(records, assignment, rejects)
    info = {"strategy": split.strategy, "stratify_by": stratify, "seed": config.seed,
            "excluded_cross_split": len(result.excluded) + auxiliary["left_out"]}
    if auxiliary["articles"]:
        info["auxiliary"] = auxiliary
    if split.folds:
        info["fold"] = f"{split.fold} of {split.folds}"
    return assignment, info


def _assign_auxiliary(records: list[Record], assignment: list[str | None], rejects: list[dict]) -> dict[str, int]:
    """Auxiliary articles to train, except duplicates of an article outside train (left out, into rejects)."""
    elsewhere: dict[int, int] = {}  # cluster -> an index of its target articles that is not in train
    for index, record in enumerate(records):
        if not record.article.auxiliary and assignment[index] != "train":
            elsewhere.setdefault(record.cluster, index)
    left_out = 0
    for index, record in enumerate(records):
        if not record.article.auxiliary:
            continue
        twin = elsewhere.get(record.cluster)
        if twin is None:
            assignment[index] = "train"
        else:
            left_out += 1
            _reject_crossing(record, records[twin], assignment[twin] or "held-out", rejects)
    articles = sum(record.article.auxiliary for record in records)
    return {"articles": articles, "train": articles - left_out, "left_out": left_out}


def _reject_crossing(record: Record, twin: Record, where: str, rejects: list[dict]) -> None:
    article = record.article
    rejects.append({"where": article.where, "id": article.id, "kind": "crosses_split",
                    "reason": f"duplicate of {where} article {twin.article.id!r}; left out of training to avoid "
                              "leakage", "record": {"title": article.title, "text": article.text,
                                                    "source": article.source}})


def _forced_test(record: Record, config: DataConfig) -> bool:
    split = config.split
    if split.strategy == "source":
        return record.article.source in split.holdout_sources
    if split.strategy == "date":
        return bool(record.date) and record.date >= split.date_cutoff.isoformat()
    if split.strategy == "file":
        return record.article.forced_split == "test"
    return False


def _to_dataset(records: list[Record], assignment: list[str | None], schema: Schema):
    """A DatasetDict with train, validation and test (a split may be empty); missing labels are -1."""
    import datasets

    datasets.disable_progress_bars()
    features = features_for(schema)
    columns: dict[str, dict[str, list]] = {name: defaultdict(list) for name in SPLITS}
    for record, cluster_split in zip(records, assignment, strict=True):
        if cluster_split is None:
            continue
        row = columns[cluster_split]
        article = record.article
        for name, value in (("id", article.id), ("title", record.title), ("text", record.text),
                            ("raw_title", article.title), ("raw_text", article.text), ("date", record.date),
                            ("source", article.source), ("origin", article.where), ("cluster", record.cluster),
                            ("weight", article.weight), ("auxiliary", article.auxiliary)):
            row[name].append(value)
        for task in schema.tasks:
            label = record.labels.get(task.name)
            row[task.name].append(task.label_names.index(label) if label is not None else -1)
            if task.target_field:
                row[task.target_field].append(article.targets.get(task.target_field, ""))
    return datasets.DatasetDict({
        name: datasets.Dataset.from_dict({key: columns[name][key] for key in features}, features=features)
        for name in SPLITS
    })


def open_dataset(path: str | Path, build: bool = True) -> tuple[Any, Path, dict[str, Any]]:
    """A built dataset from its folder, or from a data config (built first when missing or stale).

    From a config the dataset is rebuilt when it was built from another version of the config, when one of its
    input files changed since, or when it records no inputs (built by an earlier taawun); a folder opens as it is.
    Either way, what an interrupted build left is repaired first. Returns the DatasetDict, its folder and its
    settings (`taawun.json`: schema, cleaning, normalization). With `build=False` (the other processes of a
    distributed run) a missing or stale dataset is an error instead.
    """
    import datasets

    from train.data.config import load_data_config

    path = Path(path)
    if path.is_file():
        config, schema = load_data_config(path)
        if build:
            build_if_stale(config, schema, path)
        else:
            restore_interrupted(config.output)
            reason = _why_rebuild(config)
            if reason:
                raise TaawunError(f"{config.output}: {reason}; run `taawun data build {path}` first")
        path = config.output
    else:
        restore_interrupted(path)
    if not (path / PREPROCESSING_FILE).is_file():
        raise TaawunError(f"{path}: not a dataset built by `taawun data build` (no {PREPROCESSING_FILE}); give a "
                          "dataset folder or a data config (.yaml)")
    datasets.disable_progress_bars()
    settings = json.loads((path / PREPROCESSING_FILE).read_text(encoding="utf-8"))
    return datasets.load_from_disk(str(path)), path, settings


def build_if_stale(config: DataConfig, schema: Schema, origin: Path) -> None:
    """Build `config`'s dataset (read from `origin`) unless it is current; several processes asking at once build it
    once."""
    folder = config.output
    restore_interrupted(folder)
    if _why_rebuild(config) is None:
        return
    with build_lock(folder, wait=True):
        recover(folder)
        reason = _why_rebuild(config)  # checked again: another process may have built it while this one waited
        if reason:
            print(f"building the dataset from {origin} into {folder} ..." if reason == NOT_BUILT
                  else f"{reason}; rebuilding {folder} from {origin} ...", file=sys.stderr)
            _build(config, schema)


def _why_rebuild(config: DataConfig) -> str | None:
    """Why the dataset in `config.output` cannot serve `config` as it is; None when it can."""
    folder = config.output
    settings_file = folder / PREPROCESSING_FILE
    if not settings_file.is_file():
        return NOT_BUILT
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    if settings.get("config_digest") != config_digest(config):
        return f"{folder} was built from another version of the data config"
    if "inputs" not in settings:
        return f"{folder} was built by an earlier taawun, which does not record its inputs"
    changed = changed_inputs(settings["inputs"], config)
    if changed:
        return f"{', '.join(changed)} changed since the dataset was built"
    return None
