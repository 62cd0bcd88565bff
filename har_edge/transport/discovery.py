"""Home Assistant MQTT discovery configs for a har-edge device.

Two sensors under one device (named ``device_name``, default the device id), each a retained JSON
config at ``<discovery_prefix>/sensor/<device_id>/<object_id>/config``:

* ``activity``   -- an ``enum`` sensor whose state is ``value_json.activity``. Its only attribute is
  the model hash (``json_attributes_template``): ``seq``, timestamps and probabilities change with
  every message, and every attribute change is a new state in Home Assistant's recorder and fires
  "any change" automations, so an unchanged activity must leave the entity unchanged;
* ``confidence`` -- the winning score in percent (``state_class: measurement``).

Both use the device's status topic for availability (``online`` / ``offline``) and ``expire_after``
(``MqttConfig.expire_after_s``): no classification for that long and they show "unavailable". Their
templates render ``None`` (Home Assistant: "unknown") for a zero-length payload, which the publisher
sends retained at start to clear the previous run's activity.

The ``options`` of the enum sensor need Home Assistant 2024.9 or newer (its MQTT sensor accepts
``options`` since then, home-assistant/core PR 123248); older releases drop them silently and show
the activity as a plain text sensor.

>>> from har_edge.transport.config import MqttConfig
>>> [topic for topic, _ in discovery_messages(MqttConfig(device_id="kitchen"), ["sit", "walk"])]
['homeassistant/sensor/kitchen/activity/config', 'homeassistant/sensor/kitchen/confidence/config']
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

from har_edge.errors import ConfigError
from har_edge.transport.config import MqttConfig
from har_edge.transport.payloads import STATUS_OFFLINE, STATUS_ONLINE, UNCERTAIN

__all__ = [
    "MODEL",
    "activity_sensor_config",
    "confidence_sensor_config",
    "discovery_messages",
    "discovery_topic",
    "forecast_discovery_messages",
    "package_version",
]

MODEL = "har-edge"


def package_version() -> str:
    """Installed har-edge version, or ``"unknown"`` when running from a source tree."""
    try:
        return metadata.version("har-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def discovery_topic(config: MqttConfig, object_id: str) -> str:
    """Return ``<discovery_prefix>/sensor/<device_id>/<object_id>/config``."""
    return f"{config.discovery_prefix}/sensor/{config.device_id}/{object_id}/config"


def _options(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise ConfigError(f"labels={labels!r} but expected a sequence of label strings")
    options: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label:
            raise ConfigError(f"label {label!r} in labels={list(labels)!r} but expected non-empty strings")
        if label in options:
            raise ConfigError(f"label {label!r} appears twice in labels={list(labels)!r}")
        options.append(label)
    if UNCERTAIN not in options:
        options.append(UNCERTAIN)
    return options


def _field(name: str, expression: str | None = None) -> str:
    """A Jinja expression: ``expression`` (default ``value_json.<name>``) when the payload is JSON with ``name``,
    else ``'None'`` (Home Assistant shows "unknown"), e.g. for the zero-length clear at start."""
    return (f"{expression or 'value_json.' + name} if value_json is defined and value_json.{name} is defined "
            "else 'None'")


def _common(config: MqttConfig, object_id: str, name: str, sw_version: str) -> dict[str, Any]:
    device_key = f"har_edge_{config.device_id}"
    cfg: dict[str, Any] = {
        "name": name,
        "unique_id": f"{device_key}_{object_id}",
        "state_topic": config.topic("activity"),
        "availability_topic": config.topic("status"),
        "payload_available": STATUS_ONLINE,
        "payload_not_available": STATUS_OFFLINE,
        "qos": config.qos,
        "device": {
            "identifiers": [device_key],
            "name": config.effective_device_name,
            "model": MODEL,
            "manufacturer": MODEL,
            "sw_version": sw_version,
        },
        "origin": {"name": MODEL, "sw_version": sw_version},
    }
    if config.expire_after_s > 0:
        cfg["expire_after"] = config.expire_after_s
    return cfg


def activity_sensor_config(
    config: MqttConfig, labels: Sequence[str], *, sw_version: str | None = None
) -> dict[str, Any]:
    """Config of the activity ``enum`` sensor; options are ``labels`` plus ``"uncertain"``.

    With no labels the sensor is a plain text sensor (HA requires options for ``enum``).

    Raises:
        ConfigError: A label is empty, not a string, or repeated.
    """
    cfg = _common(config, "activity", "Activity", sw_version or package_version())
    cfg.update(
        value_template="{{ " + _field("activity") + " }}",
        json_attributes_topic=config.topic("activity"),
        # only what changes rarely: anything per-message would make every message a recorder state change
        json_attributes_template="{{ ({'model_hash': value_json.model_hash} if value_json is defined and "
                                 "value_json.model_hash is defined else {}) | tojson }}",
        icon="mdi:run",
    )
    if len(labels) > 0:
        cfg.update(device_class="enum", options=_options(labels))
    return cfg


def confidence_sensor_config(config: MqttConfig, *, sw_version: str | None = None) -> dict[str, Any]:
    """Config of the confidence sensor (percent, ``state_class: measurement``)."""
    cfg = _common(config, "confidence", "Activity confidence", sw_version or package_version())
    cfg.update(
        value_template="{{ " + _field("confidence", "(value_json.confidence * 100) | round(1)") + " }}",
        unit_of_measurement="%",
        state_class="measurement",
        icon="mdi:percent",
    )
    return cfg


def discovery_messages(
    config: MqttConfig, labels: Sequence[str], *, sw_version: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """All discovery ``(topic, config)`` pairs to publish retained for this device."""
    return [
        (discovery_topic(config, "activity"), activity_sensor_config(config, labels, sw_version=sw_version)),
        (discovery_topic(config, "confidence"), confidence_sensor_config(config, sw_version=sw_version)),
    ]


# Home Assistant device classes for the units a forecast may carry (others: no device class)
_DEVICE_CLASS = {"degC": ("temperature", "°C"), "hPa": ("atmospheric_pressure", "hPa"), "m/s": ("wind_speed", "m/s"),
                 "%": (None, "%")}


def forecast_discovery_messages(
    config: MqttConfig, *, target: str, unit: str, horizon: int, step_s: float, sw_version: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Discovery ``(topic, config)`` pairs of a forecaster: two sensors, the +1-step and the +H-step forecast.

    Both read the retained forecast topic (``values[0]`` and ``values[H-1]``); the +1 sensor carries the
    whole payload as attributes (every value, ``skill_vs_naive``, ``warning``). ``expire_after`` (three
    steps) marks them unavailable when forecasts stop.
    """
    if horizon < 1 or not step_s > 0:
        raise ConfigError(f"horizon={horizon!r}, step_s={step_s!r}; expected horizon >= 1 and step_s > 0")
    topic = config.forecast_topic(target)
    device_class, ha_unit = _DEVICE_CLASS.get(unit, (None, unit))
    out = []
    for label, index in (("1", 0), (str(horizon), horizon - 1)):
        object_id = f"forecast_{target}_{label}".lower()
        cfg = _common(config, object_id, f"{target} forecast +{label} ({_duration(float(step_s) * int(label))})",
                      sw_version or package_version())
        cfg.update(state_topic=topic, value_template=f"{{{{ value_json['values'][{index}] }}}}",
                   unit_of_measurement=ha_unit, state_class="measurement", icon="mdi:crystal-ball",
                   expire_after=int(max(3 * step_s, 60)))
        if device_class:
            cfg["device_class"] = device_class
        if index == 0:
            cfg["json_attributes_topic"] = topic
        out.append((discovery_topic(config, object_id), cfg))
    return out


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
