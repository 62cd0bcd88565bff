"""Payload builders, Home Assistant discovery configs and the in-memory publisher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from har_edge.errors import ConfigError, DataError, TransportError
from har_edge.transport import payloads
from har_edge.transport.base import ActivityPublisher, Publisher
from har_edge.transport.config import MqttConfig
from har_edge.transport.discovery import activity_sensor_config, confidence_sensor_config, discovery_messages
from har_edge.transport.memory import InMemoryPublisher


def _activity(**overrides: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "device_id": "dev",
        "activity": "walking",
        "confidence": 0.75,
        "probabilities": {"walking": 0.75, "sitting": 0.25},
        "timestamp": 1_700_000_000.25,
        "model_hash": "abc123",
    }
    kwargs.update(overrides)
    return payloads.activity_payload(**kwargs)  # type: ignore[arg-type]


def test_activity_payload_fields() -> None:
    p = _activity(seq=7, window_end_s=12.5)
    assert p == {
        "schema_version": 1,
        "device_id": "dev",
        "activity": "walking",
        "confidence": 0.75,
        "probabilities": {"walking": 0.75, "sitting": 0.25},
        "timestamp": 1_700_000_000.25,
        "model_hash": "abc123",
        "seq": 7,
        "window_end_s": 12.5,
    }
    assert "seq" not in _activity() and "window_end_s" not in _activity()


def test_activity_payload_accepts_numpy_scalars_and_rounds() -> None:
    probs = np.array([0.1234567891, 0.8765432109], dtype=np.float32)
    p = _activity(
        confidence=probs[1], probabilities=dict(zip(["a", "b"], probs)), timestamp=np.float64(5.0)
    )
    assert p["probabilities"] == {"a": round(float(probs[0]), 6), "b": round(float(probs[1]), 6)}
    assert isinstance(p["confidence"], float)
    assert payloads.decode(payloads.encode(p)) == p


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"confidence": 1.5}, r"confidence=1.5.*\[0, 1\]"),
        ({"confidence": math.nan}, "confidence=nan"),
        ({"probabilities": {"a": math.inf}}, r"probabilities\['a'\]=inf"),
        ({"timestamp": "noon"}, "timestamp='noon'"),
        ({"activity": ""}, "activity=''"),
        ({"seq": -1}, "seq=-1"),
    ],
)
def test_activity_payload_rejects_bad_values(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        _activity(**overrides)


def test_event_payload_start_and_end() -> None:
    start = payloads.event_payload(device_id="d", event_type="start", activity="walking", timestamp=10.0, seq=3)
    assert start == {
        "schema_version": 1,
        "device_id": "d",
        "type": "start",
        "activity": "walking",
        "timestamp": 10.0,
        "seq": 3,
    }
    end = payloads.event_payload(device_id="d", event_type="end", activity="walking", timestamp=70.0, duration_s=60)
    assert end["type"] == "end" and end["duration_s"] == 60.0 and "seq" not in end


def test_event_payload_rules() -> None:
    with pytest.raises(DataError, match="event_type='stop'"):
        payloads.event_payload(device_id="d", event_type="stop", activity="a", timestamp=1.0)
    with pytest.raises(DataError, match="duration_s is None"):
        payloads.event_payload(device_id="d", event_type="end", activity="a", timestamp=1.0)
    with pytest.raises(DataError, match="only 'end' has a duration"):
        payloads.event_payload(device_id="d", event_type="start", activity="a", timestamp=1.0, duration_s=2.0)
    with pytest.raises(DataError, match="duration_s=-1"):
        payloads.event_payload(device_id="d", event_type="end", activity="a", timestamp=1.0, duration_s=-1)


def test_stats_and_status_payloads() -> None:
    s = payloads.stats_payload(device_id="d", counters={"acked": np.int64(3), "latency_ms": 1.5}, timestamp=2.0)
    assert s == {"schema_version": 1, "device_id": "d", "timestamp": 2.0, "counters": {"acked": 3, "latency_ms": 1.5}}
    assert isinstance(s["counters"]["acked"], int)
    assert payloads.status_payload(True) == b"online"
    assert payloads.status_payload(False) == b"offline"


def test_encode_is_compact_and_strict() -> None:
    assert payloads.encode({"a": 1, "b": [1.5, "é"]}) == '{"a":1,"b":[1.5,"é"]}'.encode()
    with pytest.raises(DataError, match="cannot be encoded"):
        payloads.encode({"x": math.nan})
    with pytest.raises(DataError, match="cannot be encoded"):
        payloads.encode({"x": object()})


def test_decode_rejects_non_objects() -> None:
    assert payloads.decode('{"a": 1}') == {"a": 1}
    with pytest.raises(DataError, match="not JSON"):
        payloads.decode(b"online")
    with pytest.raises(DataError, match="expected an object"):
        payloads.decode(b"[1, 2]")


def test_stamp_sets_seq_and_device() -> None:
    out = payloads.stamp({"activity": "a", "seq": 99}, seq=5, device_id="d")
    assert out == {"schema_version": 1, "device_id": "d", "activity": "a", "seq": 5}
    assert list(out)[:2] == ["schema_version", "device_id"]
    with pytest.raises(DataError, match="device_id='other'"):
        payloads.stamp({"device_id": "other"}, seq=1, device_id="d")


# -- Home Assistant discovery ------------------------------------------------------------------


def test_activity_sensor_discovery_config() -> None:
    cfg = MqttConfig(device_id="kitchen", topic_prefix="har")
    msgs = dict(discovery_messages(cfg, ["walking", "sitting"], sw_version="1.2.3"))
    act = msgs["homeassistant/sensor/kitchen/activity/config"]
    assert act["device_class"] == "enum"
    assert act["options"] == ["walking", "sitting", "uncertain"]
    assert act["state_topic"] == "har/kitchen/activity"
    assert act["json_attributes_topic"] == "har/kitchen/activity"
    assert act["value_template"] == "{{ value_json.activity }}"
    assert act["availability_topic"] == "har/kitchen/status"
    assert (act["payload_available"], act["payload_not_available"]) == ("online", "offline")
    assert act["unique_id"] == "har_edge_kitchen_activity"
    assert act["device"] == {
        "identifiers": ["har_edge_kitchen"],
        "name": "kitchen",
        "model": "har-edge",
        "manufacturer": "har-edge",
        "sw_version": "1.2.3",
    }
    conf = msgs["homeassistant/sensor/kitchen/confidence/config"]
    assert conf["unit_of_measurement"] == "%"
    assert conf["state_class"] == "measurement"
    assert conf["value_template"] == "{{ (value_json.confidence * 100) | round(1) }}"
    assert conf["unique_id"] != act["unique_id"]
    assert conf["device"]["identifiers"] == act["device"]["identifiers"]
    assert payloads.decode(payloads.encode(act)) == act


def test_discovery_labels() -> None:
    cfg = MqttConfig()
    assert activity_sensor_config(cfg, ["a", "uncertain"])["options"] == ["a", "uncertain"]
    no_labels = activity_sensor_config(cfg, [])
    assert "device_class" not in no_labels and "options" not in no_labels
    with pytest.raises(ConfigError, match="'a' appears twice"):
        activity_sensor_config(cfg, ["a", "a"])
    with pytest.raises(ConfigError, match="label ''"):
        activity_sensor_config(cfg, ["a", ""])
    with pytest.raises(ConfigError, match="sequence of label strings"):
        activity_sensor_config(cfg, "walking")
    assert confidence_sensor_config(cfg, sw_version=None)["device"]["sw_version"]


# -- in-memory publisher -----------------------------------------------------------------------


def test_in_memory_publisher_stamps_seq_per_stream() -> None:
    pub = InMemoryPublisher(MqttConfig(device_id="d"))
    assert isinstance(pub, Publisher) and isinstance(pub, ActivityPublisher)
    state = _activity(device_id="d")
    assert [pub.publish_activity(state) for _ in range(3)] == [1, 2, 3]
    event = payloads.event_payload(device_id="d", event_type="start", activity="walking", timestamp=1.0)
    assert pub.publish_event(event) == 1
    pub.publish_stats({"windows": 4})
    assert [p["seq"] for p in pub.decoded("har/d/activity")] == [1, 2, 3]
    assert pub.decoded("har/d/event")[0]["type"] == "start"
    stats = pub.decoded("har/d/stats")[0]
    assert stats["counters"] == {"published": 4, "windows": 4}
    assert all(m.qos == 1 and m.retain == (m.topic == "har/d/activity") for m in pub.messages)  # state retained


def test_in_memory_publisher_validates_and_closes() -> None:
    with InMemoryPublisher() as pub:
        pub.publish("a/b", b"x", qos=0, retain=True)
        assert pub.on_topic("a/b")[0].retain
        with pytest.raises(ConfigError, match="'a/#'"):
            pub.publish("a/#", b"x")
        with pytest.raises(ConfigError, match="qos=3"):
            pub.publish("a/b", b"x", qos=3)
        with pytest.raises(DataError, match="device_id='other'"):
            pub.publish_activity({"device_id": "other"})
    with pytest.raises(TransportError, match="after close"):
        pub.publish("a/b", b"x")
