"""Throughput and latency of the device loop with publishing to a real Mosquitto broker.

Run: ``python benchmarks/stream_throughput.py --bundle BUNDLE_DIR [--data-root ../shared/data]``

1. **Throughput**: every HAPT raw recording (61 experiments, ≈ 6.2 h at 50 Hz) through the same
   loop ``har-edge run`` uses (StreamClassifier → PublisherSink → MqttPublisher with its SQLite
   outbox → Mosquitto on loopback), this process pinned to one core, until the broker has
   acknowledged every message. Reported as × real time (target ≥ 2000×).
2. **Latency**: one recording paced at ``--latency-speed``× real time, fed one sample at a time; for
   each window, the time from handing its last sample to the loop until a subscriber receives the
   activity message: p50 / p99.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import pin_to_one_core, print_table, progress, write_json  # noqa: E402
from har_edge.config import DataConfig  # noqa: E402
from har_edge.data.datasets import load_recordings  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402
from har_edge.runtime.samples import SampleChunk, SourceStats  # noqa: E402
from har_edge.runtime.stream import StreamClassifier  # noqa: E402
from har_edge.transport import MqttConfig, MqttPublisher  # noqa: E402
from training.local_broker import LocalBroker  # noqa: E402  (the demo broker, outside the package)
from har_edge.cli.service import PublisherSink, run_service  # noqa: E402

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")


class ArraySource:
    """Chunks of one recording, optionally paced; records when each chunk was handed over."""

    channel_names, units, nominal_rate_hz = RAW, UNITS, 50.0

    def __init__(self, signals: np.ndarray, chunk: int, speed: float | None = None) -> None:
        self.x = signals.astype(np.float64)
        self.chunk, self.speed = chunk, speed
        self.stats = SourceStats()
        self.handed: list[tuple[float, float]] = []  # (wall time handed over, source time of last sample)

    def chunks(self):
        t = np.arange(len(self.x)) / 50.0
        start = time.perf_counter()
        for i in range(0, len(self.x), self.chunk):
            if self.speed:
                due = start + t[min(i + self.chunk, len(t)) - 1] / self.speed
                while (now := time.perf_counter()) < due:
                    time.sleep(min(due - now, 0.002))
            self.handed.append((time.perf_counter(), float(t[min(i + self.chunk, len(t)) - 1])))
            yield SampleChunk(t[i : i + self.chunk], self.x[i : i + self.chunk], RAW, UNITS)

    def close(self) -> None:
        pass


_SUBSCRIBER = r"""
import json, sys, time, paho.mqtt.client as mqtt
port, topic, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen, order = {}, []
def on_message(c, u, m):
    seq = json.loads(m.payload)["seq"]
    order.append(seq)
    seen.setdefault(seq, time.perf_counter())
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
c.on_message = on_message
c.on_subscribe = lambda *a: print("subscribed", flush=True)
c.connect("127.0.0.1", port); c.subscribe(topic, qos=1); c.loop_start()
sys.stdin.readline()  # the benchmark says when to stop
time.sleep(0.5); c.loop_stop(); json.dump({"seen": seen, "order": order}, open(out, "w"))
"""


class Subscriber:
    """A subscriber in its own process (a dashboard is another machine), off the runtime's core.

    Receive times are ``time.perf_counter()`` values, comparable across processes on Linux (CLOCK_MONOTONIC).
    """

    def __init__(self, port: int, topic: str, out: Path, cpus: set[int]) -> None:
        self.out = out
        self.proc = subprocess.Popen([sys.executable, "-c", _SUBSCRIBER, str(port), topic, str(out)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(self.proc.pid, cpus)
        self.proc.stdout.readline()  # "subscribed"

    def wait_count(self, n: int, timeout_s: float) -> dict[int, float]:
        """``{seq: first receive time}``; :attr:`order` keeps every arrival (duplicates included) in order."""
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout_s)
        data = json.loads(self.out.read_text())
        self.order = [int(s) for s in data["order"]]
        return {int(k): v for k, v in data["seen"].items()}


def arrival_check(order: list[int], expected: int) -> dict[str, object]:
    """Did ``expected`` messages with seq 1..expected arrive, each once, in increasing order?"""
    distinct = set(order)
    return {"arrivals": len(order), "distinct": len(distinct), "duplicates": len(order) - len(distinct),
            "missing": expected - len(distinct & set(range(1, expected + 1))),
            "in_order": all(a < b for a, b in zip(order, order[1:]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data-root")
    ap.add_argument("--chunk", type=int, default=512, help="samples per chunk in the throughput run")
    ap.add_argument("--latency-speed", type=float, default=20.0)
    ap.add_argument("--latency-seconds", type=float, default=240.0, help="source seconds replayed in the latency run")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    all_cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    recs = [r.select_channels(RAW) for r in load_recordings(DataConfig(dataset="hapt_raw"), resolve_data_root(args.data_root))]
    total_s = sum(r.duration_s for r in recs)
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as state, Classifier.from_bundle(args.bundle) as clf:
        cpu = pin_to_one_core()
        others = (all_cpus - {cpu}) or all_cpus
        if broker._proc is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(broker._proc.pid, others)
        print(f"{len(recs)} recordings, {total_s / 3600:.2f} h of 50 Hz data; runtime pinned to cpu {cpu}, "
              f"broker ({broker.kind}) and subscriber on {sorted(others)}")
        results: dict = {"bundle": str(args.bundle), "recordings": len(recs), "data_hours": round(total_s / 3600, 3),
                         "runtime_cpu": cpu, "broker": broker.kind, "backend": clf.backend}
        # 1. throughput
        sub = Subscriber(broker.port, "har/bench/activity", Path(state) / "sub1.json", others)
        cfg = MqttConfig(host="127.0.0.1", port=broker.port, device_id="bench", discovery=False, stats_interval_s=0)
        n_class = 0
        t0 = time.perf_counter()
        with MqttPublisher(cfg, labels=clf.labels, state_dir=state) as pub:
            sink = PublisherSink(pub, model_hash=clf.bundle.model_sha256, device_id="bench")
            for rec in progress(recs, "recordings"):  # each experiment its own stream (fresh filter state, as a restart)
                stream = StreamClassifier(clf)
                n_class += run_service(ArraySource(rec.signals, args.chunk), stream, sink, stats_interval_s=0).classifications
            t_loop = time.perf_counter() - t0
            flushed = pub.flush(120)
            t_acked = time.perf_counter() - t0
        received = sub.wait_count(n_class, 60)
        t_recv = max(received.values()) - t0 if received else float("nan")
        results["arrival"] = arrival_check(sub.order, n_class)
        results["throughput"] = {
            "classifications": n_class, "received_by_subscriber": len(received), "flushed": flushed,
            "loop_seconds": round(t_loop, 4), "acked_seconds": round(t_acked, 4), "received_seconds": round(t_recv, 4),
            "x_real_time_loop": round(total_s / t_loop, 1), "x_real_time_acked": round(total_s / t_acked, 1),
            "x_real_time_received": round(total_s / t_recv, 1),
        }
        # 2. latency, paced, one sample per chunk
        rec = max(recs, key=lambda r: r.n_samples)
        n = min(rec.n_samples, int(args.latency_seconds * 50))
        sub2 = Subscriber(broker.port, "har/lat/activity", Path(state) / "sub2.json", others)
        src = ArraySource(rec.signals[:n], 1, speed=args.latency_speed)
        stream = StreamClassifier(clf)
        cfg2 = MqttConfig(host="127.0.0.1", port=broker.port, device_id="lat", discovery=False, stats_interval_s=0)
        with MqttPublisher(cfg2, labels=clf.labels, state_dir=state) as pub:
            times: list[float] = []

            class TimingSink(PublisherSink):
                def activity(self, result):  # noqa: ANN001
                    super().activity(result)
                    times.append(src.handed[-1][0])  # the chunk holding the window's last sample

            run_service(src, stream, TimingSink(pub, model_hash="h", device_id="lat"), stats_interval_s=0)
            pub.flush(30)
        received2 = sub2.wait_count(len(times), 60)
        lat = np.array([(received2[i + 1] - t) * 1e3 for i, t in enumerate(times) if (i + 1) in received2])
        results["latency"] = {"windows": len(times), "received": int(lat.size), "speed": args.latency_speed,
                              "p50_ms": round(float(np.percentile(lat, 50)), 3), "p99_ms": round(float(np.percentile(lat, 99)), 3),
                              "max_ms": round(float(lat.max()), 3)}
    th, la = results["throughput"], results["latency"]
    print_table([
        ["loop (classified + queued)", th["loop_seconds"], th["x_real_time_loop"]],
        ["broker acknowledged all", th["acked_seconds"], th["x_real_time_acked"]],
        ["subscriber received all", th["received_seconds"], th["x_real_time_received"]],
    ], ["throughput (" + f"{th['classifications']} msgs)", "seconds", "× real time"])
    ar = results["arrival"]
    print(f"\narrivals at the subscriber: {ar['distinct']} of {th['classifications']} seq numbers, "
          f"{ar['missing']} missing, {ar['duplicates']} duplicates, in order: {ar['in_order']}")
    print()
    print_table([[la["windows"], la["received"], la["p50_ms"], la["p99_ms"], la["max_ms"]]],
                ["latency windows", "received", "p50 ms", "p99 ms", "max ms"])
    write_json("stream_throughput", results, args.out)
    ok = th["flushed"] and th["received_by_subscriber"] == th["classifications"]
    return 0 if ok and results["arrival"]["in_order"] and not results["arrival"]["missing"] else 1


if __name__ == "__main__":
    sys.exit(main())
