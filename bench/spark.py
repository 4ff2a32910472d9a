"""Batch scoring speed: `taawun predict` (one process) against `taawun predict --engine spark` (local Spark).

Trains the TF-IDF baseline on ANT (configs/data/ant.yaml, CNN held out) unless --model names a model, then scores
ANT's raw articles (all 27,650, or the first --limit) with each engine through the CLI, as a user would. Each command
is timed end to end (imports, the JVM and Spark, loading the model) and on the first 200 articles too, so that the
fixed cost and the steady rate come apart: steady articles/s = (N - 200) / (seconds for N - seconds for 200). The
labels of every Spark run are compared with those of `taawun predict`.

    .venv/bin/python bench/spark.py                                       # all of ANT; Spark on local[1], local[2]
    .venv/bin/python bench/spark.py --limit 5000 --model runs:/<id>/model --tracking-uri sqlite:///mlflow.db
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common  # noqa: E402

ANT = common.SHARED / "ant" / "articles.jsonl.gz"
SMALL = 200


def taawun(*args: str) -> tuple[float, float, str]:
    """Run the taawun CLI in a fresh Python; return its wall seconds, the CPU seconds of its process tree, its output.

    CPU time is sampled from every process under the command (the JVM and Spark's Python workers too, which are not
    waited for as children), so it holds on a machine others share, where wall time does not.
    """
    import psutil

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print("$ taawun " + " ".join(args), flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "train", *args], cwd=common.ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, text=True)
        cpu: dict[int, float] = {}
        root = psutil.Process(process.pid)
        while process.poll() is None:
            cpu.update(_cpu_seconds(root))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if process.returncode:
        sys.exit(f"failed: taawun {' '.join(args)}\n{output[-3000:]}")
    print(f"  {seconds:.1f} s, {sum(cpu.values()):.1f} CPU s", flush=True)
    return seconds, sum(cpu.values()), output


def _cpu_seconds(root) -> dict[int, float]:
    """pid -> user + system seconds so far, for `root` and every process under it."""
    import psutil

    seconds = {}
    try:
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system
    except psutil.Error:  # the command ended while being read
        pass
    return seconds


def train_model(work: Path) -> tuple[str, str]:
    """The TF-IDF baseline trained on ANT into a store under `work`: its model URI and the store's URI."""
    uri = f"sqlite:///{work / 'mlflow.db'}"
    import yaml

    config = yaml.safe_load((common.DATA_CONFIGS / "ant.yaml").read_text(encoding="utf-8"))
    config["output"] = str(work / "built" / "ant")
    (work / "ant.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    sets = [f"data={work / 'ant.yaml'}", f"tracking.uri={uri}", "tracking.experiment=bench-spark",
            f"output_dir={work / 'runs'}"]
    _, _, output = taawun("train", "configs/experiments/tfidf.yaml", *(a for s in sets for a in ("--set", s)))
    run_id = next(line.split()[1] for line in output.splitlines() if line.startswith("run "))
    return f"runs:/{run_id}/model", uri


def inputs(work: Path, limit: int | None) -> tuple[Path, Path, int]:
    """ANT's raw articles (the first `limit`) and their first SMALL, as JSONL files; and how many there are."""
    with gzip.open(ANT, "rt", encoding="utf-8") as lines:
        records = [line for line in lines if line.strip()][:limit]
    full, small = work / f"ant-{len(records)}.jsonl", work / f"ant-{SMALL}.jsonl"
    full.write_text("".join(records), encoding="utf-8")
    small.write_text("".join(records[:SMALL]), encoding="utf-8")
    return full, small, len(records)


def labels(output: Path) -> dict[str, tuple]:
    """id -> the labels of every task, from a JSONL file or a Spark folder of JSON part files."""
    files = sorted(output.glob("part-*")) if output.is_dir() else [output]
    rows = [json.loads(line) for file in files for line in file.read_text(encoding="utf-8").splitlines()]
    return {row["id"]: tuple(v for k, v in row.items() if k != "id" and not k.endswith("_probabilities"))
            for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model to score with (default: train the TF-IDF baseline on ANT)")
    parser.add_argument("--tracking-uri", help="the store --model is in")
    parser.add_argument("--limit", type=int, help="score only the first N articles of ANT")
    parser.add_argument("--masters", nargs="+", default=["local[1]", f"local[{os.cpu_count()}]"])
    parser.add_argument("--work", type=Path, default=common.ROOT / "runs" / "bench-spark")
    args = parser.parse_args()
    common.require(ANT)
    args.work.mkdir(parents=True, exist_ok=True)
    model, uri = (args.model, args.tracking_uri) if args.model else train_model(args.work)
    full, small, count = inputs(args.work, args.limit)
    load = os.getloadavg()[0]
    engines = [("taawun predict", [], ".jsonl")] + [
        (f"--engine spark ({master})", ["--engine", "spark", "--spark-master", master], f"-{master[6:-1]}.jsonl")
        for master in args.masters]
    reference, rows = None, []
    for name, options, suffix in engines:
        wall, cpu = {}, {}
        for source in (small, full):
            output = args.work / f"out-{source.stem}{suffix}"
            extra = ["--tracking-uri", uri] if uri else []
            wall[source], cpu[source], _ = taawun("predict", model, "--input", str(source), "--output", str(output),
                                                  *options, *extra)
        got = labels(output)
        reference = reference or got
        same = sum(got.get(key) == value for key, value in reference.items()) / len(reference)
        rows.append([name, f"{count:,}", f"{wall[full]:.1f}", f"{count / wall[full]:,.0f}", f"{wall[small]:.1f}",
                     f"{(count - SMALL) / max(wall[full] - wall[small], 1e-9):,.0f}", f"{cpu[full]:.1f}",
                     f"{cpu[small]:.1f}", f"{(count - SMALL) / max(cpu[full] - cpu[small], 1e-9):,.0f}",
                     f"{same:.2%}"])
    print(f"\n{count:,} ANT articles, {os.cpu_count()} cores, load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; model {model}\n")
    print("\n".join(common.table(
        ["engine", "articles", "wall s", "articles/s", f"wall s ({SMALL})", "steady articles/s", "CPU s",
         f"CPU s ({SMALL})", "steady articles per CPU s", "labels as taawun predict"], rows)))


if __name__ == "__main__":
    main()
