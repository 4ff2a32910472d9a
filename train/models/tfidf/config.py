"""The `tfidf` kind's config: every option and its default (YAML files hold only what differs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from train.features.tfidf import TfidfOptions
from train.models.heads import SearchConfig


class TfidfConfig(BaseModel):
    """`model.kind: tfidf`: TF-IDF word and character n-grams with one linear classifier per task."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["tfidf"] = "tfidf"
    features: TfidfOptions = TfidfOptions()
    classifier: Literal["logreg", "linear_svm", "complement_nb"] = "logreg"
    params: dict[str, Any] = Field(default={}, description="classifier parameters over train.models.heads."
                                                           "DEFAULT_PARAMS, e.g. {C: 4.0} or {alpha: 0.3}")
    class_weight: Literal["balanced", "none"] = "balanced"
    search: SearchConfig | None = None
