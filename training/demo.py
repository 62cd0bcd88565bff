"""The main job, end to end: train → export → stream a held-out recording → MQTT → activity timeline.

Run: ``make demo`` (or ``python training/demo.py --data-root DIR``). Steps:

1. train the deployable model (``training/configs/hapt_device.toml``: raw HAPT streams through the
   causal device preprocessing) on the training subjects of the data root — reused on a second run;
2. print its evaluation on the held-out test subjects;
3. export the float32 bundle (what a Raspberry Pi runs) with its parity report;
4. start an MQTT broker on loopback (Mosquitto if installed, else amqtt in-process), subscribe, and
   replay a held-out subject's raw recording through ``har-edge run --broker ...`` (no TensorFlow in
   that path);
5. print the received activity timeline next to the recording's labels, and the streaming accuracy.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
import json
import sys
import threading
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def fmt_t(s: float) -> str:
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


MIN_SEGMENT_S = 2.0  # shorter runs are folded into the row before them, and the table says so


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--work", default=str(REPO / "runs" / "demo"), help="where the run, bundle and replay go")
    ap.add_argument("--config", default=str(REPO / "training" / "configs" / "hapt_device.toml"))
    ap.add_argument("--subject", type=int, default=2, help="held-out subject whose recording is replayed")
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args(argv)

    from har_edge.cli import main as har_edge
    from har_edge.config import load_run_config
    from har_edge.data.csv_recording import write_csv_recording
    from har_edge.data.datasets import load_recordings
    from har_edge.data.paths import resolve_data_root
    from har_edge.models.run_dir import read_json

    root = resolve_data_root(args.data_root)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = load_run_config(args.config)
    key = hashlib.sha256((json.dumps(cfg.to_dict(), sort_keys=True) + str(root.resolve())).encode()).hexdigest()[:12]
    run_dir, bundle_dir = work / f"run-{key}", work / f"bundle-{key}"
    print(f"== har-edge demo — data: {root}  (config {Path(args.config).name})\n")

    # 1-2. train (or reuse) and show the evaluation
    if args.retrain or not (run_dir / "metrics.json").is_file():
        print("== 1. training the deployable model (raw streams → causal preprocessing → Conv1D+LSTM); "
              "one line per epoch, * = best so far", flush=True)
        rc = har_edge(["train", "--config", args.config, "--out", str(run_dir), "--data-root", str(root)])
        if rc:
            return rc
    else:
        print(f"== 1. reusing the trained run {run_dir} (--retrain to train again)")
    m = read_json(run_dir / "metrics.json")
    print(f"\n== 2. evaluation on held-out subjects {m['test_subjects']} ({m['n_test']} windows)")
    print(f"   accuracy {m['test_accuracy']:.4f}   macro-F1 {m['test_macro_f1']:.4f}   "
          f"({m['parameters']} parameters, {m['epochs_run']} epochs, {m['train_seconds']:.0f} s)")
    for name, pc in m["test"]["per_class"].items():
        print(f"   {name:<20} precision {pc['precision']:.3f}  recall {pc['recall']:.3f}  F1 {pc['f1']:.3f}  n={pc['support']}")
    print(f"   confusion matrix: {run_dir / 'confusion_matrix.png'}")

    # 3. export
    if not (bundle_dir / "model.tflite").is_file():
        print("\n== 3. exporting the float32 bundle", flush=True)
        rc = har_edge(["export", str(run_dir), "--quant", "float32", "--out", str(bundle_dir), "--data-root", str(root), "--no-interpreter-check"])
        if rc:
            return rc
    else:
        print(f"\n== 3. reusing the bundle {bundle_dir}")

    # 4. replay a held-out recording through `har-edge run` into a broker
    recs = [r for r in load_recordings(cfg.data, root) if r.subject == args.subject]
    if not recs:
        print(f"no recording of subject {args.subject} under {root}", file=sys.stderr)
        return 1
    rec = recs[0]
    csv_path = write_csv_recording(rec, work / f"replay-subject{args.subject}.csv")
    print(f"\n== 4. replaying {rec.name} ({rec.duration_s:.0f} s at {rec.sample_rate_hz:g} Hz, held out) → MQTT")
    sys.path.insert(0, str(REPO))  # the demo broker lives beside this script, outside the har_edge package
    from training.local_broker import LocalBroker

    import paho.mqtt.client as mqtt

    got: dict[str, list[dict]] = {"activity": [], "event": []}
    lock = threading.Lock()

    def on_message(client, userdata, msg):  # noqa: ANN001
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind in got and msg.payload:  # a zero-length activity clears the previous run's retained state
            with lock:
                got[kind].append(json.loads(msg.payload))

    with LocalBroker() as broker:
        print(f"   broker: {broker.kind} on {broker.url}")
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        sub.on_message = on_message
        subscribed = threading.Event()
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("har/demo/#", qos=1)
        sub.loop_start()
        if not subscribed.wait(10):
            print(f"the demo's subscriber got no SUBACK from the broker on port {broker.port}", file=sys.stderr)
            return 1
        t0 = time.monotonic()
        rc = har_edge(["run", "--bundle", str(bundle_dir), "--source", f"csv:{csv_path}", "--speed", "max",
                       "--broker", broker.url, "--device-id", "demo", "--state-dir", str(work / "state")])
        elapsed = time.monotonic() - t0
        expected = (rec.n_samples - 128) // 64 + 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if len({a["seq"] for a in got["activity"]}) >= expected:
                    break
            time.sleep(0.05)
        sub.loop_stop()
        sub.disconnect()
    if rc:
        return rc
    acts = sorted({a["seq"]: a for a in got["activity"]}.values(), key=lambda a: a["seq"])
    print(f"   {len(acts)} activity messages received ({expected} hops), {len(got['event'])} events, "
          f"{rec.duration_s / elapsed:.0f}× real time end to end")

    # 5. timeline vs labels, and streaming accuracy
    from har_edge.evaluation.stream_scoring import activity_segments, fold_short_segments, score_stream, window_truth

    times = [a["window_end_s"] for a in acts]
    names = [a["activity"] for a in acts]
    truth = window_truth(rec, times, 128)
    score = score_stream(names, truth, rec.label_names)
    label_names = rec.label_names
    true_names = [label_names[t] if t >= 0 else "-" for t in truth]
    print("\n== 5. activity timeline (smoothed, as published)        | labelled in the recording")
    true_segs = activity_segments(times, true_names)
    rows = fold_short_segments(activity_segments(times, names), MIN_SEGMENT_S)
    for s, e, a, folded in rows:
        mid = (s + e) / 2
        label = next((ta for ts, te, ta in true_segs if ts <= mid <= te), "-")
        mark = "" if label in (a, "-") else "   ✗"
        extra = f" (+{len(folded)} short)" if folded else ""
        print(f"   {fmt_t(s)} – {fmt_t(e)}  {a:<20} {e - s:6.1f} s{extra:<12} | {label}{mark}")
    short = [f for *_, fs in rows for f in fs]
    if short:
        kinds = ", ".join(f"{n}× {k}" for k, n in Counter(x[2] for x in short).most_common())
        print(f"   ({len(short)} runs shorter than {MIN_SEGMENT_S:g} s, {sum(e - s for s, e, _ in short):.0f} s in all "
              f"[{kinds}], are folded into the row before them and counted as '+N short'; the accuracy below "
              "scores every message)")
    print(f"\n   streaming accuracy on this held-out recording: {score['accuracy']:.3f} over {score['windows_scored']} labelled windows "
          f"({score['uncertain']} uncertain); transitions and unlabelled stretches not scored")
    print(f"\nDone. Bundle: {bundle_dir}  Run: {run_dir}")
    print(f"Next: har-edge evaluate {run_dir}  ·  watch a live run over MQTT: docs/watching.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
