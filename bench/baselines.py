"""Benchmark: the TF-IDF baselines against a plain reference pipeline on the real data in ../shared/data.

- ANT (`ant_sections` schema, task `section`): CNN held out as the test outlet, ~20k training articles.
- gold (default schema, 240 articles): 5-fold cross-validation, grouped by duplicate cluster, per task.

The reference is scikit-learn's `TfidfVectorizer()` with its defaults + `LinearSVC()`, trained and scored on the same
splits in the same run. Prints macro-F1, training time and prediction throughput as a table.

    .venv/bin/python bench/baselines.py [--classifier logreg|linear_svm|complement_nb] [--skip-ant] [--skip-gold]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def build(config_name: str, folder: Path):
    """Build configs/data/NAME.yaml into `folder`; returns the DatasetDict and its schema."""
    from train.data.build import build_dataset, open_dataset
    from train.data.config import load_data_config

    config, schema = load_data_config(ROOT / "configs" / "data" / f"{config_name}.yaml")
    build_dataset(config.model_copy(update={"output": folder}), schema)
    dataset, _, _ = open_dataset(folder)
    return dataset, schema


def ours(model_config, tasks, train, test, seed: int = 13) -> dict:
    """Fit and score taawun's TF-IDF model; times fit and prediction (cleaned text, as stored in the dataset)."""
    from train.evaluation.metrics import labelled_macro_f1
    from train.models.tfidf.model import TfidfModel

    model = TfidfModel(model_config, tasks)
    started = time.perf_counter()
    model.fit(train, seed)
    fit_seconds = time.perf_counter() - started
    targets = {t.target_field: list(test[t.target_field]) for t in tasks if t.target_field}
    started = time.perf_counter()
    proba = model.predict_proba(list(test["title"]), list(test["text"]), targets)
    predict_seconds = time.perf_counter() - started
    scores = {task.name: labelled_macro_f1(test[task.name], proba[task.name]) for task in tasks}
    return {"f1": scores, "fit_s": fit_seconds, "per_s": len(test) / predict_seconds}


def reference(tasks, train, test) -> dict:
    """`TfidfVectorizer()` defaults + `LinearSVC()` per task, on the body text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import f1_score
    from sklearn.svm import LinearSVC

    scores, fit_seconds, predict_seconds = {}, 0.0, 0.0
    for task in tasks:
        y, y_test = np.asarray(train[task.name]), np.asarray(test[task.name])
        started = time.perf_counter()
        vectorizer = TfidfVectorizer()
        classifier = LinearSVC().fit(vectorizer.fit_transform(list(np.asarray(train["text"])[y >= 0])), y[y >= 0])
        fit_seconds += time.perf_counter() - started
        started = time.perf_counter()
        predicted = classifier.predict(vectorizer.transform(list(test["text"])))
        predict_seconds += time.perf_counter() - started
        scores[task.name] = f1_score(y_test[y_test >= 0], predicted[y_test >= 0], average="macro")
    return {"f1": scores, "fit_s": fit_seconds, "per_s": len(test) / predict_seconds}


def bench_ant(model_config, folder: Path) -> list[list[str]]:
    dataset, schema = build("ant", folder / "ant")
    train, test = dataset["train"], dataset["test"]
    print(f"ANT: {len(train)} training articles, {len(test)} test articles (held-out outlet: CNN)", flush=True)
    tasks = schema.tasks
    rows = []
    for name, result in (("taawun tfidf", ours(model_config, tasks, train, test)),
                         ("reference", reference(tasks, train, test))):
        rows.append(["ANT (CNN held out)", "section", name, f"{result['f1']['section']:.3f}", "",
                     f"{result['fit_s']:.1f}", f"{result['per_s']:,.0f}"])
        print(rows[-1], flush=True)
    return rows


def bench_gold(model_config, folder: Path, folds: int = 5) -> list[list[str]]:
    import datasets
    from sklearn.model_selection import StratifiedGroupKFold

    dataset, schema = build("gold", folder / "gold")
    everything = datasets.concatenate_datasets([dataset[s] for s in ("train", "validation", "test")])
    y = np.asarray(everything["bilateral_security_cooperation"])
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=13)
    results: dict[str, list[dict]] = {"taawun tfidf": [], "reference": []}
    for train_rows, test_rows in splitter.split(np.zeros(len(y)), y, everything["cluster"]):
        train, test = everything.select(train_rows), everything.select(test_rows)
        results["taawun tfidf"].append(ours(model_config, schema.tasks, train, test))
        results["reference"].append(reference(schema.tasks, train, test))
    rows = []
    for name, runs in results.items():
        for task in schema.task_names:
            scores = [run["f1"][task] for run in runs]
            rows.append([f"gold ({folds}-fold CV)", task, name, f"{np.mean(scores):.3f} ± {np.std(scores):.3f}", "",
                         f"{np.mean([r['fit_s'] for r in runs]):.1f}", f"{np.mean([r['per_s'] for r in runs]):,.0f}"])
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default=None, help="override the base config's classifier")
    parser.add_argument("--skip-ant", action="store_true")
    parser.add_argument("--skip-gold", action="store_true")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"skipped: {SHARED} is absent (this benchmark needs the project's shared real data)")
    os.chdir(ROOT)
    from train.config.experiment import load_experiment

    overrides = {"model": {"classifier": args.classifier}} if args.classifier else {}
    model_config = load_experiment(ROOT / "configs" / "experiments" / "tfidf.yaml", overrides).model
    print(f"taawun model: classifier={model_config.classifier} features={model_config.features.model_dump()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_ant:
            rows += bench_ant(model_config, Path(tmp))
        if not args.skip_gold:
            rows += bench_gold(model_config, Path(tmp))
    header = ["data", "task", "model", "macro-F1", "", "train s", "predict articles/s"]
    print("\n| " + " | ".join(h for h in header if h) + " |\n|" + "---|" * 6)
    for row in rows:
        print("| " + " | ".join(cell for i, cell in enumerate(row) if header[i]) + " |")


if __name__ == "__main__":
    main()
