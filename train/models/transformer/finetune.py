"""Fine-tuning on the Hugging Face Trainer, and the tiny from-scratch BERT used offline and in tests.

Dynamic padding and length-grouped batches, gradient accumulation, warmup then linear decay, bf16/fp16 on a GPU that
supports it, early stopping on the validation macro-F1 averaged over tasks, the best checkpoint restored at the end,
and resuming from the last checkpoint. Data-parallel under torchrun: every process trains, the main one reports.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import TaawunError
from train.config.experiment import TinyBertConfig, TransformerModelConfig
from train.models.transformer.model import (
    Collator,
    FitContext,
    TransformerModel,
    build_network,
    encode,
    load_pretrained,
)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# -- the tiny BERT ------------------------------------------------------------------------------------------------
def build_tiny_bert(texts: list[str], config: TinyBertConfig, folder: Path, seed: int) -> Path:
    """A small BERT with random weights and a WordPiece vocabulary trained on `texts`, saved to `folder`."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.normalizers import BertNormalizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    # No lowercasing or accent stripping: NFD-stripping would take hamza and madda off Arabic letters.
    options = {"clean_text": True, "handle_chinese_chars": False, "strip_accents": False, "lowercase": False}
    wordpiece = BertWordPieceTokenizer(**options)
    # The trainer numbers the "##x" continuation pieces in hash-map order, which changes from one training to the
    # next, and its merges break ties by those numbers: the same texts gave a different vocabulary, and so a different
    # model, every time (huggingface/tokenizers#1794). Numbered up front, in sorted order, they make it reproducible.
    normalizer = BertNormalizer(**options)
    alphabet = sorted(set().union(*(normalizer.normalize_str(text) for text in texts)) - set(" \t\n\r"))
    wordpiece.train_from_iterator(texts, vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                                  special_tokens=SPECIAL_TOKENS + [f"##{char}" for char in alphabet],
                                  show_progress=False)
    tokenizer = BertTokenizerFast(vocab=wordpiece.get_vocab(), do_lower_case=False, strip_accents=False,
                                  tokenize_chinese_chars=False)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=config.hidden_size,
                                num_hidden_layers=config.layers, num_attention_heads=config.heads,
                                intermediate_size=config.intermediate_size, max_position_embeddings=512))
    bert.save_pretrained(folder, safe_serialization=True)
    return folder


def unknown_rate(tokenizer, texts: list[str]) -> float:
    """Share of tokens that are [UNK]: a vocabulary that cannot spell Arabic words fails silently otherwise."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    total = sum(len(row) for row in ids)
    unknown = sum(row.count(tokenizer.unk_token_id) for row in ids)
    return unknown / total if total else 0.0


# -- fine-tuning --------------------------------------------------------------------------------------------------
def fit_transformer(model: TransformerModel, split, seed: int, validation, context: FitContext) -> None:
    """Fine-tune `model` on `split`; the network ends with the weights of the best validation epoch."""
    from transformers import EarlyStoppingCallback, set_seed

    config = model.config
    set_seed(seed)
    args = _training_args(config, context.work_dir / "checkpoints", seed, has_validation=bool(len(validation)))
    with args.main_process_first(desc="preparing the encoder"):
        name = _encoder_source(model, split, context.work_dir, seed)
    model.tokenizer, encoder = load_pretrained(name)
    _check_vocabulary(model, validation if len(validation) else split)
    labels = {task.name: list(split[task.name]) for task in model.tasks}
    class_weights = _class_weights(model, labels) if config.class_weights else {}
    model.network = build_network(encoder, model.tasks, config.task_weights, class_weights)
    train_set = _encode_split(model, split, labels)
    callbacks = list(context.callbacks)
    if config.early_stopping_patience and len(validation):
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = _make_trainer(model, args, train_set, validation, callbacks)
    if not context.resume and args.process_index == 0:
        shutil.rmtree(args.output_dir, ignore_errors=True)  # a fresh run must not pick up another run's checkpoints
    trainer.train(resume_from_checkpoint=_last_checkpoint(args.output_dir) if context.resume else None)
    model.network = trainer.model
    model.network.eval()


def _encoder_source(model: TransformerModel, split, work_dir: Path, seed: int) -> str:
    """The pretrained encoder to start from: `model.name`, or a tiny BERT built here from the training split."""
    tiny = model.config.tiny
    if tiny is None:
        return model.config.name
    folder = work_dir / "tiny-bert"
    if not (folder / "config.json").is_file():
        build_tiny_bert(model.documents(list(split["title"]), list(split["text"])), tiny, folder, seed)
    return str(folder)


def _check_vocabulary(model: TransformerModel, split) -> None:
    rate = unknown_rate(model.tokenizer, model.documents(list(split["title"])[:200], list(split["text"])[:200]))
    if rate > 0.05:
        raise TaawunError(f"{rate:.1%} of the tokens of the data are [UNK] for this tokenizer: its vocabulary does "
                          "not cover Arabic text. Use an Arabic model, or a larger tiny.vocab_size")


def _class_weights(model: TransformerModel, labels: dict[str, list[int]]) -> dict[str, list[float]]:
    """Balanced class weights per task, from the training split only (absent classes weigh 1)."""
    weights = {}
    for task in model.tasks:
        y = np.asarray(labels[task.name])
        y = y[y >= 0]
        counts = np.bincount(y, minlength=len(task.labels)).astype(float)
        present = counts > 0
        values = np.ones(len(task.labels))
        values[present] = len(y) / (present.sum() * counts[present])
        weights[task.name] = values.tolist()
    return weights


def _encode_split(model: TransformerModel, split, labels: dict[str, list[int]]) -> list[dict[str, Any]]:
    docs = model.documents(list(split["title"]), list(split["text"]))
    targets = [model.preprocess(t) for t in split[model.target_field]] if model.target_field else None
    return encode(model.tokenizer, docs, targets, model.config, labels).features


def _precision(config: TransformerModelConfig) -> dict[str, bool]:
    import torch

    choice = config.precision
    if choice == "auto":
        if not torch.cuda.is_available():
            return {}
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if choice in ("bf16", "fp16") and not torch.cuda.is_available():
        raise TaawunError(f"model.precision: {choice} needs a CUDA GPU; use auto or fp32 on a CPU")
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def _training_args(config: TransformerModelConfig, output_dir: Path, seed: int, has_validation: bool):
    import torch
    from transformers import TrainingArguments

    evaluate = "epoch" if has_validation else "no"
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the training steps
        lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy=evaluate,
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=has_validation,
        metric_for_best_model="macro_f1" if has_validation else None,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        report_to="none",
        remove_unused_columns=False,
        label_names=[],
        seed=seed,
        data_seed=seed,
        # Data-parallel on CPUs (torchrun without GPUs) needs gloo; None lets a single process stay single.
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available() else None,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        **_precision(config),
    )


def _make_trainer(model: TransformerModel, args, train_set, validation, callbacks):
    """A Trainer whose evaluation is ours: article-level macro-F1 per task (chunks averaged), on validation."""
    from transformers import Trainer

    from train.evaluation.metrics import labelled_macro_f1

    labels = {task.name: np.asarray(validation[task.name]) for task in model.tasks} if len(validation) else {}
    targets = {model.target_field: list(validation[model.target_field])} if model.target_field else {}

    class ArticleTrainer(Trainer):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            model.network = self.model
            proba = model.predict_proba(list(validation["title"]), list(validation["text"]), targets)
            metrics = {}
            for task in model.tasks:
                metrics[f"{metric_key_prefix}_{task.name}_macro_f1"] = labelled_macro_f1(labels[task.name],
                                                                                         proba[task.name])
            metrics[f"{metric_key_prefix}_macro_f1"] = float(np.mean(list(metrics.values())))
            metrics["epoch"] = self.state.epoch
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            self.model.train()
            return metrics

    pad = model.tokenizer.pad_token_id
    collator = Collator(pad, None if model.config.padding == "dynamic" else model.config.max_length)
    # eval_dataset only satisfies the Trainer's checks: ArticleTrainer.evaluate reads `validation` itself.
    return ArticleTrainer(model=model.network, args=args, train_dataset=train_set, data_collator=collator,
                          eval_dataset=validation if len(validation) else None, callbacks=callbacks,
                          processing_class=model.tokenizer)


def _last_checkpoint(folder: str) -> str:
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(folder) if Path(folder).is_dir() else None
    if last is None:
        raise TaawunError(f"--resume: no checkpoint in {folder}; start the run without --resume")
    return last


def mlflow_callback():
    """Per-step train loss and per-epoch validation macro-F1 per task, into the active MLflow run (main process)."""
    from transformers import TrainerCallback

    class MlflowEpochs(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            import mlflow

            if not state.is_world_process_zero or not logs or mlflow.active_run() is None:
                return
            metrics = {}
            if "loss" in logs:
                metrics["train/loss"] = logs["loss"]
            if "learning_rate" in logs:
                metrics["train/learning_rate"] = logs["learning_rate"]
            for key, value in logs.items():
                if key.startswith("eval_") and key.endswith("macro_f1"):
                    task = key.removeprefix("eval_").removesuffix("_macro_f1").removesuffix("macro_f1") or "mean"
                    metrics[f"epoch/validation/{task.rstrip('_') or 'mean'}/macro_f1"] = value
            if metrics:
                mlflow.log_metrics(metrics, step=state.global_step)

    return MlflowEpochs()
