"""Hostile input never ends a stream: deep JSON, huge integers, invalid UTF-8, wrong types — counted, one log line each.

Every input path (stdin, MQTT, CSV replay) counts a rejected input exactly once, under the same counter and
reason for the same input: ``bad_messages`` when no sample could be read from a message/line, else
``bad_samples`` per rejected sample.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from har_edge.runtime.sources import ACC_CHANNELS, MqttSource, StdinSource

REPO = Path(__file__).resolve().parents[2]

DEEP_JSON = '{"t": 1.0, "x": ' + "[" * 1500 + "]" * 1500 + "}"
HUGE_INT = '{"t": 4.0, "acc": [' + "9" * 400 + ', 0, 1], "gyro": [0, 0, 0]}'
HUGER_INT = '{"t": 4.0, "acc": [' + "9" * 5000 + ', 0, 1], "gyro": [0, 0, 0]}'
WRONG_TYPE = '{"t": "noon", "acc": [0, 0, 1], "gyro": [0, 0, 0]}'
INVALID_UTF8 = b"\xff\xfe,\x80"


def _csv(i: int) -> str:
    return f"{i / 50:.2f},0,0,1,0,0,0"


def _summary(stderr: str) -> dict[str, int]:
    m = re.search(r"(\d+) classifications, \d+ events, (\d+) bad samples, (\d+) out-of-order, (\d+) bad messages", stderr)
    assert m, stderr[-2000:]
    return dict(zip(("classifications", "bad_samples", "out_of_order", "bad_messages"), map(int, m.groups())))


def test_cli_stdin_survives_deep_json_huge_ints_and_invalid_utf8(float32_bundle: Path) -> None:
    """Problem 1: each of these ended `har-edge run --source stdin` with a traceback (rc 1)."""
    body = "\n".join(_csv(i) for i in range(200)).encode() + b"\n"
    body += DEEP_JSON.encode() + b"\n" + HUGE_INT.encode() + b"\n" + HUGER_INT.encode() + b"\n" + INVALID_UTF8 + b"\n"
    body += "\n".join(_csv(i) for i in range(200, 400)).encode() + b"\n"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "har_edge", "run", "--bundle", str(float32_bundle), "--source", "stdin"],
                          input=body, capture_output=True, cwd=REPO, env=env, timeout=120)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    counts = _summary(err)
    assert counts == {"classifications": (400 - 64) // 32 + 1, "bad_samples": 3, "out_of_order": 0, "bad_messages": 1}, err
    assert len([ln for ln in proc.stdout.decode().splitlines() if ln.strip()]) == counts["classifications"]


@pytest.mark.parametrize(
    ("payload", "reasons", "bad_samples", "bad_messages"),
    [
        (DEEP_JSON.encode(), {"json_too_deep": 1}, 0, 1),
        (HUGE_INT.encode(), {"non_finite": 1}, 1, 0),
        (HUGER_INT.encode(), {"non_finite": 1}, 1, 0),
        (INVALID_UTF8, {"invalid_json": 1}, 0, 1),
        (b"{" + INVALID_UTF8 + b"}", {"invalid_json": 1}, 0, 1),
        (WRONG_TYPE.encode(), {"non_numeric": 1}, 1, 0),
    ],
)
def test_mqtt_payloads_are_counted_with_one_log_line_and_no_traceback(
    payload: bytes, reasons: dict[str, int], bad_samples: int, bad_messages: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Problem 1 (MQTT side): the same payloads were counted but each logged a full traceback."""
    src = MqttSource("127.0.0.1", "x")
    try:
        with caplog.at_level(logging.DEBUG):
            src._on_message(None, None, SimpleNamespace(topic="x", payload=payload))
    finally:
        src.close()
    assert (src.stats.reasons, src.stats.bad_samples, src.stats.bad_messages) == (reasons, bad_samples, bad_messages)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_a_wrong_typed_sample_is_a_bad_sample_on_every_input_path() -> None:
    """Problem 9: a wrong-typed sample counted as a bad sample on stdin but as a bad message over MQTT."""
    stdin = StdinSource(io.StringIO(WRONG_TYPE + "\n"))
    list(stdin.chunks())
    mqtt = MqttSource("127.0.0.1", "x")
    mqtt._on_message(None, None, SimpleNamespace(topic="x", payload=WRONG_TYPE.encode()))
    mqtt.close()
    for src in (stdin, mqtt):
        assert (src.stats.bad_samples, src.stats.bad_messages, src.stats.reasons) == (1, 0, {"non_numeric": 1}), src


def test_stdin_decodes_invalid_utf8_with_replacement_from_a_binary_stream() -> None:
    raw = io.BytesIO(b"0.00,0,0,1\n" + INVALID_UTF8 + b"\n0.02,0,0,1\n\xc3\x28,1,2,3\n0.04,0,0,1\n")
    src = StdinSource(io.TextIOWrapper(raw, encoding="utf-8", errors="strict"), channel_names=ACC_CHANNELS)
    chunks = list(src.chunks())
    t = np.concatenate([c.timestamps_s for c in chunks])
    np.testing.assert_allclose(t, [0.0, 0.02, 0.04])
    assert src.stats.reasons == {"wrong_field_count": 1, "non_numeric": 1}


def test_stdin_line_and_json_limits() -> None:
    long_line = "1," * 600_000 + "1"
    lines = ["0.00,0,0,1", long_line, '{"t": 0.01, "acc": [0, 0, 1], "pad": "' + "x" * 2_000_000 + '"}', "0.02,0,0,1"]
    src = StdinSource(io.StringIO("\n".join(lines) + "\n"), channel_names=ACC_CHANNELS)
    chunks = list(src.chunks())
    assert sum(len(c) for c in chunks) == 2
    assert src.stats.reasons == {"too_large": 2} and src.stats.bad_messages == 2


def test_json_batches_count_each_sample_once() -> None:
    batch = json.dumps({"samples": [{"t": 1, "acc": [0, 0, 1], "gyro": [0, 0, 0]}, {"t": 2, "acc": [0, 0]},
                                    {"t": 3, "acc": [0, 0, 1], "gyro": [0, 0, 10 ** 400]}]})
    src = MqttSource("127.0.0.1", "x")
    src._on_message(None, None, SimpleNamespace(topic="x", payload=batch.encode()))
    src._on_message(None, None, SimpleNamespace(topic="x", payload=b'{"samples": []}'))
    src.close()
    assert src.stats.reasons == {"missing_field": 1, "non_finite": 1, "no_samples": 1}
    assert (src.stats.bad_samples, src.stats.bad_messages, len(src._pending)) == (2, 1, 1)


def test_cli_counts_duplicate_and_backwards_timestamps_as_out_of_order(float32_bundle: Path) -> None:
    """Problem 9: `out_of_order` never moved (everything landed in `bad_samples`)."""
    lines = [_csv(i) for i in range(300)]
    lines.insert(150, _csv(149))  # a duplicate timestamp
    lines.insert(200, _csv(10))   # one sample from the past
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "har_edge", "run", "--bundle", str(float32_bundle), "--source", "stdin"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _summary(proc.stderr) == {"classifications": (300 - 64) // 32 + 1, "bad_samples": 0, "out_of_order": 2,
                                     "bad_messages": 0}
