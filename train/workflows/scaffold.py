"""`taawun init DIR`: a project folder for a user's own corpus: a schema, a data config, an experiment and a README.

The files work as written once the user puts a labelled JSONL file at `DIR/data/articles.jsonl` and runs taawun from
DIR. Existing files are never overwritten: when one is there, nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from train.errors import TaawunError
from train.files import write_text_atomically
from train.schema import Schema, load_schema

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "configs" / "schema.yaml"

SCHEMA_NOTE = """\
# Your labeling schema, copied from taawun's default (configs/schema.yaml). Edit it to your own tasks:
# - a task has a `name`, a `kind` (single_label or binary) and its `labels` in order (the order of the models' outputs);
# - `aliases` map labels written otherwise in your files (sport -> sports); `applies_when` makes a task depend on another;
# - `rules` are weak-supervision rules (taawun weak apply); delete them, and `gazetteers`, if you do not use them.
# Check it with `taawun schema check schema.yaml`. A schema change needs the dataset rebuilt (taawun does it on train).

"""

DATA_CONFIG = """\
# Your data: `taawun data build data.yaml`, run from this folder, writes the dataset to data/built/articles
# (`taawun train experiment.yaml` builds it too when it is missing or its inputs changed).
# Every option and its default: taawun config show data.yaml
schema: schema.yaml

sources:
  - path: data/articles.jsonl       # one JSON object per line; CSV/TSV, Parquet or folders of .txt files work too
    # Which column of your file holds each field: change the right-hand names to your columns; null when your file
    # has no such column (only `text` is required; without `id`, give every article one anyway).
{fields}
    # Inline labels: task -> the column holding its label. Drop a task your file does not label; labels kept in
    # other files (one per annotator, Label Studio or doccano exports) go under `annotations:` (see taawun's README).
{labels}
split:                              # random, stratified on the first task; duplicates never cross splits
  train: 0.7
  validation: 0.15
  test: 0.15

output: data/built/articles
"""

EXPERIMENT = """\
# Train and evaluate a model on your data: `taawun train experiment.yaml`, run from this folder. It logs to
# ./mlflow.db (`taawun ui` shows the runs) and keeps each run's model and evaluation in runs/.
# Standalone: every option not written here takes its default (`taawun config show experiment.yaml` prints them all).
# Other model kinds: `model.kind: sentence_encoder` (a frozen multilingual sentence encoder: offline, CPU) or
# `transformer` (fine-tunes AraBERT: meant for a GPU); their options are in taawun's README.
data: data.yaml                     # the data config (built first when needed), or a built dataset folder
model:
  kind: tfidf
  classifier: logreg                # or linear_svm, complement_nb
tracking:
  experiment: {experiment}
  run_name: tfidf-{{model.classifier}}   # filled from the config: tfidf-linear_svm with --set model.classifier=linear_svm
"""

README = """\
# {name}

A taawun project for your own Arabic news corpus (made by `taawun init`). Run every command from this folder.

| file | what |
|---|---|
| `schema.yaml` | the labeling schema: tasks and labels (a copy of taawun's default; edit it) |
| `data.yaml` | where the articles are, which columns hold what, cleaning, de-duplication, splits |
| `experiment.yaml` | the model to train and how to evaluate and log it |
| `data/articles.jsonl` | your articles: put them there (not made by `taawun init`) |

1. Put your labelled articles in `data/articles.jsonl`, one JSON object per line, e.g.
   `{example}`
   (other column names: map them under `fields:` and `labels:` in `data.yaml`).
2. `taawun data build data.yaml --report-only` lists every problem in the data; `taawun data build data.yaml`
   writes the dataset and its report (`data/built/articles/report.md`).
3. `taawun train experiment.yaml --dry-run` checks everything; `taawun train experiment.yaml` trains, evaluates on
   the validation and test splits and logs the run to `mlflow.db`. `taawun ui` opens the MLflow UI on it.
4. `taawun predict runs:/<run id>/model --input new.jsonl --output predictions.jsonl` labels new articles.
"""


def scaffold(folder: Path, schema_path: Path | None = None) -> list[Path]:
    """Write a project into `folder` (created when missing) for the schema at `schema_path` (default: taawun's).

    Returns the files written. Refuses, writing nothing, when any of them exists already.
    """
    schema_path = schema_path or DEFAULT_SCHEMA
    if not schema_path.is_file():
        raise TaawunError(f"{schema_path}: no such schema file; give one with --schema (taawun's default schema is "
                          "configs/schema.yaml in its source tree)")
    schema = load_schema(schema_path)
    files = {folder / "schema.yaml": SCHEMA_NOTE + schema_path.read_text(encoding="utf-8"),
             **{folder / relative: (schema_path.parent / relative).read_text(encoding="utf-8")
                for relative in schema.gazetteers.values()},
             folder / "data.yaml": _data_config(schema),
             folder / "experiment.yaml": EXPERIMENT.format(experiment=_yaml_scalar(folder.resolve().name)),
             folder / "README.md": README.format(name=folder.resolve().name, example=_example(schema))}
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise TaawunError(f"{folder}: {', '.join(existing)} already exist(s); taawun init never overwrites. Choose "
                          "another folder, or move those files away")
    for path, text in files.items():
        write_text_atomically(path, text)
    (folder / "data").mkdir(exist_ok=True)
    return list(files)


def _data_config(schema: Schema) -> str:
    """The data config for `schema`: every field mapped to a column of the same name, each task's inline labels."""
    fields = {"id": "id", "text": "text", "title": "title", "date": "date", "source": "source"}
    labels = {task.name: task.name for task in schema.tasks}
    targets = {task.target_field: task.target_field for task in schema.tasks if task.target_field}
    sections = {"fields": fields, "labels": labels, **({"targets": targets} if targets else {})}
    blocks = {name: _indent(yaml.safe_dump({name: value}, allow_unicode=True, sort_keys=False), 4)
              for name, value in sections.items()}
    labels_block = blocks["labels"] + (blocks.get("targets", ""))
    return DATA_CONFIG.format(fields=blocks["fields"].rstrip("\n"), labels=labels_block)


def _example(schema: Schema) -> str:
    """One line of an articles file for `schema`, with the first label of every task."""
    import json

    record = {"id": "a1", "title": "...", "text": "...", "date": "2024-05-01", "source": "outlet",
              **{task.target_field: "..." for task in schema.tasks if task.target_field},
              **{task.name: task.label_names[0] for task in schema.tasks}}
    return json.dumps(record, ensure_ascii=False)


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


def _yaml_scalar(value: str) -> str:
    """`value` written so that YAML reads it back as this string."""
    return yaml.safe_dump(value, allow_unicode=True).removesuffix("\n...\n").strip()
