"""The README quotes only what the benchmark scripts measured: each figure block of
``benchmarks/results/summary.md`` (written by ``make bench``) is in README.md, unchanged, and the
README has no figure block the summary lacks (``python benchmarks/summary.py --update-readme`` syncs them)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- readme:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /readme -->", re.S)


def _blocks(path: Path) -> dict[str, str]:
    return {m["name"]: m["body"] for m in BLOCK.finditer(path.read_text())}


def test_the_readme_figure_blocks_are_the_summarys() -> None:
    summary = _blocks(REPO / "benchmarks" / "results" / "summary.md")
    readme = _blocks(REPO / "README.md")
    assert len(summary) >= 5, "make bench writes benchmarks/results/summary.md; commit it"
    assert sorted(readme) == sorted(summary), "README.md and summary.md have different figure blocks"
    differ = [name for name in summary if readme[name] != summary[name]]
    assert not differ, f"README.md blocks {differ} differ from benchmarks/results/summary.md (run benchmarks/summary.py --update-readme)"
