"""The training experiment config: data, tasks, model, evaluation and tracking.

An experiment file holds only its differences from a base config: `extends: base.yaml` (relative to the file)
is merged under it, key by key, recursively.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train.config.loading import read_yaml, validate_config
from train.errors import TaawunError
from train.features.tfidf import TfidfOptions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchConfig(_Strict):
    """Hyperparameter search per task: every combination of `grid`, scored by macro-F1, is an MLflow child run."""

    grid: dict[str, list[Any]] = Field(min_length=1)
    on: Literal["cv", "validation"] = "cv"
    folds: int = Field(default=3, ge=2)


class TfidfModelConfig(_Strict):
    """`model.kind: tfidf`: TF-IDF word and character n-grams with one linear classifier per task."""

    kind: Literal["tfidf"] = "tfidf"
    features: TfidfOptions = TfidfOptions()
    classifier: Literal["logreg", "linear_svm", "complement_nb"] = "logreg"
    params: dict[str, Any] = Field(default={}, description="classifier parameters, e.g. {C: 4.0} or {alpha: 0.3}")
    class_weight: Literal["balanced", "none"] = "balanced"
    search: SearchConfig | None = None


class TinyBertConfig(_Strict):
    """A small BERT built from scratch: random weights, a WordPiece vocabulary trained on the training split."""

    vocab_size: int = Field(default=6000, ge=100)
    min_frequency: int = Field(default=2, ge=1)
    hidden_size: int = Field(default=64, ge=8)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=128, ge=8)


class TransformerModelConfig(_Strict):
    """`model.kind: transformer`: a pretrained encoder (AraBERT by default) fine-tuned with one head per task."""

    kind: Literal["transformer"] = "transformer"
    name: str = "aubmindlab/bert-base-arabertv02"
    tiny: TinyBertConfig | None = None
    arabert_preprocess: str = Field(default="auto", description="auto | none | an AraBERT model name")
    use_title: bool = True
    max_length: int = Field(default=512, ge=16)
    truncation: Literal["head", "head_tail", "chunks"] = "head_tail"
    head_tokens: int = Field(default=128, ge=0)
    chunk_overlap: int = Field(default=64, ge=0)
    max_chunks: int = Field(default=8, ge=1)
    task_weights: dict[str, float] = {}
    class_weights: bool = False
    epochs: float = Field(default=3, gt=0)
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=32, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=3e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    padding: Literal["dynamic", "max_length"] = "dynamic"
    group_by_length: bool = True
    early_stopping_patience: int | None = Field(default=2, ge=1)
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    logging_steps: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _check_lengths(self) -> TransformerModelConfig:
        if self.truncation == "chunks" and self.chunk_overlap >= self.max_length // 2:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be under half of max_length ({self.max_length})")
        return self


class EncoderModelConfig(_Strict):
    """`model.kind: encoder`: a frozen sentence encoder, pooled per article, with a light head per task."""

    kind: Literal["encoder"] = "encoder"
    encoder: str = Field(default="use-multilingual-v3", description="the bundled USE, or a hub name / local folder")
    pooling: list[Literal["mean", "max", "title"]] = Field(default=["mean"], min_length=1)
    max_sentences: int = Field(default=64, ge=1)
    features: list[Literal["encoder", "tfidf"]] = Field(default=["encoder"], min_length=1)
    tfidf: TfidfOptions = TfidfOptions()
    tfidf_weight: float = Field(default=1.0, gt=0)
    head: Literal["logreg", "mlp"] = "logreg"
    params: dict[str, Any] = {}
    class_weight: Literal["balanced", "none"] = "balanced"
    batch_size: int = Field(default=128, ge=1)
    cache_dir: Path | None = None


class EvaluationConfig(_Strict):
    """What evaluation computes."""

    splits: list[Literal["validation", "test"]] = ["validation", "test"]
    bootstrap: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    group_field: str | None = "source"
    misclassified_limit: int | None = 500


class TrackingConfig(_Strict):
    """Where runs are logged: `uri` (else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db) and the experiment."""

    uri: str | None = None
    experiment: str = "taawun"
    run_name: str | None = None


class ExperimentConfig(_Strict):
    """Everything `taawun train` needs."""

    data: Path
    tasks: list[str] = []
    model: Annotated[TfidfModelConfig | TransformerModelConfig | EncoderModelConfig, Field(discriminator="kind")] = (
        TfidfModelConfig())
    evaluation: EvaluationConfig = EvaluationConfig()
    tracking: TrackingConfig = TrackingConfig()
    seed: int = 13
    output_dir: Path = Path("runs")

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        """A model section without `kind` is a TF-IDF model, as when there is no section at all."""
        if isinstance(data, dict) and isinstance(data.get("model"), dict) and "kind" not in data["model"]:
            data = {**data, "model": {"kind": "tfidf", **data["model"]}}
        return data


def resolve_experiment(path: str | Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The experiment file merged over the chain of files it `extends`."""
    path = Path(path)
    if path.resolve() in seen:
        raise TaawunError(f"{path}: `extends` makes a cycle: {' -> '.join(str(p) for p in (*seen, path))}")
    data = read_yaml(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    base_path = path.parent / base
    if not base_path.is_file():
        raise TaawunError(f"{path}: extends {base!r}, but {base_path} does not exist (it is relative to {path.parent})")
    return deep_merge(resolve_experiment(base_path, (*seen, path.resolve())), data)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


MODEL_KINDS = frozenset({"tfidf", "transformer", "encoder"})


def validate_experiment(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate a merged experiment; error paths read `model.classifier`, without the model kind in them."""
    return validate_config(ExperimentConfig, data, source, hide=MODEL_KINDS)


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment file (with its bases) and optional overrides, and validate it."""
    return validate_experiment(deep_merge(resolve_experiment(path), overrides or {}), str(path))


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"model.features.min_df": "2", ...} for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
