"""Per-window latency, batch 1: LiteRT float32 / dynamic / int8 vs Keras, side by side in one run.

Run: ``python benchmarks/export_latency.py RUN_DIR [--repeats 500]``

The run's model is converted in memory (as ``har-edge export`` does), then every backend is timed
on the same normalised test windows, interleaved round by round so machine noise hits all alike.
Keras is timed three ways: ``model.predict(x)`` (what people call), a ``tf.function`` call, and
``model(x)`` eager. Ratios are against LiteRT float32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from har_edge.data.datasets import prepare_windows  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.export.converter import build_export_twin, convert_to_tflite, representative_windows  # noqa: E402
from har_edge.models.run_dir import load_run_info  # noqa: E402
from har_edge.models.training import load_keras_model  # noqa: E402
from har_edge.inference.interpreter import TfliteRunner  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--data-root")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    import tensorflow as tf

    info = load_run_info(args.run_dir)
    model = load_keras_model(info.run_dir)
    splits = prepare_windows(info.config, resolve_data_root(args.data_root))
    X = info.normalisation.transform(splits.test.X[:64])
    rep = representative_windows(info.normalisation.transform(splits.train.X), splits.train.y, count=200)
    twin = build_export_twin(model, info.config, window_samples=info.window_samples, n_channels=X.shape[2], n_classes=len(info.label_names))
    runners = {m: TfliteRunner(convert_to_tflite(twin, m, representative=rep if m == "int8" else None), backend="litert")
               for m in ("float32", "dynamic", "int8")}
    fn = tf.function(lambda x: model(x, training=False))
    s_in, z_in = runners["int8"].input_quant
    Xq = np.clip(np.round(X / s_in + z_in), -128, 127).astype(np.int8)
    calls = {
        "LiteRT float32": lambda i: runners["float32"].run(X[i : i + 1]),
        "LiteRT dynamic": lambda i: runners["dynamic"].run(X[i : i + 1]),
        "LiteRT int8": lambda i: runners["int8"].run(Xq[i : i + 1]),
        "Keras predict": lambda i: model.predict(X[i : i + 1], verbose=0),
        "Keras tf.function": lambda i: fn(X[i : i + 1]).numpy(),
        "Keras eager call": lambda i: model(X[i : i + 1], training=False).numpy(),
    }
    for f in calls.values():  # warm up (tracing, allocation)
        for i in range(5):
            f(i)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(args.repeats):  # interleaved
        i = r % len(X)
        for name, f in calls.items():
            if name.startswith("Keras") and r % 5:  # Keras is slow: time every 5th round
                continue
            t0 = time.perf_counter()
            f(i)
            times[name].append(time.perf_counter() - t0)
    base = float(np.median(times["LiteRT float32"]))
    rows, res = [], {}
    for name, ts in times.items():
        med = float(np.median(ts))
        res[name] = {"median_ms": med * 1e3, "p90_ms": float(np.percentile(ts, 90)) * 1e3, "n": len(ts), "x_litert_float32": med / base}
        rows.append([name, round(med * 1e3, 4), round(float(np.percentile(ts, 90)) * 1e3, 4), len(ts), round(med / base, 1)])
    print(f"{info.config.name}: window {info.window_samples}×{X.shape[2]}, one window per call, median of n calls")
    print_table(rows, ["backend", "median ms", "p90 ms", "n", "× LiteRT float32"])
    write_json(f"export_latency_{info.config.name}", {"run_dir": args.run_dir, "results": res}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
