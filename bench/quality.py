"""Quality with few labels (issue 12): one ablation table of the levers, on gold and on ANT.

gold: 5-fold cross-validation over the 240 gold articles, folds of whole duplicate clusters stratified on
bilateral_security_cooperation, every row on the same folds; the folds' test predictions are pooled (one prediction
per article) and scored once. ANT articles used as auxiliary data go to training only, never an ANT copy or
near-duplicate of a fold's test article. ANT: the publisher sections, CNN held out as the test outlet; macro-F1 over
the labels CNN has (CNN has no culture article).

Nothing is chosen on a test fold: the weak rules were written from the labeling guideline, and every weight,
threshold and model choice is made on the training part of each fold (inner cross-validation, `taawun tune`'s code).

    .venv/bin/python bench/quality.py [--folds 5] [--skip-ant] [--skip-gold] [--rows NAME ...] [--ant-rows NAME ...]
        [--ant-dev] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

WORK = common.ROOT / "runs" / "quality"
SILVER = common.ROOT / "data" / "built" / "silver" / "ant.jsonl"
UN_SENTENCES = common.SHARED / "un_cooperation" / "sentences.jsonl.gz"
COOPERATION = "bilateral_security_cooperation"
ENSEMBLE_CANDIDATES = [{"kind": "tfidf"}, {"kind": "tfidf", "classifier": "complement_nb"},
                       {"kind": "sentence_encoder"}, {"kind": "sentence_encoder", "features": ["encoder", "tfidf"]}]


# -- the rows ---------------------------------------------------------------------------------------------------------
def rows(cache: Path) -> dict[str, dict[str, Any]]:
    """Each row: the data variant it trains on and the experiment settings (a model, thresholds, ...)."""
    encoder = {"kind": "sentence_encoder", "cache_dir": str(cache)}
    hybrid = {**encoder, "features": ["encoder", "tfidf"]}
    evidence = {**encoder, "evidence": {"pooling": "max", "sentences": {
        "path": str(UN_SENTENCES), "positive": ["Material Cooperation", "Verbal Cooperation"], "weight": 0.5}}}
    candidates = [{**c, "cache_dir": str(cache)} if c["kind"] == "sentence_encoder" else c
                  for c in ENSEMBLE_CANDIDATES]
    six = {"kind": "ensemble", "folds": 3,
           "members": [{**c, "rules_weight": weight} for c in candidates[1:] for weight in (0.0, 1.0)]}
    return {
        "reference (TfidfVectorizer + LinearSVC)": {"data": "gold", "reference": True},
        "today's default (tfidf.yaml: logreg)": {"data": "gold", "experiment": {}},
        "+ auxiliary corpus (ANT sections mapped to topics)": {"data": "sections", "experiment": {}},
        "+ weak supervision (silver labels on ANT)": {"data": "silver", "experiment": {}},
        "+ self-training (ANT unlabelled, 2 rounds)": {"data": "pool", "experiment": {
            "self_training": {"rounds": 2, "threshold": 0.9, "weight": 0.5}}},
        "+ decision thresholds (inner CV)": {"data": "gold", "experiment": {"thresholds": {"tune": "cv"}}},
        "sentence encoder (today's best kind)": {"data": "gold", "experiment": {"model": encoder}},
        "+ sentence evidence (MIL, UN sentences)": {"data": "gold", "experiment": {"model": evidence}},
        "+ model selection and ensemble (inner CV)": {"data": "gold", "tune": {
            "candidates": candidates, "folds": 3, "ensemble": 3}},
        "sentence encoder + thresholds": {"data": "gold", "experiment": {
            "model": encoder, "thresholds": {"tune": "cv"}}},
        "hybrid (encoder + TF-IDF) + thresholds": {"data": "gold", "experiment": {
            "model": hybrid, "thresholds": {"tune": "cv"}}},
        "ensemble (complement NB, encoder, hybrid)": {"data": "gold", "experiment": {
            "model": {"kind": "ensemble", "folds": 3, "members": candidates[1:]}}},
        "ensemble (complement NB, encoder, hybrid) + thresholds": {"data": "gold", "experiment": {
            "model": {"kind": "ensemble", "folds": 3, "members": candidates[1:]}, "thresholds": {"tune": "cv"}}},
        # Tuning and evidence are left out here: over 8,000 auxiliary articles their inner cross-validation costs
        # tens of minutes a fold; their own rows measure them.
        "all together (auxiliary + silver + thresholds, hybrid)": {"data": "all", "experiment": {
            "model": hybrid, "thresholds": {"tune": "cv"}}},
        "+ weak supervision + thresholds (logreg)": {"data": "silver", "experiment": {"thresholds": {"tune": "cv"}}},
        "auxiliary + silver (logreg)": {"data": "all", "experiment": {}},
        "auxiliary + silver + thresholds (logreg)": {"data": "all", "experiment": {"thresholds": {"tune": "cv"}}},
        "auxiliary + silver, ensemble (complement NB, encoder, hybrid)": {"data": "all", "experiment": {
            "model": {"kind": "ensemble", "folds": 3, "members": candidates[1:]}}},
        "+ rule features (logreg, weight by inner CV)": {"data": "gold", "tune": {
            "candidates": [{"kind": "tfidf", "grid": {"rules_weight": [0.5, 1.0, 2.0]}}], "folds": 3}},
        "ensemble (complement NB, encoder, hybrid) + rule features": {"data": "gold", "experiment": {
            "model": {**six, "members": [{**c, "rules_weight": 1.0} for c in candidates[1:]]}}},
        "auxiliary + silver + rule features (logreg)": {"data": "all", "experiment": {
            "model": {"kind": "tfidf", "rules_weight": 1.0}}},
        "ensemble with rule weights chosen by inner CV": {"data": "gold", "tune": {
            "candidates": [{**c, "grid": {"rules_weight": [0.0, 1.0, 2.0]}} for c in candidates[1:]], "folds": 3,
            "ensemble": 3}},
        "ensemble of six (each member with and without rule features): default.yaml": {"data": "gold", "experiment": {
            "model": six}},
        "auxiliary + silver, ensemble of six": {"data": "all", "experiment": {"model": six}},
        "auxiliary (sections, no silver), ensemble of six": {"data": "sections", "experiment": {"model": six}},
        "auxiliary + silver on every ANT article, not a sample (logreg)": {"data": "every", "experiment": {}},
        "auxiliary + silver (complement NB)": {"data": "all", "experiment": {
            "model": {"kind": "tfidf", "classifier": "complement_nb"}}},
        "auxiliary + silver (linear SVM)": {"data": "all", "experiment": {
            "model": {"kind": "tfidf", "classifier": "linear_svm"}}},
        "auxiliary + silver, classifier and auxiliary weight chosen by inner CV": {"data": "all", "tune": {
            "candidates": [{"kind": "tfidf"}, {"kind": "tfidf", "classifier": "complement_nb"}], "folds": 3,
            "auxiliary_weights": [0.2, 0.5]}},
        "auxiliary + silver + self-training on cooperation (logreg, 2 rounds, threshold 0.9)": {"data": "all",
            "experiment": {"self_training": {"rounds": 2, "threshold": 0.9, "weight": 0.5, "tasks": [COOPERATION]}}},
        "auxiliary + silver, auxiliary weight per task (0, 0.2, 1) by inner CV (logreg)": {"data": "all",
            "experiment": {"model": {"kind": "tfidf", "search": {"auxiliary_weights": [0.0, 0.2, 1.0]}}}},
        "auxiliary + silver, features per task (logreg)": {"data": "all", "experiment": {
            "model": {"kind": "tfidf", "features_per_task": True}}},
        "auxiliary + silver, features per task (complement NB)": {"data": "all", "experiment": {
            "model": {"kind": "tfidf", "classifier": "complement_nb", "features_per_task": True}}},
        "auxiliary + silver, features and auxiliary weight per task (logreg)": {"data": "all", "experiment": {
            "model": {"kind": "tfidf", "features_per_task": True, "search": {"auxiliary_weights": [0.0, 0.2, 1.0]}}}},
        "auxiliary + silver, features per task, C per task (1, 10, 100) by inner CV (logreg)": {"data": "all",
            "experiment": {"model": {"kind": "tfidf", "features_per_task": True, "search": {"grid": {
                "C": [1.0, 10.0, 100.0]}}}}},
        "auxiliary + silver, ensemble (logreg, encoder, hybrid)": {"data": "all", "experiment": {
            "model": {"kind": "ensemble", "folds": 3, "members": [candidates[0], *candidates[2:]]}}},
        "auxiliary + silver, ensemble of six and logreg": {"data": "all", "experiment": {
            "model": {**six, "members": [candidates[0], *six["members"]]}}},
    }


# -- data -------------------------------------------------------------------------------------------------------------
def datasets(names: set[str]) -> dict[str, Any]:
    """The data variants the rows need, each built unless a current build is there: gold alone, and gold with ANT in
    four roles (and the last with every ANT article, not a sample)."""
    from train.data.config import load_data_config

    config, schema = load_data_config(common.DATA_CONFIGS / "gold_plus_ant.yaml")
    gold, ant = config.sources
    bare = ant.model_copy(update={"labels": {}, "label_map": {}})
    variants = {"sections": {"annotations": []}, "silver": {"sources": [gold, bare]},
                "pool": {"sources": [gold, bare], "annotations": []}, "all": {},
                "every": {"sources": [gold, ant.model_copy(update={"limit": None})]}}
    built = {name: common.dataset("gold", WORK)[0] if name == "gold" else common.current(
        common.DATA_CONFIGS / "gold_plus_ant.yaml", WORK / name, **variants[name])[0] for name in sorted(names)}
    return built, schema


def silver() -> None:
    """The silver labels of ANT by the default schema's rules (`taawun weak apply`), made once."""
    if SILVER.is_file():
        return
    from train.weak.apply import weak_apply

    SILVER.parent.mkdir(parents=True, exist_ok=True)
    weak_apply(common.ROOT / "configs" / "schema.yaml", common.SHARED / "ant" / "articles.jsonl.gz", SILVER, {})


# -- gold cross-validation --------------------------------------------------------------------------------------------
def folds(gold, tasks, count: int, seed: int = common.SEED) -> list[set[str]]:
    """The ids of each fold's test articles: whole duplicate clusters, stratified on the cooperation task, shuffled by
    `seed` (another seed draws other folds: how much a score owes to one draw)."""
    from sklearn.model_selection import StratifiedGroupKFold

    data = common.whole(gold, tasks)
    ids = np.asarray([row for split in common.SPLITS for row in gold[split]["id"]])
    splitter = StratifiedGroupKFold(n_splits=count, shuffle=True, random_state=seed)
    return [set(ids[held]) for _, held in splitter.split(ids, data.labels[COOPERATION], data.articles.group_array())]


def fold_parts(built, held: set[str]):
    """(train, test) of one fold: test = the fold's gold articles; train = the other gold articles and the auxiliary
    articles that share no duplicate cluster with a test article."""
    import datasets

    everything = datasets.concatenate_datasets([built[split] for split in common.SPLITS])
    is_test = np.asarray([article in held for article in everything["id"]])
    test_clusters = set(np.asarray(everything["cluster"])[is_test])
    leak = np.asarray([cluster in test_clusters for cluster in everything["cluster"]]) & ~is_test
    # A training article in a test article's duplicate cluster is left out, auxiliary or gold (ANT near-duplicates
    # can join two gold articles that gold alone keeps apart).
    train = np.flatnonzero(~is_test & ~leak)
    return everything.select(train), everything.select(np.flatnonzero(is_test))


def cross_validate(row: dict, built, schema, held_out: list[set[str]]) -> dict[str, Any]:
    """Pooled test predictions of every fold (decided with each fold's thresholds), and the mean fit seconds."""
    tasks = schema.tasks
    decided = {task.name: {} for task in tasks}
    seconds = []
    for index, held in enumerate(held_out):
        train_split, test_split = fold_parts(built[row["data"]], held)
        started = time.perf_counter()
        predict, _ = fit_row(row, train_split, schema, index)
        seconds.append(time.perf_counter() - started)
        test = common.labelled(test_split, tasks)
        for task, labels in predict(test.articles).items():
            decided[task].update(zip(test_split["id"], labels, strict=True))
        print(f"    fold {index + 1}/{len(held_out)}: {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
    return {"decided": decided, "seconds": float(np.mean(seconds))}


def fit_row(row: dict, split, schema, fold: int, validation=None):
    """Fit what the row describes on a fold's training split; returns articles -> {task: predicted class}, and the
    seconds its model choice took (0 without `tune`). A row with `adapt_priors` calibrates on `validation` and adapts
    the probabilities to each batch it predicts, as `taawun evaluate --adapt-priors` does."""
    from train.config.experiment import ExperimentConfig
    from train.evaluation.metrics import decide
    from train.models.base import Articles, FitContext, split_labels
    from train.models.priors import adapt_tasks, reference_priors
    from train.workflows.train import fit_model
    from train.workflows.tune import choose

    tasks = schema.tasks
    if row.get("reference"):
        return reference(split, tasks), 0.0
    settings = {"data": "unused", "model": {"kind": "tfidf"}, **row.get("experiment", {}),
                "output_dir": str(WORK / "runs"), "tracking": {"experiment": f"fold-{fold}"}}
    if row.get("tune"):
        settings["tune"] = row["tune"]
    config = ExperimentConfig.model_validate(settings)
    started = time.perf_counter()
    if config.tune:
        _, chosen = choose(config, split, tasks, schema, progress=lambda trial: print(
            f"    trial {trial.name}: {trial.objective:.3f}", file=sys.stderr, flush=True))
        print(f"    chosen: {chosen.name}", file=sys.stderr, flush=True)
        config = config.model_copy(update={"model": chosen.config, "auxiliary_weight": chosen.auxiliary_weight})
    choosing = time.perf_counter() - started if config.tune else 0.0
    articles = Articles.from_split(split, [], config.auxiliary_weight)
    model, facts = fit_model(config, tasks, articles, split_labels(split, tasks),
                             FitContext(seed=common.SEED, schema=schema, work_dir=WORK / "work", on_trial=show_trial))
    thresholds, references = facts.get("thresholds", {}), {}
    if row.get("adapt_priors"):
        held = common.labelled(validation, tasks)
        references = reference_priors(tasks, split_labels(split, tasks), articles.weights, held.labels,
                                      model.predict_proba(held.articles))

    def predict(test) -> dict[str, np.ndarray]:
        proba, decided_by = model.predict_proba(test), thresholds
        if references:
            proba, _, decided_by = adapt_tasks(tasks, proba, references, thresholds)
        return {task.name: decide(proba[task.name], task.positive_index, decided_by.get(task.name)) for task in tasks}
    return predict, choosing


def show_trial(task: str, params: dict[str, Any], score: float) -> None:
    """A head search's trial, on stderr: what it tried and its inner-CV macro-F1."""
    tried = {key: value for key, value in params.items() if key in ("auxiliary_weight", "C", "alpha")}
    print(f"    search {task} {tried}: {score:.3f}", file=sys.stderr, flush=True)


def reference(split, tasks):
    """scikit-learn's `TfidfVectorizer()` defaults + `LinearSVC()` per task, on the text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    texts = np.asarray(split["text"], dtype=object)
    fitted = {}
    for task in tasks:
        y = np.asarray(split[task.name])
        vectorizer = TfidfVectorizer()
        fitted[task.name] = (vectorizer, LinearSVC().fit(vectorizer.fit_transform(list(texts[y >= 0])), y[y >= 0]))
    return lambda test: {name: classifier.predict(vectorizer.transform(test.texts))
                         for name, (vectorizer, classifier) in fitted.items()}


def pooled(result: dict, gold, tasks) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each task's gold labels and pooled test predictions, over the articles labelled for it."""
    ids = [article for split in common.SPLITS for article in gold[split]["id"]]
    found = {}
    for task in tasks:
        truth = dict(zip(ids, (v for split in common.SPLITS for v in gold[split][task.name]), strict=True))
        labelled = [article for article in ids if truth[article] >= 0]
        found[task.name] = (np.asarray([truth[article] for article in labelled]),
                            np.asarray([result["decided"][task.name][article] for article in labelled]))
    return found


def gold_scores(predictions: dict[str, tuple[np.ndarray, np.ndarray]], tasks) -> dict[str, float]:
    """topic and stance macro-F1, cooperation macro-F1 and `yes` F1, pooled over the folds."""
    from sklearn.metrics import f1_score

    scores = {}
    for task in tasks:
        y, predicted = predictions[task.name]
        scores[task.name] = float(f1_score(y, predicted, average="macro", zero_division=0))
        if task.positive_label:
            positive = task.label_names.index(task.positive_label)
            scores[f"{task.name}:{task.positive_label}"] = float(f1_score(y == positive, predicted == positive))
    return scores


def gold_intervals(predictions: dict[str, tuple[np.ndarray, np.ndarray]], tasks, resamples: int = 1000,
                   confidence: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of `gold_scores`' figures, resampling the pooled articles (as `taawun
    evaluate` does for its macro-F1): how far a figure on 240 articles may be from the model's true score."""
    from train.evaluation.metrics import macro_f1_of_counts, resample_counts

    tail = (1 - confidence) / 2 * 100
    found = {}
    for task in tasks:
        y, predicted = predictions[task.name]
        k = len(task.label_names)
        rows = np.random.default_rng(common.SEED).integers(0, len(y), size=(resamples, len(y)))
        counts = resample_counts((y * k + predicted)[rows], k)
        figures = {task.name: macro_f1_of_counts(counts)}
        if task.positive_label:
            positive = task.label_names.index(task.positive_label)
            denominator = counts[:, positive, :].sum(axis=1) + counts[:, :, positive].sum(axis=1)
            figures[f"{task.name}:{task.positive_label}"] = np.divide(
                2.0 * counts[:, positive, positive], denominator, out=np.zeros(resamples), where=denominator > 0)
        for key, values in figures.items():
            low, high = np.percentile(values, [tail, 100 - tail])
            found[key] = (float(low), float(high))
    return found


def gold_table(selected: dict, count: int, seed: int = common.SEED) -> list[str]:
    """The gold rows: each lever's pooled cross-validated scores; then their 95% bootstrap intervals."""
    silver()
    built, schema = datasets({"gold"} | {row["data"] for row in selected.values()})
    tasks, gold = schema.tasks, built["gold"]
    held_out = folds(gold, tasks, count, seed)
    keys = ("topic", COOPERATION, f"{COOPERATION}:yes", "stance")
    header = ["lever", "topic macro-F1", "cooperation macro-F1", "`yes` F1", "stance macro-F1"]
    lines, spans = [], []
    for name, row in selected.items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        result = cross_validate(row, built, schema, held_out)
        predictions = pooled(result, gold, tasks)
        scores, intervals = gold_scores(predictions, tasks), gold_intervals(predictions, tasks)
        lines.append([name, *(f"{scores[key]:.3f}" for key in keys), f"{result['seconds']:.1f}"])
        spans.append([name, *(f"[{intervals[key][0]:.3f}, {intervals[key][1]:.3f}]" for key in keys)])
        print(common.row(lines[-1]), flush=True)
    return [*common.table([*header, "s per fold"], lines), "",
            "95% bootstrap intervals (1,000 resamples of the pooled articles):", "", *common.table(header, spans)]


# -- ANT, CNN held out ------------------------------------------------------------------------------------------------
# Al Arabiya files Middle East news under internationalNews (it has no middleEast section); Sky News and CNN keep them
# apart. The row that leaves Al Arabiya's internationalNews unlabelled declares that, from the training data alone.
UNLABEL_ALARABIA = {"source": "alarabia", "label": "internationalNews"}
DEV_OUTLET = "france24"


def ant_table(only: list[str] | None = None, dev: bool = False) -> list[str]:
    """Section macro-F1 over the labels CNN has, and training time (the model choice's apart), of the ANT rows (those
    whose name starts with one of `only`, when given). With `dev`, each row also trains without France 24 and is scored
    on it: a held-out training outlet, the only fair ground for choosing between rows (CNN is the test)."""
    built, schema = common.dataset("ant", WORK)
    train, validation, test = built["train"], built["validation"], built["test"]
    candidates = {
        "reference (TfidfVectorizer + LinearSVC)": {"reference": True},
        "today's default (tfidf.yaml: logreg)": {"experiment": {}},
        "tfidf, linear SVM": {"experiment": {"model": {"kind": "tfidf", "classifier": "linear_svm"}}},
        "tfidf, complement NB": {"experiment": {"model": {"kind": "tfidf", "classifier": "complement_nb"}}},
        "ensemble of the three tfidf classifiers (weights on inner CV)": {"experiment": {"model": {
            "kind": "ensemble", "folds": 3, "members": [
                {"kind": "tfidf"}, {"kind": "tfidf", "classifier": "linear_svm"},
                {"kind": "tfidf", "classifier": "complement_nb"}]}}},
        # The three training outlets, one per fold: the choice is made for an outlet the candidates never saw.
        "tfidf classifiers tuned with outlets held out (tune.group_by: source)": {"tune": {
            "folds": 3, "group_by": "source", "candidates": [
                {"kind": "tfidf", "classifier": "linear_svm", "grid": {"params.C": [0.1, 0.5, 2.0]}},
                {"kind": "tfidf", "classifier": "complement_nb", "grid": {"params.alpha": [0.1, 0.3, 1.0]}},
                {"kind": "tfidf"}]}},
        "tfidf, linear SVM, Al Arabiya's internationalNews unlabelled": {
            "experiment": {"model": {"kind": "tfidf", "classifier": "linear_svm"}}, "unlabel": UNLABEL_ALARABIA},
        # The test outlet's articles in two halves: each half is scored by a model self-trained on the other half's
        # text, unlabelled (a user adapting to a new outlet from its unlabelled articles); no model sees the text it
        # is scored on.
        "tfidf, linear SVM, self-trained on the test outlet's other half (unlabelled)": {"halves": True, "experiment": {
            "model": {"kind": "tfidf", "classifier": "linear_svm"},
            "self_training": {"rounds": 2, "threshold": 0.9, "weight": 0.5}}},
        # `taawun evaluate --adapt-priors`: a temperature fit on the validation split (training outlets), then the
        # test outlet's label proportions estimated by EM from the probabilities, no label read.
        "tfidf, linear SVM, label priors adapted to the test outlet (EM)": {"adapt_priors": True, "experiment": {
            "model": {"kind": "tfidf", "classifier": "linear_svm"}}},
        "today's default (logreg), label priors adapted to the test outlet (EM)": {"adapt_priors": True,
                                                                                  "experiment": {}},
        # The linear SVM's C chosen as the adapted model will be used: each training outlet held out in turn, priors
        # adapted to it, the temperature fit without it; the best mean wins (ties: the first, the default C 0.5).
        "tfidf, linear SVM, C chosen with the training outlets held out, label priors adapted": {
            "adapt_priors": True, "outlet_grid": [0.5, 0.25, 1.0, 2.0],
            "experiment": {"model": {"kind": "tfidf", "classifier": "linear_svm"}}},
    }
    lines = []
    for name, row in candidates.items():
        if only and not any(name.startswith(prefix) for prefix in only):
            continue
        chose = 0.0
        if "outlet_grid" in row:
            started = time.perf_counter()
            row = choose_by_outlets(row, train, validation, schema)
            chose = time.perf_counter() - started
        score, seconds, choosing = ant_score(row, train, test, schema, validation)
        choosing += chose
        line = [name, f"{score:.3f}", f"{seconds:.1f}", f"{choosing:.0f}" if choosing else ""]
        if dev:
            line.append(f"{outlet_score(row, train, validation, schema, DEV_OUTLET):.3f}")
        lines.append(line)
        print(common.row(lines[-1]), flush=True)
    header = ["model", "section macro-F1 over CNN's labels", "train s", "choice s"]
    return common.table(header + ([f"dev: {DEV_OUTLET} held out"] if dev else []), lines)


def ant_score(row: dict, train, test, schema, validation) -> tuple[float, float, float]:
    """Section macro-F1 of the row trained on `train`, over the labels `test` has; the training and choice seconds.
    `validation` (articles of the training outlets) calibrates the rows that adapt their priors."""
    import datasets
    from sklearn.metrics import f1_score

    if "unlabel" in row:
        train = unlabel(train, schema, **row["unlabel"])
    y = np.asarray(test["section"])
    predicted = np.empty(len(y), dtype=int)
    if row.get("halves"):
        half = np.asarray([zlib.crc32(article.encode()) % 2 for article in test["id"]])
        parts = [half == 0, half == 1]
    else:
        parts = [np.ones(len(y), dtype=bool)]
    seconds = choosing = 0.0
    for scored in parts:
        fit_on = train
        if row.get("halves"):  # the other half's text joins training, unlabelled
            unlabelled = test.select(np.flatnonzero(~scored)).map(lambda _: {"section": -1}, keep_in_memory=True)
            fit_on = datasets.concatenate_datasets([train, unlabelled])
        started = time.perf_counter()
        predict, chose = fit_row({**row, "data": "ant"}, fit_on, schema, 0, validation)
        seconds, choosing = seconds + time.perf_counter() - started - chose, choosing + chose
        scored_articles = common.labelled(test.select(np.flatnonzero(scored)), schema.tasks).articles
        predicted[scored] = predict(scored_articles)["section"]
    seconds /= len(parts)  # per model
    return f1_score(y, predicted, labels=sorted(set(y.tolist())), average="macro", zero_division=0), seconds, choosing


def choose_by_outlets(row: dict, train, validation, schema) -> dict:
    """The row with the linear SVM's C of `outlet_grid` that scores best, on mean macro-F1, with each training outlet
    held out in turn (the validation split without that outlet calibrates the rows that adapt their priors)."""
    best, best_score = None, -1.0
    for c in row["outlet_grid"]:
        model = {**row["experiment"]["model"], "params": {"C": c}}
        candidate = {key: value for key, value in row.items() if key != "outlet_grid"} | {
            "experiment": {**row["experiment"], "model": model}}
        scores = [outlet_score(candidate, train, validation, schema, outlet) for outlet in sorted(set(train["source"]))]
        print(f"    C {c}: {', '.join(f'{score:.3f}' for score in scores)}; mean {np.mean(scores):.3f}",
              file=sys.stderr, flush=True)
        if np.mean(scores) > best_score:
            best, best_score = candidate, float(np.mean(scores))
    print(f"    chosen: C {best['experiment']['model']['params']['C']}", file=sys.stderr, flush=True)
    return best


def outlet_score(row: dict, train, validation, schema, outlet: str) -> float:
    """`ant_score` of the row trained without the training articles of `outlet` and scored on them; the validation
    split without that outlet calibrates the rows that adapt their priors."""
    held = np.asarray(train["source"]) == outlet
    calibration = validation.select(np.flatnonzero(np.asarray(validation["source"]) != outlet))
    return ant_score(row, train.select(np.flatnonzero(~held)), train.select(np.flatnonzero(held)), schema,
                     calibration)[0]


def unlabel(split, schema, source: str, label: str):
    """`split` with the section label `label` removed from the articles of outlet `source` (they train no head)."""
    index = schema.task("section").label_names.index(label)
    return split.map(lambda row: {"section": -1 if row["source"] == source and row["section"] == index
                                  else row["section"]}, keep_in_memory=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold-seed", type=int, default=common.SEED,
                        help="the seed that draws the gold folds (the models' seed stays the same)")
    parser.add_argument("--skip-ant", action="store_true")
    parser.add_argument("--skip-gold", action="store_true")
    parser.add_argument("--rows", nargs="*", help="only the gold rows whose name starts with one of these")
    parser.add_argument("--ant-rows", nargs="*", help="only the ANT rows whose name starts with one of these")
    parser.add_argument("--ant-dev", action="store_true", help=f"score each ANT row on {DEV_OUTLET} held out too")
    parser.add_argument("--cache", type=Path, default=WORK / "cache", help="sentence-embedding cache")
    args = parser.parse_args()
    common.require()
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    lines = []
    if not args.skip_gold:
        selected = {name: row for name, row in rows(args.cache).items()
                    if not args.rows or any(name.startswith(prefix) for prefix in args.rows)}
        drawn = "" if args.fold_seed == common.SEED else f", folds drawn with seed {args.fold_seed}"
        title = f"gold, {args.folds}-fold grouped cross-validation (pooled{drawn}):"
        lines += [title, "", *gold_table(selected, args.folds, args.fold_seed), ""]
    if not args.skip_ant:
        lines += ["ANT, CNN held out:", "", *ant_table(args.ant_rows, args.ant_dev)]
    print("\n" + "\n".join(lines))
    (WORK / "table.md").write_text("\n".join([provenance(started), "", *lines]) + "\n", encoding="utf-8")


def provenance(started: float) -> str:
    """Which command made the table, when, at which commit, on what machine, in how long."""
    import datetime as dt
    import os
    import shlex

    from train.tracking.store import git_commit

    tags = git_commit()
    dirty = " (with uncommitted changes)" if tags.get("taawun.git_dirty") == "true" else ""
    command = " ".join(["bench/quality.py", *map(shlex.quote, sys.argv[1:])])
    return (f"Made by `{command}` on {dt.date.today().isoformat()} at commit "
            f"`{tags.get('mlflow.source.git.commit', 'unknown')}`{dirty}, in {(time.time() - started) / 60:.0f} "
            f"minutes on {os.cpu_count()} CPU cores.")


if __name__ == "__main__":
    main()
