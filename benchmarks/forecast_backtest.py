"""Forecasting targets: train (or reuse) each forecast config, backtest it against baselines and statsforecast
peers on the pinned protocol, export it, and check that the served forecaster (device path, no TensorFlow)
reproduces its bundle's backtest MAE. Prints the table and writes ``benchmarks/results/forecast_backtest.json``.

Run: ``python benchmarks/forecast_backtest.py [--runs runs/forecast] [--data-root ../shared/data] [--retrain]
[--rebacktest] [--only beijing_temp_24h ...]`` (≈ 40 min on 2 cores from scratch, mostly Beijing's AutoARIMA
refits; reusing runs and peer backtests, a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("beijing_temp_24h", "melbourne_min_7d", "usd_idr_5d", "bbca_close_5d")
PEERS = ("AutoETS", "AutoARIMA", "AutoTheta", "MSTL", "ETS(ANA)")
KERAS = "lstm (keras)"


def _run(cmd: list[str], *, python: str | None = None, capture: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    full = [python or sys.executable, "-m", "har_edge", *cmd]
    print("$", " ".join(full), flush=True)
    return subprocess.run(full, cwd=REPO, env=env, check=True, text=True, capture_output=capture)


def _device_python() -> str:
    dev = REPO / ".venv-device" / "bin" / "python"
    return str(dev) if dev.exists() else sys.executable


def _served_mae(bundle: Path, run: Path, data_root: Path, tmp: Path) -> dict[str, Any]:
    """Replay the series (as the run loaded it) through `har-edge run` on the device venv; MAE at the backtest origins."""
    from har_edge.data.series import load_series
    from har_edge.forecasting.report import load_forecasts
    from har_edge.forecasting.run import load_forecast_run

    info = load_forecast_run(run)
    s = load_series(info.config.series, base_dir=data_root)
    csv = tmp / f"{info.config.name}_series.csv"
    csv.write_text("timestamp," + ",".join(s.columns) + "\n" +
                   "".join(f"{t:.0f}," + ",".join(repr(float(v)) for v in row) + "\n" for t, row in zip(s.times_s, s.values)))
    t0 = time.monotonic()
    p = _run(["run", "--bundle", str(bundle), "--source", f"csv:{csv}", "--speed", "max"], python=_device_python(), capture=True)
    seconds = time.monotonic() - t0
    by_time = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            by_time[d["issued_at"]] = d["values"]
    arrays, _ = load_forecasts(run / "forecasts.npz")
    served = np.array([by_time[float(t)] for t in arrays["origin_times_s"]])
    mae = float(np.abs(served - arrays["actual"]).mean())
    manifest = json.loads((bundle / "manifest.json").read_text())
    bundle_mae = manifest["forecast"]["backtest"]["mae_mean"]
    return {"served_mae": mae, "bundle_backtest_mae": bundle_mae, "abs_diff": abs(mae - bundle_mae), "forecasts": len(by_time),
            "seconds": round(seconds, 1), "python": _device_python(), "warning_in_payloads": "warning" in json.loads(
                next(x for x in p.stdout.splitlines() if x.startswith("{")))}


def bench_one(name: str, runs: Path, data_root: Path, *, retrain: bool, rebacktest: bool, tmp: Path) -> dict[str, Any]:
    run = runs / name
    dr = ["--data-root", str(data_root)]
    wall_train = None
    if retrain or not (run / "metrics.json").exists():
        t0 = time.monotonic()
        _run(["forecast", "train", "--config", str(REPO / "training" / "configs" / f"{name}.toml"), "--out", str(run), "--quiet", *dr])
        wall_train = round(time.monotonic() - t0, 1)
    peers_dir = run / "peers"
    if rebacktest or not (peers_dir / "backtest.json").exists() or \
            (peers_dir / "backtest.json").stat().st_mtime < (run / "metrics.json").stat().st_mtime:
        _run(["forecast", "backtest", str(run), "--peers", "--out", str(peers_dir), *dr])
    bt = json.loads((peers_dir / "backtest.json").read_text())
    export = run / "export"
    if retrain or rebacktest or not (export / "report.json").exists() or \
            (export / "report.json").stat().st_mtime < (run / "metrics.json").stat().st_mtime:
        _run(["export", str(run), "--quant", "all", "--out", str(export), *dr])
    report = json.loads((export / "report.json").read_text())
    served = {mode: _served_mae(export / mode, run, data_root, tmp) for mode in ("float32", "int8")}
    metrics = json.loads((run / "metrics.json").read_text())
    return {"backtest": bt, "export": report, "served": served, "train_seconds": metrics["train_seconds"],
            "epochs": metrics["epochs_run"], "parameters": metrics["parameters"], "wall_train_seconds": wall_train}


def _targets(name: str, r: dict[str, Any]) -> dict[str, Any]:
    s = r["backtest"]["scores"]
    H = r["backtest"]["protocol"]["horizon"]
    lstm = s[KERAS]
    peers = {p: s[p]["mae_mean"] for p in PEERS if p in s}
    best_peer = min(peers, key=peers.get) if peers else None  # type: ignore[arg-type]
    modes = r["export"]["modes"]
    out: dict[str, Any] = {
        "int8_within_0.5pct": abs(modes["int8"]["mae_rel_diff_vs_keras"]) <= 0.005,
        "float32_within_0.01pct": abs(modes["float32"]["mae_rel_diff_vs_keras"]) <= 0.0001,
        "served_reproduces_bundle": all(v["abs_diff"] <= 1e-4 * max(1.0, v["bundle_backtest_mae"]) for v in r["served"].values()),
    }
    if name == "beijing_temp_24h":
        out.update({"mean_mae_le_2.00": lstm["mae_mean"] <= 2.00, "step24_mae_le_2.25": lstm[f"mae_step{H}"] <= 2.25,
                    "beats_best_peer_by_10pct": best_peer is not None and lstm["mae_mean"] <= 0.9 * peers[best_peer],
                    "train_le_15min": r["train_seconds"] <= 900})
    if name == "melbourne_min_7d":
        out["step7_mae_le_2.00"] = lstm[f"mae_step{H}"] <= 2.00
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "forecast"))
    ap.add_argument("--data-root")
    ap.add_argument("--only", nargs="*", default=list(CONFIGS))
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--rebacktest", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    from har_edge.data.paths import resolve_data_root

    data_root = resolve_data_root(args.data_root)
    runs = Path(args.runs)
    tmp = runs / "_served"
    tmp.mkdir(parents=True, exist_ok=True)
    results, rows, trows = {}, [], []
    for name in args.only:
        r = bench_one(name, runs, data_root, retrain=args.retrain, rebacktest=args.rebacktest, tmp=tmp)
        r["targets"] = _targets(name, r)
        results[name] = r
        s, H = r["backtest"]["scores"], r["backtest"]["protocol"]["horizon"]
        lstm = s[KERAS]
        peers = {p: s[p]["mae_mean"] for p in PEERS if p in s}
        bp = min(peers, key=peers.get) if peers else "-"  # type: ignore[arg-type]
        up = r["backtest"]["up_move_share"]["all_steps"]
        modes = r["export"]["modes"]
        rows.append([name, round(lstm["mae_step1"], 3), round(lstm[f"mae_step{H}"], 3), round(lstm["mae_mean"], 3),
                     round(s["naive"]["mae_mean"], 3), f"{bp} {peers.get(bp, float('nan')):.3f}",
                     f"{100 * (1 - lstm['mae_mean'] / peers[bp]):+.1f} %" if peers else "-",
                     f"{lstm['skill_mean']:+.4f}", f"{lstm['direction_accuracy']:.3f} / {up:.3f}",
                     f"{100 * modes['float32']['mae_rel_diff_vs_keras']:+.4f} %", f"{100 * modes['int8']['mae_rel_diff_vs_keras']:+.3f} %",
                     f"{r['served']['float32']['served_mae']:.4f}", round(r["train_seconds"])])
        for method, sc in sorted(s.items(), key=lambda kv: kv[1]["mae_mean"]):
            trows.append([name, method, round(sc["mae_step1"], 3), round(sc[f"mae_step{H}"], 3), round(sc["mae_mean"], 3),
                          round(sc["mase"], 3), f"{sc['skill_mean']:+.4f}",
                          "-" if method == "naive" else f"{sc['direction_accuracy']:.3f}",
                          r["backtest"]["seconds"].get(method, r["backtest"]["seconds"].get("baselines"))])
    print("\nEvery method on the pinned origins (MAE in the target's unit; skill = 1 - MAE/MAE_naive):")
    print_table(trows, ["config", "method", "MAE@1", "MAE@H", "MAE mean", "MASE", "skill", "dir acc", "seconds"])
    print("\nSummary (LSTM; dir acc / up-move share over all steps; export MAE vs Keras; served = device path, float32):")
    print_table(rows, ["config", "MAE@1", "MAE@H", "MAE mean", "naive", "best peer", "vs peer", "skill", "dir acc / up",
                       "float32", "int8", "served", "train s"])
    print("\nTargets:")
    for name, r in results.items():
        for k, v in r["targets"].items():
            print(f"  {name}: {k}: {'met' if v else 'NOT MET'}")
        w = r["backtest"]["scores"][KERAS]["skill_mean"]
        if w <= 0:
            print(f"  {name}: WARNING: LSTM skill vs naive {w:+.4f} <= 0 (served forecasts carry \"useful\": false and a warning)")
    slim = {n: {k: v for k, v in r.items() if k != "backtest"} | {"scores": r["backtest"]["scores"],
                                                                    "protocol": r["backtest"]["protocol"],
                                                                    "up_move_share": r["backtest"]["up_move_share"],
                                                                    "peer_costs": r["backtest"]["notes"].get("peers")}
            for n, r in results.items()}
    write_json("forecast_backtest", {"runs": str(runs), "results": slim}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
