"""Benchmark: build ../shared/data/ant end to end (read, clean, normalize, near-dedup, split, write).

Prints articles per second, wall time per stage and peak memory (resident set size of this process).
Target on a 2-core machine: the 27,650 articles in under 60 s with under 3 GB peak memory.

    .venv/bin/python bench/data_build.py [--config configs/data/ant.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "data" / "ant.yaml"))
    args = parser.parse_args()
    shared = ROOT.parent / "shared" / "data" / "ant" / "articles.jsonl.gz"
    if not shared.exists():
        sys.exit(f"skipped: {shared} is absent (this benchmark needs the project's shared real data)")

    started = time.perf_counter()
    from train.data.build import build_dataset
    from train.data.config import load_data_config

    os.chdir(ROOT)  # the config's paths are relative to the project root
    config, schema = load_data_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        config = config.model_copy(update={"output": Path(tmp) / "ant"})
        result = build_dataset(config, schema)
        wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    records = sum(source["records"] for source in result.report["sources"])
    kept = sum(split["articles"] for split in result.report["splits"].values())
    print(f"articles read        {records}")
    print(f"articles written     {kept} (rejects {result.report['rejects']['count']}, "
          f"exact copies removed {result.report['duplicates']['exact_removed']})")
    print(f"wall time            {wall:.1f} s (imports included)")
    print(f"articles per second  {records / wall:.0f}")
    print(f"peak memory (RSS)    {peak_mb:.0f} MB")
    print("stages (s)           " + ", ".join(f"{k} {v}" for k, v in result.report["timings_s"].items()))


if __name__ == "__main__":
    main()
