"""`taawun train CONFIG --dry-run`: every check a training makes before it trains, and what it would run.

The dataset is built when missing or stale, as `taawun train` would build it (writing data is not training); nothing
is trained, and nothing is written to the tracking store (a missing SQLite store is not created).
"""

from __future__ import annotations

import json

import numpy as np

from train import progress
from train.config.experiment import ExperimentConfig, flatten
from train.models.heads import require_two_classes
from train.tracking.store import check_store, sqlite_path, tracking_uri, write_problem
from train.workflows.train import check_output_dir, load_training_data


def dry_run(config: ExperimentConfig, source: str) -> str:
    """Check `config` (read from `source`) as `taawun train` would before training; what would run, as text."""
    check_output_dir(config)
    store = _check_store_unchanged(tracking_uri(config.tracking.uri))
    dataset, data_folder, _, _, tasks = load_training_data(config)
    for task in tasks:  # the heads' own check, made before any run rather than after the features are fit
        labels = np.asarray(dataset["train"][task.name])
        require_two_classes(task, labels[labels >= 0])
    report = json.loads((data_folder / "report.json").read_text(encoding="utf-8"))
    return _describe(config, source, store, data_folder, report, [task.name for task in tasks])


def _check_store_unchanged(uri: str) -> str:
    """The tracking store, reachable (and writable) without creating anything in it; how it stands, in words."""
    progress.step(f"opening the tracking store {uri}")
    if uri.startswith("sqlite:///") and not sqlite_path(uri).is_file():
        path = sqlite_path(uri)
        problem = write_problem(path.parent) if path.parent.resolve().is_dir() else f"no folder {path.parent}"
        if problem:
            check_store(uri, write=True)  # raises, naming the problem and the fix
        return f"{uri} (does not exist yet: the first run creates it)"
    check_store(uri, write=True)
    return f"{uri} (reachable)"


def _describe(config: ExperimentConfig, source: str, store: str, data_folder, report: dict, tasks: list[str]) -> str:
    """What a training would run: the run, data, tasks, model options, evaluation, and the split sizes."""
    model = flatten(config.model.model_dump(mode="json"), "model.")
    evaluation = config.evaluation
    lines = [f"dry run of {source}: nothing was trained or logged",
             f"  run name    {config.tracking.run_name}, experiment {config.tracking.experiment!r} in {store}",
             f"  data        {data_folder} (fingerprint {report['fingerprint'][:12]})"
             + (f", from {config.data}" if config.data.is_file() else ""),
             f"  tasks       {', '.join(tasks)}",
             f"  model       {config.model.kind}",
             *(f"    {key} = {value}" for key, value in model.items() if key != "model.kind"),
             f"  evaluation  {', '.join(evaluation.splits)}; {evaluation.bootstrap} bootstrap resamples",
             f"  output      {config.output_dir / config.tracking.experiment}/<run id>/", "",
             _split_table(report["splits"], tasks),
             "", "(articles per split, and per task the articles labelled for it)"]
    return "\n".join(lines)


def _split_table(splits: dict, tasks: list[str]) -> str:
    """Articles per split, and per task the articles that carry one of its labels."""
    header = ["split", "articles", *tasks]
    rows = [[name, str(stats["articles"]),
             *(str(sum(n for label, n in stats["labels"][task].items() if label != "(none)")) for task in tasks)]
            for name, stats in splits.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
                     for row in [header, *rows])
