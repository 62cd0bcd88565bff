"""Every benchmark in one go (what ``make bench`` runs): train → export → measure.

Run: ``python benchmarks/run_all.py [--runs runs/final] [--skip-train]``; results in ``benchmarks/results/*.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "final"))
    ap.add_argument("--data-root")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    dr = ["--data-root", args.data_root] if args.data_root else []
    py = sys.executable
    steps = []
    if not args.skip_train:
        steps.append([py, "benchmarks/train_targets.py", "--runs", str(runs), *dr])
    steps += [
        [py, "-m", "har_edge", "export", str(runs / "hapt_device"), "--quant", "all", "--target", "mcu", "--out", str(runs / "export_all"), *dr],
        [py, "benchmarks/export_latency.py", str(runs / "hapt_device"), *dr],
        [py, "benchmarks/stream_accuracy.py", "--bundle", str(runs / "export_all" / "float32"), *dr],
        [py, "benchmarks/stream_throughput.py", "--bundle", str(runs / "export_all" / "float32"), *dr],
        [py, "benchmarks/bench_reference.py", str(runs / "uci_har_9ch"), "--threads", "1"],
        [py, "benchmarks/device_install.py"],
        [py, "benchmarks/fault_fuzz.py", "--bundle", str(runs / "export_all" / "float32")],
        [py, "benchmarks/kill_recovery.py", "--bundle", str(runs / "export_all" / "float32"), "--runs", "10"],
        [py, "benchmarks/memory_soak.py", "--bundle", str(runs / "export_all" / "float32"), "--hours", "24", *dr],
    ]
    failed = 0
    for cmd in steps:
        print("\n$", " ".join(cmd), flush=True)
        failed += subprocess.run(cmd, cwd=REPO).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
