"""The dataset-building config: sources, annotations, cleaning, de-duplication, splits and output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train.config.loading import load_config
from train.errors import TaawunError
from train.schema import Schema, load_schema
from train.text.clean import CleaningOptions, NormalizationOptions
from train.text.dedup import DedupOptions

Format = Literal["auto", "jsonl", "csv", "tsv", "parquet", "txt_folder", "labelstudio"]
Encoding = Literal["auto", "utf-8", "utf-16", "windows-1256", "iso-8859-6"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldMap(_Strict):
    """Which column of a source holds each article field; null for a field the source lacks."""

    id: str | None = "id"
    text: str = "text"
    title: str | None = "title"
    date: str | None = "date"
    source: str | None = "source"


class SourceConfig(_Strict):
    """A file or folder of raw articles."""

    path: Path
    format: Format = "auto"
    name: str | None = None
    encoding: Encoding = "auto"
    fields: FieldMap = FieldMap()
    labels: dict[str, str] = Field(default={}, description="inline labels: task -> column")
    targets: dict[str, str] = Field(default={}, description="per-example targets: target field -> column")
    annotator: str = "inline"
    folder_task: str | None = None
    outlet: str | None = None
    split: Literal["test"] | None = None
    label_map: dict[str, dict[str, str]] = Field(default={}, description=(
        "task -> {this source's label: schema label}; a label the map lacks gives no label for that task (another "
        "labelling mapped onto the schema, e.g. publisher sections onto topics)"))
    weight: float = Field(default=1.0, gt=0, description="sample weight of this source's articles in training")
    limit: int | None = Field(default=None, ge=1, description=(
        "at most this many of the source's articles: a random sample drawn with the config's seed (the report says "
        "how many were read and kept)"))
    auxiliary: bool = Field(default=False, description=(
        "training data only: the source's articles never go to validation or test (an article that duplicates one "
        "there is left out), and they may lack labels"))

    @property
    def display_name(self) -> str:
        """The source's name in reports (`name`, else the file name)."""
        return self.name or self.path.name


class AnnotationConfig(_Strict):
    """A file of labels joined to the articles by id: one annotator's, several annotators', or adjudications."""

    path: Path
    format: Literal["auto", "csv", "tsv", "jsonl", "labelstudio", "doccano"] = "auto"
    role: Literal["annotator", "adjudication", "silver"] = Field(default="annotator", description=(
        "annotator: a vote; adjudication: overrides the vote; silver: machine labels (`taawun weak apply`), used only "
        "where no annotator labelled the task"))
    encoding: Encoding = "auto"
    annotator: str | None = None
    annotator_field: str | None = None
    id_field: str = "id"
    labels: dict[str, str] = Field(default={}, description="task -> column; default: columns named like the tasks")
    task: str | None = None


class ValidationConfig(_Strict):
    """What happens to records that break the schema."""

    on_invalid: Literal["fail", "reject"] = "fail"
    allow_missing_labels: bool = False
    allow_empty: bool = Field(default=False, description=(
        "write a dataset with no articles (an empty source, or every record rejected); else the build fails and "
        "keeps the previous dataset"))


class DuplicatesConfig(DedupOptions):
    """De-duplication settings plus what to do with duplicates whose labels conflict."""

    on_conflict: Literal["majority", "drop", "fail"] = "majority"
    drop_near: bool = False


class SplitConfig(_Strict):
    """How articles are split into train/validation/test without letting a duplicate cluster cross splits."""

    strategy: Literal["random", "source", "date", "file"] = "random"
    train: float = Field(default=0.8, gt=0, lt=1)
    validation: float = Field(default=0.1, ge=0, lt=1)
    test: float = Field(default=0.1, ge=0, lt=1)
    stratify_by: str | None = None
    holdout_sources: list[str] = []
    date_cutoff: dt.date | None = None
    date_format: str | None = Field(default=None, description=(
        "a strptime format (e.g. '%m/%d/%Y') tried first for every date; it decides the day/month order of numeric "
        "dates, which are otherwise read day first (18/02/2018), as Arabic news writes them"))
    folds: int | None = Field(default=None, ge=2)
    fold: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.folds is not None:
            if self.strategy != "random":
                raise ValueError(f"folds (cross-validation) needs strategy 'random', not {self.strategy!r}")
            if self.fold >= self.folds:
                raise ValueError(f"fold must be 0 to {self.folds - 1} with folds: {self.folds}, got {self.fold}")
        if abs(self.train + self.validation + self.test - 1) > 1e-6:
            raise ValueError(
                f"train + validation + test must be 1, got {self.train} + {self.validation} + {self.test}"
            )
        if self.strategy == "source" and not self.holdout_sources:
            raise ValueError("strategy 'source' needs holdout_sources: the outlets whose articles form the test split")
        if self.strategy == "date" and self.date_cutoff is None:
            raise ValueError("strategy 'date' needs date_cutoff (YYYY-MM-DD): articles from that day on form the test")
        return self


class DataConfig(_Strict):
    """Everything `taawun data build` needs."""

    schema_path: Path = Field(default=Path("configs/schema.yaml"), alias="schema")
    sources: list[SourceConfig] = Field(min_length=1)
    annotations: list[AnnotationConfig] = []
    cleaning: CleaningOptions = CleaningOptions()
    normalization: NormalizationOptions = NormalizationOptions()
    dedup: DuplicatesConfig = DuplicatesConfig()
    validation: ValidationConfig = ValidationConfig()
    split: SplitConfig = SplitConfig()
    seed: int = 13
    output: Path

    @model_validator(mode="after")
    def _check_file_strategy(self) -> DataConfig:
        has_test_source = any(source.split == "test" for source in self.sources)
        if self.split.strategy == "file" and not has_test_source:
            raise ValueError("split.strategy 'file' needs a source with `split: test` (the held-out articles)")
        if has_test_source and self.split.strategy != "file":
            raise ValueError("a source has `split: test`; set split.strategy: file to use it as the test split")
        return self


def load_data_config(path: str | Path) -> tuple[DataConfig, Schema]:
    """Load a data config and its schema, and check that every task it names exists in the schema."""
    config = load_config(DataConfig, path)
    schema = load_schema(config.schema_path)
    _check_tasks(config, schema, str(path))
    return config, schema


def _check_tasks(config: DataConfig, schema: Schema, where: str) -> None:
    """Task names in the config must be tasks of the schema (a typo would otherwise lose labels)."""
    named: list[tuple[str, str]] = []
    for index, source in enumerate(config.sources):
        named += [(f"sources.{index}.labels.{task}", task) for task in source.labels]
        if source.folder_task:
            named.append((f"sources.{index}.folder_task", source.folder_task))
    for index, annotation in enumerate(config.annotations):
        named += [(f"annotations.{index}.labels.{task}", task) for task in annotation.labels]
        if annotation.task:
            named.append((f"annotations.{index}.task", annotation.task))
    if config.split.stratify_by:
        named.append(("split.stratify_by", config.split.stratify_by))
    for key, task in named:
        if task not in schema.task_names:
            raise TaawunError(f"{where}: {key}: {task!r} is not a task of schema {schema.name!r} ({schema.task_names})")
    for index, source in enumerate(config.sources):
        for task, mapping in source.label_map.items():
            key = f"sources.{index}.label_map.{task}"
            if task not in schema.task_names:
                raise TaawunError(f"{where}: {key}: {task!r} is not a task of schema {schema.name!r} "
                                  f"({schema.task_names})")
            if task not in source.labels and source.folder_task != task:
                raise TaawunError(f"{where}: {key}: the source gives no {task} label to map; add labels.{task}")
            bad = {label: value for label, value in mapping.items() if schema.task(task).resolve(value) is None}
            if bad:
                raise TaawunError(f"{where}: {key}: {bad} map to labels that {task} does not have "
                                  f"({schema.task(task).label_names})")
    targets = {task.target_field for task in schema.tasks if task.target_field}
    for index, source in enumerate(config.sources):
        for field in source.targets:
            if field not in targets:
                raise TaawunError(
                    f"{where}: sources.{index}.targets.{field}: the schema has no task with target_field {field!r}"
                )
