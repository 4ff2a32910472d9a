"""Fine-tuning on the Hugging Face Trainer.

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
from train.models.base import Articles, FitContext, Labelled
from train.models.hub import load_pretrained
from train.models.transformer.config import TransformerConfig
from train.models.transformer.encoding import Collator, encode
from train.models.transformer.network import build_network
from train.models.transformer.tiny import build_tiny_bert, unknown_rate


def fit_transformer(model, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> None:
    """Fine-tune `model` (a TransformerModel); the network ends with the weights of the best validation epoch."""
    from transformers import EarlyStoppingCallback, set_seed

    config = model.config
    work_dir = context.work_dir or Path("runs") / "work"
    set_seed(context.seed)
    args = _training_args(config, work_dir / "checkpoints", context.seed, context.has_validation)
    with args.main_process_first(desc="preparing the encoder"):
        name = _encoder_source(model, articles, work_dir, context.seed)
    model.tokenizer, encoder = load_pretrained(name)
    _check_vocabulary(model, context.validation.articles if context.has_validation else articles)
    class_weights = _class_weights(model, labels) if config.class_weights else {}
    model.network = build_network(encoder, model.tasks, config.task_weights, class_weights)
    train_set = _encode_training(model, articles, labels)
    callbacks = [_metrics_callback(context.log_metrics)] if context.log_metrics else []
    if config.early_stopping_patience and context.has_validation:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = _make_trainer(model, args, train_set, context.validation if context.has_validation else None, callbacks)
    if not context.resume and args.process_index == 0:
        shutil.rmtree(args.output_dir, ignore_errors=True)  # a fresh run must not pick up another run's checkpoints
    trainer.train(resume_from_checkpoint=_last_checkpoint(args.output_dir) if context.resume else None)
    model.network = trainer.model
    model.network.eval()


def _encoder_source(model, articles: Articles, work_dir: Path, seed: int) -> str:
    """The pretrained encoder to start from: `model.name`, or a tiny BERT built here from the training articles."""
    tiny = model.config.tiny
    if tiny is None:
        return model.config.name
    folder = work_dir / "tiny-bert"
    if not (folder / "config.json").is_file():
        build_tiny_bert(model.documents(articles.titles, articles.texts), tiny, folder, seed)
    return str(folder)


def _check_vocabulary(model, articles: Articles) -> None:
    rate = unknown_rate(model.tokenizer, model.documents(articles.titles[:200], articles.texts[:200]))
    if rate > 0.05:
        raise TaawunError(f"{rate:.1%} of the tokens of the data are [UNK] for this tokenizer: its vocabulary does "
                          "not cover Arabic text. Use an Arabic model, or a larger tiny.vocab_size")


def _class_weights(model, labels: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Balanced class weights per task, from the training labels only (absent classes weigh 1)."""
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


def _encode_training(model, articles: Articles, labels: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    docs = model.documents(articles.titles, articles.texts)
    targets = [model.preprocess(t) for t in articles.targets[model.target_field]] if model.target_field else None
    weights = {task.name: articles.weights_for(task.name) for task in model.tasks}
    if all(np.all(w == 1) for w in weights.values()):
        weights = None  # the unweighted loss, exactly as before weights existed
    task_labels = {task.name: [int(v) for v in labels[task.name]] for task in model.tasks}
    return encode(model.tokenizer, docs, targets, model.config, task_labels, weights).features


def _precision(config: TransformerConfig) -> dict[str, bool]:
    import torch

    choice = config.precision
    if choice == "auto":
        if not torch.cuda.is_available():
            return {}
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if choice in ("bf16", "fp16") and not torch.cuda.is_available():
        raise TaawunError(f"model.precision: {choice} needs a CUDA GPU; use auto or fp32 on a CPU")
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def _training_args(config: TransformerConfig, output_dir: Path, seed: int, has_validation: bool):
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


def _make_trainer(model, args, train_set, validation: Labelled | None, callbacks):
    """A Trainer whose evaluation is ours: article-level macro-F1 per task (chunks averaged), on validation."""
    from transformers import Trainer

    from train.evaluation.metrics import labelled_macro_f1

    class ArticleTrainer(Trainer):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            model.network = self.model
            proba = model.predict_proba(validation.articles)
            metrics = {}
            for task in model.tasks:
                metrics[f"{metric_key_prefix}_{task.name}_macro_f1"] = labelled_macro_f1(
                    validation.labels[task.name], proba[task.name])
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
                          eval_dataset=train_set[:1] if validation is not None else None, callbacks=callbacks,
                          processing_class=model.tokenizer)


def _last_checkpoint(folder: str) -> str:
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(folder) if Path(folder).is_dir() else None
    if last is None:
        raise TaawunError(f"--resume: no checkpoint in {folder}; start the run without --resume")
    return last


def _metrics_callback(log_metrics):
    """Per-step train loss and per-epoch validation macro-F1 per task, reported through `log_metrics` (main process)."""
    from transformers import TrainerCallback

    class EpochMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
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
                log_metrics(metrics, state.global_step)

    return EpochMetrics()
