"""The `transformer` kind's config: every option and its default (YAML files hold only what differs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TinyBertConfig(BaseModel):
    """A small BERT built from scratch: random weights, a WordPiece vocabulary trained on the training split."""

    model_config = ConfigDict(extra="forbid")
    vocab_size: int = Field(default=6000, ge=100)
    min_frequency: int = Field(default=2, ge=1)
    hidden_size: int = Field(default=128, ge=8)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    intermediate_size: int = Field(default=256, ge=8)


class TransformerConfig(BaseModel):
    """`model.kind: transformer`: a pretrained encoder (AraBERT by default) fine-tuned with one head per task."""

    model_config = ConfigDict(extra="forbid")
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
    def _check_lengths(self) -> TransformerConfig:
        if self.truncation == "chunks" and self.chunk_overlap >= self.max_length // 2:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be under half of max_length ({self.max_length})")
        return self
