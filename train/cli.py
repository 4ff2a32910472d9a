"""The `taawun` command line: a thin layer over the package's functions. Heavy imports happen inside commands."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from train.errors import TaawunError

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


class UserError(click.ClickException):
    """A TaawunError shown as `error: ...` with exit code 1, without a traceback."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    """A command group whose commands report TaawunError as a message, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TaawunError as err:
            raise UserError(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taawun")
def cli() -> None:
    """Train and evaluate classifiers of Arabic news articles, driven by a labeling schema."""


@cli.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--schema", "schema_path", type=EXISTING_FILE,
              help="The schema to start from (default: taawun's configs/schema.yaml).")
def init_command(folder: Path, schema_path: Path | None) -> None:
    """Make FOLDER a project for your own corpus: a schema, a data config, an experiment and a README."""
    from train.workflows.scaffold import scaffold

    written = scaffold(folder, schema_path)
    click.echo("\n".join(f"wrote {path}" for path in written))
    click.echo(f"Next: put your labelled articles in {folder / 'data' / 'articles.jsonl'}, then from {folder}: "
               "taawun data build data.yaml; taawun train experiment.yaml (see README.md there)")


@cli.group()
def schema() -> None:
    """Check a labeling schema, or turn it into an annotation-tool config."""


@schema.command("check")
@click.argument("path", type=EXISTING_FILE)
def schema_check(path: Path) -> None:
    """Validate a schema file and print a summary."""
    from train.schema import describe_schema, load_schema

    click.echo(describe_schema(load_schema(path)))


@schema.command("labelstudio")
@click.argument("path", type=EXISTING_FILE)
def schema_labelstudio(path: Path) -> None:
    """Print a Label Studio labeling configuration generated from the schema."""
    from train.labelstudio import labelstudio_config
    from train.schema import load_schema

    click.echo(labelstudio_config(load_schema(path)), nl=False)


@cli.group()
def data() -> None:
    """Build datasets from raw articles and annotations, and read their reports."""


@data.command("build")
@click.argument("config", type=EXISTING_FILE)
@click.option("--report-only", is_flag=True, help="Check everything and list all problems; write nothing.")
def data_build(config: Path, report_only: bool) -> None:
    """Build the dataset described by a data config (see configs/data/)."""
    from train import progress

    progress.restart()
    from train.data.build import build_dataset
    from train.data.config import load_data_config
    from train.data.report import render_markdown

    data_config, labeling_schema = load_data_config(config)
    result = build_dataset(data_config, labeling_schema, report_only=report_only)
    click.echo(render_markdown(result.report))
    if report_only:
        if result.problems:
            click.echo(f"{len(result.problems)} problem(s) found; nothing was written.", err=True)
            sys.exit(1)
        click.echo("No problems found; nothing was written (--report-only).", err=True)
        return
    click.echo(f"Dataset written to {result.output} (report: {result.output / 'report.md'})", err=True)


@data.command("report")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of Markdown.")
def data_report(folder: Path, as_json: bool) -> None:
    """Print the report of a built dataset."""
    import json

    from train.data.report import load_report, render_markdown

    report = load_report(folder)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else render_markdown(report))


@cli.command("train")
@click.argument("config", type=EXISTING_FILE)
@click.option("--register", metavar="NAME", help="Register the model in the MLflow model registry under NAME.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set model.classifier=linear_svm (YAML value).")
@click.option("--resume", is_flag=True, help="Continue an interrupted transformer run from its last checkpoint.")
@click.option("--dry-run", is_flag=True,
              help="Check the config, the data (built if needed), the tasks, the splits and the tracking store; print "
                   "what would run; train and log nothing.")
def train_command(config: Path, register: str | None, overrides: tuple[str, ...], resume: bool,
                  dry_run: bool) -> None:
    """Train a model from an experiment config (see configs/experiments/), evaluate it and log it to MLflow."""
    from train import progress

    progress.restart()
    progress.step(f"reading {config}")
    from train.config.experiment import resolve_with_overrides
    from train.workflows.train import train

    resolved, experiment = resolve_with_overrides(config, overrides)
    if dry_run:
        from train.workflows.dry_run import dry_run as check

        click.echo(check(experiment, str(config)))
        return
    with sigterm_as_interrupt():
        result = train(experiment, resolved, register=register, resume=resume)
    if result is None:  # a non-main process of a distributed run: the main one reports
        return
    click.echo(result.table())
    click.echo(f"\nrun {result.run_id} logged to {result.tracking_uri}")
    click.echo(f"model: runs:/{result.run_id}/model  ({result.model_uri}; local copy: {result.folder / 'model'})")
    click.echo(_ui_line(result.tracking_uri, result.run_id))


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (from `timeout`, `docker stop`, SLURM) stops the command as Ctrl-C does, cleaning up on the way.

    By default SIGTERM ends Python at once: MLflow runs would stay RUNNING, temporary files would stay behind.
    """
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ui_line(uri: str, run_id: str) -> str:
    """Where to see run `run_id` in the MLflow UI: its page, and for a local store the command that serves it."""
    from train.tracking.store import tracking_option
    from train.tracking.ui import run_url

    url = run_url(uri, run_id)
    served = f"taawun ui{tracking_option(uri)}"
    if url is None:
        return f"MLflow UI: {served}"
    return f"MLflow UI: {url}" + ("" if uri.startswith(("http://", "https://")) else f"  (served by: {served})")


TRACKING_OPTION = click.option("--tracking-uri", "uri", metavar="URI",
                               help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
ADAPT_PRIORS_HELP = ("Estimate the labels' proportions in the input from the model's probabilities (no label read) and "
                     "re-weigh the probabilities for them: for articles of an outlet that files its labels in other "
                     "proportions than the training data (README: Few labels).")


@cli.command("tune")
@click.argument("config", type=EXISTING_FILE)
@click.option("--register", metavar="NAME", help="Register the chosen model in the MLflow model registry under NAME.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (YAML value).")
def tune_command(config: Path, register: str | None, overrides: tuple[str, ...]) -> None:
    """Compare the candidate models of CONFIG's `tune:` section by grouped CV on the train split; train the best."""
    import yaml

    from train.config.experiment import resolve_with_overrides
    from train.workflows.tune import tune

    _, experiment = resolve_with_overrides(config, overrides)
    with sigterm_as_interrupt():
        result = tune(experiment, register=register)
    click.echo(result.table())
    chosen = {"model": result.chosen.config.model_dump(mode="json")}
    if result.chosen.auxiliary_weight is not None:
        chosen["auxiliary_weight"] = result.chosen.auxiliary_weight
    click.echo("\nchosen (config sections you can use as they are):\n" + yaml.safe_dump(
        chosen, allow_unicode=True, sort_keys=False))
    click.echo(result.run.table())
    click.echo(f"\nrun {result.run.run_id} logged to {result.run.tracking_uri} (its child runs are the trials)")


@cli.group("config")
def config_group() -> None:
    """Config files: see what one resolves to, every default filled in."""


@config_group.command("show")
@click.argument("config", type=EXISTING_FILE)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a value of an experiment, as in `taawun train`.")
def config_show(config: Path, overrides: tuple[str, ...]) -> None:
    """Print CONFIG (an experiment or a data config) resolved: bases merged, overrides applied, defaults filled in."""
    import yaml

    from train.config.loading import read_yaml

    if "sources" in read_yaml(config):
        from train.data.config import load_data_config

        if overrides:
            raise TaawunError("--set applies to experiment configs; edit the data config itself")
        resolved = load_data_config(config)[0].model_dump(mode="json", by_alias=True)
    else:
        from train.config.experiment import resolve_with_overrides

        resolved = resolve_with_overrides(config, overrides)[1].model_dump(mode="json")
    click.echo(yaml.safe_dump(resolved, allow_unicode=True, sort_keys=False), nl=False)


@cli.command("evaluate")
@click.argument("model")
@click.option("--input", "source", required=True, type=click.Path(exists=True, path_type=Path),
              help="A built dataset folder, a data config, or a raw JSONL/CSV/Parquet file with label columns.")
@click.option("--split", default="test", show_default=True, help="The split of a built dataset to evaluate on.")
@click.option("--field", "fields", multiple=True, metavar="KEY=COLUMN",
              help="Map a raw file's columns: --field text=body --field topic=label.")
@click.option("--adapt-priors", is_flag=True, help=ADAPT_PRIORS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--no-log", is_flag=True, help="Do not log an evaluation run to MLflow.")
@TRACKING_OPTION
def evaluate_command(model: str, source: Path, split: str, fields: tuple[str, ...], adapt_priors: bool, as_json: bool,
                     no_log: bool, uri: str | None) -> None:
    """Evaluate MODEL (a model folder or an MLflow URI such as runs:/ID/model) on held-out articles."""
    import json

    from train.config.experiment import EvaluationConfig
    from train.data.table import parse_fields
    from train.workflows.evaluate import describe, evaluate_model

    with sigterm_as_interrupt():
        results, run_id = evaluate_model(model, source, split, parse_fields(fields),
                                         EvaluationConfig(adapt_priors=adapt_priors), uri,
                                         log=not no_log)
    click.echo(json.dumps(results, ensure_ascii=False, indent=2) if as_json else describe(results))
    if run_id:
        from train.tracking.store import tracking_uri

        click.echo(f"evaluation run {run_id} logged; {_ui_line(tracking_uri(uri), run_id)}", err=True)


@cli.command("predict")
@click.argument("model")
@click.option("--input", "source", required=True, type=click.Path(exists=True, path_type=Path),
              help="A JSONL/CSV/Parquet file (with --engine spark also a folder of them).")
@click.option("--output", required=True, type=click.Path(path_type=Path),
              help="A .jsonl or .csv file for the predictions (--engine spark: a .jsonl, .csv or .parquet folder).")
@click.option("--field", "fields", multiple=True, metavar="KEY=COLUMN", help="Map columns: --field text=body.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--adapt-priors", is_flag=True, help=ADAPT_PRIORS_HELP + " Holds every article's probabilities in "
              "memory until the last is predicted (--engine spark: on the driver).")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="local: this process; spark: Apache Spark through MLflow's spark_udf (pip install 'taawun[spark]').")
@click.option("--spark-master", default="local[*]", show_default=True, help="The Spark master of --engine spark.")
@click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
              help="A Spark setting for --engine spark, e.g. --spark-conf spark.driver.memory=8g.")
@TRACKING_OPTION
def predict_command(model: str, source: Path, output: Path, fields: tuple[str, ...], batch_size: int,
                    adapt_priors: bool, engine: str, spark_master: str, spark_conf: tuple[str, ...],
                    uri: str | None) -> None:
    """Predict every task for the raw articles in a JSONL/CSV/Parquet file (README: Serving and scale-out)."""
    from train.data.table import parse_fields
    from train.evaluation.tables import priors_notes

    with sigterm_as_interrupt():
        if engine == "spark":
            from train.workflows.spark import parse_conf, predict_spark

            summary = predict_spark(model, source, output, parse_fields(fields), batch_size, uri, spark_master,
                                    parse_conf(spark_conf), adapt_priors=adapt_priors)
        else:
            from train.models.predictor import load_predictor
            from train.workflows.predict import predict_file

            summary = predict_file(load_predictor(model, uri), source, output, parse_fields(fields), batch_size,
                                   adapt_priors=adapt_priors)

    for problem in summary.malformed:
        click.echo(problem, err=True)
    for note in priors_notes(summary.estimated_priors, "the input"):
        click.echo(note, err=True)
    skipped = f"; {summary.skipped} malformed record(s) skipped (listed above)" if summary.skipped else ""
    click.echo(f"{summary.predicted} article(s) predicted into {summary.output}{skipped}", err=True)


@cli.command("export")
@click.argument("model")
@click.option("--format", "fmt", required=True, type=click.Choice(["hf", "onnx"]),
              help="hf: a Hugging Face text-classification folder for one --task; onnx: every task's logits.")
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="The folder to write.")
@click.option("--task", help="The task a --format hf folder classifies.")
@TRACKING_OPTION
def export_command(model: str, fmt: str, output: Path, task: str | None, uri: str | None) -> None:
    """Export a transformer MODEL for Hugging Face pipeline() or ONNX Runtime (README: Serving and export)."""
    from train.workflows.export import export_model

    summary = export_model(model, fmt, output, task, uri)
    click.echo(f"{summary.format} export of {', '.join(summary.tasks)} written to {summary.output}", err=True)


@cli.command("runs")
@click.option("--experiment", help="Only this experiment.")
@click.option("--compare", nargs=2, metavar="RUN RUN", help="Two run ids side by side.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--stale", is_flag=True, help="List runs left RUNNING by a process that is gone (killed).")
@click.option("--clean-stale", is_flag=True, help="Mark the runs --stale lists FAILED.")
@TRACKING_OPTION
def runs_command(experiment: str | None, compare: tuple[str, str] | None, limit: int, stale: bool, clean_stale: bool,
                 uri: str | None) -> None:
    """List the runs in the tracking store (experiment, status, model, task, test macro-F1), or compare two."""
    from train.tracking.runs import compare_runs, run_table, stale_runs
    from train.tracking.store import tracking_uri

    uri = tracking_uri(uri)
    if stale or clean_stale:
        click.echo(stale_runs(uri, clean=clean_stale))
    else:
        click.echo(compare_runs(uri, *compare) if compare else run_table(uri, experiment, limit))


@cli.command("ui")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port to serve on (default: 5050, else a free one when 5050 is busy).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on. The UI has no login: anything but loopback opens the runs to the network.")
@TRACKING_OPTION
def ui_command(port: int | None, host: str, uri: str | None) -> None:
    """Open the MLflow UI on the project's tracking store (the URL is printed)."""
    from train.tracking.store import tracking_uri
    from train.tracking.ui import serve_ui

    serve_ui(tracking_uri(uri), port, host)


@cli.group()
def annotate() -> None:
    """The annotation loop: pick the articles to label next, push them to Label Studio, pull the labels back."""


POOL_OPTIONS = [
    click.option("--strategy", type=click.Choice(["uncertainty", "random"]), default="uncertainty", show_default=True),
    click.option("--task", "tasks", multiple=True, help="Only these tasks' uncertainty counts (default: all)."),
    click.option("--field", "fields", multiple=True, metavar="KEY=COLUMN", help="Map columns: --field text=body."),
    click.option("--seed", default=0, show_default=True, type=int),
    click.option("--adapt-priors", is_flag=True, help=ADAPT_PRIORS_HELP + " The input is the pool; uncertainty and "
                 "pre-annotations use the adapted probabilities."),
]


def _with(options: list, command):
    """`command` with `options` applied, the first shown first in --help."""
    for option in reversed(options):
        command = option(command)
    return command


def pool_options(command):
    """How `annotate suggest` and `annotate push` pick articles from a pool: strategy, tasks, fields, seed, priors."""
    return _with(POOL_OPTIONS, command)


@annotate.command("suggest")
@click.argument("model")
@click.option("--input", "source", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Unlabelled articles (JSONL, CSV/TSV or Parquet).")
@click.option("--n", "count", required=True, type=click.IntRange(min=1), help="How many articles to pick.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The Label Studio import file to write (JSON).")
@pool_options
@TRACKING_OPTION
def annotate_suggest(model: str, source: Path, count: int, output: Path, strategy: str, tasks: tuple[str, ...],
                     fields: tuple[str, ...], seed: int, adapt_priors: bool, uri: str | None) -> None:
    """Pick the N articles MODEL is least sure of (no two near-duplicates), pre-annotated, for Label Studio."""
    from train.data.table import parse_fields
    from train.workflows.suggest import suggest

    result = suggest(model, source, count, output, strategy=strategy, fields=parse_fields(fields), seed=seed,
                     tasks=list(tasks) or None, tracking_uri=uri, adapt_priors=adapt_priors)
    click.echo(result.describe())


SERVER_OPTIONS = [
    click.option("--url", envvar="LABEL_STUDIO_URL", metavar="URL",
                 help="The Label Studio server, e.g. http://127.0.0.1:8080 (default: LABEL_STUDIO_URL)."),
    click.option("--api-key", envvar="LABEL_STUDIO_API_KEY", metavar="KEY",
                 help="Your Label Studio access token (default: LABEL_STUDIO_API_KEY)."),
]


def server_options(command):
    """The --url and --api-key options of the commands that talk to Label Studio."""
    return _with(SERVER_OPTIONS, command)


@annotate.command("push")
@click.argument("model")
@click.option("--input", "source", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Unlabelled articles (JSONL, CSV/TSV or Parquet).")
@click.option("--n", "count", required=True, type=click.IntRange(min=1), help="How many articles to push.")
@server_options
@click.option("--project", help="The project's title (default: 'taawun <schema name>'); created when missing.")
@pool_options
@TRACKING_OPTION
def annotate_push(model: str, source: Path, count: int, url: str | None, api_key: str | None, project: str | None,
                  strategy: str, tasks: tuple[str, ...], fields: tuple[str, ...], seed: int, adapt_priors: bool,
                  uri: str | None) -> None:
    """Push the N articles MODEL is least sure of, pre-annotated, into a Label Studio project made from its schema."""
    from train.data.table import parse_fields
    from train.workflows.annotate import Server, push

    result = push(model, source, count, Server(url, api_key), project, strategy=strategy,
                  fields=parse_fields(fields), seed=seed, tasks=list(tasks) or None, tracking_uri=uri,
                  adapt_priors=adapt_priors)
    click.echo(result.describe())


@annotate.command("pull")
@server_options
@click.option("--project", required=True, help="The project's title.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The JSON export to write (annotated tasks; annotators by e-mail).")
@click.option("--data-config", type=EXISTING_FILE,
              help="Then build this data config, which reads the export (format: labelstudio).")
def annotate_pull(url: str | None, api_key: str | None, project: str, output: Path, data_config: Path | None) -> None:
    """Export a Label Studio project's annotations and, with --data-config, build the dataset from them."""
    from train.workflows.annotate import Server, pull

    click.echo(pull(Server(url, api_key), project, output, data_config).describe())


@cli.group()
def cache() -> None:
    """The on-disk cache of sentence embeddings (model.kind: sentence_encoder)."""


CACHE_OPTION = click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
                            help="Cache folder (default: TAAWUN_CACHE_DIR, else ~/.cache/taawun/embeddings).")


@cache.command("info")
@CACHE_OPTION
def cache_info_command(folder: Path | None) -> None:
    """Where the cache is, and how many sentences each encoder has cached."""
    from train.models.sentence_encoder.cache import cache_info, default_cache_dir

    folder = folder or default_cache_dir()
    rows = cache_info(folder) if folder.is_dir() else []
    click.echo(f"embedding cache: {folder}")
    for row in rows:
        click.echo(f"  {row['encoder']}: {row['sentences']:,} sentences, {row['bytes'] / 2**20:,.1f} MB")
    if not rows:
        click.echo("  (empty)")


@cache.command("clear")
@CACHE_OPTION
@click.option("--encoder", help="Only this encoder's entries (a folder name shown by `taawun cache info`).")
def cache_clear_command(folder: Path | None, encoder: str | None) -> None:
    """Delete cached embeddings (they are recomputed when needed)."""
    import shutil

    from train.models.sentence_encoder.cache import default_cache_dir

    folder = folder or default_cache_dir()
    target = folder / encoder if encoder else folder
    if encoder and not target.is_dir():
        raise TaawunError(f"no cache for encoder {encoder!r} in {folder}; `taawun cache info` lists them")
    shutil.rmtree(target, ignore_errors=True)
    click.echo(f"cleared {target}")


@cli.group()
def weak() -> None:
    """Weak supervision: label unlabelled articles with the schema's rules (silver labels)."""


@weak.command("apply")
@click.argument("schema_path", metavar="SCHEMA", type=EXISTING_FILE)
@click.option("--input", "source", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Unlabelled articles (JSONL, CSV/TSV or Parquet) with an id column.")
@click.option("--field", "fields", multiple=True, metavar="KEY=COLUMN",
              help="Map the input's columns: --field text=body (keys: id, title, text).")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The silver annotation file to write (JSONL); its report goes beside it (.report.json).")
@click.option("--gold", type=click.Path(exists=True, path_type=Path),
              help="Labelled articles to score the rules on: a raw file, a built dataset folder or a data config.")
@click.option("--gold-field", "gold_fields", multiple=True, metavar="KEY=COLUMN",
              help="Map a raw gold file's columns: --gold-field topic=label.")
@click.option("--min-confidence", default=0.8, show_default=True, type=click.FloatRange(0, 1),
              help="The label model's posterior an article needs to get a silver label.")
def weak_apply_command(schema_path: Path, source: Path, fields: tuple[str, ...], output: Path, gold: Path | None,
                       gold_fields: tuple[str, ...], min_confidence: float) -> None:
    """Label the articles of --input with SCHEMA's rules, combined by a label model; report each rule's figures."""
    from train.data.table import parse_fields
    from train.weak.apply import weak_apply

    result = weak_apply(schema_path, source, output, parse_fields(fields), gold, parse_fields(gold_fields),
                        min_confidence)
    for problem in result.malformed:
        click.echo(problem, err=True)
    click.echo(result.describe())
    click.echo(f"silver labels written to {result.output} (report: {result.report_file})", err=True)


def main() -> None:
    """Entry point of the `taawun` console script and of `python -m train`."""
    cli(prog_name="taawun")
