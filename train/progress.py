"""Progress of long steps, on stderr: a line as each step starts, and a bar over many items on a terminal.

stdout carries only what a command produces (tables, JSON), so progress never mixes with it. Off a terminal (a log
file, a pipe, a test) only the step lines are written, one per step, never a bar's redraws.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TypeVar

Item = TypeVar("Item")

BAR_MINIMUM = 2000  # fewer items than this go by too fast for a bar to help
_clock = {"start": time.perf_counter()}


def restart() -> None:
    """Count the seconds that step lines show from now (a command calls it as it starts)."""
    _clock["start"] = time.perf_counter()


def step(message: str) -> None:
    """Say on stderr that a step starts, after the seconds since the command began: `[12.3s] fitting topic ...`.

    Nothing while a bar is drawn (`taawun predict`'s, over batches): the line would tear it, and the bar says enough.
    """
    if not _bar_shown():
        print(f"[{time.perf_counter() - _clock['start']:.1f}s] {message}", file=sys.stderr, flush=True)


def bar(items: Iterable[Item] | None = None, *, total: int, unit: str, minimum: int = BAR_MINIMUM):
    """A tqdm bar on stderr over `items`, or to advance with `update(n)`, shown when stderr is a terminal and `total`
    reaches `minimum`; otherwise it shows nothing (and still iterates)."""
    from tqdm import tqdm

    return tqdm(items, total=total, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True,
                disable=total < minimum or not sys.stderr.isatty() or _bar_shown())


def _bar_shown() -> bool:
    """Whether a tqdm bar is being drawn now (by this module or another: a bar inside it would garble both)."""
    tqdm = sys.modules.get("tqdm")
    return tqdm is not None and any(not bar.disable for bar in list(getattr(tqdm.tqdm, "_instances", ())))
