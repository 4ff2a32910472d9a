"""The `ensemble` kind's config: its members (configs of other kinds) and how their weights are chosen."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from train.models import registry


class EnsembleConfig(BaseModel):
    """`model.kind: ensemble`: the members' probabilities averaged per task, with weights chosen on the training data.

    Weights per task are searched on a grid over the members (steps of `step`, summing to 1) for the best macro-F1 of
    out-of-fold probabilities (`folds`-fold cross-validation grouped by duplicate cluster, on the training split only).
    Fixed `weights` skip the search.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["ensemble"] = "ensemble"
    members: list[Any] = Field(min_length=2, description="model configs of other kinds, each with its `kind`")
    weights: dict[str, list[float]] | None = None
    folds: int = Field(default=3, ge=2)
    step: float = Field(default=0.1, gt=0, le=0.5)

    @field_validator("members", mode="before")
    @classmethod
    def _member_configs(cls, members: Any) -> Any:
        if not isinstance(members, list):
            return members
        configs = []
        for member in members:
            if isinstance(member, dict):
                if registry.canonical(member.get("kind", "tfidf")) == "ensemble":
                    raise ValueError("an ensemble's members are models of other kinds, not ensembles")
                member = registry.model_config(member)
            configs.append(member)
        return configs

    @model_validator(mode="after")
    def _check_weights(self) -> EnsembleConfig:
        for task, weights in (self.weights or {}).items():
            if len(weights) != len(self.members) or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"weights.{task}: give one non-negative weight per member ({len(self.members)}), "
                                 "not all 0")
        return self
