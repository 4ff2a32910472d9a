"""Results report: taawun end to end on the real data in ../shared/data, written to docs/results.md.

- gold (default schema, 240 articles): K-fold cross-validation. Each fold is a dataset built by `taawun data build`
  with `split.folds`/`split.fold` (whole duplicate clusters, stratified on the rare cooperation label); every model is
  trained on each fold with `taawun train`. The folds' test confusion matrices add up to one out-of-fold matrix, from
  which the pooled macro-F1 and its bootstrap interval come.
- ANT (publisher sections, configs/data/ant.yaml): CNN held out as the test outlet.

Models: TF-IDF with logistic regression and with complement naive Bayes (plus a linear SVM on ANT: on gold it cannot
calibrate the class with a single article), and the tiny BERT of tiny_bert.yaml. Every number and figure comes back
from the MLflow store the runs logged to (metrics, the evaluation/metrics.json artifacts, metric histories).

    .venv/bin/python bench/report.py [--folds 5] [--ant-epochs 3] [--skip-ant] [--work runs/report]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common
from bench.common import ROOT, SHARED

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
DOCS = ROOT / "docs"
FIGURES = "results"  # docs/results/*.png
RECORD = "report-run.json"  # in the work folder: what ran, when, at which commit

# name -> (experiment file, --set overrides)
MODELS = {
    "tfidf-logreg": ("tfidf.yaml", []),
    "tfidf-complement_nb": ("tfidf.yaml", ["model.classifier=complement_nb"]),
    "tfidf-linear_svm": ("tfidf.yaml", ["model.classifier=linear_svm"]),
    "tiny-bert": ("tiny_bert.yaml", []),
}
GOLD_MODELS = ["tfidf-logreg", "tfidf-complement_nb", "tiny-bert"]
ANT_MODELS = ["tfidf-logreg", "tfidf-complement_nb", "tfidf-linear_svm", "tiny-bert"]


class Runner:
    """Runs taawun commands as a user would (`python -m train ...`) and keeps the list for the report."""

    def __init__(self, work: Path):
        self.work = work
        self.commands: list[str] = []
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

    def taawun(self, *args: str) -> None:
        command = [sys.executable, "-m", "train", *args]
        shown = "taawun " + " ".join(shlex.quote(a) for a in args)
        self.commands.append(shown)
        print(f"\n$ {shown}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, check=False)
        if result.returncode:
            sys.exit(f"failed ({result.returncode}): {shown}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)

    def train(self, model: str, data_config: Path, uri: str, experiment: str, run_name: str, *extra: str) -> None:
        file, overrides = MODELS[model]
        sets = [f"data={data_config.relative_to(ROOT)}", f"tracking.uri={uri}", f"tracking.experiment={experiment}",
                f"tracking.run_name={run_name}", f"output_dir={(self.work / 'runs').relative_to(ROOT)}",
                *overrides, *extra]
        self.taawun("train", f"configs/experiments/{file}", *(a for s in sets for a in ("--set", s)))


def data_config(name: str, folder: Path, split: dict | None = None) -> Path:
    """configs/data/NAME.yaml with its output (and split, if given) moved into the report's work folder."""
    config = yaml.safe_load((common.DATA_CONFIGS / f"{name}.yaml").read_text(encoding="utf-8"))
    suffix = f"-fold{split['fold']}" if split and "fold" in split else ""
    config["output"] = str((folder / "built" / f"{name}{suffix}").relative_to(ROOT))
    if split:
        config["split"] = {**config.get("split", {}), **split}
    path = folder / "configs" / f"{name}{suffix}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_gold(runner: Runner, uri: str, folds: int) -> None:
    for fold in range(folds):
        config = data_config("gold", runner.work, {"folds": folds, "fold": fold, "train": 0.8, "validation": 0.2,
                                                   "test": 0.0})
        runner.taawun("data", "build", str(config.relative_to(ROOT)))
        for model in GOLD_MODELS:
            runner.train(model, config, uri, "report-gold", f"{model}/fold{fold}")


def run_ant(runner: Runner, uri: str, epochs: float) -> Path:
    config = data_config("ant", runner.work)
    runner.taawun("data", "build", str(config.relative_to(ROOT)))
    for model in ANT_MODELS:
        extra = [f"model.epochs={epochs}"] if model == "tiny-bert" else []
        runner.train(model, config, uri, "report-ant", model, *extra)
    return config


# -- reading back from MLflow ---------------------------------------------------------------------------------------
def runs_of(uri: str, experiment: str) -> list[dict]:
    """The finished runs of an experiment: name, metrics, params, tags and the evaluation/metrics.json artifact."""
    import mlflow

    from train.tracking.explore import download_artifact
    from train.tracking.runs import search_runs

    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = []
    for run in search_runs(client, [found.experiment_id]):
        if run.info.status != "FINISHED":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = download_artifact(uri, run.info.run_id, "evaluation/metrics.json", tmp)
            if path is None:
                sys.exit(f"run {run.info.run_name} ({run.info.run_id}) in {uri} has no evaluation/metrics.json")
            evaluation = json.loads(path.read_text(encoding="utf-8"))
        runs.append({"id": run.info.run_id, "name": run.info.run_name, "metrics": run.data.metrics,
                     "params": run.data.params, "tags": run.data.tags, "evaluation": evaluation, "client": client})
    return runs


def pooled(matrices: list[list[list[int]]], labels: list[str], positive: str | None) -> dict:
    """Metrics of summed confusion matrices: macro-F1 (over present labels) with a percentile bootstrap interval."""
    from train.evaluation.metrics import (
        bootstrap_macro_f1,
        per_class_metrics,
        summary_metrics,
    )

    counts = np.sum(np.asarray(matrices, dtype=np.int64), axis=0)
    k = len(labels)
    cells = np.repeat(np.arange(k * k), counts.ravel())  # one (true, predicted) pair per article
    y_true, y_pred = cells // k, cells % k
    present = np.union1d(y_true, y_pred)
    result = summary_metrics(y_true, y_pred, present)
    result["ci"] = bootstrap_macro_f1(y_true, y_pred, k, 1000, 0.95, 0)
    result["n"] = len(y_true)
    result["confusion"] = counts.tolist()
    if positive:
        result["positive_f1"] = per_class_metrics(y_true, y_pred, labels)[positive]["f1"]
    return result


def task_labels(evaluation: dict, task: str) -> tuple[list[str], str | None]:
    metrics = evaluation["test"][task]
    return list(metrics["per_class"]), (metrics.get("positive") or {}).get("label")


# -- figures ----------------------------------------------------------------------------------------------------------
def confusion_figure(matrix, labels: list[str], title: str, path: Path) -> str:
    from train.evaluation.plots import plot_confusion_matrix

    plot_confusion_matrix(matrix, labels, title, path)
    return f"{FIGURES}/{path.name}"


def learning_curves(runs: list[dict], title: str, path: Path) -> str | None:
    """Training loss and validation macro-F1 (mean over tasks) per epoch, one line per run, from metric histories."""
    from matplotlib.figure import Figure

    from train.evaluation.plots import save_figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, f1_ax = fig.subplots(1, 2)
    drawn = False
    for run in runs:
        client = run["client"]
        validation = client.get_metric_history(run["id"], "epoch/validation/mean/macro_f1")
        loss = client.get_metric_history(run["id"], "train/loss")
        if not validation:
            continue
        steps_per_epoch = min(m.step for m in validation)  # validation runs at the end of each epoch
        label = run["name"].split("/")[-1]
        loss_ax.plot([m.step / steps_per_epoch for m in loss], [m.value for m in loss], label=label, linewidth=1)
        f1_ax.plot([m.step / steps_per_epoch for m in validation], [m.value for m in validation], marker="o",
                   markersize=3, label=label)
        drawn = True
    if not drawn:
        return None
    loss_ax.set(xlabel="epoch", ylabel="training loss (weighted sum over tasks)", title="training loss")
    f1_ax.set(xlabel="epoch", ylabel="validation macro-F1 (mean over tasks)", title="validation macro-F1")
    for ax in (loss_ax, f1_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)
    return f"{FIGURES}/{path.name}"


# -- the report -----------------------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def gold_section(runs: list[dict], folds: int, figures: Path) -> list[str]:
    by_model: dict[str, list[dict]] = {}
    for run in runs:
        by_model.setdefault(run["name"].split("/")[0], []).append(run)
    models = [m for m in GOLD_MODELS if len(by_model.get(m, [])) == folds]
    if not models:
        return ["## gold", "", "No complete set of fold runs in the store."]
    tasks = list(by_model[models[0]][0]["evaluation"]["test"])
    lines = [f"## gold: default schema, {folds}-fold cross-validation", "",
             (f"240 articles with our gold labels; {folds} folds of whole duplicate clusters, stratified on "
             "`bilateral_security_cooperation`. In each fold the other articles split 80:20 into train and validation. "
             "*Pooled* figures come from the sum of the folds' test confusion matrices (every article predicted once, "
             "by the model that did not train on it); the interval is a 95% percentile bootstrap over those articles. "
             "*Folds* is the mean ± standard deviation of the per-fold test macro-F1. Training time is the mean per "
             "fold; throughput is test-set prediction (articles/s, all tasks at once)."), ""]
    images: dict[str, list[str]] = {}
    for task in tasks:
        labels, positive = task_labels(by_model[models[0]][0]["evaluation"], task)
        header = ["model", "pooled macro-F1 [95% CI]", "folds macro-F1"]
        header += [f"`{positive}` F1 (pooled)"] if positive else []
        header += ["train s / fold", "predict articles/s"]
        lines += [f"### {task}", "", *common.table(header)]
        for model in models:
            fold_runs = by_model[model]
            result = pooled([r["evaluation"]["test"][task]["confusion_matrix"] for r in fold_runs], labels, positive)
            per_fold = [r["metrics"][f"test/{task}/macro_f1"] for r in fold_runs]
            cells = [model, f"{fmt(result['macro_f1'])} [{fmt(result['ci'][0])}, {fmt(result['ci'][1])}]",
                     common.mean_sd(per_fold, ddof=1)]
            cells += [fmt(result["positive_f1"])] if positive else []
            cells += [f"{np.mean([r['metrics']['train_seconds'] for r in fold_runs]):.1f}",
                      f"{np.mean([r['metrics']['test/articles_per_second'] for r in fold_runs]):,.0f}"]
            lines.append(common.row(cells))
            image = confusion_figure(result["confusion"], labels, f"gold {task}: {model} (pooled, {result['n']})",
                                     figures / f"gold_{task}_{model}.png")
            images.setdefault(task, []).append(image)
        lines.append("")
    lines += confusion_block(images, [m for m in models])
    curve = learning_curves(by_model.get("tiny-bert", []), "tiny BERT on gold, one line per fold",
                            figures / "gold_tiny-bert_curves.png")
    if curve:
        lines += ["### Learning curves (tiny BERT)", "",
                  ("From the runs' metric histories in MLflow. Training stops early when the validation macro-F1 "
                   "has not improved for 6 epochs; the best epoch's weights are kept."), "",
                  f"![gold learning curves]({curve})", ""]
    return lines


def confusion_block(images: dict[str, list[str]], models: list[str]) -> list[str]:
    rows = [[task, *(f"![{task} {m}]({p})" for m, p in zip(models, paths, strict=True))]
            for task, paths in images.items()]
    return ["### Confusion matrices (rows: true label, columns: predicted)", "", *common.table(["task", *models], rows),
            ""]


def ant_section(runs: list[dict], dataset_report: dict, figures: Path) -> list[str]:
    by_model = {run["name"]: run for run in runs}
    models = [m for m in ANT_MODELS if m in by_model]
    if not models:
        return ["## ANT", "", "No runs in the store."]
    splits = dataset_report.get("splits", {})
    sizes = ", ".join(f"{name} {s['articles']:,}" for name, s in splits.items())
    total = sum(s["articles"] for s in splits.values())
    lines = ["## ANT: publisher sections, CNN held out", "",
             (f"ANT v2.1: {total:,} of its 27,650 records remain after cleaning and de-duplication (the dataset report "
             f"says why each other one was set aside): {sizes}. The test split is every CNN article; train and "
             "validation come from Al Arabiya, France 24 and Sky News Arabia. This measures transfer to an outlet the "
             "model never saw. Intervals: 95% percentile bootstrap over the test articles (1,000 resamples for TF-IDF, "
             "500 for the tiny BERT, as in their configs)."), ""]
    if "tiny-bert" in by_model:
        epochs = f"{float(by_model['tiny-bert']['params'].get('model.epochs', 'nan')):g}"
        lines += [f"The tiny BERT trains for {epochs} epochs here (`--ant-epochs`), a few minutes each on 2 cores.", ""]
    images: dict[str, list[str]] = {}
    for task in by_model[models[0]]["evaluation"]["test"]:
        labels, positive = task_labels(by_model[models[0]]["evaluation"], task)
        classes = by_model[models[0]]["evaluation"]["test"][task]["per_class"]
        absent = [label for label in labels if not classes[label]["support"]]
        header = ["model", "test macro-F1 [95% CI]", "accuracy", "validation macro-F1"]
        header += [f"macro-F1 over the {len(labels) - len(absent)} labels in test"] if absent else []
        header += [f"`{positive}` F1"] if positive else []
        header += ["train s", "predict articles/s"]
        lines += [f"### {task}", ""]
        if absent:
            lines += [(f"The test outlet has no {', '.join(f'`{a}`' for a in absent)} articles. Macro-F1 averages over "
                       "the labels that are in the gold *or the predicted* labels (scikit-learn's convention, used "
                       "throughout taawun), so a model that predicts an absent label gets an F1 of 0 for it in the "
                       "average; the column after the validation score averages over the labels the test split has."),
                      ""]
        lines += common.table(header)
        for model in models:
            run = by_model[model]
            test = run["evaluation"]["test"][task]
            ci = test.get("macro_f1_ci") or [None, None]
            cells = [model, f"{fmt(test['macro_f1'])} [{fmt(ci[0])}, {fmt(ci[1])}]", fmt(test["accuracy"]),
                     fmt(run["evaluation"].get("validation", {}).get(task, {}).get("macro_f1"))]
            if absent:
                cells.append(fmt(float(np.mean([test["per_class"][label]["f1"] for label in labels
                                                if label not in absent]))))
            cells += [fmt(test["positive"]["f1"])] if positive else []
            cells += [f"{run['metrics']['train_seconds']:.1f}", f"{run['metrics']['test/articles_per_second']:,.0f}"]
            lines.append(common.row(cells))
            images.setdefault(task, []).append(confusion_figure(
                test["confusion_matrix"], labels, f"ANT {task} (CNN): {model}", figures / f"ant_{task}_{model}.png"))
        lines.append("")
        per_class = []
        for model in models:
            classes = by_model[model]["evaluation"]["test"][task]["per_class"]
            per_class.append([model, *(f"{fmt(classes[label]['f1'])} ({classes[label]['support']})"
                                       for label in labels)])
        lines += ["Test F1 per section (support):", "", *common.table(["model", *labels], per_class), ""]
    lines += confusion_block(images, models)
    curve = learning_curves([by_model["tiny-bert"]] if "tiny-bert" in by_model else [], "tiny BERT on ANT",
                            figures / "ant_tiny-bert_curves.png")
    if curve:
        lines += ["### Learning curve (tiny BERT)", "", f"![ANT learning curves]({curve})", ""]
    return lines


def write_report(sections: list[str], record: dict, uri: str, runs: list[dict], figures: Path) -> None:
    """docs/results.md and docs/results/, replaced together only once everything is written."""
    commit = record["commit"]
    stored = {run["tags"].get("mlflow.source.git.commit") for run in runs} - {None}
    command = record["command"]
    head = [
        "# Results on real data", "",
        (f"Generated by `{command}` on {record['date']}, in {record['minutes']:.0f} minutes, at commit `{commit}`"
         f"{' (with uncommitted changes)' if record['dirty'] else ''}. Every figure below was read back from the "
         f"MLflow store the runs logged to (`{uri}`; browse it with `taawun ui --tracking-uri {uri}`)."),
        "",
        (f"Machine: {record['machine']}, {record['cores']} CPU cores, {record['threads']} torch threads, no GPU; load "
         f"average {record['loads'][0]:.1f} at the start and {record['loads'][1]:.1f} at the end. Times depend on the "
         "machine; the metrics do not (same seeds and splits: two runs here give the same numbers), though the tiny "
         "BERT's may differ slightly on another CPU or thread count (floating-point summation order)."), "",
        ("The *tiny BERT* (`configs/experiments/tiny_bert.yaml`) is a 2-layer BERT with random initial weights and a "
         "WordPiece vocabulary trained on each training split: it exercises the whole fine-tuning path offline on a "
         "CPU, and its scores say nothing about a pretrained AraBERT (`configs/experiments/arabert.yaml`, meant for a "
         "GPU)."), "",
        "Reproduce from a clean checkout with `../shared/data` beside it:", "",
        "```bash", "make test   # creates .venv", f".venv/bin/python {command}", "```", "",
    ]
    if stored - {commit}:
        head += [f"Runs were logged at commit(s) {', '.join(sorted(stored))}.", ""]
    commands = ["<details><summary>The commands it ran</summary>", "", "```bash", *record["commands"], "```", "",
                "</details>", ""]
    text = "\n".join(head + sections + commands)
    DOCS.mkdir(exist_ok=True)
    staged = DOCS / f".results.md.{os.getpid()}"
    staged.write_text(text, encoding="utf-8")
    old = DOCS / f".results-old.{os.getpid()}"
    if (DOCS / FIGURES).exists():
        (DOCS / FIGURES).rename(old)
    figures.rename(DOCS / FIGURES)
    staged.replace(DOCS / "results.md")
    shutil.rmtree(old, ignore_errors=True)
    print(f"\nwrote {DOCS / 'results.md'} and {len(list((DOCS / FIGURES).iterdir()))} figures in {DOCS / FIGURES}")


def run_all(args, work: Path, uri: str) -> dict:
    """Every build and training run; returns what the report says about them (also kept in the work folder)."""
    import torch

    started = time.time()
    from train.tracking.store import git_commit

    tags = git_commit()  # before anything runs: the code the runs used
    commit, dirty = tags.get("mlflow.source.git.commit", "unknown"), tags.get("taawun.git_dirty") == "true"
    loads = [os.getloadavg()[0]]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runner = Runner(work)
    run_gold(runner, uri, args.folds)
    ant_config = None if args.skip_ant else run_ant(runner, uri, args.ant_epochs)
    ant_built = yaml.safe_load(ant_config.read_text(encoding="utf-8"))["output"] if ant_config else None
    record = {"command": ("bench/report.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip(),
              "date": dt.date.today().isoformat(), "minutes": (time.time() - started) / 60, "commit": commit,
              "dirty": dirty, "loads": [*loads, os.getloadavg()[0]], "machine": platform.machine(),
              "cores": os.cpu_count(), "threads": torch.get_num_threads(), "folds": args.folds,
              "ant_built": ant_built, "commands": runner.commands}
    (work / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds on gold")
    parser.add_argument("--ant-epochs", type=float, default=3, help="tiny-BERT epochs on ANT (about 3 min each here)")
    parser.add_argument("--skip-ant", action="store_true", help="gold only (a few minutes)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "report",
                        help="work folder (replaced): data, MLflow store, runs")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite docs/results.md from the runs already in the work folder's store")
    args = parser.parse_args()
    work = args.work.resolve()
    uri = f"sqlite:///{(work / 'mlflow.db').relative_to(ROOT)}"
    if args.render_only:
        if not (work / RECORD).is_file():
            sys.exit(f"--render-only: {work / RECORD} is missing; run bench/report.py without it first")
        record = json.loads((work / RECORD).read_text(encoding="utf-8"))
    elif not SHARED.exists():
        sys.exit(f"skipped: {SHARED} is absent (the report runs on the project's shared real data)")
    else:
        record = run_all(args, work, uri)

    figures = DOCS / f".results-new.{os.getpid()}"
    figures.mkdir(parents=True, exist_ok=True)
    gold_runs, ant_runs = runs_of(uri, "report-gold"), runs_of(uri, "report-ant")
    sections = gold_section(sorted(gold_runs, key=lambda r: r["name"]), record["folds"], figures)
    if record["ant_built"]:
        built = ROOT / record["ant_built"]
        sections += ant_section(ant_runs, json.loads((built / "report.json").read_text(encoding="utf-8")), figures)
    sections += quality_section()
    write_report(sections, record, uri, gold_runs + ant_runs, figures)


def quality_section() -> list[str]:
    """The ablation table of bench/quality.py (the levers for few labels), when it has been run here."""
    table = ROOT / "runs" / "quality" / "table.md"
    if not table.is_file():
        return []
    return ["## The levers for few labels (bench/quality.py)", "",
            ("Each lever added alone to today's default, then together: gold in 5 folds of whole duplicate clusters "
             "stratified on cooperation, every row on the same folds, test predictions pooled, nothing chosen on a "
             "test fold; and ANT with CNN held out. The README's *Few labels* section says what each lever is."), "", table.read_text(encoding="utf-8").rstrip(), ""]


if __name__ == "__main__":
    main()
