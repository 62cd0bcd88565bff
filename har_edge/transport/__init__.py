"""Publish activities over MQTT: config, payloads, a persistent outbox and the publishers.

Topic layout (``MqttConfig.topic(kind)``)::

    <topic_prefix>/<device_id>/status     retained "online" / "offline" (last will)
    <topic_prefix>/<device_id>/activity   JSON activity state, seq-numbered
    <topic_prefix>/<device_id>/event      JSON start / end events, seq-numbered
    <topic_prefix>/<device_id>/stats      JSON counters
    <topic_prefix>/<device_id>/forecast/<target>   retained JSON forecast, seq-numbered (forecast bundles)
    <discovery_prefix>/sensor/<device_id>/{activity,confidence}/config   Home Assistant

Importing this package needs neither paho-mqtt nor TensorFlow; constructing
:class:`MqttPublisher` needs paho-mqtt 2.x (``pip install "har-edge[device]"``).
"""

from __future__ import annotations

from har_edge.transport.base import ActivityPublisher, Message, Publisher, SequencedPublisher
from har_edge.transport.config import TOPIC_KINDS, MqttConfig, parse_broker_url
from har_edge.transport.discovery import discovery_messages, forecast_discovery_messages
from har_edge.transport.memory import InMemoryPublisher
from har_edge.transport.mqtt import MqttPublisher, PublisherStats
from har_edge.transport.outbox import Outbox, OutboxRow
from har_edge.transport.payloads import (
    SCHEMA_VERSION,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    UNCERTAIN,
    activity_payload,
    decode,
    encode,
    event_payload,
    forecast_payload,
    stats_payload,
    status_payload,
)

__all__ = [
    "ActivityPublisher",
    "InMemoryPublisher",
    "Message",
    "MqttConfig",
    "MqttPublisher",
    "Outbox",
    "OutboxRow",
    "Publisher",
    "PublisherStats",
    "SCHEMA_VERSION",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "SequencedPublisher",
    "TOPIC_KINDS",
    "UNCERTAIN",
    "activity_payload",
    "decode",
    "discovery_messages",
    "encode",
    "event_payload",
    "forecast_discovery_messages",
    "forecast_payload",
    "parse_broker_url",
    "stats_payload",
    "status_payload",
]
