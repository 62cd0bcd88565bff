"""End to end on a real Mosquitto broker: a held-out subject's raw recording → bundle → MQTT."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from har_edge.runtime.samples import SampleChunk, SourceStats
from tests.fixtures.broker import collect_messages

pytestmark = pytest.mark.mqtt

ACTIVITY_KEYS = {"schema_version", "device_id", "activity", "confidence", "probabilities", "timestamp", "seq", "model_hash"}


def _hops(n_samples: int, window: int, hop: int) -> int:
    return (n_samples - window) // hop + 1


def test_cli_run_replay_publishes_every_hop(mosquitto_broker, float32_bundle: Path, heldout_csv: Path, heldout_recording, tmp_path: Path) -> None:
    from har_edge.cli import main
    from har_edge.inference.bundle import load_bundle

    b = load_bundle(float32_bundle)
    n = _hops(heldout_recording.n_samples, b.window_samples, b.hop_samples)
    with collect_messages(mosquitto_broker, ["har/e2e/#", "homeassistant/#"]) as col:
        rc = main(["run", "--bundle", str(float32_bundle / "model.tflite"), "--source", f"csv:{heldout_csv}", "--speed", "max",
                   "--broker", mosquitto_broker.url, "--device-id", "e2e", "--state-dir", str(tmp_path)])
        assert rc == 0
        assert col.wait_for(lambda ms: sum(m.topic == "har/e2e/activity" for m in ms) >= n + 1, timeout_s=60)
        assert col.wait_for(lambda ms: any(m.topic == "har/e2e/status" and m.payload == b"offline" for m in ms), timeout_s=60)
    on_activity = col.on_topic("har/e2e/activity")
    # with Home Assistant discovery on, a zero-length retained message first clears any earlier run's state
    assert on_activity[0].payload == b""
    acts = [json.loads(m.payload) for m in on_activity[1:]]
    assert len(acts) == n  # one message per hop, no more, no less
    assert [a["seq"] for a in acts] == list(range(1, n + 1))
    for a in acts:
        assert ACTIVITY_KEYS <= set(a), a
        assert a["activity"] in (*b.labels, "uncertain") and 0 <= a["confidence"] <= 1
        assert set(a["probabilities"]) == set(b.labels) and a["model_hash"] == b.model_sha256
    times = [a["window_end_s"] for a in acts]
    assert np.all(np.diff(times) > 0)
    events = [json.loads(m.payload) for m in col.on_topic("har/e2e/event")]
    assert events and events[0]["type"] == "start"
    assert all(e["type"] == "end" and e["duration_s"] >= 0 for e in events[1::2])
    status = [m.payload for m in col.on_topic("har/e2e/status")]
    assert status[0] == b"online" and status[-1] == b"offline"
    disc = col.on_topic("homeassistant/sensor/e2e/activity/config")
    assert disc and json.loads(disc[0].payload)["options"][-1] == "uncertain"
    stats = [json.loads(m.payload) for m in col.on_topic("har/e2e/stats")]
    assert stats and stats[-1]["counters"]["classifications"] == n


class _OutageSource:
    """Replays a recording in chunks and takes the broker down and up in the middle."""

    channel_names = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    units = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
    nominal_rate_hz = 50.0

    def __init__(self, rec, broker, chunk: int = 256) -> None:
        self.rec, self.broker, self.chunk = rec, broker, chunk
        self.stats = SourceStats()

    def chunks(self):
        t = np.arange(self.rec.n_samples) / 50.0
        x = self.rec.signals.astype(np.float64)
        n_chunks = -(-self.rec.n_samples // self.chunk)
        for k, i in enumerate(range(0, self.rec.n_samples, self.chunk)):
            if k == n_chunks // 3:
                self.broker.stop()
            if k == 2 * n_chunks // 3:
                self.broker.start()
            yield SampleChunk(t[i : i + self.chunk], x[i : i + self.chunk], self.channel_names, self.units)

    def close(self) -> None:
        pass


def test_broker_outage_mid_stream_loses_nothing(mosquitto_broker_factory, float32_bundle: Path, heldout_recording, tmp_path: Path) -> None:
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.stream import StreamClassifier
    from har_edge.transport import MqttConfig, MqttPublisher
    from har_edge.cli.service import PublisherSink, run_service

    broker = mosquitto_broker_factory(persistence=True)
    rec = heldout_recording.select_channels(_OutageSource.channel_names)
    cfg = MqttConfig(host=broker.host, port=broker.port, device_id="outage", reconnect_min_delay_s=0.1, reconnect_max_delay_s=0.5, discovery=False)
    with collect_messages(broker, "har/outage/activity", client_id="outage-sub", clean_session=False) as col:
        with Classifier.from_bundle(float32_bundle) as clf:
            n = _hops(rec.n_samples, clf.window_samples, clf.bundle.hop_samples)
            stream = StreamClassifier(clf)
            with MqttPublisher(cfg, labels=clf.labels, state_dir=tmp_path) as pub:
                summary = run_service(_OutageSource(rec, broker), stream, PublisherSink(pub, model_hash="h", device_id="outage"))
                assert summary.classifications == n
                assert pub.flush(30), "publisher did not deliver its outbox after the broker came back"
        assert col.wait_for(lambda ms: len({json.loads(m.payload)["seq"] for m in ms}) >= n, timeout_s=30)
    seqs = [json.loads(m.payload)["seq"] for m in col.messages]
    first_seen: list[int] = []
    for s in seqs:  # QoS 1 may duplicate; subscribers dedupe by seq
        if s not in first_seen:
            first_seen.append(s)
    assert first_seen == list(range(1, n + 1)), "gap or reordering after the outage"


def test_cli_run_stdout_contract(float32_bundle: Path, heldout_csv: Path, heldout_recording, capsys: pytest.CaptureFixture[str]) -> None:
    from har_edge.cli import main
    from har_edge.inference.bundle import load_bundle

    b = load_bundle(float32_bundle)
    assert main(["run", "--bundle", str(float32_bundle / "model.tflite"), "--source", f"csv:{heldout_csv}", "--speed", "max"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    acts = [l for l in lines if "activity" in l]
    assert len(acts) == len(lines), "stdout must carry only classification objects"
    assert len(acts) == _hops(heldout_recording.n_samples, b.window_samples, b.hop_samples)
    assert all({"activity", "confidence", "seq", "timestamp"} <= set(a) for a in acts)
    assert [a["seq"] for a in acts] == list(range(1, len(acts) + 1))


def test_cli_run_bad_inputs(float32_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from har_edge.cli import main

    assert main(["run", "--bundle", str(tmp_path / "nope"), "--source", "csv:x.csv"]) == 1
    assert "model file not found" in capsys.readouterr().err
    assert main(["run", "--bundle", str(float32_bundle), "--source", "serial:/dev/ttyUSB0"]) == 1
    assert "serial:/dev/ttyUSB0" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n")
    assert main(["run", "--bundle", str(float32_bundle), "--source", f"csv:{bad}", "--speed", "max"]) == 1
    assert "gyro" in capsys.readouterr().err


def test_mqtt_input_to_mqtt_output(mosquitto_broker, float32_bundle: Path, heldout_recording, tmp_path: Path) -> None:
    """Samples arrive over MQTT (our JSON schema, with garbage mixed in); activities leave over MQTT."""
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.sources import open_source
    from har_edge.runtime.stream import StreamClassifier
    from har_edge.transport import MqttConfig, MqttPublisher
    from har_edge.cli.service import PublisherSink, run_service
    from tests.fixtures.broker import publish_once

    rec = heldout_recording
    src = open_source(f"{mosquitto_broker.url}/phone/samples")
    src.wait_subscribed(5)
    stop = threading.Event()
    with Classifier.from_bundle(float32_bundle) as clf, collect_messages(mosquitto_broker, "har/bridge/activity") as col:
        pub = MqttPublisher(MqttConfig(host=mosquitto_broker.host, port=mosquitto_broker.port, device_id="bridge", discovery=False), labels=clf.labels, state_dir=tmp_path)
        worker = threading.Thread(target=run_service, args=(src, StreamClassifier(clf), PublisherSink(pub, model_hash="h", device_id="bridge")), kwargs={"stop": stop})
        worker.start()
        n = 2000
        for i in range(0, n, 100):
            batch = [{"t": j / 50.0, "acc": rec.signals[j, :3].tolist(), "gyro": rec.signals[j, 3:6].tolist()} for j in range(i, i + 100)]
            publish_once(mosquitto_broker, "phone/samples", json.dumps({"samples": batch}))
            if i % 500 == 0:
                publish_once(mosquitto_broker, "phone/samples", b"\xff not json")
                publish_once(mosquitto_broker, "phone/samples", json.dumps({"t": "soon", "acc": [1, 2]}))
        expected = _hops(n, clf.window_samples, clf.bundle.hop_samples)
        got = col.wait_for(lambda ms: len(ms) >= expected, timeout_s=30)
        stop.set()
        src.close()
        worker.join(10)
        pub.close()
    assert got, f"{len(col.messages)} of {expected} activity messages"
    # every garbage input counted once: 4 non-JSON messages, 4 samples with a wrong-typed field (issue 12)
    assert (src.stats.bad_messages, src.stats.bad_samples) == (4, 4)
    assert src.stats.reasons == {"invalid_json": 4, "non_numeric": 4}
