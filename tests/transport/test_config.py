"""MqttConfig validation, topics and broker URL parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_edge.errors import ConfigError
from har_edge.transport.config import TOPIC_KINDS, MqttConfig, parse_broker_url


def test_defaults_and_topics() -> None:
    cfg = MqttConfig()
    assert (cfg.host, cfg.port, cfg.qos, cfg.device_id, cfg.topic_prefix) == ("localhost", 1883, 1, "har-edge", "har")
    assert cfg.discovery and cfg.discovery_prefix == "homeassistant"
    assert (cfg.reconnect_min_delay_s, cfg.reconnect_max_delay_s) == (1.0, 60.0)
    assert [cfg.topic(k) for k in TOPIC_KINDS] == [
        "har/har-edge/status",
        "har/har-edge/activity",
        "har/har-edge/event",
        "har/har-edge/stats",
    ]
    assert MqttConfig(topic_prefix="home/har", device_id="pi_1").topic("event") == "home/har/pi_1/event"
    assert cfg.discovery_status_topic == "homeassistant/status"
    assert cfg.effective_client_id == "har-edge-har-edge"
    assert MqttConfig(client_id="x").effective_client_id == "x"


def test_unknown_topic_kind_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'bogus'.*status, activity, event, stats"):
        MqttConfig().topic("bogus")


def test_config_is_frozen() -> None:
    cfg = MqttConfig()
    with pytest.raises(AttributeError):
        cfg.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"host": ""}, "host=''"),
        ({"host": "mqtt://broker"}, "looks like a URL"),
        ({"host": "bro ker"}, "host='bro ker'"),
        ({"port": 0}, "port=0"),
        ({"port": 70000}, "port=70000"),
        ({"qos": 3}, "qos=3"),
        ({"device_id": "a/b"}, "device_id='a/b'"),
        ({"device_id": "a+b"}, "device_id='a\\+b'"),
        ({"topic_prefix": "har/#"}, "topic_prefix='har/#'"),
        ({"topic_prefix": "/har"}, "topic_prefix='/har'"),
        ({"password": "x"}, "username is None"),
        ({"tls_ca_path": Path("ca.pem")}, "tls=False"),
        ({"tls": True, "tls_key_path": Path("k.pem")}, "tls_cert_path is None"),
        ({"outbox_max_messages": 0}, "outbox_max_messages=0"),
        ({"reconnect_min_delay_s": 5.0, "reconnect_max_delay_s": 1.0}, "0 < min <= max"),
        ({"reconnect_min_delay_s": 0.0}, "0 < min <= max"),
        ({"stats_interval_s": -1.0}, "stats_interval_s=-1.0"),
        ({"max_inflight": 0}, "max_inflight=0"),
        ({"keepalive_s": -1}, "keepalive_s=-1"),
    ],
)
def test_bad_values_raise_config_error_naming_the_value(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MqttConfig(**kwargs)  # type: ignore[arg-type]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        MqttConfig(port=-1)


def test_parse_plain_url_keeps_base_fields() -> None:
    base = MqttConfig(device_id="kitchen", qos=0, discovery=False)
    cfg = parse_broker_url("mqtt://broker.local:1884", base=base)
    assert (cfg.host, cfg.port, cfg.tls) == ("broker.local", 1884, False)
    assert (cfg.device_id, cfg.qos, cfg.discovery) == ("kitchen", 0, False)
    assert cfg.username is None and cfg.password is None


def test_parse_default_ports_and_tls() -> None:
    assert parse_broker_url("mqtt://h").port == 1883
    assert parse_broker_url("tcp://h").port == 1883
    tls = parse_broker_url("mqtts://h")
    assert (tls.port, tls.tls) == (8883, True)
    assert parse_broker_url("ssl://h:9000").port == 9000


def test_parse_credentials_are_percent_decoded() -> None:
    cfg = parse_broker_url("mqtts://pi%40home:p%3Ass%2Fw@[::1]:8884")
    assert (cfg.username, cfg.password, cfg.host, cfg.port) == ("pi@home", "p:ss/w", "::1", 8884)
    user_only = parse_broker_url("mqtt://bob@h")
    assert (user_only.username, user_only.password) == ("bob", None)


def test_parse_keeps_base_credentials_when_url_has_none() -> None:
    base = MqttConfig(username="u", password="p")
    cfg = parse_broker_url("mqtt://h/", base=base)
    assert (cfg.username, cfg.password) == ("u", "p")


def test_parse_plain_url_with_tls_settings_is_an_error() -> None:
    """TLS asked for in the config but a plain mqtt:// URL: an error, never a silent downgrade (issue 12)."""
    base = MqttConfig(tls=True, tls_ca_path=Path("/etc/ca.pem"), tls_insecure=True)
    with pytest.raises(ConfigError, match=r"tls, tls_ca_path, tls_insecure ask\(s\) for TLS .* plain mqtt://"):
        parse_broker_url("mqtt://h", base=base)
    kept = parse_broker_url("mqtts://h", base=base)
    assert kept.tls_ca_path == Path("/etc/ca.pem")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("localhost:1883", "expected mqtt://"),
        ("http://h", "scheme 'http'"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "invalid port"),
        ("mqtt://h:abc", "invalid port"),
        ("mqtt://h:0", "port=0"),
        ("mqtt://h/topic", "path, query or fragment"),
        ("mqtt://h?x=1", "path, query or fragment"),
        ("mqtt://bad host", "host='bad host'"),
    ],
)
def test_parse_bad_urls_raise_config_error(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_broker_url(url)


def test_outbox_file_resolution(tmp_path: Path) -> None:
    assert MqttConfig().outbox_file() is None
    assert MqttConfig(device_id="d1").outbox_file(tmp_path) == tmp_path / "outbox-d1.sqlite3"
    explicit = tmp_path / "x.db"
    assert MqttConfig(outbox_path=explicit).outbox_file(tmp_path / "other") == explicit
