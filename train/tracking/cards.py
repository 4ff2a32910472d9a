"""What a person reads about a run in the MLflow UI: the run's description (its scores at a glance, the data, the
model, the commands that use it) and the model card of a registered version. Both are Markdown."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from train.schema import Task

# MLflow's limit on a registered version's description in SQL stores (and on a run tag in older MLflow).
MAX_LENGTH = 5000
FEW = 5  # a label with fewer training articles than this has unreliable predictions
INTENDED_USE = ("## Intended use\n\nLabelling Arabic news articles with the tasks above, as the schema defines them: "
                "to sort, count and search articles, and to choose which to annotate next. Labels that decide "
                "something about a person or an outlet need a person to check them.")


@dataclass
class RunFacts:
    """What a run's description and model card say: filled from the run's model, data and results."""

    run_id: str
    model: str  # the model kind and its main choice, e.g. "tfidf (logreg)"
    tasks: list[Task]
    results: dict[str, dict[str, dict]]  # split -> task -> metrics, as the evaluation computes them
    data: str  # the dataset folder (or the file an evaluation read)
    fingerprint: str = ""
    tracking_option: str = ""  # " --tracking-uri URI" where the store is not the default one
    split_sizes: dict[str, int] = field(default_factory=dict)
    outlets: dict[str, int] = field(default_factory=dict)  # training articles per outlet
    dates: tuple[str, str] | None = None  # the first and last training article's date
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> label -> training articles
    thresholds: dict[str, float] = field(default_factory=dict)


def training_facts(run_id: str, predictor, results: dict, split_sizes: dict[str, int], train_split,
                   data: str, tracking_option: str) -> RunFacts:
    """The facts of a training run: its predictor, results, and the training split (a `datasets.Dataset`)."""
    columns = set(train_split.column_names)
    dates = sorted(d for d in train_split["date"] if d) if "date" in columns else []
    outlets = Counter(name for name in train_split["source"] if name) if "source" in columns else Counter()
    counts = {task.name: _label_counts(task, train_split[task.name]) for task in predictor.tasks}
    return RunFacts(run_id=run_id, model=model_name(predictor.model), tasks=predictor.tasks, results=results,
                    data=data, fingerprint=predictor.info.get("dataset_fingerprint", ""),
                    tracking_option=tracking_option, split_sizes=split_sizes,
                    outlets=dict(outlets.most_common()),
                    dates=(dates[0], dates[-1]) if dates else None, label_counts=counts,
                    thresholds=dict(predictor.thresholds))


def _label_counts(task: Task, values: list[int]) -> dict[str, int]:
    counted = Counter(values)
    return {name: counted.get(index, 0) for index, name in enumerate(task.label_names)}


def model_name(model) -> str:
    """The model kind and its main choice: "tfidf (logreg)", "sentence_encoder (use-multilingual-v3, logreg)"."""
    config = getattr(model, "config", None)
    if getattr(config, "tiny", None):
        return f"{model.kind} (tiny BERT)"
    choices = [getattr(config, key) for key in ("classifier", "encoder", "head", "name")
               if isinstance(getattr(config, key, None), str)]
    members = getattr(config, "members", None)
    if members:
        choices = [str(member.get("kind") if isinstance(member, dict) else getattr(member, "kind", member))
                   for member in members]
    return f"{model.kind} ({', '.join(choices)})" if choices else model.kind


def run_description(facts: RunFacts) -> str:
    """The run's description: its scores per task and split first (what the UI shows before "Show more"), then the
    model and data, the macro-F1 per outlet, and the commands that evaluate and predict with the model."""
    parts = [scores_table(facts.results, split, facts.tasks) for split in _splits(facts.results)]
    parts.append(f"**Model** {facts.model} · **data** {_data_line(facts)}")
    split = _splits(facts.results)[0]
    outlets = outlet_table(facts.results, split, facts.tasks)
    if outlets:
        parts.append(f"**Macro-F1 per outlet** ({split} split; articles in brackets)\n\n{outlets}")
    parts.append(_commands(facts))
    return _fit("\n\n".join(parts))


def evaluation_description(facts: RunFacts, model_uri: str) -> str:
    """An evaluation run's description: its scores per task, what was evaluated on what, and per outlet."""
    split = _splits(facts.results)[0]
    parts = [scores_table(facts.results, split, facts.tasks),
             f"**Evaluation** of `{model_uri}` ({facts.model}) on `{facts.data}`"]
    outlets = outlet_table(facts.results, split, facts.tasks)
    if outlets:
        parts.append(f"**Macro-F1 per outlet** (articles in brackets)\n\n{outlets}")
    return _fit("\n\n".join(parts))


def _splits(results: dict) -> list[str]:
    """The splits of `results`, test first."""
    return sorted(results, key=lambda name: name != "test")


def scores_table(results: dict, split: str, tasks: list[Task]) -> str:
    """A Markdown table of one split: per task, macro-F1 with its interval, the positive class's F1, n."""
    rows = [f"| task | {split} macro-F1 [95% CI] | positive-class F1 | accuracy | n |", "|---|---|---|---|--:|"]
    for task in tasks:
        m = results[split].get(task.name)
        if m is None:
            continue
        low, high = m.get("macro_f1_ci") or (None, None)
        interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        positive = m.get("positive")
        positive_f1 = f"{positive['f1']:.3f} ({positive['label']})" if positive else "–"
        rows.append(f"| {task.name} | **{_number(m.get('macro_f1'))}**{interval} | {positive_f1} | "
                    f"{_number(m.get('accuracy'))} | {m.get('n', '')} |")
    return "\n".join(rows)


def outlet_table(results: dict, split: str, tasks: list[Task], limit: int = 12) -> str:
    """Macro-F1 per outlet (rows) and task (columns), largest outlets first; "" when there are no outlets."""
    per_task = {task.name: results[split].get(task.name, {}).get("per_group") or {} for task in tasks}
    sizes = Counter()
    for groups in per_task.values():
        for group, m in groups.items():
            sizes[group] = max(sizes[group], m["n"])
    if not sizes:
        return ""
    rows = ["| outlet | " + " | ".join(per_task) + " |", "|---|" + "---|" * len(per_task)]
    for group, _ in sizes.most_common(limit):
        cells = [f"{_number(groups[group]['macro_f1'])} ({groups[group]['n']})" if group in groups else "–"
                 for groups in per_task.values()]
        rows.append(f"| {group} | " + " | ".join(cells) + " |")
    more = len(sizes) - limit
    return "\n".join(rows) + (f"\n\n{more} more outlets in `evaluation/metrics.json`" if more > 0 else "")


def _data_line(facts: RunFacts) -> str:
    sizes = ", ".join(f"{n} {split}" for split, n in facts.split_sizes.items())
    fingerprint = f" (fingerprint `{facts.fingerprint[:12]}`)" if facts.fingerprint else ""
    return f"`{facts.data}`{fingerprint}" + (f": {sizes} articles" if sizes else "")


def _commands(facts: RunFacts) -> str:
    model = f"runs:/{facts.run_id}/model"
    split = _splits(facts.results)[0]
    return (f"**Evaluate** `taawun evaluate {model} --input {facts.data} --split {split}{facts.tracking_option}`  \n"
            f"**Predict** `taawun predict {model} --input articles.jsonl --output predictions.jsonl"
            f"{facts.tracking_option}`  \n**Model card** the artifact `model_card.md`")


def model_card(facts: RunFacts) -> str:
    """The model card: the model, the data it learnt from, the schema, its scores, intended use and limits."""
    split = _splits(facts.results)[0]
    sections = [
        f"# Model card: {facts.model} for {', '.join(task.name for task in facts.tasks)}",
        (f"**Model** {facts.model}, trained by taawun {_version()} in MLflow run `{facts.run_id}`. Input: an Arabic "
         "news article's text (its title optional); output: one label per task, with probabilities."),
        f"**Data** {_data_line(facts)}{_trained_on(facts)}.",
        "## Schema\n\n" + _schema_table(facts),
        "## Scores\n\n" + "\n\n".join(scores_table(facts.results, s, facts.tasks) for s in _splits(facts.results)),
        INTENDED_USE,
        "## Limits\n\n" + "\n".join(f"- {limit}" for limit in _limits(facts, split)),
    ]
    return _fit("\n\n".join(sections), "\n\n(cut here: the whole card is the run's artifact `model_card.md`)")


def _trained_on(facts: RunFacts) -> str:
    dates = f", dated {facts.dates[0]} to {facts.dates[1]}" if facts.dates else ""
    outlets = ", ".join(f"{name} ({n})" for name, n in list(facts.outlets.items())[:12])
    more = f" and {len(facts.outlets) - 12} more" if len(facts.outlets) > 12 else ""
    return f"{dates}; training articles from {len(facts.outlets)} outlets: {outlets}{more}" if outlets else dates


def _schema_table(facts: RunFacts) -> str:
    rows = ["| task | kind | labels (training articles) |", "|---|---|---|"]
    for task in facts.tasks:
        kind = f"binary, positive `{task.positive_label}`" if task.kind == "binary" else task.kind
        if task.applies_when:
            kind += f"; when {task.applies_when.task} is {' or '.join(task.applies_when.labels)}"
        if task.name in facts.thresholds:
            kind += f"; decision threshold {facts.thresholds[task.name]:.2f}"
        counts = facts.label_counts.get(task.name, {})
        labels = ", ".join(f"{name} ({counts[name]})" if name in counts else name for name in task.label_names)
        rows.append(f"| {task.name} | {kind} | {labels} |")
    return "\n".join(rows)


def _limits(facts: RunFacts, split: str) -> list[str]:
    """What the scores do not show: where the model was not evaluated, and which labels it barely saw."""
    trained = facts.split_sizes.get("train", "its")
    outlets = f" from {len(facts.outlets)} outlets ({', '.join(list(facts.outlets)[:12])})" if facts.outlets else ""
    dates = f", dated {facts.dates[0]} to {facts.dates[1]}" if facts.dates else ""
    limits = [(f"Trained on {trained} articles{outlets}{dates}; not evaluated on other outlets, other periods, "
               "other kinds of text (social media, transcripts) or dialects.")]
    n = max((m.get("n", 0) for m in facts.results[split].values()), default=0)
    limits.append(f"Scored on {n} {split} articles: the 95% intervals above show how far the scores may be off.")
    tested = {group for m in facts.results[split].values() for group in m.get("per_group") or {}}
    if tested and facts.outlets:
        unseen = sorted(tested - set(facts.outlets))
        limits.append(f"Tested on outlets it was not trained on: {', '.join(unseen)}." if unseen else
                      f"The {split} articles come from outlets it was trained on: expect lower scores on a new outlet.")
    for task in facts.tasks:
        few = [f"{name} ({count})" for name, count in facts.label_counts.get(task.name, {}).items() if count < FEW]
        if few:
            limits.append(f"{task.name}: fewer than {FEW} training articles for {', '.join(few)}; their predictions "
                          "are the least reliable.")
    return limits


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("taawun")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "(not installed)"


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def _fit(text: str, note: str = "\n\n(cut to MLflow's length limit)") -> str:
    """`text`, cut at a line end to MLflow's length limit when longer."""
    if len(text) <= MAX_LENGTH:
        return text
    cut = text[: MAX_LENGTH - len(note)].rsplit("\n", 1)[0]
    return cut + note
