"""Active learning for annotation: pick the unlabeled articles a model is least sure of, as Label Studio tasks.

`suggest` reads a pool of raw articles, predicts every task with a trained model, scores each article's uncertainty,
picks `n` of them without ever picking two near-duplicates, and writes a Label Studio import file whose tasks carry
the model's predictions as pre-annotations. Label Studio's JSON export of those tasks, once annotated, is an
`annotations:` source of a data config as it is (`format: labelstudio`; the article id is `data.id`).

Uncertainty: per task, the normalized entropy of the predicted label distribution, H(p) / log(number of labels), which
is 0 for a sure prediction and 1 for a uniform one whatever the number of labels, so binary and 8-way tasks weigh
alike. An article's score is the mean over the scored tasks. A task that applies only when another task has some
labels (`applies_when`) counts in proportion to the predicted probability that it applies. The margin ("breaking
ties": 1 - (p1 - p2)) is available too (`measure="margin"`). On the gold data, over 10 seeds, entropy's learning curve
was the higher at 9 of its 10 points after the start (bench/active_learning.py; the gaps are within a standard
deviation), so `suggest` uses entropy.

Diversity: articles whose cleaned texts are near-duplicates (MinHash LSH over word 3-shingles, `train.text.dedup`, estimated
Jaccard >= `near_duplicate_threshold`; exact copies included) form one cluster, and at most one article per cluster is
picked: the first one met in the strategy's order. Clusters are transitive, so an article linked to a picked one
through a chain of near-duplicates is skipped too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from train.errors import TaawunError
from train.evaluation.tables import priors_notes
from train.files import write_json_atomically
from train.labelstudio import labelstudio_tasks
from train.schema import Schema, Task

if TYPE_CHECKING:
    from train.models.predictor import Predictor

Strategy = Literal["uncertainty", "random"]
STRATEGIES = ("uncertainty", "random")
MEASURES = ("entropy", "margin")
NEAR_DUPLICATE_THRESHOLD = 0.5  # Jaccard over 3-word shingles; re-edits of short articles measure 0.6-0.8
# Carried into the tasks' data, so that an export keeps the outlet and date as an article source; not model input.
PASSED_THROUGH = ("date", "source")
UNREAD = ("id", *PASSED_THROUGH)


@dataclass
class Pool:
    """The candidate articles, column-wise: raw `id`, `title`, `text` and target fields, in file order."""

    columns: dict[str, list[str]]
    malformed: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["id"])


@dataclass
class SuggestResult:
    """The articles picked for annotation (most uncertain first, or in random order), and where they were written."""

    ids: list[str]
    scores: list[float]
    output: Path
    strategy: str
    pool_size: int
    near_duplicates_skipped: int
    malformed: list[str] = field(default_factory=list)
    estimated_priors: dict[str, dict[str, float]] | None = None  # {task: {label: share}} with adapt_priors

    def describe(self) -> str:
        """A short summary for the terminal."""
        lines = [f"{len(self.ids)} of {self.pool_size} article(s) suggested ({self.strategy}) into {self.output}",
                 *priors_notes(self.estimated_priors, "the pool")]
        if self.scores:
            lines.append(f"uncertainty of the picked articles: {max(self.scores):.3f} (most) to "
                         f"{min(self.scores):.3f} (least), mean {float(np.mean(self.scores)):.3f}")
        if self.near_duplicates_skipped:
            lines.append(f"{self.near_duplicates_skipped} near-duplicate(s) of picked articles skipped")
        lines += self.malformed
        return "\n".join(lines)


def suggest(model_ref: str, source: Path, n: int, output: Path, strategy: Strategy = "uncertainty",
            fields: dict[str, str] | None = None, seed: int = 0, tasks: list[str] | None = None,
            near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD,
            tracking_uri: str | None = None, adapt_priors: bool = False) -> SuggestResult:
    """Pick `n` articles of `source` to annotate next and write them, pre-annotated, as a Label Studio import file.

    `model_ref` is a model folder or an MLflow URI; `source` a JSONL/CSV/Parquet file whose columns `fields` maps (id,
    text, title, date, source and the model's target fields; default: the same names). `strategy` "uncertainty" takes
    the least sure articles first, "random" a random sample (seeded by `seed`); both skip near-duplicates of picked
    articles. `tasks` limits the tasks whose uncertainty counts (default: all the model's); every task of the model is
    pre-annotated. `tracking_uri`: the store an MLflow model URI is loaded from. `adapt_priors`: the probabilities
    (uncertainty and pre-annotations) are adapted to the label proportions estimated in the whole pool
    (`Predictor.adapt_priors`), for a pool from an outlet that files its labels in other proportions.
    Fewer than `n` articles come back when the pool holds fewer distinct ones.
    """
    if Path(output).suffix.lower() != ".json":
        raise TaawunError(f"{output}: write the suggestions to a .json file (Label Studio imports a JSON list of "
                          "tasks)")
    _check_request(n, strategy, near_duplicate_threshold)
    from train.models.predictor import load_predictor

    predictor = load_predictor(model_ref, tracking_uri)
    picked = pick(predictor, str(model_ref), source, n, strategy, fields, seed, tasks, near_duplicate_threshold,
                  adapt_priors=adapt_priors)
    write_json_atomically(Path(output), picked.records)
    return picked.result(Path(output))


@dataclass
class Picked:
    """The picked articles as Label Studio tasks (`records`), with what `SuggestResult` reports about them."""

    records: list[dict]
    ids: list[str]
    scores: list[float]
    strategy: str
    pool_size: int
    near_duplicates_skipped: int
    malformed: list[str]
    estimated_priors: dict[str, dict[str, float]] | None = None

    def result(self, output: Path) -> SuggestResult:
        """The summary of a suggestion written to `output`."""
        return SuggestResult(self.ids, self.scores, output, self.strategy, self.pool_size,
                             self.near_duplicates_skipped, self.malformed, self.estimated_priors)


def pick(predictor: Predictor, model_version: str, source: Path, n: int, strategy: Strategy = "uncertainty",
         fields: dict[str, str] | None = None, seed: int = 0, tasks: list[str] | None = None,
         near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD, exclude: frozenset[str] = frozenset(),
         adapt_priors: bool = False) -> Picked:
    """The `n` articles `suggest` picks with a loaded model, as Label Studio tasks, without writing them.

    Articles whose id is in `exclude` (already in the Label Studio project) are left out of the pool; with
    `adapt_priors`, the label proportions are estimated in the rest of the pool.
    """
    _check_request(n, strategy, near_duplicate_threshold)
    from train.evaluation.scoring import predict_columns

    scored = _scored_tasks(predictor.tasks, tasks)
    pool = read_pool(Path(source), fields or {}, predictor.target_fields, exclude)
    cleaned = {key: predictor.clean(values) for key, values in pool.columns.items() if key not in UNREAD}
    proba = predict_columns(predictor, cleaned, clean=False)
    estimates, thresholds = None, predictor.thresholds
    if adapt_priors:
        proba, estimates, thresholds = predictor.adapt_priors(proba)
    scores = uncertainty(proba, scored, predictor.schema)
    clusters = near_duplicate_clusters(cleaned["text"], near_duplicate_threshold)
    chosen, skipped = select(scores, clusters, n, strategy, seed)
    evidence = predictor.evidence([cleaned["title"][i] for i in chosen], [cleaned["text"][i] for i in chosen],
                                  clean=False) if chosen and predictor.evidence_tasks else {}
    records = labelstudio_tasks(pool.columns, chosen, proba, scores, predictor.tasks, model_version, thresholds,
                                evidence)
    return Picked(records, [pool.columns["id"][i] for i in chosen], [float(scores[i]) for i in chosen], strategy,
                  len(pool), skipped, pool.malformed, estimates)



def _check_request(n: int, strategy: str, threshold: float) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise TaawunError(f"n = {n!r}: ask for at least one article to annotate")
    if strategy not in STRATEGIES:
        raise TaawunError(f"strategy {strategy!r} is not known; use one of {list(STRATEGIES)}")
    if not 0 < threshold <= 1:
        raise TaawunError(f"near_duplicate_threshold = {threshold}: give a Jaccard similarity in (0, 1]")


def _scored_tasks(model_tasks: list[Task], names: Sequence[str] | None) -> list[Task]:
    """The model's tasks whose uncertainty counts: the named ones, or all."""
    if not names:
        return list(model_tasks)
    by_name = {task.name: task for task in model_tasks}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise TaawunError(f"tasks {unknown} are not tasks of the model; its tasks: {list(by_name)}")
    return [by_name[name] for name in dict.fromkeys(names)]


# -- the pool ---------------------------------------------------------------------------------------------------------
def read_pool(source: Path, fields: dict[str, str], target_fields: Sequence[str],
              exclude: frozenset[str] = frozenset()) -> Pool:
    """The raw articles of a JSONL/CSV/TSV/Parquet file (also .gz), with the columns `fields` maps.

    An id is needed to join the annotations back to the article. Unreadable records, records without text or id are
    skipped and listed in `malformed` with their line; a repeated id with the same article is read once; ids in
    `exclude` are left out. `date` and `source` are read when the file has them (empty otherwise).
    """
    from train.data.table import ARTICLE_KEYS, ArticleReader

    keys = [*ARTICLE_KEYS, *PASSED_THROUGH, *target_fields]
    optional = ("title", *PASSED_THROUGH)
    # Optional columns may be missing unless the user mapped them (mapped keys are always required).
    reader = ArticleReader(source, fields, keys, [key for key in keys if key not in optional],
                           why={"id": " (the article id, to join the annotations back)"})
    pool = Pool({key: [] for key in reader.column}, reader.malformed)
    seen: dict[str, tuple[int, tuple[str, str]]] = {}
    for line, record in reader:
        where = f"{source}:{line}"
        record["id"] = record["id"].strip()
        if not record["id"] or not record["text"].strip():
            pool.malformed.append(f"{where}: {'no id' if not record['id'] else 'empty text'}; skipped")
            continue
        content = (record["title"], record["text"])
        if record["id"] in seen:
            earlier_line, earlier = seen[record["id"]]
            if earlier != content:
                raise TaawunError(f"{where}: id {record['id']!r} was already used at line {earlier_line} for a "
                                  "different article; ids must be unique")
            continue
        seen[record["id"]] = (line, content)
        if record["id"] in exclude:
            continue
        for key, value in record.items():
            pool.columns[key].append(value)
    if not len(pool):
        raise _empty_pool(source, pool, bool(reader.present), len(seen))
    return pool


def _empty_pool(source: Path, pool: Pool, readable: bool, distinct: int) -> TaawunError:
    if distinct:  # articles were read, and all of them excluded
        return TaawunError(f"{source}: all {distinct} article(s) of the pool are already in the Label Studio project; "
                           "nothing new to suggest")
    problems = f" ({len(pool.malformed)} record(s) skipped: {pool.malformed[0]} ...)" if pool.malformed else ""
    what = "article to suggest" if readable else "readable article"
    return TaawunError(f"{source}: the pool holds no {what}{problems}")


# -- scoring and picking ----------------------------------------------------------------------------------------------
def uncertainty(proba: dict[str, np.ndarray], tasks: Sequence[Task], schema: Schema,
                measure: str = "entropy") -> np.ndarray:
    """Each article's uncertainty in [0, 1]: the mean over `tasks` of a per-task uncertainty (see the module doc).

    `proba` maps task names to (articles, labels) probabilities in schema order. A task with `applies_when` is weighed
    by the predicted probability that it applies, when `proba` has the other task.
    """
    if measure not in MEASURES:
        raise TaawunError(f"uncertainty measure {measure!r} is not known; use one of {list(MEASURES)}")
    if not tasks:
        raise TaawunError("uncertainty needs at least one task")
    total = None
    for task in tasks:
        p = np.asarray(proba[task.name], dtype=float)
        per_task = _normalized_entropy(p) if measure == "entropy" else _margin(p)
        per_task = per_task * _applies_probability(task, proba, schema)
        total = per_task if total is None else total + per_task
    return np.clip(total / len(tasks), 0.0, 1.0)


def _margin(p: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2): 0 when one label takes all the probability, 1 when the top two tie."""
    top = np.sort(p, axis=1)[:, -2:]
    return 1.0 - (top[:, 1] - top[:, 0])


def _normalized_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy divided by its maximum, log(number of labels)."""
    safe = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(safe)).sum(axis=1) / np.log(p.shape[1])


def _applies_probability(task: Task, proba: dict[str, np.ndarray], schema: Schema) -> np.ndarray | float:
    if task.applies_when is None or task.applies_when.task not in proba:
        return 1.0
    parent = schema.task(task.applies_when.task)
    columns = [parent.label_names.index(label) for label in task.applies_when.labels]
    return np.asarray(proba[parent.name])[:, columns].sum(axis=1)


def near_duplicate_clusters(texts: Sequence[str], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> np.ndarray:
    """Each text's near-duplicate cluster (exact copies included), by MinHash LSH over word 3-shingles."""
    from train.text.dedup import DedupOptions, find_duplicates

    return find_duplicates(texts, DedupOptions(threshold=threshold)).cluster


def select(scores: np.ndarray, clusters: Sequence[int], n: int, strategy: str, seed: int = 0) -> tuple[list[int], int]:
    """Indices of up to `n` articles, at most one per cluster, and how many near-duplicates were skipped on the way.

    "uncertainty" walks the articles from the highest score down (ties: pool order); "random" in a seeded random order.
    """
    if strategy == "uncertainty":
        order = np.argsort(-np.asarray(scores), kind="stable")
    elif strategy == "random":
        order = np.random.default_rng(seed).permutation(len(scores))
    else:
        raise TaawunError(f"strategy {strategy!r} is not known; use one of {list(STRATEGIES)}")
    picked: list[int] = []
    taken: set[int] = set()
    skipped = 0
    for index in order.tolist():
        if len(picked) == n:
            break
        cluster = int(clusters[index])
        if cluster in taken:
            skipped += 1
            continue
        taken.add(cluster)
        picked.append(index)
    return picked, skipped
