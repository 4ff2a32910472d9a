"""The `sentence_encoder` kind's config: every option and its default (YAML files hold only what differs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train.features.tfidf import TfidfOptions
from train.models.heads import DEFAULT_PARAMS, SearchConfig
from train.models.sentence_encoder.evidence import EvidenceConfig


class SentenceEncoderConfig(BaseModel):
    """`model.kind: sentence_encoder`: a frozen sentence encoder, pooled per article, with a light head per task."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["sentence_encoder"] = "sentence_encoder"
    encoder: str = Field(default="use-multilingual-v3", description="the bundled USE, or a hub name / local folder")
    pooling: list[Literal["mean", "max", "title"]] = Field(default=["mean", "title"], min_length=1)
    max_sentences: int = Field(default=64, ge=1)
    features: list[Literal["encoder", "tfidf"]] = Field(default=["encoder"], min_length=1)
    tfidf: TfidfOptions = TfidfOptions()
    tfidf_weight: float = Field(default=1.0, gt=0)
    rules_weight: float = Field(default=0.0, ge=0, description="the schema's labelling rules as features: this value "
                                                               "where a rule votes (0: off)")
    head: Literal["logreg", "mlp"] = "logreg"
    params: dict[str, Any] = Field(default={}, description="head parameters; unset ones take DEFAULT_PARAMS's")
    class_weight: Literal["balanced", "none"] = "balanced"
    search: SearchConfig | None = None
    evidence: EvidenceConfig | None = None
    batch_size: int = Field(default=128, ge=1)
    cache_dir: Path | None = None

    @model_validator(mode="after")
    def _fill_params(self):
        """The head's default parameters under the ones given, so that the config shows what runs."""
        self.params = {**DEFAULT_PARAMS[self.head], **self.params}
        return self
