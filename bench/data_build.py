"""Benchmark: build ../shared/data/ant end to end (read, clean, normalize, near-dedup, split, write).

Prints articles per second, wall time per stage and peak memory (resident set size of this process).
Target on a 2-core machine: the 27,650 articles in under 60 s with under 3 GB peak memory.

    .venv/bin/python bench/data_build.py [--config configs/data/ant.yaml]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

# The wall time includes the imports (numpy with bench.common, taawun's in common.build): a user's `taawun data build`
# pays them too.
STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(common.DATA_CONFIGS / "ant.yaml"))
    args = parser.parse_args()
    common.require(common.SHARED / "ant" / "articles.jsonl.gz")
    with tempfile.TemporaryDirectory() as tmp:
        result, _ = common.build(args.config, Path(tmp) / "ant")
        wall = time.perf_counter() - STARTED
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
