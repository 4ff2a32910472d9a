"""The dataset report: what a build did, as Markdown for people (report.json holds the same for programs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train.errors import TaawunError

SHOWN = 10


def load_report(folder: str | Path) -> dict[str, Any]:
    """The report.json of a built dataset folder."""
    path = Path(folder) / "report.json"
    if not path.is_file():
        raise TaawunError(f"{folder}: no report.json; is it a dataset folder written by `taawun data build`?")
    return json.loads(path.read_text(encoding="utf-8"))


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    parts = [
        f"# Dataset report: schema `{report['schema']}`",
        f"Fingerprint: `{report.get('fingerprint', '(not computed)')}`",
        _sources(report),
        _splits(report),
        _labels(report),
        _cleaning(report),
        _duplicates(report),
        _annotations(report),
        _rejects(report),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _sources(report: dict[str, Any]) -> str:
    rows = [[s["name"], s["path"], s["format"], ", ".join(s["encodings"]),
             f"{s['records']} (a sample of {s['sampled']} kept: `limit`)" if s.get("sampled") else s["records"]]
            for s in report["sources"]]
    text = "## Sources\n" + _table(["source", "path", "format", "encoding", "records"], rows)
    if report.get("repeated_records"):
        text += f"\n\nRecords repeated with identical content (read once): {report['repeated_records']}"
    return text


def _splits(report: dict[str, Any]) -> str:
    split = report.get("split", {})
    rows = [[name, s["articles"], s["chars"]["median"], s["words"]["median"], s["words"]["min"], s["words"]["max"]]
            for name, s in report.get("splits", {}).items()]
    head = (f"## Splits\nStrategy `{split.get('strategy')}`, stratified by `{split.get('stratify_by')}`, "
            f"seed {split.get('seed')}; no duplicate cluster crosses splits.")
    if split.get("fold"):
        head += f" Cross-validation: the test split is fold {split['fold']}."
    auxiliary = split.get("auxiliary")
    if auxiliary:
        head += (f" Auxiliary sources: {auxiliary['train']} article(s) added to train only"
                 + (f" ({auxiliary['left_out']} left out: duplicates of validation or test articles)"
                    if auxiliary["left_out"] else "") + ".")
    if split.get("excluded_cross_split"):
        head += f" {split['excluded_cross_split']} duplicate(s) of held-out test articles were left out (rejects.jsonl)."
    return head + "\n\n" + _table(["split", "articles", "median chars", "median words", "min words", "max words"], rows)


def _labels(report: dict[str, Any]) -> str:
    splits = report.get("splits", {})
    if not splits:
        return ""
    sections = ["## Labels"]
    for task in report["tasks"]:
        names = list(next(iter(splits.values()))["labels"][task])
        rows = [[label, *(splits[s]["labels"][task].get(label, 0) for s in splits)] for label in names]
        sections.append(f"### {task}\n" + _table(["label", *splits], rows))
    return "\n\n".join(sections)


def _cleaning(report: dict[str, Any]) -> str:
    cleaning = report.get("cleaning", {})
    removed = cleaning.get("removed", {})
    rows = [[kind, count] for kind, count in sorted(removed.items())]
    text = f"## Cleaning\nArticles changed by cleaning: {cleaning.get('articles_changed', 0)}.\n\n"
    text += _table(["removed", "count"], rows)
    if cleaning.get("dates_not_understood"):
        text += f"\n\nDates not understood (kept as written): {cleaning['dates_not_understood']}"
    return text


def _duplicates(report: dict[str, Any]) -> str:
    dup = report.get("duplicates")
    if not dup:
        return ""
    text = (f"## Duplicates\nExact-duplicate groups: {dup['exact_groups']} ({dup['exact_removed']} copies removed); "
            f"duplicate clusters (exact or near): {dup['near_clusters']} ({dup['near_pairs']} near pairs"
            f"{', ' + str(dup['near_removed']) + ' removed' if dup.get('near_removed') else ', kept in one split'}).")
    if dup["conflicts"]:
        text += f"\n\nExact duplicates with conflicting labels: {len(dup['conflicts'])}\n\n"
        rows = [[", ".join(c["ids"]), json.dumps(c["labels"], ensure_ascii=False), c["action"]]
                for c in dup["conflicts"][:SHOWN]]
        text += _table(["ids", "labels", "action"], rows) + _more(dup["conflicts"])
    if dup["near_conflicts"]:
        text += f"\n\nNear-duplicate clusters with different labels (kept, reported): {len(dup['near_conflicts'])}\n\n"
        rows = [[", ".join(c["ids"]), json.dumps(c["labels"], ensure_ascii=False)] for c in dup["near_conflicts"][:SHOWN]]
        text += _table(["ids", "labels"], rows) + _more(dup["near_conflicts"])
    return text


def _more(items: list) -> str:
    return f"\n\n... and {len(items) - SHOWN} more in report.json" if len(items) > SHOWN else ""


def _annotations(report: dict[str, Any]) -> str:
    notes = report.get("annotations", {})
    if not notes.get("annotators"):
        return ""
    dis = notes["disagreements"]
    text = (f"## Annotations\nAnnotators: {', '.join(notes['annotators'])}. Disagreements: {dis['count']} "
            f"(majority {dis.get('majority', 0)}, adjudicated {dis.get('adjudicated', 0)}, "
            f"unresolved {dis.get('unresolved', 0)}; listed in disagreements.csv).")
    rows = []
    for task, agreement in notes.get("agreement", {}).items():
        alpha = agreement["krippendorff_alpha"]
        rows.append([task, "all", agreement["items"], "", "", _fmt(alpha)])
        for pair in agreement["pairs"]:
            rows.append([task, " / ".join(pair["annotators"]), pair["items"], _fmt(pair["agreement"]),
                         _fmt(pair["kappa"]), ""])
    if rows:
        text += "\n\n" + _table(["task", "annotators", "items", "raw agreement", "Cohen's kappa",
                                 "Krippendorff's alpha"], rows)
    return text


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rejects(report: dict[str, Any]) -> str:
    rejects = report.get("rejects", {})
    problems = report.get("problems", [])
    text = f"## Rejects and problems\nRecords set aside (rejects.jsonl): {rejects.get('count', 0)}."
    if rejects.get("by_reason"):
        text += "\n\n" + _table(["reason", "records"], sorted(rejects["by_reason"].items()))
    if problems:
        text += "\n\n" + "\n".join(f"- {problem}" for problem in problems[:50])
        if len(problems) > 50:
            text += f"\n- ... and {len(problems) - 50} more in report.json"
    return text
