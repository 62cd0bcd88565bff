"""Seed spread of the deployable model: Keras and int8 test accuracy for three training seeds.

Run: ``python benchmarks/seed_spread.py [--runs runs/final] [--seeds 42 43 44] [--data-root ../shared/data]``

For each seed: ``har-edge train --config training/configs/hapt_device.toml --seed S`` (seed 42 is the
published run ``RUNS/hapt_device``; the others go to ``RUNS/hapt_device_seedS``; existing runs are reused)
then ``har-edge export RUN --quant int8``; the int8 change is measured against the same seed's Keras model.
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
CONFIG = REPO / "training" / "configs" / "hapt_device.toml"


def _har_edge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "har_edge", *args], check=True, cwd=REPO)


def seed_study_args(doc: str, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The options of a study over seeds (``--runs``, ``--seeds``, ``--data-root``, ``--out``; ``doc``'s first line is
    the description) and the ``--data-root`` arguments to hand on to ``har-edge``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "final"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--data-root")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    return args, (["--data-root", args.data_root] if args.data_root else [])


def main(argv: list[str] | None = None) -> int:
    args, dr = seed_study_args(__doc__, argv)
    runs = Path(args.runs)
    rows, res = [], {}
    for seed in args.seeds:
        run = runs / ("hapt_device" if seed == 42 else f"hapt_device_seed{seed}")
        if not (run / "metrics.json").is_file():
            _har_edge("train", "--config", str(CONFIG), "--out", str(run), "--seed", str(seed), "--quiet", *dr)
        export = runs / f"export_int8_seed{seed}"
        if not (export / "report.json").is_file():
            _har_edge("export", str(run), "--quant", "int8", "--out", str(export), "--no-interpreter-check", *dr)
        metrics = json.loads((run / "metrics.json").read_text())
        report = json.loads((export / "report.json").read_text())
        keras, int8 = report["keras"]["test_accuracy"], report["tflite"]["test_accuracy"]
        res[str(seed)] = {"keras_test_accuracy": keras, "int8_test_accuracy": int8,
                          "int8_change_pp": round((int8 - keras) * 100, 2), "train_seconds": metrics["train_seconds"]}
        rows.append([seed, round(keras, 4), round(int8, 4), f"{(int8 - keras) * 100:+.2f}", round(metrics["train_seconds"])])
    keras_all = [r["keras_test_accuracy"] for r in res.values()]
    summary = {"keras_mean": round(sum(keras_all) / len(keras_all), 4),
               "keras_range_pp": round((max(keras_all) - min(keras_all)) * 100, 2),
               "max_abs_int8_change_pp": max(abs(r["int8_change_pp"]) for r in res.values())}
    print_table(rows, ["seed", "Keras accuracy", "int8 accuracy", "int8 change (pp)", "train s"])
    print(f"Keras mean {summary['keras_mean']:.4f}, range {summary['keras_range_pp']:.2f} pp; "
          f"largest int8 change {summary['max_abs_int8_change_pp']:.2f} pp (target <= 0.5)")
    write_json("seed_spread", {"runs": str(runs), "seeds": res, "summary": summary}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
