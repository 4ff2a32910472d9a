"""Benchmark: fine-tuning speed and memory, on the tiny BERT (CPU) and, when a GPU is present, AraBERT-base size.

On real articles from ../shared/data/gold (default schema; `--data ant` for ANT sections):
1. dynamic padding with length-grouped batches against padding every batch to max_length (random order), and
   dynamic padding alone: time of the Trainer's training loop (building the tokenizer and encoding the articles,
   the same for all, are timed apart), training samples/s, tokens/s (real tokens, padding excluded), peak resident
   memory, test macro-F1;
2. one multi-task model against one single-task model per task: training and prediction time, test macro-F1;
3. an AraBERT-base-sized BERT (random weights; speed only): training samples/s at max_length 512, from which the
   time per epoch on gold and ANT follows. On a CPU only a few steps run; with CUDA, bf16/fp16 as configured.

    .venv/bin/python bench/finetune.py [--data gold|ant] [--epochs 10] [--base-steps 4] [--train-limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class PeakMemory:
    """Samples this process's resident memory in a thread; `peak_mb` after the block."""

    def __enter__(self):
        import psutil

        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak_mb = self.peak / 2**20


@contextmanager
def training_loop_clock():
    """Times the Trainer's training loop alone, from `on_train_begin` to `on_train_end` (`seconds` after the block).

    A FitContext carries no Trainer callbacks, and `fit` also builds the tokenizer and encodes the articles: so, for
    the block, the Trainer that `train.models.transformer.finetune` makes gets a timing callback added to it.
    """
    from transformers import TrainerCallback

    from train.models.transformer import finetune

    class LoopClock(TrainerCallback):
        seconds = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.started

    clock, make_trainer = LoopClock(), finetune._make_trainer

    def timed_trainer(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.add_callback(clock)
        return trainer

    finetune._make_trainer = timed_trainer
    try:
        yield clock
    finally:
        finetune._make_trainer = make_trainer
    if clock.seconds is None:
        raise RuntimeError("the training loop was not timed: train.models.transformer.finetune no longer makes its "
                           "Trainer with _make_trainer; update training_loop_clock")


def run_variant(name, model_config, tasks, dataset, work: Path, seed: int = common.SEED) -> dict:
    """Fine-tune one configuration (no validation passes, so only training is timed), then score on test."""
    from train.models.base import FitContext
    from train.models.transformer.encoding import encode

    train = common.labelled(dataset["train"], tasks)
    context = FitContext(seed=seed, work_dir=work / f"{name}-{seed}")
    with PeakMemory() as memory, training_loop_clock() as clock:
        model, fit_seconds = common.fit(model_config, tasks, train, context)
    seconds = clock.seconds
    windows = encode(model.tokenizer, model.documents(train.articles.titles, train.articles.texts), None,
                     model_config).features
    tokens = sum(len(w["input_ids"]) for w in windows) * model_config.epochs
    result = common.score(model, common.labelled(dataset["test"], tasks))
    samples = len(windows) * model_config.epochs
    return {"name": name, "seconds": seconds, "fit_s": fit_seconds, "samples_s": samples / seconds,
            "tokens_s": tokens / seconds, "peak_mb": memory.peak_mb, "predict_s": result["predict_s"],
            "f1": result["f1"]}


def tiny_config(epochs: float, **changes):
    """tiny_bert.yaml's model for `epochs` epochs, without early stopping (there is no validation), and `changes`."""
    return common.experiment_model("tiny_bert", epochs=epochs, early_stopping_patience=None, **changes)


def padding_table(dataset, schema, work: Path, epochs: float, seeds: int) -> list[dict]:
    """At max_length 512, the length AraBERT is fine-tuned at: articles shorter than that are where padding costs.

    Each variant runs with `seeds` seeds (network initialisation and batch order): times are averaged, and the spread
    of the test macro-F1 across seeds is the noise the variants' metrics are compared against.
    """
    variants = [("dynamic padding + length grouping", {}),
                ("pad to max_length, random order", {"padding": "max_length", "group_by_length": False}),
                ("dynamic padding, random order", {"group_by_length": False})]
    rows = []
    for name, changes in variants:
        runs = [run_variant(name, tiny_config(epochs, max_length=512, **changes), schema.tasks, dataset, work,
                            seed=common.SEED + i) for i in range(seeds)]
        row = {key: float(np.mean([r[key] for r in runs])) for key in ("seconds", "fit_s", "samples_s", "tokens_s")}
        row.update(name=name, peak_mb=max(r["peak_mb"] for r in runs),
                   f1_runs={t: [r["f1"][t] for r in runs] for t in schema.task_names})
        rows.append(row)
    return rows


def multitask_table(dataset, schema, work: Path, epochs: float) -> list[dict]:
    multi = run_variant("multi-task (one model)", tiny_config(epochs), schema.tasks, dataset, work)
    singles = [run_variant(f"single-task {task.name}", tiny_config(epochs), [task], dataset, work)
               for task in schema.tasks]
    combined = {"name": f"{len(singles)} single-task models", "seconds": sum(s["seconds"] for s in singles),
                "predict_s": sum(s["predict_s"] for s in singles),
                "f1": {k: v for s in singles for k, v in s["f1"].items()}}
    return [multi, combined]


def base_speed(steps: int) -> dict:
    """Training samples/s of a BERT-base-sized encoder (random weights) at max_length 512, a few steps."""
    import torch
    from transformers import BertConfig, BertModel

    from train.models.transformer.encoding import Collator
    from train.models.transformer.network import build_network

    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = BertModel(BertConfig(vocab_size=64000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                   intermediate_size=3072, max_position_embeddings=512))
    network = build_network(encoder, [], {}, {}).to(device)  # encoder speed: heads are negligible
    batch_size = 32 if device == "cuda" else 8
    dtype = (torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16) \
        if device == "cuda" else torch.float32
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-5)
    batch = Collator(0, 512)([{"input_ids": list(np.random.randint(5, 60000, 510)), "token_type_ids": [0] * 510,
                               "attention_mask": [1] * 510}] * batch_size)
    batch = {k: v.to(device) for k, v in batch.items()}
    timings = []
    for step in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            state = network.encoder(**batch).last_hidden_state
            loss = state[:, 0].float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up kernels and allocations
            timings.append(time.perf_counter() - started)
    samples_s = batch_size / float(np.mean(timings))
    return {"device": torch.cuda.get_device_name() if device == "cuda" else f"CPU ({os.cpu_count()} cores)",
            "samples_s": samples_s, "batch": batch_size, "dtype": str(dtype).replace("torch.", "")}


def print_tables(args, dataset, schema, padding: list[dict], tasks: list[dict], speed: dict) -> None:
    """The padding variants, the multi-task comparison and the BERT-base speed, as Markdown tables."""
    import torch

    f1_header = [f"{t} macro-F1" for t in schema.task_names]
    print(f"\n{args.data}: {len(dataset['train'])} training articles, {len(dataset['test'])} test; tiny BERT "
          f"(tiny_bert.yaml), {args.epochs:g} epochs, {torch.get_num_threads()} CPU threads; padding "
          f"variants: mean of {args.seeds} seed(s), macro-F1 ± sd across seeds\n")
    print("\n".join(common.table(
        ["batches (max_length 512)", "training loop s", "fit s", "samples/s", "tokens/s", "peak RSS MB", *f1_header],
        [[r["name"], f"{r['seconds']:.1f}", f"{r['fit_s']:.1f}", f"{r['samples_s']:.1f}", f"{r['tokens_s']:,.0f}",
          f"{r['peak_mb']:,.0f}", *(common.mean_sd(r["f1_runs"][t], ddof=1) for t in schema.task_names)]
         for r in padding])))
    speedup = padding[0]["samples_s"] / padding[1]["samples_s"]
    print(f"\nspeed-up of dynamic padding + length grouping: {speedup:.2f}x\n")
    if tasks:
        print("\n".join(common.table(
            ["models (max_length 256)", "training loop s", "predict s (test)", *f1_header],
            [[r["name"], f"{r['seconds']:.1f}", f"{r['predict_s']:.2f}",
              *(f"{r['f1'][t]:.3f}" for t in schema.task_names)] for r in tasks])))
    print(f"\nBERT-base size (random weights), max_length 512, batch {speed['batch']}, {speed['dtype']}, "
          f"{speed['device']}: {speed['samples_s']:.2f} training samples/s")
    for name, articles in (("gold (168 training articles)", 168), ("ANT (19,656 training articles)", 19656)):
        minutes = articles / speed["samples_s"] / 60
        print(f"  one epoch on {name}: about {minutes:,.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="gold", choices=["gold", "ant"])
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--base-steps", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per padding variant (mean time, macro-F1 spread)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="fine-tune on this many training articles (a seeded sample), e.g. for ANT on a CPU")
    args = parser.parse_args()
    common.require()
    from train.models.hub import quiet_transformers

    quiet_transformers()  # the Trainer still prints its logs; the tables come last
    with tempfile.TemporaryDirectory() as tmp:
        dataset, schema = common.dataset(args.data, Path(tmp))
        if args.train_limit and args.train_limit < len(dataset["train"]):
            dataset["train"] = dataset["train"].shuffle(seed=common.SEED).select(range(args.train_limit))
            dataset["test"] = dataset["test"].shuffle(seed=common.SEED).select(range(min(len(dataset["test"]), 1000)))
        padding = padding_table(dataset, schema, Path(tmp), args.epochs, args.seeds)
        # With one task (ANT sections) there is nothing to compare.
        tasks = multitask_table(dataset, schema, Path(tmp), args.epochs) if len(schema.tasks) > 1 else []
        speed = base_speed(args.base_steps)
    print_tables(args, dataset, schema, padding, tasks, speed)


if __name__ == "__main__":
    main()
