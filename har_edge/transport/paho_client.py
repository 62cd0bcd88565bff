"""paho-mqtt 2.x plumbing shared by the publisher and ``har-edge doctor``.

Loading paho with a clear error, credentials and TLS on a client, guarding paho callbacks (an
exception would stop its network thread), and dropping paho's own copies of unacknowledged messages
(the outbox re-sends them).
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from har_edge.errors import BackendNotAvailable, ConfigError
from har_edge.transport.config import MqttConfig

if TYPE_CHECKING:
    from paho.mqtt.client import Client

__all__ = ["apply_credentials_and_tls", "load_paho"]

logger = logging.getLogger("har_edge.transport.mqtt")  # split out of mqtt.py: same logger as before

INSTALL_HINT = 'pip install "har-edge[device]"'
CALLBACK_LOCK_TIMEOUT_S = 5.0  # the sender holds its send lock for milliseconds at most


@contextmanager
def held(lock: threading.Lock) -> Iterator[None]:
    """Hold ``lock`` for a paho callback, but never wait forever on the network thread."""
    acquired = lock.acquire(timeout=CALLBACK_LOCK_TIMEOUT_S)
    if not acquired:
        logger.error("MQTT callback could not take the send lock in %.0f s", CALLBACK_LOCK_TIMEOUT_S)
    try:
        yield
    finally:
        if acquired:
            lock.release()


_Callback = TypeVar("_Callback", bound=Callable[..., None])


def guarded(method: _Callback) -> _Callback:
    """Log and swallow exceptions of a paho callback (they would stop paho's network thread)."""
    name = method.__name__.lstrip("_")

    @functools.wraps(method)
    def wrapper(*args: Any) -> None:
        try:
            method(*args)
        except Exception:  # noqa: BLE001
            logger.exception("error in MQTT %s callback", name)

    return cast(_Callback, wrapper)


def drop_paho_copies(client: Client) -> int:
    """Drop paho's unacknowledged QoS>0 messages so it does not re-send them; return how many."""
    drop = getattr(client, "drop_out_messages", None)
    if drop is not None:  # public API in paho-mqtt 2.2
        return len(drop())
    with client._out_message_mutex:  # older 2.x: same effect through its private queue
        count = len(client._out_messages)
        client._out_messages.clear()
    return count


def load_paho() -> ModuleType:
    """Import ``paho.mqtt.client`` (2.x) or raise :class:`BackendNotAvailable`."""
    try:
        import paho.mqtt.client as mqtt_client
    except ImportError as exc:
        raise BackendNotAvailable(f"MqttPublisher needs paho-mqtt>=2.0: {INSTALL_HINT}") from exc
    if not hasattr(mqtt_client, "CallbackAPIVersion"):
        raise BackendNotAvailable(f"MqttPublisher needs paho-mqtt>=2.0, found 1.x: {INSTALL_HINT}")
    return mqtt_client


def apply_credentials_and_tls(client: Client, cfg: MqttConfig) -> None:
    """Set user name/password and TLS (CA, client certificate and key, host-name check) on a paho client.

    Raises:
        ConfigError: the TLS files cannot be loaded (names each path and the reason).
    """
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password)
    if not cfg.tls:
        return
    try:
        client.tls_set(
            ca_certs=str(cfg.tls_ca_path) if cfg.tls_ca_path else None,
            certfile=str(cfg.tls_cert_path) if cfg.tls_cert_path else None,
            keyfile=str(cfg.tls_key_path) if cfg.tls_key_path else None,
        )
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"TLS setup failed for tls_ca_path={cfg.tls_ca_path!r}, tls_cert_path="
            f"{cfg.tls_cert_path!r}, tls_key_path={cfg.tls_key_path!r}: {exc}"
        ) from exc
    if cfg.tls_insecure:
        client.tls_insecure_set(True)
