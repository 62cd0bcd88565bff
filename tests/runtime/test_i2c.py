"""MPU-6050 / ADXL345 drivers and the polling source, against a fake at the smbus layer only."""

from __future__ import annotations

import math
import struct
import sys
import time

import numpy as np
import pytest

from har_edge.errors import BackendNotAvailable, ConfigError, SourceError
from har_edge.runtime.i2c import Adxl345, I2cSource, Mpu6050
from har_edge.runtime.sources import ACC_CHANNELS, DEFAULT_CHANNELS, Source, open_source


class FakeSMBus:
    """Register map of one device; block reads may raise OSError on a schedule."""

    def __init__(self, address: int, registers: dict[int, int], *, fail_reads: set[int] | None = None) -> None:
        self.address = address
        self.registers = dict(registers)
        self.writes: list[tuple[int, int]] = []
        self.block_reads = 0
        self.id_reads = 0
        self.fail_reads = fail_reads or set()  # indices of block reads that fail
        self.closed = False

    def _check(self, addr: int) -> None:
        if addr != self.address:
            raise OSError(121, "Remote I/O error")

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        self._check(i2c_addr)
        self.id_reads += 1
        return self.registers.get(register, 0)

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._check(i2c_addr)
        if not 0 <= value <= 0xFF:
            raise ValueError(f"byte out of range: {value}")
        self.writes.append((register, value))
        self.registers[register] = value

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self._check(i2c_addr)
        n = self.block_reads
        self.block_reads += 1
        if n in self.fail_reads:
            raise OSError(5, "Input/output error")
        return [self.registers.get(register + i, 0) for i in range(length)]

    def set_block(self, register: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.registers[register + i] = b

    def close(self) -> None:
        self.closed = True


def mpu_bus(raw: tuple[int, ...] = (16384, -8192, 0, 0, 131, -262, 0), **kw: object) -> FakeSMBus:
    bus = FakeSMBus(0x68, {0x75: 0x68, 0x6B: 0x40}, **kw)  # powers up asleep
    bus.set_block(0x3B, struct.pack(">7h", *raw))
    return bus


def adxl_bus(raw: tuple[int, int, int] = (256, -128, 0), **kw: object) -> FakeSMBus:
    bus = FakeSMBus(0x53, {0x00: 0xE5}, **kw)
    bus.set_block(0x32, struct.pack("<3h", *raw))
    return bus


# --------------------------------------------------------------------------- MPU-6050


def test_mpu6050_initialises_registers() -> None:
    bus = mpu_bus()
    dev = Mpu6050(bus, accel_range_g=4, gyro_range_dps=500, sample_rate_hz=50)
    regs = bus.registers
    assert regs[0x6B] & 0x40 == 0  # SLEEP cleared
    assert regs[0x19] == 19 and dev.sample_rate_hz == pytest.approx(50.0)  # 1 kHz / (1 + 19)
    assert regs[0x1A] == 4  # DLPF 21 Hz < 25 Hz Nyquist
    assert regs[0x1B] == 1 << 3 and regs[0x1C] == 1 << 3
    assert dev.channel_names == DEFAULT_CHANNELS and dev.units[3] == "rad/s"


@pytest.mark.parametrize(
    ("accel_range_g", "gyro_range_dps", "raw", "expected"),
    [
        (2, 250, (16384, -8192, 0, 1234, 131, -262, 0), (1.0, -0.5, 0.0, 1.0, -2.0, 0.0)),
        (4, 500, (8192, 4096, -8192, 0, 655, 0, -655), (1.0, 0.5, -1.0, 10.0, 0.0, -10.0)),
        (16, 2000, (2048, 0, -2048, 0, 164, 1640, 0), (1.0, 0.0, -1.0, 10.0, 100.0, 0.0)),
    ],
)
def test_mpu6050_scales_raw_counts(
    accel_range_g: int, gyro_range_dps: int, raw: tuple[int, ...], expected: tuple[float, ...]
) -> None:
    dev = Mpu6050(mpu_bus(raw), accel_range_g=accel_range_g, gyro_range_dps=gyro_range_dps)
    sample = dev.read()
    assert sample.shape == (6,)
    np.testing.assert_allclose(sample[:3], expected[:3])
    np.testing.assert_allclose(sample[3:], np.radians(expected[3:]), rtol=1e-3)
    assert dev.read_raw() == raw


def test_mpu6050_wrong_who_am_i_names_the_value() -> None:
    bus = mpu_bus()
    bus.registers[0x75] = 0x70
    with pytest.raises(SourceError, match="0x70"):
        Mpu6050(bus)


def test_mpu6050_absent_device_and_bad_options() -> None:
    with pytest.raises(SourceError, match="0x69"):
        Mpu6050(mpu_bus(), address=0x69)
    with pytest.raises(ConfigError, match="accel_range_g"):
        Mpu6050(mpu_bus(), accel_range_g=3)
    with pytest.raises(ConfigError, match="gyro_range_dps"):
        Mpu6050(mpu_bus(), gyro_range_dps=300)
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        Mpu6050(mpu_bus(), sample_rate_hz=5000)
    with pytest.raises(ConfigError, match="bus"):
        Mpu6050(object())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ADXL345


def test_adxl345_initialises_and_scales() -> None:
    bus = adxl_bus((256, -128, 1000))
    dev = Adxl345(bus, range_g=8, sample_rate_hz=50)
    assert bus.registers[0x2C] == 0x09 and dev.sample_rate_hz == 50.0  # 3200 / 2**6
    assert bus.registers[0x31] == 0x08 | 0x02  # FULL_RES, ±8 g
    assert bus.registers[0x2D] == 0x08  # Measure
    assert bus.writes[-1] == (0x2D, 0x08)  # measurement starts after configuration
    np.testing.assert_allclose(dev.read(), [0.9984, -0.4992, 3.9])
    assert dev.channel_names == ACC_CHANNELS and dev.units == ("g", "g", "g")
    assert Adxl345(adxl_bus(), sample_rate_hz=60).sample_rate_hz == 100.0


def test_adxl345_wrong_devid_and_bad_range() -> None:
    bus = adxl_bus()
    bus.registers[0x00] = 0x00
    with pytest.raises(SourceError, match="0x00"):
        Adxl345(bus)
    with pytest.raises(ConfigError, match="range_g"):
        Adxl345(adxl_bus(), range_g=3)


# --------------------------------------------------------------------------- polling source


def _take(source: I2cSource, n_chunks: int) -> list:  # type: ignore[type-arg]
    out = []
    for chunk in source.chunks():
        out.append(chunk)
        if len(out) >= n_chunks:
            break
    source.close()
    return out


def _fake_clock(monkeypatch: pytest.MonkeyPatch, src: I2cSource) -> None:
    """The polling thread's clock advances only when it waits: its schedule, not the machine's load, is tested."""
    import types

    import har_edge.runtime.i2c as i2c_module

    now = [1000.0]
    real_wait = src._closed.wait

    def wait(timeout: float | None = None) -> bool:
        now[0] += float(timeout or 0.0)
        return real_wait(0) if timeout else real_wait(timeout)

    monkeypatch.setattr(i2c_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(src._closed, "wait", wait)


def test_i2c_source_polls_and_counts_failed_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = mpu_bus(fail_reads={2, 5, 6, 11})
    src = I2cSource(Mpu6050(bus, sample_rate_hz=500), chunk_samples=10)
    assert isinstance(src, Source) and src.nominal_rate_hz == pytest.approx(500)
    _fake_clock(monkeypatch, src)
    chunks = _take(src, 3)
    t = np.concatenate([c.timestamps_s for c in chunks])
    values = np.concatenate([c.values for c in chunks])
    assert len(t) == 30 and np.all(np.diff(t) > 0)
    np.testing.assert_allclose(values[:, :3], np.tile([1.0, -0.5, 0.0], (30, 1)))
    assert src.stats.samples == 30
    assert src.stats.reasons.get("i2c_read_error") == 4
    # one read every 2 ms on the schedule; a failed read (block reads 2, 5, 6, 11) leaves its tick empty
    ok_reads = [i for i in range(34) if i not in {2, 5, 6, 11}]
    np.testing.assert_allclose(np.diff(t), np.diff(ok_reads) * 0.002, rtol=1e-9)


def test_i2c_source_reinitialises_after_consecutive_failures() -> None:
    bus = mpu_bus(fail_reads=set(range(3, 15)))
    dev = Mpu6050(bus, sample_rate_hz=1000)
    id_reads_after_init = bus.id_reads
    src = I2cSource(dev, chunk_samples=5, reinit_after=5)
    chunks = _take(src, 3)
    assert sum(len(c) for c in chunks) == 15
    assert src.stats.reasons["i2c_read_error"] == 12
    assert bus.id_reads - id_reads_after_init == 2  # re-initialised twice (after 5 and 10 failures)


def test_i2c_source_keeps_going_when_reinit_fails() -> None:
    bus = mpu_bus(fail_reads=set(range(0, 10)))
    src = I2cSource(Mpu6050(bus, sample_rate_hz=1000), chunk_samples=5, reinit_after=3, reinit_backoff_s=0.01)
    bus.registers[0x75] = 0x00  # the chip "vanishes": re-initialising fails...
    start = time.monotonic()
    first = []
    for chunk in src.chunks():
        first.append(chunk)
        break
    src.close()
    assert len(first[0]) == 5 and time.monotonic() - start < 20.0  # ...but reads recover and samples flow


def test_slow_consumer_does_not_stall_polling() -> None:
    from tests.fixtures.broker import wait_until

    bus = adxl_bus()
    src = I2cSource(Adxl345(bus, sample_rate_hz=200), chunk_samples=10)
    it = src.chunks()
    got = [next(it)]
    # the consumer is busy (e.g. inference on this chunk) and asks for nothing: polling goes on regardless
    reads = bus.block_reads
    assert wait_until(lambda: bus.block_reads >= reads + 30), "polling waited for the consumer"
    got += [next(it) for _ in range(3)]
    src.close()
    t = np.concatenate([c.timestamps_s for c in got])
    assert len(t) == 40 and np.all(np.diff(t) > 0)  # the samples read meanwhile were kept, in order


def test_i2c_source_channel_subset_and_axis_map() -> None:
    src = I2cSource(Mpu6050(mpu_bus()), channel_names=ACC_CHANNELS, axis_map={"acc_x": "-acc_y"},
                    chunk_samples=2)
    assert src.channel_names == ACC_CHANNELS and src.units == ("g", "g", "g")
    (chunk,) = _take(src, 1)
    np.testing.assert_allclose(chunk.values, [[0.5, -0.5, 0.0]] * 2)
    with pytest.raises(ConfigError, match="gyro_x"):
        I2cSource(Adxl345(adxl_bus()), channel_names=["gyro_x"])


def test_close_from_another_thread_ends_polling() -> None:
    import threading

    src = I2cSource(Adxl345(adxl_bus(), sample_rate_hz=100), chunk_samples=1000, max_latency_s=10)
    threading.Timer(0.2, src.close).start()
    start = time.monotonic()
    assert list(src.chunks()) == []  # without the close, a 10 s latency bound would have yielded a chunk
    assert time.monotonic() - start < 9.0


# --------------------------------------------------------------------------- factory and smbus2


def test_factory_opens_i2c_sources_with_an_injected_bus() -> None:
    bus = FakeSMBus(0x69, {0x75: 0x68})
    src = open_source("i2c:mpu6050@1:0x69", bus=bus, sample_rate_hz=100, accel_range_g=8, chunk_samples=4)
    assert isinstance(src, I2cSource) and src.device.address == 0x69  # type: ignore[attr-defined]
    assert bus.registers[0x1C] == 2 << 3 and src.nominal_rate_hz == 100
    adxl = open_source("i2c:ADXL345", bus=adxl_bus(), range_g=4)
    assert adxl.channel_names == ACC_CHANNELS and adxl.units == ("g", "g", "g")
    with pytest.raises(ConfigError, match="units"):
        open_source("i2c:adxl345", bus=adxl_bus(), units=["g", "g", "g"])
    with pytest.raises(ConfigError, match="mpu6050"):
        open_source("i2c:bmi160", bus=adxl_bus())


def test_bus_number_opens_smbus2_and_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import smbus2

    opened: list[FakeSMBus] = []

    def fake_smbus(n: int) -> FakeSMBus:
        assert n == 3
        opened.append(mpu_bus())
        return opened[-1]

    monkeypatch.setattr(smbus2, "SMBus", fake_smbus)
    src = open_source("i2c:mpu6050@3")
    assert len(opened) == 1
    src.close()
    assert opened[0].closed

    injected = mpu_bus()
    Mpu6050(injected).close()
    assert not injected.closed  # the caller owns an injected bus


def test_missing_smbus2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smbus2", None)
    with pytest.raises(BackendNotAvailable, match=r"har-edge\[i2c\]"):
        Mpu6050(1)


def test_bus_that_cannot_open_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import smbus2

    def missing(n: int) -> None:
        raise FileNotFoundError(2, "No such file or directory", f"/dev/i2c-{n}")

    monkeypatch.setattr(smbus2, "SMBus", missing)
    with pytest.raises(SourceError, match="/dev/i2c-7"):
        Adxl345(7)


def test_gyro_scale_matches_datasheet() -> None:
    dev = Mpu6050(mpu_bus((0, 0, 0, 0, 32767, 0, 0)), gyro_range_dps=250)
    assert dev.read()[3] == pytest.approx(math.radians(32767 / 131))
