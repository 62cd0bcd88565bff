"""A live label topic: ``har-edge record --labels-from mqtt://host/topic`` switches the activity label
whenever a message arrives (a Home Assistant button, a phone shortcut, ``mosquitto_pub``).

Payload: the label as plain text (``walking``), or JSON ``{"label": "walking"}``; an empty payload or
``{"label": ""}`` means unlabelled from now on. Credentials and TLS come from the URL
(``mqtts://user:pass@host:8883/topic``) as for the publisher (:func:`~har_edge.transport.config.parse_broker_url`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from har_edge.errors import ConfigError, HarEdgeError
from har_edge.transport.config import MqttConfig, parse_broker_url
from har_edge.transport.paho_client import apply_credentials_and_tls, guarded, load_paho

__all__ = ["LabelTopic", "parse_label_url", "label_from_payload"]

log = logging.getLogger(__name__)


def parse_label_url(url: str) -> tuple[MqttConfig, str]:
    """``mqtt[s]://[user:pass@]host[:port]/topic`` → (broker config, topic)."""
    scheme, sep, rest = url.partition("://")
    netloc, _, topic = rest.partition("/")
    if not sep or not topic:
        raise ConfigError(f"label topic {url!r}: expected mqtt://[user:pass@]host[:port]/topic")
    return parse_broker_url(f"{scheme}://{netloc}"), unquote(topic)


def label_from_payload(payload: bytes) -> str:
    """The label a message carries (plain text or ``{"label": ...}``); ``""`` = unlabelled."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            raise ConfigError(f"label message {text[:60]!r} is not valid JSON") from None
        value = obj.get("label", "") if isinstance(obj, dict) else None
        if not isinstance(value, str):
            raise ConfigError(f"label message {text[:60]!r}: expected {{\"label\": \"name\"}}")
        return value.strip()
    return text


class LabelTopic:
    """Subscribes to a label topic and calls ``on_label(label)`` for each message (from paho's thread)."""

    def __init__(self, url: str, on_label: Callable[[str], object], *, qos: int = 1) -> None:
        self.cfg, self.topic = parse_label_url(url)
        self.on_label, self.qos = on_label, qos
        mqtt = load_paho()
        self.subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        apply_credentials_and_tls(self._client, self.cfg)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)

    def start(self) -> None:
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=30)
        self._client.loop_start()

    @guarded
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("label topic: broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason_code)
            return
        client.subscribe(self.topic, qos=self.qos)

    @guarded
    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        if not any(rc.is_failure for rc in reason_codes):
            self.subscribed.set()

    @guarded
    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self.on_label(label_from_payload(msg.payload))
        except HarEdgeError as exc:
            log.warning("label topic %s: ignored a message: %s", msg.topic, exc)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
