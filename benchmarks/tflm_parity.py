"""TFLite Micro (host) vs LiteRT int8 parity: default and reference kernels, per-op and per-LSTM-step diagnosis.

Run: ``python benchmarks/tflm_parity.py BUNDLE_DIR_INT8 RUN_DIR [--n N] [--diagnose 200] [--json OUT]``

The full-int8 bundle's model runs on the run's normalised, quantised test windows under TFLM (host,
arena measured as ``har-edge export --target mcu`` does, plus 25 %), LiteRT default kernels
(``AUTO``: XNNPACK) and LiteRT reference kernels (``BUILTIN_REF``), each from zero LSTM state.
Differences are in output quantisation steps. The first ``--diagnose`` windows get the per-op diagnosis
(TFLM vs LiteRT reference, every operator output) and the fused LSTM's per-time-step profile.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from har_edge.data.datasets import prepare_windows  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.inference.bundle import load_bundle  # noqa: E402
from har_edge.export.tflm_host import _align, measure_arena, verify_tflm  # noqa: E402
from har_edge.export.tflm_parity import DIAGNOSE_WINDOWS, litert_int8_outputs  # noqa: E402
from har_edge.models.run_dir import load_run_info  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle_dir", help="full-int8 bundle (model.tflite + manifest.json)")
    ap.add_argument("run_dir", help="training run whose test windows to use")
    ap.add_argument("--data-root")
    ap.add_argument("--n", type=int, default=None, help="first N test windows (default: all)")
    ap.add_argument("--diagnose", type=int, default=DIAGNOSE_WINDOWS, help="windows for the per-op diagnosis")
    ap.add_argument("--json", dest="out", help="output JSON (default benchmarks/results/tflm_parity_NAME.json)")
    args = ap.parse_args(argv)

    info = load_run_info(args.run_dir)
    bundle = load_bundle(args.bundle_dir)
    splits = prepare_windows(info.config, resolve_data_root(args.data_root))
    X, y = splits.test.X[: args.n], splits.test.y[: args.n]
    with Classifier(bundle) as clf:
        Xq = clf.quantise_input(info.normalisation.transform(X))
    data = bundle.model_bytes
    t0 = time.monotonic()
    measured = measure_arena(data)
    arena = _align(measured * 1.25)
    default = litert_int8_outputs(data, Xq, reference=False)
    rep = verify_tflm(data, Xq, y=y, litert_default=default, arena_bytes=arena, diagnose_windows=args.diagnose)
    seconds = time.monotonic() - t0

    print(f"{info.config.name}: {len(Xq)} test windows {Xq.shape[1]}×{Xq.shape[2]} int8, TFLM arena {arena} bytes; "
          "differences in output quantisation steps")
    rows = []
    for label, key in [("TFLM vs LiteRT default", "vs_litert_default"),
                       ("TFLM vs LiteRT reference", "vs_litert_reference"),
                       ("LiteRT reference vs LiteRT default", "litert_reference_vs_default")]:
        c = rep[key]
        rows.append([label, "-", "-", "-", "-"] if c is None else
                    [label, c["max_abs_diff_steps"], round(c["p99_abs_diff_steps"], 2), _pct(c["frac_within_1_step"]),
                     _pct(c["argmax_agreement"])])
    print_table(rows, ["comparison", "max steps", "p99 steps", "% within 1", "% argmax agree"])
    print(f"TFLM accuracy {_pct(rep['accuracy'])} %, passed (max <= 1 step vs LiteRT default): {rep['passed']}")

    diag = rep["kernel_diagnosis"]
    if diag is None:
        print(f"\nno kernel diagnosis: {rep['diagnosis_unavailable']}")
    else:
        print(f"\nper-op, TFLM vs LiteRT reference kernels, first {diag['n']} windows:")
        print_table([[r["op_index"], r["op"], "×".join(map(str, r["shape"])), r["max_abs_diff_steps"],
                      _pct(r["frac_exact"])] for r in diag["ops"]],
                    ["op", "type", "output shape", "max steps", "% exact"])
        for p in diag["lstm"]:
            prof = p["max_diff_per_step"]
            print(f"\n{p['op']} (op {p['op_index']}) output, max diff per time step over {diag['n']} windows "
                  f"({p['steps']} steps): step 0 {p['step0_max_diff_steps']}, max {p['max_diff_steps']} "
                  f"(first at step {p['first_step_of_max']})")
            print("  " + " ".join(str(v) for v in prof))
    write_json(f"tflm_parity_{info.config.name}", {
        "bundle_dir": args.bundle_dir, "run_dir": args.run_dir, "n": len(Xq), "arena_bytes": arena,
        "arena_bytes_measured": measured, "seconds": round(seconds, 1), "tflm": rep}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
