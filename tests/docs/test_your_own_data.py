"""Every command of docs/your-own-data.md (its ``sh`` blocks) runs, in order, on tiny data.

Stand-ins, applied as the substitutions below: the tiny seeded test model for ``runs/hapt_device`` and
``tests/fixtures/tiny.toml`` for ``training/configs/hapt_device.toml``; a fake MPU-6050 at the smbus layer
and 3 s instead of 60 s for ``i2c:``; a local Mosquitto for the broker and for the phone (this Mosquitto
build has no websockets listener, so ``ws://`` becomes ``mqtt://``; a thread publishes Sensor Logger
messages); typed labels from a fake keyboard; the real HAPT sample for ``pi-export.csv`` and
``recordings/family``; ``run`` replays ``pi-export.csv`` instead of polling the sensor forever; ``export``
skips the per-interpreter load check (tests/export covers it).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from har_edge.config import read_toml
from tests.fixtures.recordings import copy_folder

pytestmark = [pytest.mark.tf, pytest.mark.mqtt]

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "your-own-data.md"


def doc_commands() -> list[str]:
    """The non-empty lines of the doc's ``sh`` blocks, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_doc_has_only_runnable_commands() -> None:
    commands = doc_commands()
    assert len(commands) >= 12
    assert all(c.startswith(("har-edge ", "mosquitto_pub ")) for c in commands), commands


def substitute(cmd: str, broker_url: str, tmp: Path) -> str:
    cmd = cmd.replace("training/configs/hapt_device.toml", str(REPO / "tests" / "fixtures" / "tiny.toml"))
    cmd = cmd.replace("training/configs/", f"{REPO}/training/configs/")
    cmd = re.sub(r"ws://[^ ]+:9001/", f"{broker_url}/", cmd)
    cmd = cmd.replace("mqtt://homeassistant.local:1883", broker_url)
    if cmd.startswith("har-edge export "):
        cmd += " --no-interpreter-check"  # loading the bundle in every interpreter is tested in tests/export
    if cmd.startswith("har-edge run "):
        cmd = cmd.replace("--source i2c:mpu6050", "--source csv:pi-export.csv --speed max") + f" --state-dir {tmp / 'state'}"
    elif "i2c:mpu6050" in cmd:
        cmd = cmd.replace("--duration 60", "--duration 3")
    elif "--duration 60" in cmd:
        cmd = cmd.replace("--duration 60", "--duration 2")
    return cmd


def wait_for_rows(folder: Path, n: int, old: set[Path], timeout_s: float = 30.0) -> None:
    """Wait until a recording started after ``old`` were listed has ``n`` rows (the event, not a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = [p for p in folder.glob("*.csv") if p not in old] if folder.is_dir() else []
        if new and new[0].read_text().count("\n") - 1 >= n:
            return
        time.sleep(0.02)


class TypedLabels:
    """A keyboard: each key is typed once the new session has so many rows."""

    def __init__(self, folder: Path, keys: list[tuple[int, str]]) -> None:
        self.folder, self.keys, self.old = folder, keys, set(folder.glob("*.csv"))

    def __iter__(self) -> Iterator[str]:
        for rows, key in self.keys:
            wait_for_rows(self.folder, rows, self.old)
            yield key + "\n"


@contextmanager
def sensor_logger_phone(broker, topic: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Publish Sensor Logger messages (accelerometer + gravity + gyroscope, 50 Hz, epoch ns) until the block ends."""
    import paho.mqtt.client as mqtt

    stop = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()

    def publish() -> None:
        t_ns, k = time.time_ns(), 0
        while not stop.is_set():
            payload = []
            for _ in range(10):
                t_ns += 20_000_000
                payload += [{"name": "accelerometer", "time": t_ns, "values": {"x": 0.3, "y": -0.2, "z": 0.1}},
                            {"name": "gravity", "time": t_ns, "values": {"x": 0.0, "y": 0.0, "z": 9.81}},
                            {"name": "gyroscope", "time": t_ns, "values": {"x": 0.01, "y": 0.02, "z": -0.01}}]
            client.publish(topic, json.dumps({"messageId": k, "sessionId": "s", "deviceId": "phone", "payload": payload}))
            k += 1
            stop.wait(0.02)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def fake_mpu6050(monkeypatch: pytest.MonkeyPatch) -> None:
    smbus2 = pytest.importorskip("smbus2")
    from tests.runtime.test_i2c import mpu_bus

    monkeypatch.setattr(smbus2, "SMBus", lambda n: mpu_bus())


def test_documented_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_run: Path, mosquitto_broker,  # type: ignore[no-untyped-def]
                                 sample_csvs: dict[int, Path], people_recordings: Path, fake_mpu6050: None) -> None:
    from tests.fixtures.broker import publish_once

    from har_edge.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run, tmp_path / "runs" / "hapt_device")
    shutil.copy(sample_csvs[5], tmp_path / "pi-export.csv")
    copy_folder(people_recordings, tmp_path / "recordings" / "family")
    alice = tmp_path / "recordings" / "alice"
    ran = []
    for line in doc_commands():
        cmd = substitute(line, mosquitto_broker.url, tmp_path)
        if cmd.startswith("mosquitto_pub "):
            args = shlex.split(cmd)
            publish_once(mosquitto_broker, args[args.index("-t") + 1], args[args.index("-m") + 1])
            continue
        argv = shlex.split(cmd)[1:]
        if "keyboard" in argv:
            monkeypatch.setattr(sys, "stdin", TypedLabels(alice, [(20, "1"), (60, "2"), (100, "-"), (120, "q")]))
        context = sensor_logger_phone(mosquitto_broker, "sensor-logger") if "sensor-logger" in cmd else _nothing()
        labels = _publish_label_later(mosquitto_broker, alice) if "--labels-from mqtt" in cmd else _nothing()
        with context, labels:
            rc = main(argv)
        assert rc == 0, f"failed: {cmd}"
        ran.append(argv[0])
    assert ran.count("record") >= 7 and {"train", "evaluate", "export", "run"} <= set(ran)
    metrics = json.loads((tmp_path / "runs" / "alice" / "metrics.json").read_text())
    recipe = read_toml(REPO / "training" / "configs" / "fine_tune.toml")["train"]
    assert metrics["fine_tuned_from"]["head"] == "kept" and metrics["fine_tuned_from"]["keep_source"] == recipe["keep_source"]
    trained = json.loads((tmp_path / "runs" / "alice" / "config.json").read_text())["train"]
    assert trained["average_weights"] == recipe["average_weights"] > 0  # the documented recipe's moving average ran
    sidecars = [json.loads(p.read_text()) for p in alice.glob("*.json")]
    keyboard = [s for s in sidecars if s["label"] == "" and s["source"].startswith("i2c")]
    assert keyboard and {"WALKING", "SITTING"} <= set(keyboard[0]["labels"])
    assert any(s["split"] == "test" for s in sidecars)
    phone = [json.loads(p.read_text()) for p in (tmp_path / "recordings" / "alice-phone").glob("*.json")]
    assert phone and phone[0]["units"][:3] == ["g", "g", "g"] and phone[0]["samples"] == 100
    assert (tmp_path / "bundles" / "alice" / "model.tflite").is_file()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _publish_label_later(broker, folder: Path) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Switch the label topic to SITTING once the session has some rows (retained: no race with the subscription)."""
    from tests.fixtures.broker import publish_once

    old = set(folder.glob("*.csv"))

    def later() -> None:
        wait_for_rows(folder, 20, old)
        publish_once(broker, "har/alice/label", "SITTING", retain=True)

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(30)
        publish_once(broker, "har/alice/label", "", retain=True)
