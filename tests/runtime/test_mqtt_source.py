"""MqttSource against a real Mosquitto broker (fixture in tests/fixtures/broker.py)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.sources import MqttSource, open_source

pytestmark = pytest.mark.mqtt

T0 = 1_700_000_000_000_000_000  # Sensor Logger time, epoch ns
G = 9.80665


@pytest.fixture
def publish(mosquitto_broker: Any) -> Iterator[Any]:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()

    def send(topic: str, payload: object) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        info = client.publish(topic, data, qos=1)
        info.wait_for_publish(30)

    yield send
    client.disconnect()
    client.loop_stop()


def _gather(source: MqttSource, it: Iterator[SampleChunk], n_samples: int, timeout_s: float = 30.0) -> list[SampleChunk]:
    """Take chunks until ``n_samples`` arrived; closes the source if they do not in time."""
    timer = threading.Timer(timeout_s, source.close)
    timer.start()
    got: list[SampleChunk] = []
    try:
        for chunk in it:
            got.append(chunk)
            if sum(len(c) for c in got) >= n_samples:
                break
    finally:
        timer.cancel()
    return got


def _sample(t: float, z: float) -> dict[str, object]:
    return {"t": t, "acc": [0.0, 0.0, z], "gyro": [0.1, 0.2, 0.3]}


def _sensor_logger(t_ns: int, total_z: float) -> dict[str, object]:
    return {
        "messageId": 1,
        "sessionId": "abc",
        "deviceId": "phone",
        "payload": [
            {"name": "totalacceleration", "time": t_ns, "values": {"x": 0.0, "y": 0.0, "z": total_z}},
            {"name": "gyroscope", "time": t_ns + 2_000_000, "values": {"x": 1.0, "y": 2.0, "z": 3.0}},
            {"name": "location", "time": t_ns, "values": {"latitude": 51.5, "longitude": 0.0}},
        ],
    }


def test_json_sensor_logger_and_garbage(mosquitto_broker: Any, publish: Any) -> None:
    topic = "har/imu"
    src = open_source(f"{mosquitto_broker.url}/{topic}", qos=1, chunk_samples=4, max_latency_s=0.05)
    assert isinstance(src, MqttSource) and src.units == ("g",) * 3 + ("rad/s",) * 3
    try:
        assert src.wait_subscribed(5)
        it = src.chunks()
        publish(topic, _sample(1.00, 1.0))
        publish(topic, {"samples": [_sample(1.02, 1.1), _sample(1.04, 1.2), {"t": 1.05, "acc": "bad"}]})
        publish(topic, b"\xff\xfe not json")                          # garbage: not JSON
        publish(topic, '{"t": "noon", "acc": [0, 0, 1], "gyro": [0, 0, 0]}')  # garbage: wrong type
        publish(topic, "[1, 2, 3]")                                   # garbage: not an object
        publish(topic, {"messageId": 2, "payload": "nope"})           # garbage: bad Sensor Logger
        publish(topic, _sensor_logger(T0, G))
        publish(topic, _sensor_logger(T0 + 20_000_000, 2 * G))
        chunks = _gather(src, it, 5)
    finally:
        src.close()
    t = np.concatenate([c.timestamps_s for c in chunks])
    v = np.concatenate([c.values for c in chunks])
    assert len(t) == 5 and np.all(np.diff(t) > 0)
    np.testing.assert_allclose(v[:3, 2], [1.0, 1.1, 1.2])
    np.testing.assert_allclose(v[3:, 2], [1.0, 2.0])  # m/s^2 converted to the declared g
    np.testing.assert_allclose(v[3:, 3:], [[1, 2, 3]] * 2)  # rad/s unchanged
    np.testing.assert_allclose(t[3], T0 / 1e9)
    assert src.stats.bad_messages == 3  # not JSON, not an object, bad Sensor Logger
    assert src.stats.bad_samples == 2  # the batch member with "acc": "bad"; the sample with "t": "noon"
    assert src.stats.reasons == {"missing_field": 1, "invalid_json": 1, "non_numeric": 1, "invalid_message": 2}
    assert src.stats.samples == 5


def test_sensor_logger_format_keeps_its_units(mosquitto_broker: Any, publish: Any) -> None:
    src = open_source(
        f"{mosquitto_broker.url}/sensor-logger", payload_format="sensor_logger", channel_names=["acc_x", "acc_y", "acc_z"]
    )
    try:
        assert src.units == ("m/s^2",) * 3
        assert src.wait_subscribed(5)
        it = src.chunks()
        publish("sensor-logger", _sensor_logger(T0, G))
        publish("sensor-logger", _sample(1.0, 1.0))  # our JSON is not accepted in sensor_logger mode
        publish("sensor-logger", _sensor_logger(T0 + 10_000_000, G))
        chunks = _gather(src, it, 2)
    finally:
        src.close()
    v = np.concatenate([c.values for c in chunks])
    np.testing.assert_allclose(v, [[0, 0, G], [0, 0, G]])
    assert src.stats.reasons == {"invalid_message": 1}


def test_reconnects_after_the_broker_restarts(mosquitto_broker: Any) -> None:
    import paho.mqtt.client as mqtt

    def send_one(payload: dict[str, object]) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect(mosquitto_broker.host, mosquitto_broker.port)
        client.loop_start()
        client.publish("t/restart", json.dumps(payload), qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    src = open_source(f"{mosquitto_broker.url}/t/restart", qos=1, chunk_samples=1, max_latency_s=0.05)
    try:
        assert src.wait_subscribed(5)
        it = src.chunks()
        send_one(_sample(1.0, 1.0))
        assert len(_gather(src, it, 1)) == 1
        mosquitto_broker.stop()
        mosquitto_broker.start()
        assert src.wait_subscribed(15), "did not re-subscribe after the broker came back"
        send_one(_sample(2.0, 2.0))
        (chunk,) = _gather(src, it, 1)
        assert chunk.timestamps_s.tolist() == [2.0]
    finally:
        src.close()


def test_close_stops_the_network_loop(mosquitto_broker: Any) -> None:
    src = open_source(f"{mosquitto_broker.url}/t/close", max_latency_s=0.05)
    assert src.wait_subscribed(5)
    it = src.chunks()
    threading.Timer(0.2, src.close).start()
    assert list(it) == []
    assert src._client._thread is None  # loop_stop() joined paho's thread


def test_callback_never_raises() -> None:
    src = MqttSource("127.0.0.1", "x", channel_names=["acc_x", "acc_y", "acc_z"])
    msg = SimpleNamespace(topic="x", payload=b'{"t": 1, "acc": [0, 0, 1]}')
    src._on_message(None, None, msg)  # a well-formed sample
    src._on_message(None, None, SimpleNamespace(topic="x", payload=None))  # TypeError inside
    src._on_message(None, None, SimpleNamespace(topic="x", payload=b"{}"))
    assert len(src._pending) == 1
    assert src.stats.reasons == {"internal_error": 1, "missing_field": 1}
    src.close()
