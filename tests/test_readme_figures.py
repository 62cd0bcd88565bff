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


def test_summary_only_renders_the_named_sections_and_keeps_the_others(tmp_path: Path, monkeypatch) -> None:
    from benchmarks import summary

    monkeypatch.setattr(summary, "RESULTS", tmp_path)  # no JSON at all: a fresh render says "not measured"
    previous = (REPO / "benchmarks" / "results" / "summary.md").read_text()
    text = summary.render(tmp_path, ("Personalisation",), previous)
    old, new = summary._sections(previous), summary._sections(text)
    assert list(new) == list(old)
    assert new["Personalisation: WISDM watch, 60 s per activity per person"][0].startswith("_not measured")
    assert all(new[t] == old[t] for t in old if not t.startswith("Personalisation"))
