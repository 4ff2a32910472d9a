"""Exporting a transformer model for tools without taawun: a Hugging Face sequence classifier, or ONNX.

Both exports hold the network alone. What taawun does around it (cleaning, normalization, AraBERT's preprocessing,
joining title and text, head-and-tail truncation or chunks, decision thresholds, `applies_when`) stays outside;
`encoder_text` gives the text the network reads.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from train.errors import TaawunError
from train.schema import Task

# The Hugging Face classifier reads tanh(pooler(h)) where taawun's head reads the [CLS] state h itself. With the pooler
# set to POOLER_SCALE * identity, tanh is linear to within float32 precision (tanh(x) = x - x^3/3 + ...; the [CLS]
# state is O(10) at most, so the cubic term is 1e-9 of x), and dividing the head's weights by POOLER_SCALE restores h.
POOLER_SCALE = 1e-4
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def encoder_text(predictor, titles: list[str], texts: list[str]) -> list[str]:
    """What the network reads for raw articles: cleaned, normalized, title and text joined, AraBERT-preprocessed.

    A Hugging Face pipeline or an ONNX session on an export must be given these strings to match `taawun predict`.
    """
    return predictor.model.documents(predictor.clean(titles), predictor.clean(texts))


def to_sequence_classifier(model, task: Task):
    """A BertForSequenceClassification holding the encoder and `task`'s head; labels from the schema."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    encoder = model.network.encoder
    if encoder.config.model_type != "bert":
        raise TaawunError(f"--format hf maps BERT encoders (AraBERT, the tiny BERT) onto BertForSequenceClassification;"
                          f" this model's encoder is {encoder.config.model_type!r}: use --format onnx")
    labels = task.label_names
    config = BertConfig.from_dict({
        **encoder.config.to_dict(), "architectures": ["BertForSequenceClassification"],
        "id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)},
        "problem_type": "single_label_classification"})
    classifier = BertForSequenceClassification(config)
    loaded = classifier.bert.load_state_dict(encoder.state_dict(), strict=False)
    missing = [key for key in loaded.missing_keys if not key.startswith("pooler.")]  # the pooler is set below
    if missing or loaded.unexpected_keys:
        raise TaawunError(f"the encoder's weights do not fit BertForSequenceClassification (missing {missing}, "
                          f"unexpected {loaded.unexpected_keys}): use --format onnx")
    head = model.network.heads[task.name]
    with torch.no_grad():
        classifier.bert.pooler.dense.weight.copy_(torch.eye(config.hidden_size) * POOLER_SCALE)
        classifier.bert.pooler.dense.bias.zero_()
        classifier.classifier.weight.copy_(head.weight / POOLER_SCALE)
        classifier.classifier.bias.copy_(head.bias)
    return classifier.eval()


def save_hf(model, task: Task, folder: Path) -> None:
    """Write `task`'s classifier and the tokenizer (cutting at the model's max_length) for pipeline()."""
    to_sequence_classifier(model, task).save_pretrained(folder, safe_serialization=True)
    tokenizer = model.tokenizer
    tokenizer.model_max_length = model.config.max_length  # what `truncation=True` cuts to
    tokenizer.save_pretrained(folder)


def onnx_outputs(tasks: list[Task]) -> list[str]:
    """The ONNX graph's output names: one logits tensor per task, in schema order."""
    return [f"logits_{task.name}" for task in tasks]


def save_onnx(model, folder: Path) -> None:
    """Write `model.onnx` (the encoder and every task's head; batch and sequence length dynamic) and the tokenizer."""
    import torch

    logits = _logits_module(model.network).eval()
    # Three distinct tensors: the exporter would read one tensor passed twice as one input.
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long),
               torch.zeros((2, 8), dtype=torch.long))
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with _quiet_exporter():
        program = torch.onnx.export(
            logits, example, dynamo=True, verbose=False,
            input_names=list(ONNX_INPUTS), output_names=onnx_outputs(model.tasks),
            dynamic_shapes={name: {0: batch, 1: sequence} for name in ONNX_INPUTS})
    program.save(str(folder / "model.onnx"))
    model.tokenizer.save_pretrained(folder)


def _logits_module(network):
    """The network as ONNX sees it: three token tensors in, a tuple of per-task logits out."""
    from torch import nn

    class Logits(nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.network(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids)["logits"]

    return Logits()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes (torchvision ops it skips) and warnings stay out of a command's output."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
