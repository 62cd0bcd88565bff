"""MQTT connection settings, broker URLs and the topic layout.

Topics are ``<topic_prefix>/<device_id>/<kind>`` for the kinds in :data:`TOPIC_KINDS`:

* ``status``   -- retained plain ``online`` / ``offline`` (also the last will)
* ``activity`` -- one JSON state per classified window
* ``event``    -- JSON ``start`` / ``end`` of an activity
* ``stats``    -- JSON counters, every ``stats_interval_s``

>>> cfg = parse_broker_url("mqtts://pi:secret@broker.local", base=MqttConfig(device_id="kitchen"))
>>> (cfg.host, cfg.port, cfg.tls, cfg.username)
('broker.local', 8883, True, 'pi')
>>> cfg.topic("activity")
'har/kitchen/activity'
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from har_edge.errors import ConfigError
from har_edge.redaction import redact, register_secret, register_url_password

__all__ = ["TOPIC_KINDS", "MAX_TOPIC_BYTES", "MqttConfig", "parse_broker_url", "config_warnings"]

TOPIC_KINDS = ("status", "activity", "event", "stats")
"""The topic kinds under ``<topic_prefix>/<device_id>/``."""

MAX_TOPIC_BYTES = 65535
"""MQTT's limit on a topic name (UTF-8 bytes)."""

_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
_DEFAULT_PORTS = {False: 1883, True: 8883}
_OUTBOX_ID_CHARS = 40  # longer device ids are shortened (+ a hash) in the outbox file name


def _shown(value: str, limit: int = 60) -> str:
    """A value for an error message: its repr, cut (a 70,000-character prefix need not be printed whole)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} characters)"


def _check_topic_prefix(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}={value!r} but expected a non-empty MQTT topic prefix")
    if any(c in value for c in "+#") or _CONTROL.search(value) or value.startswith("/") or value.endswith("/"):
        raise ConfigError(
            f"{name}={_shown(value)} but expected a topic prefix without wildcards (+, #), control characters "
            "or a leading/trailing '/', e.g. 'har' or 'home/har'"
        )
    if value.startswith("$"):
        raise ConfigError(f"{name}={_shown(value)} but topics starting with '$' ($SYS, $share, ...) belong to the broker; "
                          "expected e.g. 'har'")


@dataclass(frozen=True)
class MqttConfig:
    """Everything :class:`~har_edge.transport.mqtt.MqttPublisher` needs to reach a broker.

    Values are checked on construction; a bad one raises :class:`ConfigError`.

    Args:
        host: Broker host name or IP address (no scheme; see :func:`parse_broker_url`).
        port: Broker TCP port.
        device_id: Names this device in topics and Home Assistant; ``[A-Za-z0-9_-]+``.
        topic_prefix: First topic level(s), e.g. ``"har"``.
        qos: QoS of activity/event/stats messages (status and discovery always use 1).
        keepalive_s: MQTT keep-alive interval.
        username: Broker user name, if the broker needs one.
        password: Broker password (needs ``username``).
        tls: Connect with TLS.
        tls_ca_path: CA bundle; ``None`` uses the system trust store.
        tls_cert_path: Client certificate (mutual TLS).
        tls_key_path: Client private key (needs ``tls_cert_path``).
        tls_insecure: Skip the server host-name check (testing only).
        client_id: MQTT client id; ``None`` means ``"har-edge-<device_id>"``.
        outbox_path: SQLite outbox file; ``None`` means ``<state_dir>/outbox-<device_id>.sqlite3``
            when the publisher is given a state directory, else an in-memory outbox.
        outbox_max_messages: Outbox bound; beyond it the oldest message is dropped and counted.
        reconnect_min_delay_s: First reconnect back-off (doubles per failed attempt).
        reconnect_max_delay_s: Back-off cap.
        discovery: Publish Home Assistant MQTT discovery configs.
        discovery_prefix: Home Assistant discovery prefix.
        device_name: The device's name in Home Assistant (entities show as "<device_name> Activity");
            ``None`` means ``device_id``.
        expire_after_s: Home Assistant marks the activity and confidence unavailable when no
            classification arrives for this many seconds (discovery ``expire_after``); 0 = never.
        clear_activity_on_start: At start, queue a zero-length retained message on the activity topic
            (the MQTT way to delete a retained message) ahead of the new states, so Home Assistant and
            late subscribers show "unknown" rather than the previous run's activity until the first new
            classification; ``None`` means "when ``discovery`` is on".
        stats_interval_s: Period of the automatic stats message; ``0`` disables it.
        max_inflight: Messages sent but not yet acknowledged by the broker, at most.
    """

    host: str = "localhost"
    port: int = 1883
    device_id: str = "har-edge"
    topic_prefix: str = "har"
    qos: int = 1
    keepalive_s: int = 60
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_path: Path | None = None
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None
    tls_insecure: bool = False
    client_id: str | None = None
    outbox_path: Path | None = None
    outbox_max_messages: int = 100_000
    reconnect_min_delay_s: float = 1.0
    reconnect_max_delay_s: float = 60.0
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    device_name: str | None = None
    expire_after_s: int = 120
    clear_activity_on_start: bool | None = None
    stats_interval_s: float = 60.0
    max_inflight: int = 20

    def __post_init__(self) -> None:
        host = self.host
        if not isinstance(host, str) or not host or any(c.isspace() for c in host):
            raise ConfigError(f"host={host!r} but expected a non-empty host name or IP address")
        if "://" in host or "/" in host or "@" in host:
            raise ConfigError(
                f"host={host!r} looks like a URL; use parse_broker_url() or give the bare host name"
            )
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port!r} but expected an integer in 1..65535")
        if not isinstance(self.device_id, str) or not _ID_RE.match(self.device_id):
            raise ConfigError(
                f"device_id={_shown(str(self.device_id))} but expected letters, digits, '_' or '-' only"
            )
        _check_topic_prefix("topic_prefix", self.topic_prefix)
        _check_topic_prefix("discovery_prefix", self.discovery_prefix)
        longest = max(len(t.encode("utf-8")) for t in self._all_topics())
        if longest > MAX_TOPIC_BYTES:
            raise ConfigError(f"topic_prefix/discovery_prefix/device_id make topics of {longest} bytes but MQTT allows "
                              f"at most {MAX_TOPIC_BYTES}; shorten them")
        if self.qos not in (0, 1, 2) or isinstance(self.qos, bool):
            raise ConfigError(f"qos={self.qos!r} but expected 0, 1 or 2")
        if isinstance(self.keepalive_s, bool) or not isinstance(self.keepalive_s, int) or self.keepalive_s < 0:
            raise ConfigError(f"keepalive_s={self.keepalive_s!r} but expected an integer >= 0")
        if self.password is not None and not isinstance(self.password, str):
            raise ConfigError(f"password is a {type(self.password).__name__} but expected a string")
        register_secret(self.password)
        if self.password is not None and self.username is None:
            raise ConfigError("password is set but username is None; set both or neither")
        for name in ("tls_ca_path", "tls_cert_path", "tls_key_path"):
            if getattr(self, name) is not None and not self.tls:
                raise ConfigError(f"{name}={getattr(self, name)!r} but tls=False; enable tls or drop it")
        if self.tls_key_path is not None and self.tls_cert_path is None:
            raise ConfigError(f"tls_key_path={self.tls_key_path!r} but tls_cert_path is None")
        if self.client_id is not None and (not isinstance(self.client_id, str) or not self.client_id):
            raise ConfigError(f"client_id={self.client_id!r} but expected a non-empty string or None")
        if (
            isinstance(self.outbox_max_messages, bool)
            or not isinstance(self.outbox_max_messages, int)
            or self.outbox_max_messages < 1
        ):
            raise ConfigError(
                f"outbox_max_messages={self.outbox_max_messages!r} but expected an integer >= 1"
            )
        if not 0 < self.reconnect_min_delay_s <= self.reconnect_max_delay_s:
            raise ConfigError(
                f"reconnect_min_delay_s={self.reconnect_min_delay_s!r}, reconnect_max_delay_s="
                f"{self.reconnect_max_delay_s!r} but expected 0 < min <= max"
            )
        if self.device_name is not None and (not isinstance(self.device_name, str) or not self.device_name.strip()):
            raise ConfigError(f"device_name={self.device_name!r} but expected a non-empty name or None (= device_id)")
        if isinstance(self.expire_after_s, bool) or not isinstance(self.expire_after_s, int) or self.expire_after_s < 0:
            raise ConfigError(f"expire_after_s={self.expire_after_s!r} but expected whole seconds >= 0 (0 = never)")
        if not self.stats_interval_s >= 0:
            raise ConfigError(
                f"stats_interval_s={self.stats_interval_s!r} but expected >= 0 (0 disables stats)"
            )
        if isinstance(self.max_inflight, bool) or not isinstance(self.max_inflight, int) or self.max_inflight < 1:
            raise ConfigError(f"max_inflight={self.max_inflight!r} but expected an integer >= 1")

    def _all_topics(self) -> list[str]:
        """Every topic this configuration publishes or subscribes to (for the length check)."""
        ha = f"{self.discovery_prefix}/sensor/{self.device_id}/confidence/config"
        return [f"{self.topic_prefix}/{self.device_id}/{kind}" for kind in TOPIC_KINDS] + [ha, self.discovery_status_topic]

    def topic(self, kind: str) -> str:
        """Return ``<topic_prefix>/<device_id>/<kind>`` for a kind in :data:`TOPIC_KINDS`.

        Raises:
            ConfigError: ``kind`` is not one of :data:`TOPIC_KINDS`.
        """
        if kind not in TOPIC_KINDS:
            raise ConfigError(f"topic kind {kind!r} but expected one of {', '.join(TOPIC_KINDS)}")
        return f"{self.topic_prefix}/{self.device_id}/{kind}"

    def forecast_topic(self, target: str) -> str:
        """Return ``<topic_prefix>/<device_id>/forecast/<target>`` (a forecaster's retained state topic).

        Raises:
            ConfigError: ``target`` is empty or holds ``/``, ``+``, ``#`` or NUL.
        """
        if not isinstance(target, str) or not target or any(c in target for c in "/+#\0"):
            raise ConfigError(f"forecast target {target!r} but expected a non-empty name without '/', '+', '#' or NUL")
        return f"{self.topic_prefix}/{self.device_id}/forecast/{target}"

    @property
    def discovery_status_topic(self) -> str:
        """Topic on which Home Assistant announces ``online`` (its birth message)."""
        return f"{self.discovery_prefix}/status"

    @property
    def clears_activity_on_start(self) -> bool:
        """Whether the publisher clears the retained activity at start (see ``clear_activity_on_start``)."""
        return self.discovery if self.clear_activity_on_start is None else bool(self.clear_activity_on_start)

    @property
    def effective_device_name(self) -> str:
        """The device name shown in Home Assistant."""
        return self.device_name.strip() if self.device_name else self.device_id

    @property
    def effective_client_id(self) -> str:
        """The MQTT client id actually used."""
        return self.client_id or f"har-edge-{self.device_id}"

    def outbox_file(self, state_dir: str | os.PathLike[str] | None = None) -> Path | None:
        """Resolve the outbox file: ``outbox_path``, else one under ``state_dir``, else ``None``.

        The file is ``outbox-<device_id>.sqlite3``; a device id over 40 characters is cut to 24 plus 16 hex
        digits of its SHA-256, so the name stays short for any id and distinct ids keep distinct files.
        """
        if self.outbox_path is not None:
            return Path(self.outbox_path)
        if state_dir is not None:
            name = self.device_id
            if len(name) > _OUTBOX_ID_CHARS:
                name = f"{name[:24]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
            return Path(state_dir) / f"outbox-{name}.sqlite3"
        return None


def parse_broker_url(url: str, *, base: MqttConfig | None = None) -> MqttConfig:
    """Build a :class:`MqttConfig` from ``mqtt[s]://[user[:password]@]host[:port]``.

    ``mqtt://`` (or ``tcp://``) means plain TCP on port 1883 by default, ``mqtts://`` (or
    ``ssl://``) TLS on 8883. User name and password are percent-decoded. Fields the URL does not
    carry (device id, TLS files, ...) come from ``base``; credentials in ``base`` are kept when
    the URL has none. Error messages show the URL with its password masked.

    Raises:
        ConfigError: The URL is malformed or has a path, query or fragment; or ``base`` asks for TLS
            (``tls = true``, TLS files) but the URL is plain ``mqtt://`` — never silently unencrypted.
    """
    if isinstance(url, str):
        register_url_password(url)
    if not isinstance(url, str) or "://" not in url:
        shown = redact(url) if isinstance(url, str) else type(url).__name__
        raise ConfigError(f"broker url {shown!r} but expected mqtt://[user[:pass]@]host[:port]")
    shown = redact(url)
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError as exc:  # e.g. an unencoded '[' in the password ("Invalid IPv6 URL")
        raise ConfigError(f"broker url {shown!r}: {exc} (percent-encode reserved characters in user and password)") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigError(f"broker url {shown!r} has scheme {scheme!r} but expected one of {sorted(_SCHEMES)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"broker url {shown!r} has a path, query or fragment; expected scheme://host[:port]")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"broker url {shown!r} has an invalid port: expected an integer in 1..65535") from None
    host = parts.hostname
    if not host:
        raise ConfigError(f"broker url {shown!r} has no host")
    tls = _SCHEMES[scheme]
    cfg = base if base is not None else MqttConfig()
    if not tls:
        asked = [k for k in ("tls", "tls_ca_path", "tls_cert_path", "tls_key_path", "tls_insecure") if getattr(cfg, k)]
        if asked:
            raise ConfigError(f"[mqtt] {', '.join(asked)} ask(s) for TLS but the broker url {shown!r} is plain {scheme}:// "
                              f"(unencrypted); use mqtts://{host}:{port or 8883} — or drop the TLS settings")
    changes: dict[str, object] = {
        "host": host,
        "port": _DEFAULT_PORTS[tls] if port is None else port,
        "tls": tls,
    }
    if parts.username is not None:
        changes["username"] = unquote(parts.username)
        changes["password"] = unquote(password) if password is not None else None
    try:
        return dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"broker url {shown!r}: {exc}") from None


def config_warnings(config: MqttConfig) -> list[str]:
    """What is legal but unsafe in ``config``: a password sent in clear text, a TLS server check turned off."""
    out = []
    if config.password is not None and not config.tls:
        out.append(f"the password for {config.host}:{config.port} goes over plain mqtt:// (unencrypted); use mqtts://")
    if config.tls and config.tls_insecure:
        out.append(f"tls_insecure = true: the certificate of {config.host} is not checked against its host name "
                   "(testing only)")
    return out
