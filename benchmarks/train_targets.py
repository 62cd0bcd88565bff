"""Train every published config with ``har-edge train`` and print the accuracy / time table.

Run: ``python benchmarks/train_targets.py [--runs runs/final] [--data-root ../shared/data]``
(≈ 13 min on 2 cores: uci_har_9ch ~3 min, uci_har_acc3 ~2.5 min, hapt_device ~2.5 min, uci_har_9ch_rnn ~1.5 min,
wisdm_watch ~2 min, hapt_stream ~12 min). ``--skip-existing`` keeps runs that already have their metrics.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"uci_har_9ch": 0.93, "uci_har_acc3": 0.88, "hapt_device": None, "uci_har_9ch_rnn": None, "wisdm_watch": None,
           "hapt_stream": None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "final"))
    ap.add_argument("--data-root")
    ap.add_argument("--only", nargs="*", default=list(CONFIGS))
    ap.add_argument("--skip-existing", action="store_true", help="reuse a run that already has metrics.json")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    rows, res = [], {}
    for name in args.only:
        out = Path(args.runs) / name
        cmd = [sys.executable, "-m", "har_edge", "train", "--config", str(REPO / "training" / "configs" / f"{name}.toml"), "--out", str(out), "--quiet"]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        t0 = time.monotonic()
        if not (args.skip_existing and (out / "metrics.json").is_file()):
            subprocess.run(cmd, check=True)
        wall = time.monotonic() - t0
        m = json.loads((out / "metrics.json").read_text())
        target = CONFIGS.get(name)
        ok = "-" if target is None else ("yes" if m["test_accuracy"] >= target else "NO")
        res[name] = {"test_accuracy": m["test_accuracy"], "test_macro_f1": m["test_macro_f1"], "train_seconds": m["train_seconds"],
                     "wall_seconds": round(wall, 1), "epochs": m["epochs_run"], "parameters": m["parameters"], "target": target}
        rows.append([name, round(m["test_accuracy"], 4), round(m["test_macro_f1"], 4), m["parameters"], m["epochs_run"],
                     round(m["train_seconds"]), round(wall), target or "-", ok])
    print_table(rows, ["config", "test acc", "macro-F1", "params", "epochs", "train s", "wall s", "target", "met"])
    write_json("train_targets", {"runs": args.runs, "results": res}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
