"""Benchmark: uncertainty sampling (train.workflows.suggest) against random sampling, as learning curves on the real data.

From a small seeded labelled set, each round adds `--batch` articles of the pool, picked by the strategy (both skip
near-duplicates of articles picked in the same round, as `taawun`'s suggestions do), retrains the TF-IDF baseline
(`configs/experiments/tfidf.yaml`, fit directly through the model-kind contract) and scores macro-F1 on a fixed held-out
test part. Repeated over `--seeds` seeds (the initial set and the random picks change; the test part does not).

- gold (default schema, 240 articles, three tasks): 30% held out (grouped by duplicate cluster, stratified on
  bilateral_security_cooperation), the other 70% is the pool; the curve is the mean macro-F1 over the tasks.
- ANT (`--data ant`, task `section`): the pool is a `--pool` subsample of the training outlets, the test part a
  `--test-size` subsample of the held-out outlet (CNN).

Prints the learning curves (labels vs mean macro-F1 per strategy, mean ± std over seeds) as a Markdown table, the
labels each strategy needs to reach `--target` macro-F1 (default: 95% of a model trained on the whole pool), and the
mean of each task's curve per strategy.

    .venv/bin/python bench/active_learning.py             # gold, 10 seeds (85 s on an idle 2-core machine)
    .venv/bin/python bench/active_learning.py --data ant  # ANT sections, 3,000-article pool, 3 seeds
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

STRATEGIES = ("random", "uncertainty")
DEFAULTS = {  # per data set: seeds, start, batch, max labels, pool, test size
    "gold": {"seeds": 10, "start": 20, "batch": 10, "max_labels": 120, "pool": None, "test_size": None},
    "ant": {"seeds": 3, "start": 50, "batch": 50, "max_labels": 500, "pool": 3000, "test_size": 2000},
}


def build_parts(name: str, folder: Path, args):
    """The pool and the fixed test part (Labelled), cleaned and de-duplicated by `taawun data build`; and the schema."""
    from train.data.config import SplitConfig

    changes = {}
    if name == "gold":
        changes["split"] = SplitConfig(strategy="random", stratify_by="bilateral_security_cooperation", train=0.7,
                                       validation=0.0, test=0.3)
    built, schema = common.dataset(name, folder, **changes)
    import datasets

    train = datasets.concatenate_datasets([built["train"], built["validation"]])
    pool, test = common.labelled(train, schema.tasks), common.labelled(built["test"], schema.tasks)
    rng = np.random.default_rng(0)
    if args.pool and len(pool) > args.pool:
        pool = common.subset(pool, np.sort(rng.choice(len(pool), args.pool, replace=False)))
    if args.test_size and len(test) > args.test_size:
        test = common.subset(test, np.sort(rng.choice(len(test), args.test_size, replace=False)))
    return pool, test, schema


def initial_set(pool, tasks, size: int, rng) -> list[int]:
    """A random labelled set with at least two classes of every task (a classifier needs two)."""
    for _ in range(1000):
        rows = rng.choice(len(pool), size, replace=False).tolist()
        if all(len(set(pool.labels[t.name][rows].tolist()) - {-1}) >= 2 for t in tasks):
            return rows
    sys.exit(f"no random set of {size} articles has two classes of every task; raise --start")


def fit_and_score(model_config, tasks, pool, labelled: list[int], test, seed: int):
    """Train on the labelled rows of the pool; returns the model and the test macro-F1 per task."""
    from train.models.base import FitContext

    result = common.fit_and_score(model_config, tasks, common.subset(pool, labelled), test, FitContext(seed=seed))
    return result["model"], result["f1"]


def learning_curve(strategy: str, seed: int, setup: dict, args) -> list[tuple[int, dict[str, float]]]:
    """(labels, macro-F1 per task) after each round, for one strategy and seed."""
    from train.workflows.suggest import select, uncertainty

    pool, tasks, schema = setup["pool"], setup["tasks"], setup["schema"]
    labelled = initial_set(pool, tasks, args.start, np.random.default_rng(seed))
    curve = []
    for round_number in range(10_000):
        model, scores = fit_and_score(setup["model_config"], tasks, pool, labelled, setup["test"], seed)
        curve.append((len(labelled), scores))
        taken = set(labelled)
        candidates = [i for i in range(len(pool)) if i not in taken]
        if len(labelled) >= args.max_labels or not candidates:
            return curve
        batch = min(args.batch, args.max_labels - len(labelled))
        if strategy == "uncertainty":
            priority = uncertainty(model.predict_proba(pool.articles.select(candidates)), tasks, schema, args.measure)
        else:
            priority = np.zeros(len(candidates))  # select() draws its own seeded order for "random"
        picked, _ = select(priority, setup["clusters"][candidates], batch, strategy, seed * 1000 + round_number)
        labelled += [candidates[i] for i in picked]
    return curve


def labels_to_reach(points: list[int], means: list[float], target: float) -> str:
    for labels, value in zip(points, means, strict=True):
        if value >= target:
            return f"{labels}"
    return f"not reached by {points[-1]}"


def report(curves: dict[str, list], tasks, target: float, full: float) -> None:
    """The Markdown tables: curves (mean over tasks, mean ± std over seeds), labels to the target, per-task means."""
    points = [labels for labels, _ in curves[STRATEGIES[0]][0]]
    mean_over_tasks = {s: np.array([[np.mean(list(sc.values())) for _, sc in run] for run in runs])
                       for s, runs in curves.items()}
    task_note = "mean macro-F1 over the tasks" if len(tasks) > 1 else f"{tasks[0].name} macro-F1"
    print(f"\nLearning curves ({task_note} on the held-out test part; mean ± std over {len(curves['random'])} seeds; "
          f"whole pool: {full:.3f})\n")
    rows = []
    for column, labels in enumerate(points):
        gap = mean_over_tasks["uncertainty"][:, column].mean() - mean_over_tasks["random"][:, column].mean()
        rows.append([labels, *(common.mean_sd(mean_over_tasks[s][:, column]) for s in STRATEGIES), f"{gap:+.3f}"])
    print("\n".join(common.table(["labels", *STRATEGIES, "uncertainty - random"], rows)))
    print(f"\nLabels needed to reach macro-F1 {target:.3f} (mean curve):\n")
    print("\n".join(common.table(["strategy", "labels"], [
        [s, labels_to_reach(points, mean_over_tasks[s].mean(axis=0).tolist(), target)] for s in STRATEGIES])))
    if len(tasks) > 1:
        print("\nPer task: macro-F1 averaged over the whole curve (all rounds and seeds)\n")
        print("\n".join(common.table(["task", *STRATEGIES], [
            [task.name, *(f"{np.mean([sc[task.name] for run in curves[s] for _, sc in run]):.3f}" for s in STRATEGIES)]
            for task in tasks])))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(DEFAULTS), default="gold")
    parser.add_argument("--seeds", type=int, help="repetitions (at least 3; default 10 on gold, 3 on ANT)")
    parser.add_argument("--start", type=int, help="initial labelled articles")
    parser.add_argument("--batch", type=int, help="articles added per round (k)")
    parser.add_argument("--max-labels", type=int, help="stop when this many articles are labelled")
    parser.add_argument("--pool", type=int, help="pool subsample (ANT)")
    parser.add_argument("--test-size", type=int, help="test subsample (ANT)")
    parser.add_argument("--target", type=float, help="macro-F1 to reach (default: 95%% of the whole-pool model's)")
    parser.add_argument("--measure", choices=["entropy", "margin"], default="entropy",
                        help="uncertainty measure (train.workflows.suggest.uncertainty); taawun suggests with entropy")
    args = parser.parse_args()
    for key, value in DEFAULTS[args.data].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.seeds < 3:
        parser.error("--seeds: at least 3, for a mean and a spread")
    return args


def main() -> None:
    args = parse_args()
    common.require()
    from threadpoolctl import threadpool_limits

    # Hundreds of small fits: with 2 OpenMP/OpenBLAS threads on a 2-core machine that is busy with something else,
    # the threads spin at every solver step (measured 14x slower); one thread is as fast on an idle machine.
    with threadpool_limits(limits=1):
        run(args)


def run(args) -> None:
    """Build the data, run every strategy and seed, print the tables."""
    from train.workflows.suggest import near_duplicate_clusters

    started = time.perf_counter()
    model_config = common.experiment_model("tfidf")
    with tempfile.TemporaryDirectory() as tmp:
        pool, test, schema = build_parts(args.data, Path(tmp), args)
    tasks = schema.tasks
    setup = {"pool": pool, "test": test, "schema": schema, "tasks": tasks, "model_config": model_config,
             "clusters": near_duplicate_clusters(pool.articles.texts)}
    _, whole = fit_and_score(model_config, tasks, pool, list(range(len(pool))), test, common.SEED)
    full = float(np.mean(list(whole.values())))
    target = args.target if args.target is not None else round(0.95 * full, 3)
    print(f"{args.data}: pool {len(pool)} articles ({len(set(setup['clusters'].tolist()))} near-duplicate clusters), "
          f"test {len(test)}; start {args.start}, +{args.batch} per round up to {args.max_labels}; "
          f"{args.seeds} seeds; uncertainty = {args.measure}", flush=True)
    curves = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        for strategy in STRATEGIES:
            curves[strategy].append(learning_curve(strategy, seed, setup, args))
        print(f"  seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    report(curves, tasks, target, full)
    print(f"\n({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
