"""`taawun predict --engine spark`: score a news archive (a file, or a folder of files) on Apache Spark.

The model runs in Spark's Python workers through MLflow's `spark_udf`: the same pyfunc model `mlflow models serve`
runs, which cleans and normalizes raw text as at training. Spark reads the input (JSON lines, CSV/TSV or Parquet,
plain or gzip) and writes the output as a folder of part files (.jsonl, .csv or .parquet), which replaces only an
earlier output of Spark. Records Spark cannot parse, or without an id, or with an empty text or bytes that are not
UTF-8, are listed and counted, never predicted or dropped in silence.

With `adapt_priors`, the workers predict, then every article's id and probabilities come to the driver (as the local
engine holds them) and are adapted together to the label proportions of the whole input (`Predictor.adapt_priors`),
so Spark and the local engine give the same labels; the driver's DataFrame is then written as part files.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from train.data.readers import detect_encoding, detect_format
from train.data.table import ARTICLE_KEYS, SNIFF_BYTES, check_columns, field_columns, stream_rows
from train.errors import TaawunError
from train.models.predictor import Predictor, label_columns, load_predictor, resolve_model_folder
from train.workflows.export import check_replaceable, replacing_folder
from train.workflows.predict import PredictSummary

OUTPUT_FORMATS = {".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
CORRUPT = "_corrupt_record"
SUCCESS = "_SUCCESS"  # what Spark writes into a finished output folder
PROBLEM = "_taawun_problem"
FILE = "_taawun_file"
SHOWN = 20  # skipped records listed one by one; the rest are counted
WHY = {"id": " (Spark returns rows in no set order: predictions are keyed by id)"}


def predict_spark(reference: str, source: Path, output: Path, fields: dict[str, str], batch_size: int = 1000,
                  tracking_uri: str | None = None, master: str = "local[*]",
                  conf: dict[str, str] | None = None, adapt_priors: bool = False) -> PredictSummary:
    """Predict every article under `source` into the folder `output` with Spark (`master`: local[*] by default);
    with `adapt_priors`, adapted to the label proportions of the whole input (see the module doc)."""
    out_format = _output_format(output)
    check_replaceable(output, SUCCESS)
    files, fmt = _input_files(source)
    folder = resolve_model_folder(reference, tracking_uri)
    predictor = load_predictor(folder)
    if adapt_priors:
        _check_adaptable(predictor)
    column = _columns(files[0], fields, predictor)
    spark = _session(master, batch_size, conf or {})
    estimates = None
    try:
        with tempfile.TemporaryDirectory(prefix="taawun-spark-") as work:
            frame = _read(spark, files, fmt, column)
            counts = {(row[FILE], row[PROBLEM]): row["count"]
                      for row in frame.groupBy(FILE, PROBLEM).count().collect()}
            udf = _udf(spark, _mlflow_model(folder, Path(work)), predictor)
            predicted = _predicted(frame.filter(frame[PROBLEM].isNull()), udf, predictor, spark)
            if adapt_priors:
                predicted, estimates = _adapted(predicted, predictor, spark)
            with replacing_folder(output, SUCCESS) as staging:
                _write(_shaped(predicted, predictor, out_format), staging, out_format)
            malformed = _problems(frame, counts)
    finally:
        spark.stop()
    predicted = sum(n for (_, problem), n in counts.items() if problem is None)
    return PredictSummary(predicted, malformed, output, sum(counts.values()) - predicted, estimates)


def parse_conf(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--spark-conf key=value` options as a mapping."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().startswith("spark."):
            raise TaawunError(f"--spark-conf {pair!r}: write KEY=VALUE with a Spark key, e.g. spark.driver.memory=8g")
        conf[key.strip()] = value.strip()
    return conf


def _output_format(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise TaawunError(f"{output}: with --engine spark, name the output folder .jsonl, .csv or .parquet (Spark "
                          "writes a folder of part files in that format)")
    return OUTPUT_FORMATS[suffix]


def _input_files(source: Path) -> tuple[list[Path], str]:
    """The data files of `source` (a file, or the files under a folder) and their one format; text must be UTF-8.

    Hidden names and names starting with `_` are skipped, as Spark skips them.
    """
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and not any(part.startswith((".", "_"))
                                                                for part in p.relative_to(source).parts))
    if not files:
        raise TaawunError(f"{source}: no files to read")
    formats = {detect_format(path, "auto") for path in files}
    if len(formats) > 1:
        raise TaawunError(f"{source}: files of several formats ({sorted(formats)}); give one format per run")
    fmt = formats.pop()
    if fmt != "parquet":
        for path in files:
            _require_utf8(path)
    return files, fmt


def _require_utf8(path: Path) -> None:
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    with (gzip.open if compressed else open)(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    encoding = detect_encoding(head, "auto", path, complete=len(head) < SNIFF_BYTES)
    if encoding != "utf-8":
        raise TaawunError(f"{path}: {encoding}, not plain UTF-8 (a byte-order mark counts), and Spark reads UTF-8 "
                          f"here; convert it (iconv -f {encoding} -t utf-8), or use --engine local, which reads it")


def _columns(first: Path, fields: dict[str, str], predictor: Predictor) -> dict[str, str]:
    """key -> input column for id, text, title and the model's target fields, checked on the first file's columns."""
    targets = predictor.target_fields
    column = field_columns(fields, [*ARTICLE_KEYS, *targets])
    row = next((row for row in stream_rows(first) if not row.error), None)
    if row is None:
        raise TaawunError(f"{first}: no readable record")
    check_columns(first, row.values, column, ["id", "text", *targets], WHY, fields)
    if column["title"] not in row.values:
        del column["title"]
    return column


def _session(master: str, batch_size: int, conf: dict[str, str]):
    """A SparkSession whose Python workers run this Python (and so this taawun), quiet, its UI off."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise TaawunError("--engine spark needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless; "
                          "or set JAVA_HOME)")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise TaawunError("--engine spark needs PySpark: pip install 'taawun[spark]'") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # PySpark 4 warns that pandas 3 is new to it; tests/workflows/test_spark.py checks its results against the local run
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    builder = SparkSession.builder.master(master).appName("taawun predict")
    settings = {"spark.ui.enabled": "false", "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_size),
                "spark.sql.execution.arrow.pyspark.enabled": "true"}  # --adapt-priors' trips to the driver and back
    if master.startswith("local"):  # no network interface: nothing listens beyond this machine
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    for key, value in {**settings, **conf}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _read(spark, files: list[Path], fmt: str, column: dict[str, str]):
    """The articles as columns id, text, title (when present) and targets, with each record's file and problem."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    paths = [str(path) for path in files]
    if fmt == "jsonl":  # the columns read as text (ids may be numbers), unparsable lines kept apart
        schema = StructType([StructField(name, StringType()) for name in dict.fromkeys(column.values())]
                            + [StructField(CORRUPT, StringType())])
        raw = spark.read.schema(schema).option("mode", "PERMISSIVE").json(paths)
    elif fmt == "parquet":
        raw = spark.read.parquet(*paths)
    else:
        raw = spark.read.csv(paths, header=True, sep="\t" if fmt == "tsv" else ",", multiLine=True, escape='"')
    frame = raw.select(*[F.col(f"`{name}`").cast("string").alias(key) for key, name in column.items()],
                       F.col("_metadata.file_name").alias(FILE),
                       (F.col(CORRUPT) if fmt == "jsonl" else F.lit(None).cast("string")).alias(CORRUPT))
    return frame.withColumn(PROBLEM, _problem(F))


def _problem(F):
    """Why a record is skipped, or null: unparsable, no id, empty text, or text with bytes that were not UTF-8."""
    blank = lambda name: F.col(name).isNull() | (F.trim(F.col(name)) == "")  # noqa: E731
    return (F.when(F.col(CORRUPT).isNotNull(), "malformed record")
            .when(blank("id"), "no id")
            .when(blank("text"), "empty text")
            .when(F.col("text").contains("\ufffd"), "text holds bytes that are not UTF-8 (U+FFFD)"))


def _mlflow_model(folder: Path, work: Path) -> Path:
    """The MLflow model around a taawun model folder: the one it was downloaded from, or one saved for it here."""
    logged = folder.parents[1]
    if (logged / "MLmodel").is_file() and (logged / "artifacts" / "model").resolve() == folder.resolve():
        return logged
    import mlflow

    package = Path(__file__).resolve().parents[1]  # the `train` package, as `taawun train` logs it
    target = work / "mlflow-model"
    mlflow.pyfunc.save_model(path=str(target), python_model=str(package / "tracking" / "pyfunc.py"),
                             artifacts={"model": str(folder)}, code_paths=[str(package)],
                             pip_requirements=[])  # the workers run this Python: nothing to install
    return target


def _result_type(predictor: Predictor):
    """The pyfunc model's columns as a Spark struct: each task's label and its probabilities."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    return StructType([field for task in predictor.tasks for field in (
        StructField(task.name, StringType()),
        *(StructField(f"{task.name}.proba.{label}", DoubleType()) for label in task.label_names))])


def _udf(spark, model: Path, predictor: Predictor):
    """MLflow's spark_udf returning the pyfunc model's columns (`_result_type`)."""
    import mlflow

    return mlflow.pyfunc.spark_udf(spark, str(model), result_type=_result_type(predictor), env_manager="local")


def _predicted(frame, udf, predictor: Predictor, spark):
    """id and the pyfunc model's columns as a struct `p`, predicted by the workers."""
    from pyspark.sql import functions as F

    if frame.rdd.getNumPartitions() < spark.sparkContext.defaultParallelism:  # one gzip file is one partition
        frame = frame.repartition(spark.sparkContext.defaultParallelism)
    inputs = [name for name in ("title", "text", *predictor.target_fields) if name in frame.columns]
    return frame.select("id", udf(F.struct(*inputs)).alias("p"))


def _check_adaptable(predictor: Predictor) -> None:
    """Refuse, before Spark starts, what `_adapted` cannot do: the pyfunc model leaves no probabilities where a task
    with `applies_when` does not apply, and adaptation may make it apply there."""
    dependent = [task.name for task in predictor.tasks if task.applies_when]
    if dependent:
        raise TaawunError(f"--engine spark --adapt-priors: task(s) {dependent} apply only when another task has some "
                          "labels, and Spark's predictions leave them no probabilities elsewhere; use --engine local")
    predictor.reference_priors()  # a model trained without them: the error says to retrain


def _adapted(predicted, predictor: Predictor, spark):
    """The workers' predictions collected on the driver (ids and probabilities), adapted together as the local engine
    adapts them, as a DataFrame like `predicted`; and the label proportions estimated per task."""
    import pandas as pd
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    result = _result_type(predictor)
    names = [name for name in result.names if ".proba." in name]
    local = predicted.select("id", *(F.col("p").getField(name).alias(name) for name in names)).toPandas()
    proba = {task.name: local[[f"{task.name}.proba.{label}" for label in task.label_names]].to_numpy(dtype=float)
             for task in predictor.tasks}
    adapted, estimates, thresholds = predictor.adapt_priors(proba)
    columns = label_columns(predictor.tasks, adapted, thresholds)
    frame = spark.createDataFrame(pd.DataFrame({"id": local["id"], **{name: columns[name] for name in result.names}}),
                                  StructType([StructField("id", StringType()), *result.fields]))
    return frame.select("id", F.struct(*(F.col(f"`{name}`") for name in result.names)).alias("p")), estimates


def _shaped(predicted, predictor: Predictor, out_format: str):
    """id and each task's label and probabilities: nested {label: p} as `taawun predict` writes JSONL, or flat CSV."""
    from pyspark.sql import functions as F

    columns = [F.col("id")]
    for task in predictor.tasks:
        label = F.col("p").getField(task.name)
        proba = {name: F.col("p").getField(f"{task.name}.proba.{name}") for name in task.label_names}
        if out_format == "csv":
            columns += [label.alias(task.name), *(p.alias(f"{task.name}.proba.{n}") for n, p in proba.items())]
            continue
        rounded = [(F.round(p, 6) if out_format == "json" else p).alias(n) for n, p in proba.items()]
        columns += [label.alias(task.name), F.when(label != "", F.struct(*rounded)).alias(f"{task.name}_probabilities")]
    return predicted.select(*columns)


def _write(frame, folder: Path, out_format: str) -> None:
    writer = frame.write.mode("overwrite")
    if out_format == "json":
        writer.option("ignoreNullFields", "false").json(str(folder))
    elif out_format == "csv":
        writer.option("header", "true").option("emptyValue", "").csv(str(folder))
    else:
        writer.parquet(str(folder))


def _problems(frame, counts: dict[tuple[str, str | None], int]) -> list[str]:
    """The skipped records, one line each for the first SHOWN, then a count per file and reason."""
    from pyspark.sql import functions as F

    skipped = {key: n for key, n in counts.items() if key[1] is not None}
    if not skipped:
        return []
    rows = (frame.filter(F.col(PROBLEM).isNotNull())
            .select(FILE, PROBLEM, "id", F.substring(F.coalesce(CORRUPT, "text"), 1, 60).alias("start"))
            .limit(SHOWN).collect())
    lines = [f"{row[FILE]}: {row[PROBLEM]}; skipped (id {row['id']!r}, {row['start']!r})" for row in rows]
    if sum(skipped.values()) > len(rows):
        lines += [f"{file}: {n} record(s) with {problem} skipped in all"
                  for (file, problem), n in sorted(skipped.items())]
    return lines
