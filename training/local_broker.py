"""A broker on the loopback interface for demos: Mosquitto if installed, else amqtt in-process.

Not for production (no auth, no persistence); the device talks to your real broker. It lives
beside the demo, outside the ``har_edge`` package: the library never imports it (nor ``amqtt``).
Used by ``training/demo.py`` and ``benchmarks/stream_throughput.py``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from har_edge.errors import BackendNotAvailable, TransportError

__all__ = ["LocalBroker", "free_port", "find_mosquitto"]

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


def _wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class LocalBroker:
    """``with LocalBroker() as b: b.url`` — an MQTT 3.1.1 broker on 127.0.0.1."""

    def __init__(self, *, prefer: str = "mosquitto") -> None:
        self.port = free_port()
        self.kind = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self.prefer = prefer

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "LocalBroker":
        binary = find_mosquitto()
        if binary and self.prefer == "mosquitto":
            self._tmp = tempfile.TemporaryDirectory(prefix="har-edge-broker-")
            conf = Path(self._tmp.name) / "mosquitto.conf"
            conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
            self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.kind = "mosquitto"
        else:
            self._start_amqtt()
        if not _wait_port(self.port, 10.0):
            self.stop()
            raise TransportError(f"local {self.kind} broker did not open 127.0.0.1:{self.port}")
        return self

    def _start_amqtt(self) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError as exc:
            raise BackendNotAvailable('no mosquitto binary and no amqtt: apt-get install mosquitto, or pip install "har-edge[demo]"') from exc
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())  # type: ignore[union-attr]
            started.set()
            self._loop.run_forever()  # type: ignore[union-attr]

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        started.wait(10)
        self.kind = "amqtt"

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        if self._loop is not None and self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(5)
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                log.debug("amqtt shutdown: %s", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
