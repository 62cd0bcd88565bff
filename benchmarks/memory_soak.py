"""Memory soak of the device loop: ≥ 24 simulated hours with faults, resident memory sampled every simulated hour.

Run: ``python benchmarks/memory_soak.py --bundle BUNDLE_DIR [--hours 24] [--data-root ../shared/data]``

The loop ``har-edge run`` uses (StreamClassifier → PublisherSink → MqttPublisher with its SQLite outbox → a real
Mosquitto on loopback), fed the HAPT raw recordings end to end, looped, at full speed with Unix timestamps. Every
simulated hour brings a NaN, an absurd value, a duplicate and a lone far-future timestamp, and 100 hostile MQTT
payloads through an MqttSource's callback; every 6 hours a 10 s gap and a clock step back. RSS (``VmRSS``) is
read after each simulated hour; the slope is a least-squares fit over hours 2.. (after warm-up), in MB per
simulated hour. At the end the publisher must have delivered everything (acked == published, 0 dropped).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from har_edge.cli.service import PublisherSink, run_service  # noqa: E402
from har_edge.config import DataConfig  # noqa: E402
from har_edge.data.datasets import load_recordings  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402
from har_edge.runtime.samples import SampleChunk, SourceStats  # noqa: E402
from har_edge.runtime.sources import MqttSource  # noqa: E402
from har_edge.runtime.stream import StreamClassifier  # noqa: E402
from har_edge.transport import MqttConfig, MqttPublisher  # noqa: E402
from tests.fixtures.hostile import generate  # noqa: E402
from training.local_broker import LocalBroker  # noqa: E402

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
RATE_HZ = 50.0
T0_UNIX = 1_700_000_000.0


def rss_mb() -> float:
    """Resident set size of this process (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SoakSource:
    """``hours`` of the given signal, looped, with faults; samples RSS once per simulated hour."""

    channel_names, units, nominal_rate_hz = RAW, UNITS, RATE_HZ

    def __init__(self, signal: np.ndarray, hours: float, chunk: int, seed: int) -> None:
        self.signal, self.chunk = signal.astype(np.float64), chunk
        self.n_total = int(hours * 3600 * RATE_HZ)
        self.stats = SourceStats()
        self.rng = np.random.default_rng(seed)
        self.rss: list[tuple[float, float]] = []  # (simulated hour, MB)
        self.hostile = [c.payload for c in generate(2000, seed)]
        self.mqtt = MqttSource("127.0.0.1", "soak")  # never connected: only its callback is soaked

    def _hour_faults(self, t: np.ndarray, x: np.ndarray, hour: int) -> None:
        k = len(t)
        if k < 20:
            return
        x[int(self.rng.integers(0, k)), int(self.rng.integers(0, 6))] = np.nan
        x[int(self.rng.integers(0, k)), int(self.rng.integers(0, 3))] = 1e30
        i = int(self.rng.integers(1, k - 1))
        t[i] = t[i - 1]
        t[int(self.rng.integers(0, k))] += 1e6
        for payload in self.hostile[(hour * 100) % 1900 : (hour * 100) % 1900 + 100]:
            self.mqtt._on_message(None, None, SimpleNamespace(topic="soak", payload=payload))
        self.mqtt._pending.clear()

    def chunks(self) -> Iterator[SampleChunk]:
        per_hour = int(3600 * RATE_HZ)
        offset_s, n, hour = T0_UNIX, 0, 0
        while n < self.n_total:
            start = n % len(self.signal)
            k = min(self.chunk, len(self.signal) - start, self.n_total - n)
            t = offset_s + np.arange(n, n + k) / RATE_HZ
            x = self.signal[start : start + k].copy()
            if n // per_hour != (n + k) // per_hour or n == 0:
                self._hour_faults(t, x, hour)
            yield SampleChunk(t, x, RAW, UNITS)
            n += k
            if n // per_hour > hour:
                hour = n // per_hour
                self.rss.append((hour, rss_mb()))
                if hour % 6 == 0:
                    offset_s += 10.0 if hour % 12 else -120.0  # a gap, or the clock stepping back

    def close(self) -> None:
        self.mqtt.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--data-root")
    ap.add_argument("--chunk", type=int, default=250, help="samples per chunk (250 = 5 s at 50 Hz)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the injected faults are counted; their one-line warnings are not shown
    recs = load_recordings(DataConfig(dataset="hapt_raw"), resolve_data_root(args.data_root))
    signal = np.concatenate([r.select_channels(RAW).signals for r in recs])
    print(f"{len(recs)} recordings ({len(signal) / RATE_HZ / 3600:.2f} h), looped to {args.hours:g} simulated hours; "
          f"RSS at start {rss_mb():.1f} MB")
    t0 = time.perf_counter()
    src = SoakSource(signal, args.hours, args.chunk, args.seed)
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as state, Classifier.from_bundle(args.bundle) as clf:
        cfg = MqttConfig(host="127.0.0.1", port=broker.port, device_id="soak", discovery=False, stats_interval_s=0)
        with MqttPublisher(cfg, labels=clf.labels, state_dir=state) as pub:
            stream = StreamClassifier(clf)
            summary = run_service(src, stream, PublisherSink(pub, model_hash=clf.bundle.model_sha256, device_id="soak"),
                                  stats_interval_s=0)
            flushed = pub.flush(300)
            pstats = pub.stats
        counters = summary.counters(src, stream)
    wall_s = time.perf_counter() - t0
    hours = np.array([h for h, _ in src.rss], dtype=float)
    mb = np.array([m for _, m in src.rss])
    fit = hours >= 2
    slope = float(np.polyfit(hours[fit], mb[fit], 1)[0]) if fit.sum() >= 3 else float("nan")
    rows = [[int(h), round(m, 1)] for h, m in src.rss if int(h) in (1, 2) or int(h) % 4 == 0]
    print_table(rows, ["simulated hour", "RSS MB"])
    summary_rows = [
        ["simulated hours", args.hours], ["wall seconds", round(wall_s, 1)], ["× real time", round(args.hours * 3600 / wall_s)],
        ["classifications", summary.classifications], ["messages published", pstats.published],
        ["acked by broker", pstats.acked], ["dropped", pstats.dropped],
        ["RSS hour 2 → end (MB)", f"{mb[hours >= 2][0]:.1f} → {mb[-1]:.1f}"],
        ["RSS slope (MB / simulated hour, hours 2..)", round(slope, 4)],
        ["gaps / clock epochs", f"{counters['gaps']} / {counters['clock_epochs']}"],
        ["bad samples / out of order", f"{counters['bad_samples']} / {counters['out_of_order']}"],
        ["hostile MQTT payloads (bad messages / bad samples)", f"{src.mqtt.stats.bad_messages} / {src.mqtt.stats.bad_samples}"],
    ]
    print()
    print_table(summary_rows, ["memory soak", "value"])
    write_json("memory_soak", {
        "bundle": str(args.bundle), "simulated_hours": args.hours, "wall_seconds": round(wall_s, 2),
        "rss_mb_by_hour": [[int(h), round(m, 2)] for h, m in src.rss], "rss_slope_mb_per_hour": round(slope, 5),
        "classifications": summary.classifications, "publisher": pstats.as_dict(), "flushed": flushed,
        "counters": {k: v for k, v in counters.items() if k != "reasons"}, "reasons": counters["reasons"],
        "mqtt_source": src.mqtt.stats.as_dict(),
    }, args.out)
    ok = flushed and pstats.acked == pstats.published and pstats.dropped == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
