"""Forecast payloads, topic and Home Assistant discovery (pure functions and the in-memory publisher)."""

from __future__ import annotations

import pytest

from har_edge.errors import ConfigError, DataError
from har_edge.transport.config import MqttConfig
from har_edge.transport.discovery import forecast_discovery_messages
from har_edge.transport.memory import InMemoryPublisher
from har_edge.transport.payloads import NO_SKILL_WARNING, decode, forecast_payload


def _p(skill: float) -> dict[str, object]:
    return forecast_payload(device_id="roof", target="TEMP", values=[1.0, 2.5], unit="degC", issued_at=1.7e9, step_s=3600.0,
                            model_hash="ab", skill_vs_naive=skill)


def test_forecast_payload_fields_and_warning() -> None:
    good, bad = _p(0.56), _p(-0.01)
    assert good["values"] == [1.0, 2.5] and good["horizon"] == 2 and good["useful"] is True and "warning" not in good
    assert bad["useful"] is False and bad["warning"] == NO_SKILL_WARNING
    assert _p(0.0)["useful"] is False
    with pytest.raises(DataError, match="values"):
        forecast_payload(device_id="d", target="T", values=[], unit="degC", issued_at=1.0, step_s=1.0, model_hash="a", skill_vs_naive=0.1)
    with pytest.raises(DataError, match="finite"):
        forecast_payload(device_id="d", target="T", values=[float("nan")], unit="degC", issued_at=1.0, step_s=1.0, model_hash="a",
                         skill_vs_naive=0.1)


def test_publish_forecast_retained_seq_per_target() -> None:
    pub = InMemoryPublisher(MqttConfig(device_id="roof"))
    assert pub.publish_forecast(_p(0.5)) == 1 and pub.publish_forecast(_p(0.5)) == 2
    msgs = pub.on_topic("har/roof/forecast/TEMP")
    assert [m.retain for m in msgs] == [True, True] and msgs[0].qos == 1
    assert decode(msgs[1].payload)["seq"] == 2
    with pytest.raises(ConfigError):
        MqttConfig().forecast_topic("a/b")


def test_forecast_discovery_plus_one_and_plus_h() -> None:
    msgs = dict(forecast_discovery_messages(MqttConfig(device_id="roof"), target="TEMP", unit="degC", horizon=24, step_s=3600))
    assert set(msgs) == {"homeassistant/sensor/roof/forecast_temp_1/config", "homeassistant/sensor/roof/forecast_temp_24/config"}
    h24 = msgs["homeassistant/sensor/roof/forecast_temp_24/config"]
    assert h24["value_template"] == "{{ value_json['values'][23] }}" and h24["unit_of_measurement"] == "°C"
    assert h24["device_class"] == "temperature" and h24["state_topic"] == "har/roof/forecast/TEMP" and h24["name"] == "TEMP forecast +24 (1 d)"
    assert msgs["homeassistant/sensor/roof/forecast_temp_1/config"]["json_attributes_topic"] == "har/roof/forecast/TEMP"
    idr = dict(forecast_discovery_messages(MqttConfig(), target="usd_idr", unit="IDR/USD", horizon=5, step_s=86400))
    assert all("device_class" not in c and c["unit_of_measurement"] == "IDR/USD" for c in idr.values())
