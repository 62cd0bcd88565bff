"""CSV replay, stdin, JSON / Sensor Logger decoding and the open_source factory."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import ConfigError, DataError, SourceError
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.sources import (
    ACC_CHANNELS,
    DEFAULT_CHANNELS,
    CsvReplaySource,
    MqttSource,
    Source,
    StdinSource,
    open_source,
    parse_json_samples,
    parse_sensor_logger,
)

HEADER6 = "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"


def _rows(n: int, rate_hz: float = 50.0, t0: float = 0.0) -> np.ndarray:
    t = t0 + np.arange(n) / rate_hz
    values = np.column_stack([np.sin(t + k) for k in range(6)])
    return np.column_stack([t, values])


def _write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


def _lines(rows: np.ndarray) -> list[str]:
    return [",".join(repr(float(x)) for x in r) for r in rows]


def _collect(source: Source) -> tuple[np.ndarray, np.ndarray, list[SampleChunk]]:
    chunks = list(source.chunks())
    if not chunks:
        return np.empty(0), np.empty((0, len(source.channel_names))), []
    return (
        np.concatenate([c.timestamps_s for c in chunks]),
        np.concatenate([c.values for c in chunks]),
        chunks,
    )


# --------------------------------------------------------------------------- CSV replay


def test_csv_fast_path_keeps_every_row(tmp_path: Path) -> None:
    rows = _rows(1000)
    path = _write(tmp_path / "rec.csv", HEADER6, _lines(rows))
    with open_source(f"csv:{path}", speed="max", chunk_samples=64) as src:
        assert isinstance(src, Source)
        assert src.channel_names == DEFAULT_CHANNELS
        assert src.units == ("g", "g", "g", "rad/s", "rad/s", "rad/s")
        assert src.nominal_rate_hz == pytest.approx(50.0)
        t, v, chunks = _collect(src)
    np.testing.assert_array_equal(t, rows[:, 0])
    np.testing.assert_array_equal(v, rows[:, 1:])
    assert all(len(c) <= 64 for c in chunks) and len(chunks) == 16
    assert chunks[0].values.dtype == np.float64 and chunks[0].units == src.units
    assert src.stats.samples == 1000 and src.stats.bad_samples == 0


def test_csv_accelerometer_only_and_label_column(tmp_path: Path) -> None:
    rows = _rows(100)[:, :4]
    labels = ["walking"] * 50 + ["sitting"] * 50
    lines = [f"{line},{lab}" for line, lab in zip(_lines(rows), labels)]
    path = _write(tmp_path / "acc.csv", "timestamp,acc_x,acc_y,acc_z,label", lines)
    src = CsvReplaySource(path, speed="max", chunk_samples=50)
    assert src.channel_names == ACC_CHANNELS and src.units == ("g", "g", "g")
    seen = []
    for chunk in src.chunks():
        assert chunk.values.shape == (50, 3)
        assert src.last_labels is not None
        seen.extend(src.last_labels.tolist())
    assert seen == labels


def test_csv_custom_columns_and_units(tmp_path: Path) -> None:
    rows = _rows(20)
    path = _write(tmp_path / "phone.csv", "time,ax,ay,az,wx,wy,wz,extra", [f"{ln},7" for ln in _lines(rows)])
    columns = {"timestamp": "time", "acc_x": "ax", "acc_y": "ay", "acc_z": "az",
               "gyro_x": "wx", "gyro_y": "wy", "gyro_z": "wz"}
    src = open_source(f"csv:{path}", speed="max", columns=columns, units={"acc": "m/s2", "gyro": "dps"})
    assert src.units == ("m/s^2",) * 3 + ("deg/s",) * 3
    _, v, _ = _collect(src)
    np.testing.assert_array_equal(v, rows[:, 1:])

    sub = open_source(f"csv:{path}", speed="max", columns=columns, channel_names=["gyro_z", "acc_x"],
                      units=["rad/s", "mg"])
    assert sub.channel_names == ("gyro_z", "acc_x") and sub.units == ("rad/s", "mg")
    _, v, _ = _collect(sub)
    np.testing.assert_array_equal(v, rows[:, [6, 1]])


def test_csv_bad_rows_are_counted_and_skipped_good_rows_kept(tmp_path: Path) -> None:
    good = _rows(12)
    g = _lines(good)
    lines = [
        g[0], g[1],
        "abc,1,2,3,4,5,6",                          # non-numeric timestamp
        g[2],
        f"{good[2, 0] + 0.001},1,x,3,4,5,6",        # non-numeric value (row would be increasing)
        g[3],
        f"{good[3, 0] + 0.001},nan,2,3,4,5,6",      # NaN
        f"{good[3, 0] + 0.002},1,inf,3,4,5,6",      # inf
        g[4],
        "0.5,1,2,3",                                 # too few fields
        f"{good[4, 0] + 0.001},1,2,3,4,5,6,9",      # too many fields
        g[5],
        "",                                          # blank line: ignored, not counted
        g[6],
        g[6],                                        # duplicate timestamp
        g[7],
        _lines(good[2:3])[0],                        # timestamp going backwards
        f"{good[7, 0] + 0.001},1,,3,4,5,6",         # empty field
        g[8], g[9], g[10], g[11],
    ]
    path = _write(tmp_path / "bad.csv", HEADER6, lines)
    src = CsvReplaySource(path, speed="max", chunk_samples=5)
    t, v, _ = _collect(src)
    # sources parse; timestamps pass through as they arrive (the stream classifier is the one filter)
    keep = np.r_[0:7, 6, 7, 2, 8:12]
    np.testing.assert_array_equal(t, good[keep, 0])
    np.testing.assert_array_equal(v, good[keep, 1:])
    assert src.stats.reasons == {"non_numeric": 3, "non_finite": 2, "wrong_field_count": 2}
    assert src.stats.bad_samples == 7 and src.stats.samples == 14 and src.stats.bad_messages == 0


def test_csv_large_file_with_sprinkled_bad_rows_is_fast_and_exact(tmp_path: Path) -> None:
    rows = _rows(200_000, rate_hz=100.0)
    text = io.StringIO()
    np.savetxt(text, rows, fmt="%.6f", delimiter=",")
    out, n_bad = [], 0
    for i, line in enumerate(text.getvalue().splitlines()):
        out.append(line)
        if i % 997 == 0:
            out.append("garbage," + line.split(",", 1)[1])
            n_bad += 1
    path = _write(tmp_path / "big.csv", HEADER6, out)
    start = time.process_time()  # CPU time of this process: other jobs on a busy machine barely change it
    src = CsvReplaySource(path, speed="max", chunk_samples=256)
    t, v, _ = _collect(src)
    elapsed = time.process_time() - start
    assert len(t) == 200_000 and src.stats.bad_samples == n_bad == src.stats.reasons["non_numeric"]
    np.testing.assert_allclose(v[-5:], rows[-5:, 1:], atol=1e-6)
    assert elapsed < 4.0, f"replay of 200k rows took {elapsed:.2f} s"  # ~0.5 s on a quiet laptop


def test_bad_row_logging_is_rate_limited(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = _lines(_rows(10)) + ["oops"] * 5000
    path = _write(tmp_path / "noisy.csv", HEADER6, lines)
    with caplog.at_level(logging.WARNING, logger="har_edge.runtime.sources"):
        src = CsvReplaySource(path, speed="max")
        _collect(src)
    assert src.stats.reasons == {"wrong_field_count": 5000}
    assert 1 <= len(caplog.records) <= 12


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SourceError, match="nope.csv"):
        open_source(f"csv:{missing}")


def test_missing_columns_name_the_columns_and_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "timestamp,acc_x,acc_y,gyro_x", ["0,1,2,3"])
    with pytest.raises(SourceError) as info:
        CsvReplaySource(path)
    assert "acc_z" in str(info.value) and "timestamp,acc_x,acc_y,gyro_x" in str(info.value)


def test_headerless_and_empty_files_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "nohdr.csv", "0.0,1,2,3", ["0.02,1,2,3"])
    with pytest.raises(SourceError, match="no header"):
        CsvReplaySource(path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="empty"):
        CsvReplaySource(empty)


@pytest.mark.parametrize(("speed", "expected_s"), [(1.0, 0.5), (2, 0.25)])
def test_pacing_follows_timestamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speed: float, expected_s: float) -> None:
    """On a fake clock (the scheduler of a busy machine must not decide the outcome): each chunk is due at
    its last sample's time / speed, never earlier, and the replay waits exactly that long in all."""
    import har_edge.runtime.csv_replay as csv_replay

    path = _write(tmp_path / "half.csv", HEADER6, _lines(_rows(51, rate_hz=100.0)))  # spans 0.5 s
    src = CsvReplaySource(path, speed=speed, chunk_samples=10)
    now = [100.0]
    waits: list[float] = []

    def wait(timeout: float | None = None) -> bool:
        waits.append(float(timeout or 0.0))
        now[0] += float(timeout or 0.0)
        return False

    monkeypatch.setattr(csv_replay.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(src._closed, "wait", wait)
    arrivals = [(now[0] - 100.0, float(c.timestamps_s[-1])) for c in src.chunks()]
    assert all(w > 0 for w in waits) and sum(waits) == pytest.approx(expected_s)
    for at, last_sample_s in arrivals:
        assert at == pytest.approx(last_sample_s / speed)  # due when its last sample is
    assert len(arrivals) == 6 and arrivals[0][0] < arrivals[-1][0] - expected_s / 2  # spread out, not bunched


def test_speed_max_does_not_sleep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "long.csv", HEADER6, _lines(_rows(500, rate_hz=0.5)))  # spans 1000 s
    waits: list[float] = []
    src = CsvReplaySource(path, speed="max")
    monkeypatch.setattr(src._closed, "wait", lambda timeout=None: waits.append(timeout) or False)
    monkeypatch.setattr(time, "sleep", lambda s: waits.append(s))
    start = time.monotonic()
    t, _, _ = _collect(src)
    assert len(t) == 500 and waits == [] and time.monotonic() - start < 10.0  # 1000 s of data, no pacing
    assert open_source(f"csv:{path}", speed=float("inf")).speed == float("inf")


def test_close_interrupts_a_paced_replay(tmp_path: Path) -> None:
    path = _write(tmp_path / "slow.csv", HEADER6, _lines(_rows(100, rate_hz=10.0)))  # spans 10 s
    src = CsvReplaySource(path, speed=1.0, chunk_samples=1)
    threading.Timer(0.3, src.close).start()
    start = time.monotonic()
    n = sum(1 for _ in src.chunks())
    assert time.monotonic() - start < 8.0 and 1 <= n < 80  # stopped early in a 10 s replay


@pytest.mark.parametrize("speed", [0, -1, "fast", float("nan")])
def test_bad_speed_is_a_config_error(tmp_path: Path, speed: object) -> None:
    path = _write(tmp_path / "a.csv", HEADER6, _lines(_rows(3)))
    with pytest.raises(ConfigError, match="speed"):
        open_source(f"csv:{path}", speed=speed)  # type: ignore[arg-type]


def test_axis_map_flips_and_swaps(tmp_path: Path) -> None:
    rows = _rows(10)
    path = _write(tmp_path / "a.csv", HEADER6, _lines(rows))
    src = open_source(f"csv:{path}", speed="max", axis_map={"acc_x": "-acc_y", "acc_y": "acc_x", "gyro_z": "-gyro_z"})
    _, v, _ = _collect(src)
    np.testing.assert_allclose(v[:, 0], -rows[:, 2])
    np.testing.assert_allclose(v[:, 1], rows[:, 1])
    np.testing.assert_allclose(v[:, 2], rows[:, 3])
    np.testing.assert_allclose(v[:, 5], -rows[:, 6])
    with pytest.raises(ConfigError, match="acc_w"):
        open_source(f"csv:{path}", axis_map={"acc_x": "acc_w"})
    with pytest.raises(ConfigError, match="cannot convert"):
        open_source(f"csv:{path}", axis_map={"acc_x": "gyro_x"})


# --------------------------------------------------------------------------- stdin


def test_stdin_csv_with_header_json_lines_and_garbage() -> None:
    lines = [
        "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label",
        "0.00,0,0,1,0,0,0,walk",
        "hello world",                                                           # garbage
        '{"t": 0.02, "acc": [0, 0, 1.1], "gyro": [0.1, 0.2, 0.3]}',
        '{"timestamp": 0.04, "acc_x": 0, "acc_y": 0, "acc_z": 1.2, "gyro_x": 0, "gyro_y": 0, "gyro_z": 0}',
        '{"samples": [{"t": 0.06, "acc": [0, 0, 1.3], "gyro": [0, 0, 0]},'
        ' {"t": 0.08, "acc": [0, 0, 1.4], "gyro": [0, 0, 0]}, {"t": 0.09, "acc": "x"}]}',
        "{not json",                                                             # garbage
        '{"t": 0.1, "acc": [0, 0, "a"], "gyro": [0, 0, 0]}',                     # non-numeric
        '["a list"]',                                                            # garbage: JSON, not an object
        "0.12,0,0,1.5,0,0,0,sit",
        "0.12,0,0,1.6,0,0,0,sit",                                                # duplicate t
        "0.14,0,0,NaN,0,0,0,sit",                                                # non-finite
        "",
    ]
    src = open_source("stdin", stream=io.StringIO("\n".join(lines) + "\n"))
    t, v, _ = _collect(src)
    np.testing.assert_allclose(t, [0.0, 0.02, 0.04, 0.06, 0.08, 0.12, 0.12])  # the duplicate passes (the stream drops it)
    np.testing.assert_allclose(v[:, 2], [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
    np.testing.assert_allclose(v[1, 3:], [0.1, 0.2, 0.3])
    assert src.stats.bad_messages == 2  # "{not json", '["a list"]' (as over MQTT: JSON, but not a sample object)
    assert src.stats.reasons == {
        "invalid_json": 1,
        "invalid_message": 1,
        "wrong_field_count": 1,  # "hello world" (1 field, header has 8)
        "missing_field": 1,  # the batch member with "acc": "x"
        "non_numeric": 1,
        "non_finite": 1,
    }
    assert src.stats.bad_samples == 4 and src.stats.samples == 7


def test_stdin_headerless_csv_and_accelerometer_only_channels() -> None:
    text = "0.0,0,0,1\n0.1,0,0,1,0.5,0.5,0.5\n0.2,0,0,1,lbl\n0.3,1,2\n"
    src = StdinSource(io.StringIO(text), channel_names=ACC_CHANNELS)
    t, v, _ = _collect(src)
    np.testing.assert_allclose(t, [0.0, 0.1, 0.2])
    assert v.shape == (3, 3)
    assert src.stats.reasons == {"wrong_field_count": 1}

    six = StdinSource(io.StringIO(text + '{"t": 0.4, "acc": [0, 0, 1]}\n'))  # default: six channels
    t, _, _ = _collect(six)
    np.testing.assert_allclose(t, [0.1])
    assert six.stats.reasons == {"missing_field": 3, "wrong_field_count": 1}


def test_stdin_header_without_required_columns_raises() -> None:
    src = StdinSource(io.StringIO("time,x,y,z\n0,1,2,3\n"))
    with pytest.raises(SourceError, match="acc_x"):
        list(src.chunks())


class _TrickleStream:
    """Yields some lines, then blocks until released (a live pipe)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.release = lines, threading.Event()

    def __iter__(self) -> Iterator[str]:
        yield from self.lines
        self.release.wait(5)


def test_stdin_yields_before_end_of_stream_within_latency() -> None:
    stream = _TrickleStream([f"{i * 0.02},0,0,1\n" for i in range(3)])
    src = StdinSource(stream, channel_names=ACC_CHANNELS, chunk_samples=100, max_latency_s=0.05)  # type: ignore[arg-type]
    start = time.monotonic()
    it = src.chunks()
    first = next(it)
    assert len(first) == 3 and time.monotonic() - start < 4.0  # not held until the stream ends (5 s)
    stream.release.set()
    assert list(it) == []


# --------------------------------------------------------------------------- pure decoders


def test_parse_json_samples_forms() -> None:
    t, v, rejected = parse_json_samples('{"t": 1.5, "acc": [1, 2, 3], "gyro": [4, 5, 6]}')
    np.testing.assert_array_equal(t, [1.5])
    np.testing.assert_array_equal(v, [[1, 2, 3, 4, 5, 6]])
    assert rejected == {}
    t, v, _ = parse_json_samples({"timestamp": 2, "acc_x": 1, "acc_y": 2, "acc_z": 3}, ACC_CHANNELS)
    np.testing.assert_array_equal(v, [[1, 2, 3]])
    batch = {"samples": [{"t": 1, "acc": [0, 0, 1]}, {"t": 2, "acc": [0, 0]}, {"t": 3, "acc": [0, 0, True]}, 7]}
    t, v, rejected = parse_json_samples(batch, ACC_CHANNELS)
    np.testing.assert_array_equal(t, [1])
    assert rejected == {"missing_field": 1, "non_numeric": 1, "invalid_sample": 1}
    for bad in ("not json", b"\xff\xfe", "[1, 2]", '{"samples": 3}'):
        with pytest.raises(DataError):
            parse_json_samples(bad)


def _sensor_logger(entries: list[dict[str, object]]) -> dict[str, object]:
    return {"messageId": 3, "sessionId": "s", "deviceId": "d", "payload": entries}


def _xyz(name: str, t_ns: int, x: float, y: float, z: float) -> dict[str, object]:
    return {"name": name, "time": t_ns, "values": {"x": x, "y": y, "z": z}}


T0 = 1_698_501_144_401_773_000


def test_sensor_logger_total_acceleration_paired_with_nearest_gyroscope() -> None:
    msg = _sensor_logger([
        _xyz("totalacceleration", T0 + 20_000_000, 0.2, 0.0, 9.8),
        _xyz("totalacceleration", T0, 0.1, 0.0, 9.8),            # out of order: sorted by time
        _xyz("accelerometer", T0, 5, 5, 5),                         # ignored: total present
        _xyz("gyroscope", T0 + 1_000_000, 1, 2, 3),
        _xyz("gyroscope", T0 + 18_000_000, 4, 5, 6),
        {"name": "location", "time": T0, "latitude": 1.0, "longitude": 2.0},  # other sensor: ignored
        _xyz("totalacceleration", T0 + 500_000_000, 0.3, 0.0, 9.8),  # no gyro within 50 ms
    ])
    t, v, rejected = parse_sensor_logger(json.dumps(msg))
    np.testing.assert_allclose(t, [T0 / 1e9, (T0 + 20_000_000) / 1e9])
    np.testing.assert_allclose(v, [[0.1, 0.0, 9.8, 1, 2, 3], [0.2, 0.0, 9.8, 4, 5, 6]])
    assert rejected == {"unpaired_gyroscope": 1}


def test_sensor_logger_accelerometer_plus_gravity_and_bad_entries() -> None:
    msg = _sensor_logger([
        _xyz("Accelerometer", T0 + 10_000_000, 1.0, 0.0, 0.0),
        _xyz("gravity", T0, 0.0, 0.0, 9.0),
        _xyz("gravity", T0 + 20_000_000, 0.0, 0.0, 10.0),
        {"name": "accelerometer", "time": str(T0 + 30_000_000), "values": {"x": 0, "y": 0, "z": 0}},
        {"name": "accelerometer", "time": T0, "values": {"x": "bad", "y": 0, "z": 0}},
        {"name": "accelerometer", "time": T0},
        {"time": T0},
    ])
    t, v, rejected = parse_sensor_logger(msg, ACC_CHANNELS)
    np.testing.assert_allclose(v, [[1.0, 0.0, 9.5], [0.0, 0.0, 10.0]])  # gravity interpolated, then held
    np.testing.assert_allclose(t, [(T0 + 10_000_000) / 1e9, (T0 + 30_000_000) / 1e9])
    assert rejected == {"non_numeric": 1, "invalid_entry": 2}


def test_sensor_logger_rejections() -> None:
    only_linear = _sensor_logger([_xyz("accelerometer", T0, 0, 0, 0), _xyz("gyroscope", T0, 0, 0, 0)])
    t, _, rejected = parse_sensor_logger(only_linear)
    assert len(t) == 0 and rejected == {"accelerometer_without_gravity": 1}
    no_gyro = _sensor_logger([_xyz("totalacceleration", T0, 0, 0, 9.8)])
    t, v, rejected = parse_sensor_logger(no_gyro)
    assert len(t) == 0 and v.shape == (0, 6) and rejected == {"missing_gyroscope": 1}
    for bad in ("garbage", {"payload": "x"}, [1]):
        with pytest.raises(DataError):
            parse_sensor_logger(bad)
    with pytest.raises(ConfigError, match="mag_x"):
        parse_sensor_logger(no_gyro, ("acc_x", "mag_x"))


# --------------------------------------------------------------------------- factory


def test_factory_rejects_unknown_specs_and_options(tmp_path: Path) -> None:
    for spec in ("udp://x", "csv:", "i2c:bmi160", "i2c:mpu6050@x", "kafka:topic", ""):
        with pytest.raises(ConfigError) as info:
            open_source(spec)
        if not spec.startswith(("csv", "i2c")):
            assert "csv:PATH" in str(info.value) and "mqtt://" in str(info.value)
    path = _write(tmp_path / "a.csv", HEADER6, _lines(_rows(3)))
    with pytest.raises(ConfigError, match="qos"):
        open_source(f"csv:{path}", qos=1)
    with pytest.raises(ConfigError, match="speed"):
        open_source("stdin", speed=2.0, stream=io.StringIO(""))
    assert isinstance(open_source("-", stream=io.StringIO("")), StdinSource)


@pytest.mark.parametrize(
    ("url", "host", "port", "topic", "user", "password", "tls", "transport"),
    [
        ("mqtt://broker.local/har/imu", "broker.local", 1883, "har/imu", None, None, False, "tcp"),
        ("mqtts://me:s%40cret@10.0.0.2:8884/sensors/#", "10.0.0.2", 8884, "sensors/#", "me", "s@cret", True, "tcp"),
        ("wss://host.example/sensor-logger", "host.example", 443, "sensor-logger", None, None, True, "websockets"),
        ("mqtt://[::1]:1999/a/+/b", "::1", 1999, "a/+/b", None, None, False, "tcp"),
    ],
)
def test_mqtt_url_parsing(
    url: str, host: str, port: int, topic: str, user: str | None, password: str | None, tls: bool, transport: str
) -> None:
    src = open_source(url, qos=1, payload_format="auto")
    assert isinstance(src, MqttSource)
    assert (src._host, src._port, src.topic, src.qos) == (host, port, topic, 1)
    assert (src._client.username, src._client.password) == (user, password)
    assert (src._client._ssl_context is not None) == tls
    assert src._client.transport == transport
    src.close()


def test_mqtt_url_errors() -> None:
    for url in ("mqtt://host", "mqtt:///topic", "mqtt://host:port/t"):
        with pytest.raises(ConfigError):
            open_source(url)
    with pytest.raises(ConfigError, match="payload_format"):
        open_source("mqtt://h/t", payload_format="xml")
    src = open_source("mqtt://h/t", payload_format="sensor_logger")
    assert src.units == ("m/s^2",) * 3 + ("rad/s",) * 3


def test_importing_sources_pulls_in_no_heavy_or_optional_modules() -> None:
    # the device path stands on har_edge.inference (bundles, interpreters); nothing of the
    # TensorFlow side (models, export) and no optional package (paho, smbus2) is loaded
    code = (
        "import sys, har_edge.runtime.sources, har_edge.runtime.i2c\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'paho', 'smbus2')"
        " or m.startswith(('har_edge.transport', 'har_edge.models', 'har_edge.export'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
