"""What training-time augmentation (introduced together with early-stopping patience 15, was 10) is worth.

Run: ``python benchmarks/augmentation_ablation.py [--runs runs/final] [--data-root ../shared/data]``

For each config, the published run (``RUNS/<name>``, augmentation on, patience 15) is compared with the
same config and seed trained without augmentation and with patience 10 (``RUNS/<name>_no_aug``, trained
here from a config written beside it unless it exists). Same data, same held-out test subjects.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("uci_har_9ch", "uci_har_acc3", "hapt_device")
ABLATION = {"augment_rotation_deg": "0.0", "augment_scale": "0.0", "augment_noise": "0.0", "patience": "10"}


def ablated_config(text: str) -> str:
    """The config TOML with augmentation off and patience 10 (keys replaced in the [train] table)."""
    out, section = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        key = stripped.split("=", 1)[0].strip()
        if section == "[train]" and key in ABLATION:
            continue
        out.append(line)
        if stripped == "[train]":
            out += [f"{k} = {v}" for k, v in ABLATION.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "final"))
    ap.add_argument("--only", nargs="*", default=list(CONFIGS))
    ap.add_argument("--data-root")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    rows, res = [], {}
    for name in args.only:
        base, ablated = runs / name, runs / f"{name}_no_aug"
        if not (ablated / "metrics.json").is_file():
            ablated.parent.mkdir(parents=True, exist_ok=True)
            cfg = runs / f"{name}_no_aug.toml"
            cfg.write_text(ablated_config((REPO / "training" / "configs" / f"{name}.toml").read_text()))
            cmd = [sys.executable, "-m", "har_edge", "train", "--config", str(cfg), "--out", str(ablated), "--quiet"]
            subprocess.run(cmd + (["--data-root", args.data_root] if args.data_root else []), check=True, cwd=REPO)
        with_aug = json.loads((base / "metrics.json").read_text())["test_accuracy"]
        without = json.loads((ablated / "metrics.json").read_text())["test_accuracy"]
        res[name] = {"with_augmentation": with_aug, "without_augmentation_patience_10": without,
                     "gain_pp": round((with_aug - without) * 100, 2)}
        rows.append([name, round(without, 4), round(with_aug, 4), f"{(with_aug - without) * 100:+.2f}"])
    print_table(rows, ["config", "no augmentation, patience 10", "augmentation, patience 15", "gain (pp)"])
    write_json("augmentation_ablation", {"runs": str(runs), "results": res}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
