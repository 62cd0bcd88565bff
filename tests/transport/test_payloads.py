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
    assert "value_json.activity" in act["value_template"] and "model_hash" in act["json_attributes_template"]
    assert act["expire_after"] == 120
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
    assert "(value_json.confidence * 100) | round(1)" in conf["value_template"] and conf["expire_after"] == 120
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


class _HomeAssistantSensor:
    """What Home Assistant's MQTT sensor does with a message, as far as the recorder sees it.

    Renders the discovery templates with Jinja2 the way HA does (``value`` always, ``value_json`` when
    the payload is JSON); "None" means unknown. Counts state writes: HA writes a state (a recorder
    row; "any change" automations fire) only when the state or the attributes differ.
    """

    def __init__(self, config: dict[str, object]) -> None:
        from tests.fixtures.requirements import import_or_skip

        jinja2 = import_or_skip("jinja2")
        env = jinja2.Environment()
        self.value = env.from_string(str(config["value_template"]))
        template = config.get("json_attributes_template")
        self.attributes = None if template is None else env.from_string(str(template))
        self.options = config.get("options")
        self.state: tuple[object, object] | None = None
        self.writes = 0

    def receive(self, payload: bytes) -> str | None:
        import json

        variables: dict[str, object] = {"value": payload.decode()}
        try:
            variables["value_json"] = json.loads(payload)
        except ValueError:
            pass
        rendered = self.value.render(**variables)
        native = None if rendered == "None" else rendered
        assert native is None or self.options is None or native in self.options  # type: ignore[operator]
        attributes = None if self.attributes is None else json.loads(self.attributes.render(**variables))
        state = (native, attributes)
        if state != self.state:
            self.state, self.writes = state, self.writes + 1
        return native


def test_an_unchanged_activity_is_not_a_state_change_in_home_assistant() -> None:
    cfg = MqttConfig(device_id="kitchen")
    msgs = dict(discovery_messages(cfg, ["walking", "sitting"]))
    activity = _HomeAssistantSensor(msgs["homeassistant/sensor/kitchen/activity/config"])
    pub = InMemoryPublisher(cfg)
    for n, (label, p) in enumerate([("walking", 0.91), ("walking", 0.87), ("walking", 0.95), ("sitting", 0.8)]):
        pub.publish_activity(payloads.activity_payload(
            device_id="kitchen", activity=label, confidence=p, probabilities={"walking": p, "sitting": 1 - p},
            timestamp=1_700_000_000.0 + n, model_hash="cafe", window_end_s=n * 1.28))
    states = [activity.receive(m.payload) for m in pub.on_topic("har/kitchen/activity")]
    assert states == ["walking", "walking", "walking", "sitting"]
    assert activity.writes == 2, "seq, timestamps and probabilities must not reach the attributes"
    assert activity.state == ("sitting", {"model_hash": "cafe"})
    # the zero-length retained message the publisher sends at start: unknown, not an error or a stale state
    assert activity.receive(b"") is None and activity.state == (None, {})
    confidence = _HomeAssistantSensor(msgs["homeassistant/sensor/kitchen/confidence/config"])
    assert confidence.receive(pub.on_topic("har/kitchen/activity")[0].payload) == "91.0"
    assert confidence.receive(b"") is None


def test_device_name_and_expiry_are_configurable() -> None:
    cfg = MqttConfig(device_id="kitchen", device_name="Kitchen wristband", expire_after_s=0)
    act, conf = (c for _, c in discovery_messages(cfg, ["walking"]))
    assert act["device"]["name"] == conf["device"]["name"] == "Kitchen wristband"
    assert act["device"]["identifiers"] == ["har_edge_kitchen"] and act["unique_id"] == "har_edge_kitchen_activity"
    assert "expire_after" not in act and "expire_after" not in conf
    assert dict(discovery_messages(MqttConfig(device_id="k", expire_after_s=30), []))[
        "homeassistant/sensor/k/activity/config"]["expire_after"] == 30
    for bad in ({"device_name": " "}, {"expire_after_s": -1}, {"expire_after_s": 1.5}):
        with pytest.raises(ConfigError):
            MqttConfig(**bad)  # type: ignore[arg-type]
    assert MqttConfig(discovery=False).clears_activity_on_start is False
    assert MqttConfig().clears_activity_on_start is True
    assert MqttConfig(discovery=False, clear_activity_on_start=True).clears_activity_on_start is True


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
