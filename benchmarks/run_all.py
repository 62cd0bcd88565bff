"""Every benchmark in one go (what ``make bench`` runs): train → export → measure → ``results/summary.md``.

Run: ``python benchmarks/run_all.py [--runs runs/final] [--reuse-runs] [--only STEP ...] [--data-root DIR]``

Each step is a script of ``benchmarks/`` (or a ``har-edge`` command) run in its own process; its exit
code and wall time go to ``results/run_all.json``; a failing step does not stop the others, but makes
the exit code non-zero. The last step renders ``results/summary.md`` (the figures the README quotes).
``--reuse-runs`` keeps trained runs and exports that already exist (training is deterministic for a
seed on a given machine and package set, so this only saves time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def steps(runs: Path, dr: list[str], reuse: bool) -> list[tuple[str, list[str], Path | None]]:
    """``(name, command, output that makes the step skippable with --reuse-runs)`` in order."""
    py, ex, xs = sys.executable, runs / "export_all", runs / "export_stream"
    har = [py, "-m", "har_edge"]
    skip_existing = ["--skip-existing"] if reuse else []
    out: list[tuple[str, list[str], Path | None]] = [
        ("train", [py, "benchmarks/train_targets.py", "--runs", str(runs), *skip_existing, *dr], None),
        ("seed_spread", [py, "benchmarks/seed_spread.py", "--runs", str(runs), *dr], None),
        ("augmentation_ablation", [py, "benchmarks/augmentation_ablation.py", "--runs", str(runs), *dr], None),
        ("export", [*har, "export", str(runs / "hapt_device"), "--quant", "all", "--target", "mcu", "--out", str(ex), *dr],
         ex / "report.json"),
        ("export_latency", [py, "benchmarks/export_latency.py", str(runs / "hapt_device"), *dr], None),
        ("tflm_parity", [py, "benchmarks/tflm_parity.py", str(ex / "int8"), str(runs / "hapt_device"), *dr], None),
        ("stream_accuracy", [py, "benchmarks/stream_accuracy.py", "--bundle", str(ex / "float32"), *dr], None),
        ("smoothing_tuning", [py, "benchmarks/smoothing_tuning.py", "--bundle", str(ex / "float32"), *dr], None),
        ("export_stream", [*har, "export", str(runs / "hapt_stream"), "--quant", "all", "--target", "mcu", "--out", str(xs), *dr],
         xs / "report.json"),
        ("experience_tuning", [py, "benchmarks/experience_tuning.py", "--bundle", str(xs / "float32"), *dr], None),
        ("stream_training_recipe", [py, "benchmarks/stream_training_recipe.py", "--runs", str(runs), *dr], None),
        ("stream_experience", [py, "benchmarks/stream_experience.py", "--bundle", str(xs / "float32"), "--cli-throughput", *dr], None),
        ("stream_experience_int8", [py, "benchmarks/stream_experience.py", "--bundle", str(xs / "int8"), "--no-smoothing-row",
                                    "--out", str(RESULTS / "stream_experience_int8.json"), *dr], None),
        ("stream_experience_hapt_device", [py, "benchmarks/stream_experience.py", "--bundle", str(ex / "float32"), "--cli-throughput",
                                           "--out", str(RESULTS / "stream_experience_hapt_device.json"), *dr], None),
    ]
    for name in ("uci_har_9ch", "uci_har_acc3"):
        bundle = runs / f"export_{name}"
        out.append((f"export_{name}", [*har, "export", str(runs / name), "--quant", "float32", "--out", str(bundle),
                                       "--no-interpreter-check", *dr], bundle / "report.json"))
        out.append((f"stream_accuracy_{name}", [py, "benchmarks/stream_accuracy.py", "--bundle", str(bundle), "--unsmoothed-only",
                                                "--out", str(RESULTS / f"stream_accuracy_{name}.json"), *dr], None))
    out += [
        ("stream_throughput", [py, "benchmarks/stream_throughput.py", "--bundle", str(ex / "float32"), *dr], None),
        ("bench_reference", [py, "benchmarks/bench_reference.py", str(runs / "uci_har_9ch"), "--threads", "1", *dr], None),
        ("bench_reference_hapt", [py, "benchmarks/bench_reference.py", str(runs / "hapt_device"), "--threads", "1",
                                  *(a for m in ("float32", "float16", "dynamic") for a in ("--tflite", str(ex / m))),
                                  "--out", str(RESULTS / "reference_hapt_device.json"), *dr], None),
        ("device_install", [py, "benchmarks/device_install.py"], None),
        ("forecast_backtest", [py, "benchmarks/forecast_backtest.py", "--runs", str(runs / "forecast"), *dr], None),
        ("fault_fuzz", [py, "benchmarks/fault_fuzz.py", "--bundle", str(ex / "float32")], None),
        ("kill_recovery", [py, "benchmarks/kill_recovery.py", "--bundle", str(ex / "float32"), "--runs", "20"], None),
        ("memory_soak", [py, "benchmarks/memory_soak.py", "--bundle", str(ex / "float32"), "--hours", "24", *dr], None),
        ("personalisation_tuning", [py, "benchmarks/personalisation_tuning.py", "--work", str(runs / "personalisation_tuning"),
                                    *(["--reuse"] if reuse else []), *dr], runs / "personalisation_tuning" / "tuning.json"),
        # ideas tried after the search (replay, a larger generic model), on the same tuning people
        ("personalisation_probes", [py, "benchmarks/personalisation_tuning.py", "--probe", "--work",
                                    str(runs / "personalisation_tuning"), *(["--reuse"] if reuse else []), *dr],
         runs / "personalisation_tuning" / "probes.json"),
        ("personalisation", [py, "benchmarks/personalisation.py", "--generic-run", str(runs / "wisdm_watch"),
                             "--work", str(runs / "personalisation"), *(["--reuse"] if reuse else []), *dr], None),
        # the tuning's window stage picked 80 samples; the test people with it (docs/your-own-data.md §8)
        ("personalisation_w80", [py, "benchmarks/personalisation.py", "--window-samples", "80", "--work",
                                 str(runs / "personalisation_w80"), "--out", str(RESULTS / "personalisation_w80.json"),
                                 *(["--reuse"] if reuse else []), *dr], None),
        # the probes' pick, a generic model with LSTM(96), on the test people (docs/your-own-data.md §8)
        ("personalisation_units96", [py, "benchmarks/personalisation.py", "--lstm-units", "96", "--work",
                                     str(runs / "personalisation_units96"), "--out", str(RESULTS / "personalisation_units96.json"),
                                     *(["--reuse"] if reuse else []), *dr], None),
        # how much of the result is luck: every model (the generic one too) with two other seeds
        *((f"personalisation_seed{s}", [py, "benchmarks/personalisation.py", "--seed", str(s), "--no-export", "--work",
                                        str(runs / f"personalisation_seed{s}"),
                                        "--out", str(RESULTS / f"personalisation_seed{s}.json"),
                                        *(["--reuse"] if reuse else []), *dr], None) for s in (1, 2)),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "final"))
    ap.add_argument("--data-root")
    ap.add_argument("--reuse-runs", action="store_true", help="keep trained runs and exports that exist")
    ap.add_argument("--only", nargs="*", help="run only these steps (names as printed)")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    dr = ["--data-root", args.data_root] if args.data_root else []
    plan = steps(runs, dr, args.reuse_runs)
    if args.only:
        unknown = sorted(set(args.only) - {name for name, _, _ in plan})
        if unknown:
            ap.error(f"unknown step(s) {unknown}; steps: {[name for name, _, _ in plan]}")
        plan = [s for s in plan if s[0] in args.only]
    done: dict[str, dict[str, float | int]] = {}
    t_all = time.monotonic()
    for i, (name, cmd, product) in enumerate(plan, 1):
        if args.reuse_runs and product is not None and product.is_file():
            print(f"\n[{i}/{len(plan)}] {name}: reusing {product}", flush=True)
            done[name] = {"rc": 0, "seconds": 0.0}
            continue
        print(f"\n[{i}/{len(plan)}] {name}\n$ {' '.join(cmd)}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(cmd, cwd=REPO).returncode
        done[name] = {"rc": rc, "seconds": round(time.monotonic() - t0, 1)}
        print(f"[{i}/{len(plan)}] {name}: exit {rc} after {done[name]['seconds']:.0f} s", flush=True)
    total = round(time.monotonic() - t_all, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "run_all.json").write_text(json.dumps({"machine": machine(), "runs": str(runs), "steps": done,
                                                      "total_seconds": total}, indent=2) + "\n")
    subprocess.run([sys.executable, "benchmarks/summary.py", "--runs", str(runs)], cwd=REPO, stdout=subprocess.DEVNULL)
    failed = [n for n, s in done.items() if s["rc"]]
    print(f"\nmake bench: {len(done)} steps in {total / 60:.1f} min; failed: {failed or 'none'}; "
          f"summary: {RESULTS / 'summary.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
