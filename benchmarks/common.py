"""Shared bits of the benchmark scripts: timing helpers, table printing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Sequence, TypeVar

RESULTS = Path(__file__).resolve().parent / "results"
_T = TypeVar("_T")


def progress(items: Iterable[_T], desc: str, total: int | None = None) -> Iterator[_T]:
    """A tqdm bar on stderr when it is a terminal (the tables go to stdout); the plain items otherwise.

    Not for timed loops: the bar costs a little per item.
    """
    try:
        from tqdm import tqdm
    except ImportError:
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [[str(c) for c in header]] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_json(name: str, data: dict[str, Any], out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(f"\nwrote {path}")
    return path


def pin_to_one_core() -> int | None:
    """Pin this process to one CPU (the 'one core' in the throughput target); returns it."""
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return cpu
    return None
