"""Kills, repeated: the broker SIGKILLed mid-stream, the runtime SIGKILLed with a full outbox — messages lost?

Run: ``python benchmarks/kill_recovery.py --bundle BUNDLE_DIR [--runs 5]``

The two process-level scenarios of the fault suite (``tests/fixtures/faults.py``), each ``--runs`` times on a real
Mosquitto: the broker killed at a random point of a held-out recording's replay and restarted later (a
persistent-session subscriber counts gaps and duplicates), and ``har-edge run`` killed while its outbox overflows
against a dead broker, then restarted. "Lost" = a seq that never reached the subscriber and is not counted in
``dropped``; it must be 0 in every run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from har_edge.config import DataConfig  # noqa: E402
from har_edge.data.csv_recording import write_csv_recording  # noqa: E402
from har_edge.data.datasets import load_recordings  # noqa: E402
from tests.fixtures.broker import MosquittoBroker, find_mosquitto  # noqa: E402
from tests.fixtures.faults import RAW, broker_kill_run, runtime_kill_run  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "training" / "sample_data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rec = next(r for r in load_recordings(DataConfig(dataset="hapt_raw"), SAMPLE) if r.subject == 2)
    x = rec.select_channels(RAW).signals
    binary = find_mosquitto()
    broker_runs, runtime_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_csv_recording(rec, Path(tmp) / "subject2.csv")
        for k in range(args.runs):
            kill_at = float(rng.uniform(0.1, 0.5))
            restart_at = min(kill_at + float(rng.uniform(0.05, 0.4)), 0.95)
            broker = MosquittoBroker(binary, Path(tmp) / f"b{k}", persistence=True, durable=True)
            broker.start()
            try:
                r = broker_kill_run(broker, Path(args.bundle), x, Path(tmp) / f"s{k}", device=f"killed{k}",
                                    kill_at=kill_at, restart_at=restart_at)
            finally:
                broker.stop()
            broker_runs.append({**r, "kill_at": round(kill_at, 3), "restart_at": round(restart_at, 3)})
            print(f"broker kill {k + 1}/{args.runs}: published {r['published']}, lost {r['lost']}, duplicates {r['duplicates']}",
                  flush=True)
            broker = MosquittoBroker(binary, Path(tmp) / f"rb{k}", persistence=True)
            broker.start()
            work = Path(tmp) / f"rt{k}"
            work.mkdir()
            try:
                r = runtime_kill_run(broker, Path(args.bundle), csv, work, device=f"full{k}")
            finally:
                broker.stop()
            runtime_runs.append({key: v for key, v in r.items() if key != "rerun_stderr"})
            print(f"runtime kill {k + 1}/{args.runs}: assigned {r['assigned']}, dropped {r['dropped']}, lost {r['lost']}",
                  flush=True)
    rows = [
        ["broker SIGKILL + restart", len(broker_runs), sum(r["published"] for r in broker_runs),
         sum(r["received"] for r in broker_runs), sum(r["duplicates"] for r in broker_runs),
         sum(r["dropped"] for r in broker_runs), sum(r["lost"] for r in broker_runs)],
        ["runtime SIGKILL, full outbox", len(runtime_runs), sum(r["assigned"] for r in runtime_runs),
         sum(r["assigned"] - r["missing"] for r in runtime_runs), sum(r["duplicates"] for r in runtime_runs),
         sum(r["dropped"] for r in runtime_runs), sum(r["lost"] for r in runtime_runs)],
    ]
    print()
    print_table(rows, ["scenario", "runs", "seqs assigned", "received (unique)", "duplicates", "dropped (counted)", "lost"])
    write_json("kill_recovery", {"bundle": str(args.bundle), "broker_kill": broker_runs, "runtime_kill": runtime_runs}, args.out)
    ok = all(r["lost"] == 0 for r in broker_runs + runtime_runs) and all(r["oldest_dropped"] for r in runtime_runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
