"""The `tfidf` kind's config: every option and its default (YAML files hold only what differs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train.features.tfidf import TfidfOptions
from train.models.heads import DEFAULT_PARAMS, SearchConfig


class TfidfConfig(BaseModel):
    """`model.kind: tfidf`: TF-IDF word and character n-grams with one linear classifier per task."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["tfidf"] = "tfidf"
    features: TfidfOptions = TfidfOptions()
    classifier: Literal["logreg", "linear_svm", "complement_nb"] = "logreg"
    params: dict[str, Any] = Field(default={}, description="classifier parameters, e.g. {C: 4.0} or {alpha: 0.3}; "
                                                           "unset ones take DEFAULT_PARAMS's")
    class_weight: Literal["balanced", "none"] = "balanced"
    search: SearchConfig | None = None
    rules_weight: float = Field(default=0.0, ge=0, description="the schema's labelling rules as features: this value "
                                                               "where a rule votes (0: off)")
    features_per_task: bool = Field(default=False, description=(
        "fit the features once per task, on the articles labelled for it (an auxiliary corpus labelled for one task "
        "then shapes only that task's vocabulary); default: once, on every training article, shared by the tasks"))

    @model_validator(mode="after")
    def _fill_params(self):
        """The classifier's default parameters under the ones given, so that the config shows what runs."""
        self.params = {**DEFAULT_PARAMS[self.classifier], **self.params}
        return self
