"""The `taawun` command line: a thin layer over the package's functions. Heavy imports happen inside commands."""

from __future__ import annotations

import sys
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
    from train.schema import labelstudio_config, load_schema

    click.echo(labelstudio_config(load_schema(path)), nl=False)


@cli.group()
def data() -> None:
    """Build datasets from raw articles and annotations, and read their reports."""


@data.command("build")
@click.argument("config", type=EXISTING_FILE)
@click.option("--report-only", is_flag=True, help="Check everything and list all problems; write nothing.")
def data_build(config: Path, report_only: bool) -> None:
    """Build the dataset described by a data config (see configs/data/)."""
    from train.build import build_dataset
    from train.data_config import load_data_config
    from train.report import render_markdown

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

    from train.report import load_report, render_markdown

    report = load_report(folder)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else render_markdown(report))


def main() -> None:
    """Entry point of the `taawun` console script and of `python -m train`."""
    cli(prog_name="taawun")
