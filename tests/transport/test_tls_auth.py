"""TLS, password and client-certificate options of MqttPublisher against a real Mosquitto broker.

The fixture makes a throw-away CA, a server certificate for ``localhost``/``127.0.0.1`` (SAN) and a
client certificate with the ``openssl`` CLI, a password file with ``mosquitto_passwd`` and starts
Mosquitto with two TLS listeners: one requiring a user name and password, one requiring a client
certificate. Missing tools skip the tests locally and fail them when ``CI`` is set.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from har_edge.errors import ConfigError
from har_edge.transport import payloads
from har_edge.transport.config import MqttConfig
from har_edge.transport.mqtt import MqttPublisher
from tests.fixtures.broker import (
    LABELS,
    Collector,
    MosquittoBroker,
    collect_messages,
    find_mosquitto,
    free_port,
    make_config,
    state,
    wait_until,
)

pytestmark = pytest.mark.mqtt

USER = "har-device"
PASSWORD = "s3cret:with@odd/chars"
CLIENT_CN = "har-edge-client"


# -- tools -------------------------------------------------------------------------------------


def find_tool(name: str, *candidates: str) -> str:
    """Path of a CLI tool; skip (locally) or fail (``CI`` set) when missing, like find_mosquitto."""
    found = shutil.which(name) or next((p for p in candidates if os.access(p, os.X_OK)), None)
    if found:
        return found
    message = f"{name} not found (apt install {'openssl' if name == 'openssl' else 'mosquitto'})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the MQTT TLS tests")
    pytest.skip(message)


def _run(cmd: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


@dataclass(frozen=True)
class Pki:
    """A throw-away CA with a server and a client certificate signed by it."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(openssl: str, d: Path) -> Pki:
    """EC P-256 keys (fast); certificates valid for a day."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run([openssl, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
          "-subj", "/CN=har-edge test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-addext", "subjectKeyIdentifier=hash"], d)
    leaves = {
        "server": ("/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        "client": (f"/CN={CLIENT_CN}", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (subject, ext) in leaves.items():
        (d / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" + ext
        )
        _run([openssl, "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject], d)
        _run([openssl, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
              "-set_serial", f"0x{uuid.uuid4().hex}", "-days", "1", "-out", f"{name}.crt",
              "-extfile", f"{name}.ext"], d)
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key")


# -- broker ------------------------------------------------------------------------------------


class TlsBroker(MosquittoBroker):
    """Mosquitto with a TLS + password listener (``port``) and a TLS + client-cert one (``mtls_port``)."""

    def __init__(self, binary: str, workdir: Path, pki: Pki, password_file: Path) -> None:
        super().__init__(binary, workdir)
        self.pki = pki
        self.password_file = password_file
        self.mtls_port = free_port()

    def config_lines(self) -> list[str]:
        pki = self.pki
        tls = [f"cafile {pki.ca_cert}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}"]
        return [
            "per_listener_settings true",
            "persistence false",
            f"listener {self.port} {self.host}",
            *tls,
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"listener {self.mtls_port} {self.host}",
            *tls,
            "require_certificate true",
            "use_identity_as_username true",
            "allow_anonymous false",
            *self._log_lines(),
        ]

    @property
    def ports(self) -> list[int]:
        return [self.port, self.mtls_port]  # both listeners: the mutual-TLS tests use the second

    def _new_ports(self) -> None:
        self.port, self.mtls_port = free_port(), free_port()

    @property
    def url(self) -> str:
        """``mqtts://127.0.0.1:<port>`` (the password listener)."""
        return f"mqtts://{self.host}:{self.port}"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """A running TLS Mosquitto (see :class:`TlsBroker`) with user ``USER``/``PASSWORD``."""
    mosquitto = find_mosquitto()
    openssl = find_tool("openssl", "/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl")
    passwd_tool = find_tool("mosquitto_passwd", "/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd",
                            "/opt/homebrew/bin/mosquitto_passwd")
    pki = make_pki(openssl, tmp_path / "pki")
    password_file = tmp_path / "passwd"
    _run([passwd_tool, "-b", "-c", str(password_file), USER, PASSWORD], tmp_path)
    password_file.chmod(0o600)
    broker = TlsBroker(mosquitto, tmp_path / "mosquitto", pki, password_file)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# -- helpers -----------------------------------------------------------------------------------


def tls_config(broker: TlsBroker, device_id: str, **overrides: Any) -> MqttConfig:
    """Fast-reconnecting config for the password listener, as ``har-edge run --broker mqtts://...``."""
    return make_config(broker, device_id, **{"tls": True, "tls_ca_path": broker.pki.ca_cert, **overrides})


def tls_collect(broker: TlsBroker, topic_filter: str | Sequence[str], *, mtls: bool = False,
                timeout_s: float = 5.0) -> AbstractContextManager[Collector]:
    """``collect_messages`` through TLS (our CA) with the password, or with the client certificate."""
    pki = broker.pki

    def configure(client: Any) -> None:
        if mtls:
            client.tls_set(ca_certs=str(pki.ca_cert), certfile=str(pki.client_cert), keyfile=str(pki.client_key))
        else:
            client.tls_set(ca_certs=str(pki.ca_cert))
            client.username_pw_set(USER, PASSWORD)

    return collect_messages(broker, topic_filter, port=broker.mtls_port if mtls else broker.port,
                            configure=configure, timeout_s=timeout_s)


# -- publisher through TLS ---------------------------------------------------------------------


def test_tls_with_password_delivers_state_and_retained_online(
    tls_broker: TlsBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = tls_config(tls_broker, "tls-ok", username=USER, password=PASSWORD)
    assert (cfg.tls, cfg.port, cfg.tls_ca_path) == (True, tls_broker.port, tls_broker.pki.ca_cert)
    activity, status = cfg.topic("activity"), cfg.topic("status")
    with tls_collect(tls_broker, "har/#") as sub:
        pub = publishers(cfg, labels=LABELS)
        assert pub.wait_connected(30), tls_broker.log()
        assert [pub.publish_activity(state(cfg.device_id, n)) for n in range(3)] == [1, 2, 3]
        assert pub.flush(30)
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic == activity]) >= 3), sub.messages
        assert sub.wait_for(lambda ms: any(m.topic == status and m.payload == b"online" for m in ms))
    got = [payloads.decode(m.payload) for m in sub.on_topic(activity)]
    assert [g["seq"] for g in got] == [1, 2, 3]
    assert got[0]["device_id"] == "tls-ok" and got[0]["activity"] == "walking"
    assert pub.last_connect_error is None and pub.stats.acked == 3 and pub.stats.queued == 0
    # A subscriber that comes later still gets the retained status.
    with tls_collect(tls_broker, status) as late:
        assert late.wait_for(lambda ms: bool(ms))
    assert [(m.payload, m.retain) for m in late.on_topic(status)] == [(b"online", True)]


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "wrong"), ("nobody", PASSWORD), (None, None)], ids=["bad-password", "unknown-user", "anonymous"]
)
def test_refused_credentials_are_reported_and_messages_kept(
    tls_broker: TlsBroker,
    publishers: Callable[..., MqttPublisher],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    username: str | None,
    password: str | None,
) -> None:
    caplog.set_level(logging.DEBUG, logger="har_edge.transport.mqtt")
    outbox = tmp_path / "outbox.sqlite3"
    cfg = tls_config(tls_broker, "bad-auth", username=username, password=password, outbox_path=outbox,
                     reconnect_min_delay_s=0.1, reconnect_max_delay_s=0.4)
    pub = publishers(cfg)
    assert pub.publish_activity(state(cfg.device_id, 0)) == 1  # never raises: it goes to the outbox
    t0 = time.monotonic()
    assert wait_until(lambda: pub.last_connect_error is not None, timeout_s=30), tls_broker.log()
    assert pub.last_connect_error == "refused the connection: Not authorized"

    def refused() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "refused the connection: Not authorized" in r.getMessage()]

    assert wait_until(lambda: len(refused()) >= 3, timeout_s=30), "keeps retrying with back-off"
    elapsed = time.monotonic() - t0
    assert not pub.connected and not pub.wait_connected(0)
    refusals = refused()
    # back-off 0.1 s doubling to 0.4 s: at most one attempt per 0.1 s however slow the machine, not a tight loop
    assert len(refusals) <= 2 + (time.monotonic() - t0) / 0.1, (len(refusals), elapsed)
    warnings = [r for r in refusals if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "retrying, messages stay in the outbox" in warnings[0].getMessage()
    assert pub.stats.queued == 1 and pub.stats.acked == 0
    assert not pub.flush(0.2)
    pub.close(timeout_s=0.2)
    # The message waits in the outbox file; the right credentials deliver it.
    good = dataclasses.replace(cfg, username=USER, password=PASSWORD)
    with tls_collect(tls_broker, good.topic("activity")) as sub:
        retry = publishers(good)
        assert retry.flush(30), retry.last_connect_error
        assert sub.wait_for(lambda ms: bool(ms))
    assert payloads.decode(sub.messages[0].payload)["seq"] == 1


def test_unknown_ca_fails_naming_certificate_verification(
    tls_broker: TlsBroker, publishers: Callable[..., MqttPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="har_edge.transport.mqtt")
    # tls_ca_path=None: the system trust store, which does not know the test CA.
    cfg = tls_config(tls_broker, "bad-ca", username=USER, password=PASSWORD, tls_ca_path=None)
    assert cfg.tls and cfg.tls_ca_path is None
    pub = publishers(cfg)
    pub.publish_activity(state(cfg.device_id, 0))
    assert wait_until(lambda: pub.last_connect_error is not None)
    error = pub.last_connect_error or ""
    assert "certificate verify failed" in error and "tls_ca_path" in error
    assert not pub.wait_connected(0.5)
    assert [r for r in caplog.records if "certificate verify failed" in r.getMessage()]
    assert pub.stats.queued == 1
    pub.close(timeout_s=0.2)  # no crash, no hang


def test_mutual_tls_with_client_certificate(
    tls_broker: TlsBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    pki = tls_broker.pki
    cfg = dataclasses.replace(
        tls_config(tls_broker, "mtls", tls_cert_path=pki.client_cert, tls_key_path=pki.client_key),
        port=tls_broker.mtls_port,
    )
    with tls_collect(tls_broker, "har/#", mtls=True) as sub:
        pub = publishers(cfg)
        assert pub.wait_connected(30), f"{pub.last_connect_error}\n{tls_broker.log()}"
        pub.publish_activity(state(cfg.device_id, 1))
        assert pub.flush(30)
        assert sub.wait_for(lambda ms: {m.topic for m in ms} >= {cfg.topic("activity"), cfg.topic("status")})
    assert payloads.decode(sub.on_topic(cfg.topic("activity"))[0].payload)["activity"] == "sitting"
    assert f"u'{CLIENT_CN}'" in tls_broker.log(), "the broker took the certificate's CN as the user name"


def test_mutual_tls_without_client_certificate_is_reported(
    tls_broker: TlsBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = dataclasses.replace(tls_config(tls_broker, "mtls-nocert"), port=tls_broker.mtls_port)
    pub = publishers(cfg)
    pub.publish_activity(state(cfg.device_id, 0))
    # TLS 1.3: the broker's alert arrives after the handshake; TLS 1.2: the handshake fails. (An attempt on a
    # busy machine may also see the socket reset first: the publisher keeps retrying and reports the latest.)
    assert wait_until(lambda: any(k in (pub.last_connect_error or "").lower() for k in ("certificate required", "handshake")),
                      timeout_s=30), pub.last_connect_error
    assert not pub.connected and pub.stats.queued == 1


@pytest.mark.parametrize(
    "fields",
    [{"tls_cert_path": Path("c.pem")}, {"tls_key_path": Path("k.pem"), "tls_cert_path": Path("c.pem")}],
    ids=["cert-without-tls", "key-without-tls"],
)
def test_client_cert_without_tls_is_a_config_error(fields: dict[str, Any]) -> None:
    # (password without username, CA without tls, key without cert: see test_config.py)
    with pytest.raises(ConfigError, match="tls=False"):
        MqttConfig(**fields)


# -- the CLI through TLS -----------------------------------------------------------------------


def device_toml(path: Path, broker: TlsBroker, *, tls: bool = True, **mqtt: Any) -> Path:
    """A device config whose [mqtt] table names the test CA (and ``tls = true`` unless told)."""
    lines = ["[mqtt]", f'tls_ca_path = "{broker.pki.ca_cert}"', "discovery = false",
             "reconnect_min_delay_s = 0.05", "reconnect_max_delay_s = 0.2"]
    if tls:
        lines.append("tls = true")  # needed today, see test_ca_in_toml_without_tls_flag_works_with_mqtts_url
    lines += [f'{k} = "{v}"' for k, v in mqtt.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_doctor_checks_a_tls_broker_with_password(
    tls_broker: TlsBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from har_edge.cli import main

    toml = device_toml(tmp_path / "device.toml", tls_broker)
    url = f"mqtts://{USER}:{quote(PASSWORD, safe='')}@{tls_broker.host}:{tls_broker.port}"
    assert main(["doctor", "--backend", "numpy", "--config", str(toml), "--broker", url]) == 0
    assert "[ok] broker: connected" in capsys.readouterr().out
    bad = f"mqtts://{USER}:wrong@{tls_broker.host}:{tls_broker.port}"
    assert main(["doctor", "--backend", "numpy", "--config", str(toml), "--broker", bad]) == 1
    assert "refused the connection: Not authorized" in capsys.readouterr().out
    no_ca = tmp_path / "no-ca.toml"
    no_ca.write_text(toml.read_text().replace("tls_ca_path", "# tls_ca_path"))
    assert main(["doctor", "--backend", "numpy", "--config", str(no_ca), "--broker", url]) == 1
    assert "certificate verify failed" in capsys.readouterr().out


def test_ca_in_toml_without_tls_flag_works_with_mqtts_url(
    tls_broker: TlsBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from har_edge.cli import main

    toml = device_toml(tmp_path / "device.toml", tls_broker, tls=False)
    url = f"mqtts://{USER}:{quote(PASSWORD, safe='')}@{tls_broker.host}:{tls_broker.port}"
    rc = main(["doctor", "--backend", "numpy", "--config", str(toml), "--broker", url])
    assert "[ok] broker: connected" in capsys.readouterr().out and rc == 0


def test_doctor_checks_a_mutual_tls_broker(
    tls_broker: TlsBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from har_edge.cli import main

    pki = tls_broker.pki
    toml = device_toml(tmp_path / "device.toml", tls_broker, tls_cert_path=pki.client_cert, tls_key_path=pki.client_key)
    url = f"mqtts://{tls_broker.host}:{tls_broker.mtls_port}"
    rc = main(["doctor", "--backend", "numpy", "--config", str(toml), "--broker", url])
    out = capsys.readouterr().out
    assert "tls=False" not in out
    assert "[ok] broker: connected" in out and rc == 0


def test_har_edge_run_publishes_through_tls(
    float32_bundle: Path, heldout_csv: Path, tls_broker: TlsBroker, tmp_path: Path
) -> None:
    """``har-edge run --broker mqtts://user:pass@host:port`` with the CA from the TOML [mqtt] table."""
    from har_edge.cli import main

    toml = device_toml(tmp_path / "device.toml", tls_broker)
    url = f"mqtts://{USER}:{quote(PASSWORD, safe='')}@{tls_broker.host}:{tls_broker.port}"
    with tls_collect(tls_broker, "har/#") as sub:
        rc = main(["run", "--config", str(toml), "--bundle", str(float32_bundle), "--source", f"csv:{heldout_csv}",
                   "--speed", "max", "--broker", url, "--device-id", "cli-tls", "--state-dir", str(tmp_path / "state"),
                   "--flush-timeout", "10"])
        assert rc == 0, tls_broker.log()
        assert sub.wait_for(lambda ms: any(m.topic == "har/cli-tls/status" and m.payload == b"offline" for m in ms))
    activities = [payloads.decode(m.payload) for m in sub.on_topic("har/cli-tls/activity")]
    assert len(activities) > 10 and [a["seq"] for a in activities] == list(range(1, len(activities) + 1))
    assert [m.payload for m in sub.on_topic("har/cli-tls/status")][:1] == [b"online"]
