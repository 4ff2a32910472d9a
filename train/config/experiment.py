"""The training experiment config: data, tasks, model, evaluation and tracking.

An experiment file holds only its differences from a base config: `extends: base.yaml` (relative to the file)
is merged under it, key by key, recursively.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train.config.loading import parse_yaml_value, read_yaml, validate_config
from train.config.run_names import fill_run_name
from train.errors import TaawunError
from train.models import registry

# The `model` section: the config class of the kind its `kind` names (train.models.registry).
ModelConfig = Annotated[Union[tuple(registry.config_classes())], Field(discriminator="kind")]  # noqa: UP007


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluationConfig(_Strict):
    """What evaluation computes."""

    splits: list[Literal["validation", "test"]] = ["validation", "test"]
    bootstrap: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    group_field: str | None = "source"
    misclassified_limit: int | None = 500
    # Re-estimate the labels' proportions in the evaluated articles from the model's probabilities (no label read)
    # and re-weigh the probabilities for them: for articles of an outlet that files its labels in other proportions.
    adapt_priors: bool = False


class TrackingConfig(_Strict):
    """Where runs are logged: `uri` (else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db) and the experiment."""

    uri: str | None = None
    experiment: str = "taawun"
    run_name: str | None = None


class ThresholdsConfig(_Strict):
    """Decision thresholds of binary tasks, tuned for the positive class's F1 and used by predict and evaluate.

    `cv`: on out-of-fold probabilities of the train split (`folds` more fits of the model, folds of whole duplicate
    clusters); `validation`: on the validation split's probabilities; `none`: the most probable label wins.
    """

    tune: Literal["none", "cv", "validation"] = "none"
    folds: int = Field(default=5, ge=2)
    tasks: list[str] = Field(default=[], description="the binary tasks to tune (default: every binary task)")


class SelfTrainingConfig(_Strict):
    """Self-training: training articles without a label for a task get the model's confident predictions as labels.

    Each round refits the model with the pseudo-labels of the articles whose predicted probability reaches
    `threshold` (at most `per_round` per task and round, most confident first), weighed `weight` times their source's
    weight. The unlabelled articles are the training split's articles that lack a label for the task (those of
    auxiliary sources, typically).
    """

    rounds: int = Field(default=2, ge=1)
    threshold: float = Field(default=0.9, gt=0, le=1)
    weight: float = Field(default=0.5, gt=0)
    per_round: int | None = Field(default=None, ge=1)
    tasks: list[str] = Field(default=[], description="the tasks to self-train (default: every task)")


class TuneConfig(_Strict):
    """`taawun tune`: candidate models compared by grouped cross-validation on the training split, the best trained.

    A candidate is a model config (with its `kind`); its `grid` (dotted keys under `model`, each with a list of
    values) expands it into one trial per combination, and so does each of `auxiliary_weights`. `ensemble: N` also
    tries a weighted ensemble of the N best trials of the best trial's auxiliary weight (weights per task chosen on the
    same out-of-fold probabilities). The score is the macro-F1 averaged over the tasks, of out-of-fold predictions of
    the target articles (auxiliary ones train in every fold): the validation and test splits are never used to choose.
    """

    candidates: list[dict[str, Any]] = Field(min_length=1)
    folds: int = Field(default=5, ge=2)
    ensemble: int = Field(default=0, ge=0)
    auxiliary_weights: list[float] = Field(default=[], description=(
        "weights of the auxiliary sources' articles to try with every candidate (default: the experiment's)"))
    group_by: str | None = Field(default=None, description=(
        "a dataset column (e.g. `source`) whose values the folds keep whole: each fold holds out whole outlets, "
        "so the choice is made for outlets a model never saw (default: whole duplicate clusters)"))
    adapt_priors: bool = Field(default=False, description=(
        "score each trial as `--adapt-priors` will use it: the out-of-fold probabilities of every held-out value of "
        "`group_by` (a new outlet) adapted to its own label proportions, the temperature and reference proportions "
        "fit on the other folds' out-of-fold probabilities (needs `group_by`)"))

    @model_validator(mode="after")
    def _check_candidates(self) -> TuneConfig:
        for index, candidate in enumerate(self.candidates):
            if "kind" not in candidate:
                raise ValueError(f"candidates.{index}: give the model `kind` ({registry.names()})")
            grid = candidate.get("grid", {})
            if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
                raise ValueError(f"candidates.{index}.grid: map dotted model keys to non-empty lists of values")
        if self.adapt_priors and not self.group_by:
            raise ValueError("adapt_priors: adapts each held-out outlet's probabilities to its own label proportions; "
                             "set `group_by` (e.g. source) so that the folds hold out whole outlets")
        if self.ensemble == 1:
            raise ValueError("ensemble: give the number of best trials to combine (2 or more), or 0 for none")
        return self


class ExperimentConfig(_Strict):
    """Everything `taawun train` needs."""

    data: Path
    tasks: list[str] = []
    model: ModelConfig = Field(default_factory=lambda: registry.config_class("tfidf")())
    evaluation: EvaluationConfig = EvaluationConfig()
    tracking: TrackingConfig = TrackingConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    self_training: SelfTrainingConfig | None = None
    auxiliary_weight: float | None = Field(default=None, gt=0, description=(
        "the sample weight of the articles of auxiliary sources (default: each source's `weight`)"))
    tune: TuneConfig | None = None
    seed: int = 13
    output_dir: Path = Path("runs")

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        """A model section without `kind` is a TF-IDF model, as when there is no section at all; old names map."""
        if isinstance(data, dict) and isinstance(data.get("model"), dict):
            kind = data["model"].get("kind", "tfidf")
            data = {**data, "model": {**data["model"], "kind": registry.ALIASES.get(kind, kind)}}
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




def validate_experiment(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate a merged experiment; error paths read `model.classifier`, without the model kind in them. The run
    name's `{model.classifier}`-style placeholders are filled in (train.config.run_names)."""
    return fill_run_name(validate_config(ExperimentConfig, data, source, hide=frozenset(registry.names())), source)


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment file (with its bases) and optional overrides, and validate it."""
    return validate_experiment(deep_merge(resolve_experiment(path), overrides or {}), str(path))


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` options as a nested mapping; values read as in a config file."""
    merged: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TaawunError(f"--set {pair!r}: write KEY=VALUE, e.g. --set model.params.C=2")
        nested: dict[str, Any] = {}
        cursor = nested
        *parents, last = key.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
        cursor[last] = parse_yaml_value(value)
        merged = deep_merge(merged, nested)
    return merged


def resolve_with_overrides(path: str | Path, overrides: Sequence[str]) -> tuple[dict[str, Any], ExperimentConfig]:
    """The experiment file merged over its bases with `--set` overrides: the merged mapping and the validated config."""
    resolved = deep_merge(resolve_experiment(path), parse_overrides(overrides))
    return resolved, validate_experiment(resolved, str(path))


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
