"""Transport configuration refuses what would silently go wrong: plain TCP when TLS was asked for, topics MQTT
cannot carry, ids that break file names; and secrets stay out of every message."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_edge.errors import ConfigError
from har_edge.transport.config import MqttConfig, parse_broker_url

SECRET = "Pa55-w0rd-do-not-print"


def test_tls_true_with_a_plain_mqtt_url_is_an_error(tmp_path: Path) -> None:
    """Problem 6: `[mqtt] tls = true` + `tls_ca_path` with `--broker mqtt://...` published in plain text."""
    base = MqttConfig(tls=True, tls_ca_path=tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match=r"tls.*mqtt://.*mqtts://"):
        parse_broker_url("mqtt://broker.local", base=base)
    with pytest.raises(ConfigError, match="tls"):
        parse_broker_url("tcp://broker.local:1883", base=MqttConfig(tls=True))
    assert parse_broker_url("mqtts://broker.local", base=base).tls


def test_cli_tls_true_with_plain_url_is_an_error(tmp_path: Path) -> None:
    from har_edge.cli.run import _mqtt_config

    cfg = {"mqtt": {"tls": True}, "device_id": "d", "topic_prefix": "har", "qos": 1}
    with pytest.raises(ConfigError, match="mqtts://"):
        _mqtt_config(cfg, "mqtt://127.0.0.1:1883")


@pytest.mark.parametrize(
    "url",
    [
        f"mqtt://user:{SECRET}@broker.local:notaport",
        f"mqtt://user:{SECRET}@broker.local:99999",
        f"mqtt://user:{SECRET}@broker.local/path",
        f"http://user:{SECRET}@broker.local",
        f"mqtt://user:{SECRET}@bad host",
        f"mqtt://user:{SECRET}@",
    ],
)
def test_errors_for_bad_broker_urls_never_show_the_password(url: str) -> None:
    """Problem 7: the password was printed in the error for a malformed broker URL."""
    with pytest.raises(ConfigError) as info:
        parse_broker_url(url)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert "***" in str(info.value) or "user" not in str(info.value)


@pytest.mark.parametrize("url", [f"mqtt://user:{SECRET}@h:port/t", f"mqtt://user:{SECRET}@/t", f"mqtt://user:{SECRET}@h"])
def test_source_url_errors_never_show_the_password(url: str) -> None:
    from har_edge.runtime.sources import open_source

    with pytest.raises(ConfigError) as info:
        open_source(url)
    assert SECRET not in str(info.value)


def test_config_repr_hides_the_password() -> None:
    cfg = MqttConfig(username="u", password=SECRET)
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"topic_prefix": "a" * 70_000}, "65535"),
        ({"topic_prefix": "$SYS/har"}, r"\$"),
        ({"topic_prefix": "$share/x"}, r"\$"),
        ({"discovery_prefix": "$SYS"}, r"\$"),
        ({"device_id": "x" * 300, "topic_prefix": "p" * 65_300}, "65535"),
    ],
)
def test_topics_are_validated_up_front(fields: dict[str, object], match: str) -> None:
    """Problem 8: a topic over 65,535 bytes reached paho; a `$SYS` prefix passed validation."""
    with pytest.raises(ConfigError, match=match):
        MqttConfig(**fields)  # type: ignore[arg-type]


def test_long_device_ids_give_short_outbox_file_names(tmp_path: Path) -> None:
    """Problem 8: a 300-character device id failed on the outbox file name."""
    from har_edge.transport.outbox import Outbox

    long_id = "kitchen-" + "x" * 292
    path = MqttConfig(device_id=long_id).outbox_file(tmp_path)
    assert path is not None and len(path.name) <= 80
    assert MqttConfig(device_id="x" * 293 + "kitchen").outbox_file(tmp_path) != path  # distinct ids, distinct files
    assert MqttConfig(device_id="d1").outbox_file(tmp_path) == tmp_path / "outbox-d1.sqlite3"  # short ids unchanged
    with Outbox(path) as box:
        box.put("t", b"x")


def test_device_id_is_validated_in_stdout_mode(float32_bundle: Path, heldout_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Problem 8: device ids were not validated in stdout mode."""
    from har_edge.cli import main

    for bad in ("bad id", "a/b", "a+b", "#", ""):
        rc = main(["run", "--bundle", str(float32_bundle), "--source", f"csv:{heldout_csv}", "--speed", "max", "--device-id", bad])
        err = capsys.readouterr()
        assert rc == 1 and "device_id" in err.err and err.out == "", bad


def test_warnings_for_insecure_settings() -> None:
    from har_edge.transport.config import config_warnings

    assert config_warnings(MqttConfig()) == []
    plain = config_warnings(MqttConfig(username="u", password=SECRET))
    assert len(plain) == 1 and "plain" in plain[0] and SECRET not in plain[0]
    insecure = config_warnings(MqttConfig(tls=True, tls_insecure=True))
    assert len(insecure) == 1 and "tls_insecure" in insecure[0]
