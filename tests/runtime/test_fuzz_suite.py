"""The fault suite's fuzz categories: ≥ 10,000 seeded hostile inputs per input path, each counted exactly.

Per case, stdin (decoding, line limit, CSV/JSON parsing) and MQTT (the paho callback, no broker needed) must
yield exactly the case's samples and count exactly its reasons — the same for the same bytes on both paths;
a whole run through the device loop must add up to the sums, with 0 crashes and 0 tracebacks. Also: a CSV
recording full of bad lines, random chunks straight into the stream, and broker URLs with random passwords.
``HAR_EDGE_FUZZ_CASES`` scales the case count (``benchmarks/fault_fuzz.py`` runs many more).
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from har_edge.runtime.counters import REASONS, counter_for
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.sources import CsvReplaySource, StdinSource
from tests.fixtures.hostile import LIMIT, Case, expected, generate, hostile_chunks, run_mqtt_cases, run_stdin_cases

N_CASES = int(os.environ.get("HAR_EDGE_FUZZ_CASES", "12000"))
SEED = 20241202


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return generate(N_CASES, SEED)


def _no_tracebacks(records: list[logging.LogRecord]) -> None:
    bad = [r for r in records if r.exc_info or "Traceback" in r.getMessage() or "\n" in r.getMessage()]
    assert not bad, bad[0].getMessage()[:500]


def _check_counters(stats: object) -> None:
    """Every reason is in the vocabulary and the counters are exactly the sums of their reasons."""
    reasons: dict[str, int] = stats.reasons  # type: ignore[attr-defined]
    assert set(reasons) <= set(REASONS), set(reasons) - set(REASONS)
    for counter in ("bad_samples", "bad_messages", "missed_samples"):
        assert getattr(stats, counter) == sum(n for r, n in reasons.items() if counter_for(r) == counter), counter


def test_stdin_counts_every_case_exactly(cases: list[Case], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        failures, stats = run_stdin_cases(cases)
    assert not failures, f"{len(failures)} of {len(cases)} cases miscounted:\n" + "\n".join(failures[:15])
    _check_counters(stats)
    _no_tracebacks(caplog.records)


def test_mqtt_counts_every_case_exactly(cases: list[Case], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        failures, stats = run_mqtt_cases(cases)
    assert not failures, f"{len(failures)} cases miscounted:\n" + "\n".join(failures[:15])
    _check_counters(stats)
    _no_tracebacks(caplog.records)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 5 + N_CASES // 1000 + 1, len(warnings)  # rate-limited: one line each, few lines


def test_whole_stdin_run_through_the_device_loop(float32_bundle: Path, cases: list[Case], caplog: pytest.LogCaptureFixture) -> None:
    """All cases as one stdin stream into the real loop: source + stream + loop counters add up exactly."""
    from har_edge.cli.service import PublisherSink, run_service
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.stream import StreamClassifier
    from har_edge.transport.memory import InMemoryPublisher

    stdin_cases = [c for c in cases if not c.mqtt_only]
    samples, reasons = expected(stdin_cases)
    body = b"".join(c.payload + b"\n" for c in stdin_cases)
    src = StdinSource(io.BytesIO(body), max_line_chars=LIMIT, chunk_samples=64)
    pub = InMemoryPublisher()
    with caplog.at_level(logging.INFO), Classifier.from_bundle(float32_bundle) as clf:
        stream = StreamClassifier(clf)
        summary = run_service(src, stream, PublisherSink(pub, model_hash="h", device_id="har-edge"), stats_interval_s=0)
    implausible = sum(c.implausible for c in stdin_cases)
    assert src.stats.samples == samples and Counter(src.stats.reasons) == reasons
    counters = summary.counters(src, stream)
    assert counters["samples_in"] == samples and counters["out_of_order"] == 0 and counters["gaps"] == 0
    assert stream.stats.reasons == ({"implausible_value": implausible} if implausible else {})
    assert counters["bad_samples"] == src.stats.bad_samples + implausible
    n_used = samples - implausible
    assert counters["classifications"] == summary.classifications == (n_used - 64) // 32 + 1
    stats = pub.decoded("har/har-edge/stats")[-1]
    assert stats["reasons"] == dict(sorted((reasons + Counter({"implausible_value": implausible})).items()))
    assert stats["counters"]["bad_messages"] == sum(n for r, n in reasons.items() if counter_for(r) == "bad_messages")
    _no_tracebacks(caplog.records)


def test_csv_replay_counts_every_bad_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv_cases = [c for c in generate(max(N_CASES // 4, 2000), SEED + 1) if c.category.startswith("csv_")]
    path = tmp_path / "hostile.csv"
    path.write_bytes(b"timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + b"".join(c.payload + b"\n" for c in csv_cases))
    exp_samples, exp = 0, Counter[str]()
    for c in csv_cases:  # this file has no label column: a good line with a label has one field too many
        if c.category == "csv_good" and c.payload.count(b",") == 7:
            exp["wrong_field_count"] += 1
        else:
            exp_samples += c.samples
            exp.update(c.reasons)
    with caplog.at_level(logging.DEBUG):
        src = CsvReplaySource(path, speed="max", chunk_samples=256)
        n = sum(len(chunk) for chunk in src.chunks())
    assert n == exp_samples == src.stats.samples and Counter(src.stats.reasons) == exp
    _check_counters(src.stats)
    _no_tracebacks(caplog.records)


def test_random_chunks_into_the_stream(float32_bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Malformed shapes, NaN, absurd values and random timestamps straight into the stream: never an exception,
    and every sample accounted for (used, bad or out of order)."""
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.stream import StreamClassifier

    names = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    units = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
    with caplog.at_level(logging.INFO), Classifier.from_bundle(float32_bundle) as clf:
        s = StreamClassifier(clf)
        for t, x in hostile_chunks(1200, SEED + 2):
            s.feed(SampleChunk(t, x, names, units))
        s.finish()
    st = s.stats
    assert st.samples_in == st.samples_used + st.bad_samples + st.out_of_order
    assert st.gaps + st.clock_epochs > 10 and st.classifications > 100
    assert set(st.reasons) <= set(REASONS) | {"window_rejected"}
    _no_tracebacks(caplog.records)


@pytest.mark.parametrize("seed", range(4))
def test_passwords_never_appear_in_url_errors(seed: int) -> None:
    from urllib.parse import quote

    from har_edge.errors import ConfigError
    from har_edge.runtime.sources import open_source
    from har_edge.transport.config import MqttConfig, parse_broker_url

    rng = np.random.default_rng(seed)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789!$&'()*+,;=-._~:@/?#[] %"))
    tails = [":notaport", ":99999", "/path", "?q=1", "", ":1883", "#frag", ":-1"]
    for _ in range(100):
        password = "Zq" + "".join(rng.choice(alphabet, int(rng.integers(6, 24)))) + "9x"
        for encoded in (quote(password, safe=""), password):
            scheme = str(rng.choice(["mqtt", "mqtts", "http", "tcp", "ws"]))
            url = f"{scheme}://user:{encoded}@host{rng.choice(tails)}"
            for attempt in (lambda: parse_broker_url(url), lambda: open_source(url + "/topic"),
                            lambda: parse_broker_url(url, base=MqttConfig(tls=True))):
                try:
                    cfg = attempt()
                except ConfigError as exc:
                    text = f"{exc} {exc!r}"
                    assert password not in text and quote(password, safe="") not in text, text
                else:
                    assert password not in repr(cfg)
                    close = getattr(cfg, "close", None)
                    if close is not None:
                        close()


def test_the_suite_is_big_enough(cases: list[Case]) -> None:
    """The issue asks for ≥ 10,000 generated cases; count what one run of this module feeds."""
    per_path = Counter(c.category for c in cases)
    assert len(cases) >= 10_000 or N_CASES < 10_000
    assert len(per_path) >= 15, per_path
    assert re.match(r"^\d+$", str(N_CASES))


class _GarbageBus:
    """An MPU-6050 on a bus that answers block reads with random garbage a third of the time."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.reads = self.bad = 0

    def read_byte_data(self, addr: int, register: int) -> int:
        return 0x68 if register == 0x75 else 0

    def write_byte_data(self, addr: int, register: int, value: int) -> None:
        pass

    def read_i2c_block_data(self, addr: int, register: int, length: int) -> object:
        self.reads += 1
        kind = int(self.rng.integers(0, 9))
        if kind >= 3:
            return [int(v) for v in self.rng.integers(0, 256, length)]
        self.bad += 1
        if kind == 0:
            raise OSError(121, "Remote I/O error")
        if kind == 1:
            return [int(v) for v in self.rng.integers(-500, 500, length)]  # not bytes: ValueError
        return [None] * length if self.rng.random() < 0.5 else [1, 2]  # TypeError / a short read


def test_i2c_garbage_reads_are_counted_and_polling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    from har_edge.runtime.i2c import I2cSource, Mpu6050

    bus = _GarbageBus(SEED + 3)
    src = I2cSource(Mpu6050(bus, sample_rate_hz=1000), chunk_samples=50, reinit_after=10_000)  # type: ignore[arg-type]
    got = 0
    with caplog.at_level(logging.INFO):
        for chunk in src.chunks():
            got += len(chunk)
            if got >= 600:
                break
        src.close()
    assert src.stats.reasons["i2c_read_error"] == src.stats.bad_samples == bus.bad > 100  # every garbled read, once
    assert src.stats.samples >= 600 and bus.reads - bus.bad >= src.stats.samples  # the rest were still queued at close
    _no_tracebacks(caplog.records)
