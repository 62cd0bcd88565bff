"""Is the streaming model's training recipe better than the one before it, beyond seed noise? Judged on the validation subjects.

Run: ``python benchmarks/stream_training_recipe.py [--runs runs/final] [--seeds 42 43 44] [--data-root ../shared/data]``
(about 35 min on 2 cores from scratch: eight trainings of 3-6 min; existing runs and exports are reused)

``training/configs/hapt_stream.toml`` trains with ``[train] clip_norm = 1.0`` (the global gradient norm is
clipped, so one batch cannot throw the LSTM's weights far: the loss spikes of the old recipe) and
``average_weights = 0.99`` (an exponential moving average of the weights after each batch; validation, early
stopping and the result use the average) for up to 80 epochs. Variants: *before* (neither, 40 epochs: the
recipe before), *clip only* (no average), and the config itself. For each variant and seed: ``har-edge
train`` (the config at seed 42 is the published ``RUNS/hapt_stream``), ``har-edge export --quant float32``,
then the validation subjects (1 11 21 30) streamed through the device runtime as ``har-edge run`` does
(:mod:`benchmarks.experience_tuning`), scored without smoothing and with the config's ``[smoothing]``.
The test subjects are not looked at here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from benchmarks.experience_tuning import evaluate, raw_streams  # noqa: E402
from benchmarks.hapt_streams import VALIDATION_SUBJECTS, load_subjects  # noqa: E402
from benchmarks.personalisation import toml_text  # noqa: E402
from benchmarks.seed_spread import _har_edge, seed_study_args  # noqa: E402
from har_edge.config import read_toml  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402
from har_edge.runtime.smoothing import SmoothingConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "training" / "configs" / "hapt_stream.toml"
# variant -> (run name, [train] changes to hapt_stream.toml)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "before": ("hapt_stream_before", {"average_weights": 0.0, "clip_norm": 0.0, "epochs": 40, "max_minutes": 30.0}),
    "clip only": ("hapt_stream_clip_only", {"average_weights": 0.0}),
    "clip + average (hapt_stream.toml)": ("hapt_stream", {}),
}


def run_for(runs: Path, variant: str, seed: int, dr: list[str]) -> tuple[Path, Path]:
    """Train and export (float32) one variant and seed unless it exists; returns (run dir, bundle dir)."""
    name, changes = VARIANTS[variant]
    run = runs / (name if seed == 42 else f"{name}_seed{seed}")
    config = CONFIG
    if changes:
        d = read_toml(CONFIG)
        d["name"], d["train"] = name, dict(d["train"], **changes)
        config = runs / f"{name}.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(toml_text(d))
    if not (run / "metrics.json").is_file():
        _har_edge("train", "--config", str(config), "--out", str(run), "--seed", str(seed), "--quiet", *dr)
    bundle = runs / f"export_{run.name}_float32"
    if not (bundle / "report.json").is_file():
        _har_edge("export", str(run), "--quant", "float32", "--out", str(bundle), "--no-interpreter-check", *dr)
    return run, bundle


def score(bundle: Path, recs: list[Any], smoothing: SmoothingConfig) -> dict[str, dict[str, Any]]:
    """Validation experience of ``bundle`` without smoothing and with ``smoothing``."""
    with Classifier.from_bundle(bundle) as clf:
        streams = raw_streams(clf, recs, None)
        return {"none": evaluate(streams, SmoothingConfig(method="none"), clf), "smoothed": evaluate(streams, smoothing, clf)}


def main(argv: list[str] | None = None) -> int:
    args, dr = seed_study_args(__doc__, argv)
    recs = load_subjects(resolve_data_root(args.data_root), VALIDATION_SUBJECTS, transitions=True)
    smoothing = SmoothingConfig(**read_toml(CONFIG)["smoothing"])
    res: dict[str, dict[str, Any]] = {}
    rows = []
    for variant in VARIANTS:
        for seed in args.seeds:
            run, bundle = run_for(Path(args.runs), variant, seed, dr)
            s = score(bundle, recs, smoothing)
            history = json.loads((run / "history.json").read_text())
            best_val_loss = round(min(history["val_loss"]), 4)
            res.setdefault(variant, {})[str(seed)] = {"run": str(run), "best_val_loss": best_val_loss,
                                                      "epochs_run": len(history["loss"]), **s}
            sm = s["smoothed"]
            rows.append([variant, seed, best_val_loss, s["none"]["state_accuracy"], sm["state_accuracy"],
                         f"{sm['worst_class']} {sm['worst_class_accuracy']}", sm["transition_ok"],
                         f"{sm['delay_median_s']} / {sm['delay_p90_s']}", sm["flicker_ratio"]])
    summary = {v: {k: round(float(np.mean([r[k]["state_accuracy"] for r in seeds.values()])), 4) for k in ("none", "smoothed")}
               for v, seeds in res.items()}
    print(f"validation subjects {list(VALIDATION_SUBJECTS)}; smoothing from {CONFIG.name}: {smoothing}")
    print_table(rows, ["variant", "seed", "best val loss", "state acc (raw)", "state acc (smoothed)", "worst class", "transitions",
                       "delay p50 / p90 s", "flicker"])
    for v, m in summary.items():
        lo = min(r["smoothed"]["state_accuracy"] for r in res[v].values())
        hi = max(r["smoothed"]["state_accuracy"] for r in res[v].values())
        print(f"{v}: mean state accuracy {m['none']:.4f} raw, {m['smoothed']:.4f} smoothed (seeds {lo:.4f}-{hi:.4f})")
    write_json("stream_training_recipe", {"runs": args.runs, "seeds": args.seeds, "validation_subjects": list(VALIDATION_SUBJECTS),
                                         "smoothing": str(smoothing), "variants": res, "mean": summary}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
