"""``har-edge record``: from csv: and stdin, labels (fixed, from the source, keyboard, MQTT topic), the sidecar, Ctrl-C safety."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from har_edge.cli.record import KeyboardLabels
from har_edge.redaction import redact as _redact
from har_edge.data.csv_recording import read_csv_samples
from har_edge.data.recordings import read_recorded_file
from har_edge.data.sidecar import read_sidecar
from har_edge.runtime.recorder import LabelState
from tests.fixtures.recordings import labels_of, record

REPO = Path(__file__).resolve().parents[2]


def test_record_csv_with_a_label_and_a_duration(sample_csvs: dict[int, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec"
    assert record("--source", f"csv:{sample_csvs[1]}", "--out", str(out), "--label", "walking", "--duration", "10",
                  "--person", "alice", "--session", "walk1", "--device", "pi-belt", "--placement", "belt, right hip",
                  "--rate", "50") == 0
    rows = read_csv_samples(out / "walk1.csv")
    assert len(rows.timestamps) == 500 and rows.channel_names == ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    assert set(rows.labels.tolist()) == {"walking"}  # type: ignore[union-attr]
    src = read_csv_samples(sample_csvs[1])
    np.testing.assert_allclose(rows.values, src.values[:500], atol=1e-6)  # values and timestamps as the source gave them
    np.testing.assert_allclose(rows.timestamps, src.timestamps[:500], atol=1e-6)
    info = read_sidecar(out / "walk1.json")
    assert (info.person, info.session, info.device, info.placement, info.split, info.label) == \
        ("alice", "walk1", "pi-belt", "belt, right hip", "", "walking")
    assert info.units == ("g", "g", "g", "rad/s", "rad/s", "rad/s") and info.samples == 500 and info.stopped_by == "duration"
    assert info.sample_rate_hz == pytest.approx(50.0) and info.labels == {"walking": 500} and info.unlabelled_samples == 0
    assert info.timestamps == {"duplicate": 0, "backwards": 0, "gaps": 0} and info.warnings == []
    assert info.source == f"csv:{sample_csvs[1]}" and info.started_at.endswith("Z") and info.har_edge_version
    assert record("--source", f"csv:{sample_csvs[1]}", "--out", str(out), "--session", "walk1") == 1
    assert "a recording of session 'walk1' exists; choose another --session" in capsys.readouterr().err


def test_record_keeps_the_labels_of_an_imported_csv(sample_csvs: dict[int, Path], tmp_path: Path) -> None:
    assert record("--source", f"csv:{sample_csvs[3]}", "--out", str(tmp_path), "--session", "imported") == 0
    assert np.array_equal(labels_of(tmp_path / "imported.csv"), labels_of(sample_csvs[3]))
    info = read_sidecar(tmp_path / "imported.json")
    assert info.stopped_by == "end_of_source" and info.unlabelled_samples > 0 and "WALKING" in info.labels
    assert [lab for _, lab in info.label_changes][:2] == ["", "STANDING"] or len(info.label_changes) > 5


def test_record_from_stdin_in_other_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["timestamp,acc_x,acc_y,acc_z"] + [f"{i / 20:.2f},0.1,0.2,9.8" for i in range(100)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert record("--source", "stdin", "--channels", "acc", "--units", "m/s^2", "--label", "standing", "--out", str(tmp_path),
                  "--session", "s", "--split", "test") == 0
    info = read_sidecar(tmp_path / "s.json")
    assert info.units == ("m/s^2",) * 3 and info.split == "test" and info.samples == 100 and info.warnings == []
    f = read_recorded_file(tmp_path / "s.csv", ("acc_x", "acc_y", "acc_z"))
    assert f.values[0, 2] == pytest.approx(9.8 / 9.80665) and f.rate_hz == pytest.approx(20.0)


def test_record_warns_when_units_and_timestamps_look_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    lines = [f"{i * 20},0.1,0.2,9.8" for i in range(150)]  # milliseconds, m/s^2 declared as the default g
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert record("--source", "stdin", "--channels", "acc", "--out", str(tmp_path), "--session", "bad") == 0
    warnings = read_sidecar(tmp_path / "bad.json").warnings
    assert any("look like milliseconds" in w for w in warnings) and any("look like m/s^2, not g" in w and "--units acc=m/s^2" in w for w in warnings)
    assert "warning: " in capsys.readouterr().err


def test_keyboard_labels_by_name_number_and_dash() -> None:
    state, stop, seen = LabelState(), threading.Event(), []
    real_set = state.set
    state.set = lambda label: seen.append(real_set(label)) or seen[-1]  # type: ignore[method-assign]
    keys = KeyboardLabels(state, ["walking", "sitting"], stop, io.StringIO("2\n-\nlying down\nbad,label\nq\nnever\n"), io.StringIO())
    keys._read()
    assert seen == ["sitting", "", "lying down"] and stop.is_set()


def test_labels_from_keyboard_needs_a_free_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert record("--source", "stdin", "--labels-from", "keyboard", "--out", str(tmp_path)) == 1
    assert record("--source", "stdin", "--labels-from", "speech", "--out", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "keyboard reads stdin" in err and "--labels-from 'speech'" in err and not list(tmp_path.iterdir())


def test_source_spec_in_the_sidecar_has_no_password() -> None:
    assert _redact("mqtt://bob:s3cret@broker:1883/phone") == "mqtt://bob:***@broker:1883/phone"
    assert _redact("mqtt://broker/phone") == "mqtt://broker/phone" and _redact("csv:a@b.csv") == "csv:a@b.csv"


@pytest.mark.mqtt
def test_label_topic_switches_the_label(mosquitto_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures.broker import publish_once, wait_until

    from har_edge.transport.label_topic import LabelTopic

    state = LabelState("walking")
    url = f"mqtt://{mosquitto_broker.host}:{mosquitto_broker.port}/har/me/label"
    topic = LabelTopic(url, state.set)
    topic.start()
    try:
        assert topic.subscribed.wait(10)
        publish_once(mosquitto_broker, "har/me/label", '{"label": "sitting"}')
        assert wait_until(lambda: state.get() == "sitting", 10)
        publish_once(mosquitto_broker, "har/me/label", "")
        assert wait_until(lambda: state.get() == "", 10)
        publish_once(mosquitto_broker, "har/me/label", "bad,label")  # ignored with a warning
        publish_once(mosquitto_broker, "har/me/label", "standing")
        assert wait_until(lambda: state.get() == "standing", 10)
    finally:
        topic.close()


def _start_recorder(tmp_path: Path, rows: int) -> tuple[subprocess.Popen[bytes], Path]:
    """A ``har-edge record --source stdin`` process that has written ``rows`` rows (waits for them in the file)."""
    csv = tmp_path / "s.csv"
    proc = subprocess.Popen([sys.executable, "-m", "har_edge", "record", "--source", "stdin", "--channels", "acc", "--label",
                             "walking", "--out", str(tmp_path), "--session", "s", "--quiet"], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(("timestamp,acc_x,acc_y,acc_z\n" + "".join(f"{i / 50:.2f},0,0,1\n" for i in range(rows))).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if csv.exists() and csv.read_text().count("\n") >= rows + 1:
            return proc, csv
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the recorder did not write {rows} rows: {proc.communicate()[1].decode()[-2000:]}")


def test_ctrl_c_writes_every_received_sample_and_the_sidecar(tmp_path: Path) -> None:
    proc, csv = _start_recorder(tmp_path, 300)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out.decode().strip().splitlines()[-1])["stopped_by"] == "interrupted"
    info = read_sidecar(tmp_path / "s.json")
    assert info.stopped_by == "interrupted" and info.samples == 300
    assert len(read_csv_samples(csv).timestamps) == 300


def test_a_killed_recording_leaves_a_valid_file(tmp_path: Path) -> None:
    proc, csv = _start_recorder(tmp_path, 250)
    proc.kill()
    proc.communicate(timeout=30)
    assert csv.read_text().endswith("\n")
    assert len(read_csv_samples(csv).timestamps) == 250  # strict reader: every line whole
    assert read_sidecar(tmp_path / "s.json").stopped_by == ""  # the sidecar says it never finished
    assert len(read_recorded_file(csv, ("acc_x", "acc_y", "acc_z")).timestamps_s) == 250


def test_record_works_without_tensorflow(sample_csvs: dict[int, Path], tmp_path: Path) -> None:
    """A Pi records with the device install: ``har-edge record`` never imports TensorFlow."""
    from tests.runtime.test_no_tensorflow import _run

    p = _run("from har_edge.cli import main\n"
             f"rc = main(['record', '--source', 'csv:{sample_csvs[1]}', '--out', {str(tmp_path)!r}, '--duration', '5', "
             "'--label', 'walking', '--quiet'])\n"
             "assert not any(k.split('.')[0] in ('tensorflow', 'tf_keras') for k in sys.modules)\n"
             "upward = [k for k in sys.modules if k.startswith(('har_edge.export', 'har_edge.models'))]\n"
             "assert not upward, upward\n"
             "sys.exit(rc)\n")
    assert p.returncode == 0, p.stderr[-2000:]
    assert read_sidecar(next(tmp_path.glob("*.json"))).samples == 250
