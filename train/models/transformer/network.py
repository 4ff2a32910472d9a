"""The multi-task network: one shared encoder, one linear head per task, a weighted sum of the tasks' losses."""

from __future__ import annotations

from train.schema import Task


def build_network(encoder, tasks: list[Task], task_weights: dict[str, float], class_weights: dict[str, list[float]]):
    """The multi-task module: the encoder's [CLS] state -> dropout -> one linear head per task."""
    import torch
    from torch import nn

    class MultiTaskClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.dropout = nn.Dropout(getattr(encoder.config, "hidden_dropout_prob", 0.1))
            self.heads = nn.ModuleDict({task.name: nn.Linear(hidden, len(task.labels)) for task in tasks})
            self.task_names = [task.name for task in tasks]
            self.task_weights = {task.name: float(task_weights.get(task.name, 1.0)) for task in tasks}
            for name, weights in class_weights.items():
                self.register_buffer(f"class_weight_{name}", torch.tensor(weights, dtype=torch.float32))

        def forward(self, input_ids, attention_mask, token_type_ids=None, **labels):
            state = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state[:, 0]
            state = self.dropout(state)
            logits = {name: self.heads[name](state) for name in self.task_names}
            out = {"logits": tuple(logits[name] for name in self.task_names)}
            if labels:
                out["loss"] = self._loss(logits, labels)
            return out

        def _loss(self, logits, labels):
            total = logits[self.task_names[0]].new_zeros(())
            for name in self.task_names:
                target = labels.get(f"labels_{name}")
                if target is None or not (target >= 0).any():  # no labelled window for this task in the batch
                    continue
                weight = getattr(self, f"class_weight_{name}", None)
                sample_weight = labels.get(f"weight_{name}")  # per-article weights of this task's labels
                if sample_weight is None:
                    loss = nn.functional.cross_entropy(logits[name], target, weight=weight, ignore_index=-1)
                else:
                    loss = _weighted_cross_entropy(logits[name], target, weight, sample_weight)
                total = total + self.task_weights[name] * loss
            return total

    def _weighted_cross_entropy(logits, target, class_weight, sample_weight):
        """Cross-entropy with per-example weights; with all weights 1 it equals the usual weighted mean."""
        per_example = nn.functional.cross_entropy(logits, target, weight=class_weight, ignore_index=-1,
                                                  reduction="none")
        labelled = (target >= 0).to(logits.dtype)
        scale = class_weight[target.clamp(min=0)] if class_weight is not None else torch.ones_like(labelled)
        return (per_example * sample_weight).sum() / (scale * sample_weight * labelled).sum().clamp(min=1e-12)

    return MultiTaskClassifier()
