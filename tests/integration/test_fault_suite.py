"""The fault suite's process-level faults: the broker SIGKILLed mid-stream, the runtime SIGKILLed with a full
outbox, and failing configurations whose every output line is searched for the password.

"Lost" means: a seq that never reaches the (persistent-session) subscriber and is not counted in ``dropped``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from har_edge.runtime.samples import SampleChunk, SourceStats
from tests.fixtures.broker import MosquittoBroker, collect_messages, free_port, wait_until

pytestmark = pytest.mark.mqtt

REPO = Path(__file__).resolve().parents[2]
RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def _gaps_and_duplicates(seqs: list[int], last: int) -> tuple[list[int], int]:
    return sorted(set(range(1, last + 1)) - set(seqs)), len(seqs) - len(set(seqs))


class _KillingSource:
    """Replays a recording; SIGKILLs the broker a third of the way in and restarts it at two thirds."""

    channel_names, units, nominal_rate_hz = RAW, ("g", "g", "g", "rad/s", "rad/s", "rad/s"), 50.0

    def __init__(self, signals: np.ndarray, broker: MosquittoBroker, chunk: int = 200) -> None:
        self.x, self.broker, self.chunk = signals.astype(np.float64), broker, chunk
        self.stats = SourceStats()

    def chunks(self):  # type: ignore[no-untyped-def]
        t = np.arange(len(self.x)) / 50.0
        n = -(-len(self.x) // self.chunk)
        for k, i in enumerate(range(0, len(self.x), self.chunk)):
            if k == n // 3:
                self.broker.kill()
            if k == 2 * n // 3:
                self.broker.start()
            yield SampleChunk(t[i : i + self.chunk], self.x[i : i + self.chunk], self.channel_names, self.units)

    def close(self) -> None:
        pass


def test_broker_killed_mid_stream_loses_nothing(mosquitto_broker_factory, float32_bundle: Path, heldout_recording,
                                                 tmp_path: Path) -> None:
    from har_edge.cli.service import PublisherSink, run_service
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.stream import StreamClassifier
    from har_edge.transport import MqttConfig, MqttPublisher

    broker = mosquitto_broker_factory(persistence=True, durable=True)
    x = heldout_recording.select_channels(RAW).signals
    cfg = MqttConfig(host=broker.host, port=broker.port, device_id="killed", reconnect_min_delay_s=0.05,
                     reconnect_max_delay_s=0.3, discovery=False, stats_interval_s=0)
    with collect_messages(broker, "har/killed/activity", client_id="killed-sub", clean_session=False) as col:
        with Classifier.from_bundle(float32_bundle) as clf, MqttPublisher(cfg, labels=clf.labels, state_dir=tmp_path) as pub:
            summary = run_service(_KillingSource(x, broker), StreamClassifier(clf),
                                  PublisherSink(pub, model_hash="h", device_id="killed"), stats_interval_s=0)
            assert pub.flush(30), pub.stats
            n = summary.classifications
            assert n == (len(x) - 64) // 32 + 1 and pub.stats.reconnects >= 1 and pub.stats.dropped == 0
        assert col.wait_for(lambda ms: len({json.loads(m.payload)["seq"] for m in ms}) >= n, timeout_s=30)
    seqs = [json.loads(m.payload)["seq"] for m in col.messages]
    gaps, dups = _gaps_and_duplicates(seqs, n)
    assert gaps == [], f"{len(gaps)} seqs lost: {gaps[:20]}"
    assert dups <= 2 * cfg.max_inflight + 2, dups  # QoS 1 re-sends only what was in flight at the kill (+ retained)


def _outbox_state(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        (queued,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {**counters, "queued": int(queued)}


def test_runtime_killed_with_a_full_outbox_loses_nothing(mosquitto_broker_factory, float32_bundle: Path,
                                                         heldout_csv: Path, tmp_path: Path) -> None:
    """`har-edge run` SIGKILLed while the broker is down and its outbox overflows; the next run delivers the rest.
    Every activity/event seq ever assigned reaches the subscriber or is counted in the (persisted) `dropped`."""
    broker = mosquitto_broker_factory(persistence=True)
    state = tmp_path / "state"
    device = "full"
    outbox = state / f"outbox-{device}.sqlite3"
    conf = tmp_path / "device.toml"
    conf.write_text('stats_interval_s = 0\n[mqtt]\noutbox_max_messages = 100\nstats_interval_s = 0\n'
                    'reconnect_min_delay_s = 0.05\nreconnect_max_delay_s = 0.2\ndiscovery = false\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "har_edge", "run", "--config", str(conf), "--bundle", str(float32_bundle),
            "--broker", broker.url, "--device-id", device, "--state-dir", str(state)]
    with collect_messages(broker, [f"har/{device}/activity", f"har/{device}/event", f"har/{device}/stats"],
                          client_id="full-sub", clean_session=False) as col:
        broker.stop()  # the session is saved; the runtime meets a dead broker
        proc = subprocess.Popen([*base, "--source", f"csv:{heldout_csv}", "--speed", "50"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert wait_until(lambda: _outbox_state(outbox).get("__dropped__", 0) >= 50, timeout_s=120), \
                _outbox_state(outbox)
            assert proc.poll() is None, "the runtime ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""  # type: ignore[union-attr]
        assert "Traceback" not in err
        killed = _outbox_state(outbox)
        assert killed["queued"] == 100, killed  # full: the bound, nothing in flight
        broker.start()
        empty = tmp_path / "empty.csv"
        empty.write_text("timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n")
        rerun = subprocess.run([*base, "--source", f"csv:{empty}", "--speed", "max", "--flush-timeout", "30"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert col.wait_for(lambda ms: any(m.topic.endswith("/stats") for m in ms), timeout_s=20)
        time.sleep(0.2)
        messages = col.messages
    n_act, n_ev = killed["activity"], killed["event"]
    got_act = [json.loads(m.payload)["seq"] for m in messages if m.topic.endswith("/activity")]
    got_ev = [json.loads(m.payload)["seq"] for m in messages if m.topic.endswith("/event")]
    lost_act, _ = _gaps_and_duplicates(got_act, n_act)
    lost_ev, _ = _gaps_and_duplicates(got_ev, n_ev)
    final = json.loads(next(m.payload for m in reversed(messages) if m.topic.endswith("/stats")))
    after = _outbox_state(outbox)  # the rerun's own stats message may have pushed one more old row out
    dropped = after["__dropped__"]
    assert after["queued"] == 0 and final["counters"]["dropped"] >= killed["__dropped__"] > 0
    assert dropped - killed["__dropped__"] <= 1
    assert len(lost_act) + len(lost_ev) == dropped, (lost_act[-3:], lost_ev[-3:], dropped, killed)  # 0 lost beyond it
    assert lost_act == list(range(1, len(lost_act) + 1)) and lost_ev == list(range(1, len(lost_ev) + 1))  # the oldest


SECRET = "s3cr3t-Pa55word"


def _run_cli_all(cases: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Run ``har-edge -vv ARGS`` for every case at once; ``{name: (returncode, stdout + stderr)}``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = {name: subprocess.Popen([sys.executable, "-m", "har_edge", "-vv", *args], cwd=REPO, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in cases.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = (proc.returncode, stdout + stderr)
    return out


def test_the_password_never_appears_in_any_output(float32_bundle: Path, heldout_csv: Path, tmp_path: Path) -> None:
    """Failing configurations (and a run against a dead broker), all output at -vv, searched for the password."""
    from urllib.parse import quote

    dead = free_port()
    conf = tmp_path / "device.toml"
    conf.write_text(f'[mqtt]\nusername = "pi"\npassword = "{SECRET}"\ntls = true\n')
    short = tmp_path / "short.csv"
    short.write_text(heldout_csv.read_text().splitlines()[0] + "\n" + "\n".join(heldout_csv.read_text().splitlines()[1:200]) + "\n")
    run = ["run", "--bundle", str(float32_bundle), "--source", f"csv:{short}", "--speed", "max",
           "--state-dir", str(tmp_path / "state")]
    cases = {
        "bad port": run + ["--broker", f"mqtt://pi:{SECRET}@127.0.0.1:notaport"],
        "unencoded bracket": run + ["--broker", f"mqtt://pi:[{SECRET}@127.0.0.1"],
        "tls in config, plain url": run + ["--config", str(conf), "--broker", f"mqtt://127.0.0.1:{dead}"],
        "dead broker": run + ["--broker", f"mqtt://pi:{SECRET}@127.0.0.1:{dead}", "--flush-timeout", "1"],
        "source url": ["run", "--bundle", str(float32_bundle), "--source", f"mqtt://pi:{SECRET}@127.0.0.1:x/t"],
        "source spec typo": ["run", "--bundle", str(float32_bundle), "--source", f"mqt://pi:{SECRET}@h/t"],
        "doctor": ["doctor", "--bundle", str(float32_bundle), "--broker", f"mqtt://pi:{SECRET}@127.0.0.1:{dead}"],
        "bad device id": run + ["--device-id", "a/b", "--broker", f"mqtt://pi:{SECRET}@127.0.0.1:{dead}"],
    }
    for name, (rc, out) in _run_cli_all(cases).items():
        assert rc != 0, f"{name}: expected a failure\n{out[-2000:]}"
        for form in (SECRET, quote(SECRET, safe="")):
            assert form not in out, f"{name}: the password appears in the output:\n{out[-3000:]}"
        assert "Traceback" not in out, f"{name}:\n{out[-3000:]}"
        if name == "dead broker":
            assert "password" in out and "plain mqtt://" in out  # the warning names the risk, not the secret
