"""What the user sees: the latest published activity vs the labels, at every labelled sample of held-out recordings.

Run: ``python benchmarks/stream_experience.py --bundle BUNDLE [--config DEVICE.toml] [--subjects test|validation|ids]
[--cli-throughput] [--data-root ../shared/data]``

Each whole raw HAPT recording of the subjects (default: the held-out test subjects) goes through the
stream ``har-edge run`` builds from the bundle and the device config (:func:`har_edge.cli.run.build_stream`:
causal preprocessing, hop, model, smoothing, events), fed in the chunks ``--speed max`` uses. The
activity published at each classification is on display until the next one; at every labelled sample
:mod:`har_edge.evaluation.experience` scores it: state accuracy (six activities, per class), postural
transitions shown as the posture left / reached / ``uncertain``, detection delay of each labelled
activity segment (median, p90, never shown), and shown activity changes per hour vs label changes per hour.
The same run also gives the per-window figures the README had before (each classification scored
against the majority label of the ``--truth-window-samples`` samples ending at it; mostly unlabelled or
transition windows not scored), and the device cost per hour of data: classifications, model
invokes, time in the stream's ``feed`` (× real time, in process), and with ``--cli-throughput`` the
wall time (and CPU time) of ``har-edge run --source csv:… --speed max`` pinned to one core on the same
recordings (the CPU time is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from benchmarks.hapt_streams import load_subjects, stream_recording, subjects_arg  # noqa: E402
from har_edge.cli.run import build_stream, load_device_config  # noqa: E402
from har_edge.data.csv_recording import write_csv_recording  # noqa: E402
from har_edge.data.loaders import UCI_LABELS  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.data.recording import UNLABELLED, Recording  # noqa: E402
from har_edge.evaluation.experience import ExperienceCounts, score_recording, summarise  # noqa: E402
from har_edge.evaluation.stream_scoring import score_stream, window_truth  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402

TARGETS = {"state_accuracy": 0.93, "worst_class_accuracy": 0.85, "delay_median_s": 1.0, "delay_p90_s": 2.0,
           "flicker_ratio": 1.5, "transition_ok": 0.90, "cli_x_real_time": 1000.0}


def basic_labels(rec: Recording) -> Recording:
    """The recording with only the six activities labelled (transitions unlabelled), for per-window truth."""
    lab = rec.labels.astype(np.int64)  # type: ignore[union-attr]
    basic: np.ndarray = np.where(lab < len(UCI_LABELS), lab, UNLABELLED).astype(np.int16)
    return dataclasses.replace(rec, labels=basic, label_names=UCI_LABELS)


def experience(clf: Classifier, cfg: dict[str, Any], recs: list[Recording], truth_window: int) -> dict[str, Any]:
    """Stream every recording through a fresh device stream and score it; the figures as a dict."""
    counts = ExperienceCounts()
    acts, raw_acts, truth = [], [], []
    seconds = invokes = 0.0
    classifications = 0
    for rec in recs:
        stream = build_stream(clf, cfg, source_rate_hz=rec.sample_rate_hz)
        results, spent = stream_recording(stream, rec)
        seconds += spent
        invokes += getattr(stream, "invokes", len(results))
        classifications += len(results)
        times, a = [r.timestamp for r in results], [r.activity for r in results]
        counts.add(score_recording(rec.labels, rec.label_names, rec.sample_rate_hz, times, a, scored=UCI_LABELS))  # type: ignore[arg-type]
        acts += a
        raw_acts += [r.raw.label for r in results]
        truth.append(window_truth(basic_labels(rec), times, truth_window))
    hours = sum(r.duration_s for r in recs) / 3600
    t = np.concatenate(truth)
    per_window = score_stream(acts, t, UCI_LABELS)
    per_window_raw = score_stream(raw_acts, t, UCI_LABELS)
    out = summarise(counts)
    out["per_window"] = {"accuracy": round(per_window["accuracy"], 4), "macro_f1": round(per_window["macro_f1"], 4),
                         "unsmoothed_accuracy": round(per_window_raw["accuracy"], 4),
                         "windows_scored": per_window["windows_scored"], "windows_total": per_window["windows_total"],
                         "truth_window_samples": truth_window}
    out["cost_per_hour"] = {"classifications": round(classifications / hours), "model_invokes": round(invokes / hours),
                            "feed_seconds": round(seconds / hours, 3), "x_real_time_in_process": round(hours * 3600 / seconds)}
    return out


def cli_throughput(bundle: str, config: str | None, recs: list[Recording], backend: str | None) -> dict[str, Any]:
    """Wall time of ``har-edge run --source csv:... --speed max`` (stdout to /dev/null) pinned to one core."""
    sig = np.concatenate([r.select_channels(("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")).signals for r in recs])
    one = Recording(sig, ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), ("g",) * 3 + ("rad/s",) * 3, 50.0, name="concat")
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_csv_recording(one, Path(tmp) / "stream.csv")
        cmd = [sys.executable, "-m", "har_edge", "run", "--bundle", bundle, "--source", f"csv:{csv}", "--speed", "max"]
        cmd += ["--config", config] if config else []
        cmd += ["--backend", backend] if backend else []
        if sys.platform.startswith("linux"):
            cmd = ["taskset", "-c", str(sorted(os.sched_getaffinity(0))[0]), *cmd]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise RuntimeError(f"har-edge run failed: {p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"data_hours": round(one.duration_s / 3600, 3), "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "x_real_time": round(one.duration_s / wall), "x_real_time_cpu": round(one.duration_s / cpu),
            "load_average_1min": round(os.getloadavg()[0], 2), "summary": p.stderr.strip().splitlines()[-1]}


def rows_for(name: str, s: dict[str, Any]) -> list[Any]:
    return [name, s["state_accuracy"], f"{s['worst_class']} {s['worst_class_accuracy']}", s["transition_ok"],
            s["delay_median_s"], s["delay_p90_s"], f"{s['never_shown']}/{s['segments']}",
            f"{s['shown_changes_per_hour']:.0f} / {s['label_changes_per_hour']:.0f}", s["per_window"]["accuracy"],
            s["cost_per_hour"]["model_invokes"]]


HEADER = ["runtime", "state acc", "worst class", "transitions ok", "delay p50 s", "delay p90 s", "never shown",
          "changes/h shown / labels", "per-window acc", "invokes/h"]


def check_targets(s: dict[str, Any]) -> dict[str, bool]:
    ok = {
        "state_accuracy >= 0.93": s["state_accuracy"] >= TARGETS["state_accuracy"],
        "no class below 0.85": s["worst_class_accuracy"] >= TARGETS["worst_class_accuracy"],
        "delay median <= 1.0 s": s["delay_median_s"] is not None and s["delay_median_s"] <= TARGETS["delay_median_s"],
        "delay p90 <= 2.0 s": s["delay_p90_s"] is not None and s["delay_p90_s"] <= TARGETS["delay_p90_s"],
        "shown changes <= 1.5 x label changes": s["flicker_ratio"] <= TARGETS["flicker_ratio"],
        "transitions >= 90 % left/reached/uncertain": s["transition_ok"] >= TARGETS["transition_ok"],
    }
    if "cli" in s:
        ok["har-edge run >= 1000 x real time (one core)"] = s["cli"]["x_real_time"] >= TARGETS["cli_x_real_time"]
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--config", help="device TOML (as har-edge run --config); default: the bundle's own settings")
    ap.add_argument("--subjects", nargs="+", default=["test"], help="test (default) | validation | subject ids")
    ap.add_argument("--truth-window-samples", type=int, default=128, help="window of the per-window figure (default 128)")
    ap.add_argument("--no-smoothing-row", action="store_true", help="skip the comparison row without smoothing")
    ap.add_argument("--cli-throughput", action="store_true", help="also time har-edge run --speed max on one core")
    ap.add_argument("--data-root")
    ap.add_argument("--backend")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    subjects = subjects_arg(args.subjects)
    recs = load_subjects(resolve_data_root(args.data_root), subjects, transitions=True)
    cfg = load_device_config(args.config)
    variants = {"as configured": cfg}
    if not args.no_smoothing_row:
        variants["no smoothing"] = dict(cfg, smoothing=dict(cfg["smoothing"], method="none", confidence_floor=0.0))
    results: dict[str, Any] = {}
    with Classifier.from_bundle(args.bundle, backend=args.backend) as clf:
        for name, c in variants.items():
            results[name] = experience(clf, c, recs, args.truth_window_samples)
    if args.cli_throughput:
        results["as configured"]["cli"] = cli_throughput(args.bundle, args.config, recs, args.backend)
    minutes = sum(r.duration_s for r in recs) / 60
    print(f"{len(recs)} recordings of subjects {sorted(subjects)}, {minutes:.1f} min; bundle {args.bundle}"
          + (f", config {args.config}" if args.config else ""))
    print_table([rows_for(n, s) for n, s in results.items()], HEADER)
    main_s = results["as configured"]
    print("\nstate accuracy per class: " + ", ".join(f"{k} {v}" for k, v in main_s["state_accuracy_per_class"].items()))
    print(f"transition time: {main_s['transition_minutes']} min; delay median per class: {main_s['delay_median_s_per_class']}")
    print("shown changes per hour by where they fall: "
          + ", ".join(f"{k} {v}" for k, v in main_s["shown_changes_per_hour_by_context"].items())
          + f" (label changes {main_s['label_changes_per_hour']})")
    c = main_s["cost_per_hour"]
    print(f"cost per hour of data: {c['classifications']} classifications, {c['model_invokes']} model invokes, "
          f"{c['feed_seconds']} s in the stream ({c['x_real_time_in_process']}x real time in process)")
    if "cli" in main_s:
        k = main_s["cli"]
        print(f"har-edge run --speed max, one core: {k['data_hours']} h of data in {k['wall_seconds']} s wall = {k['x_real_time']}x "
              f"real time ({k['cpu_seconds']} s CPU = {k['x_real_time_cpu']}x; machine load average {k['load_average_1min']})")
    targets = check_targets(main_s)
    print("\ntargets: " + "; ".join(f"{k} {'✓' if v else '✗'}" for k, v in targets.items()))
    write_json("stream_experience", {"bundle": args.bundle, "config": args.config, "subjects": sorted(subjects),
                                     "minutes": round(minutes, 1), "results": results, "targets": targets}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
