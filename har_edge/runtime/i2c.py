"""Register-level I2C drivers (MPU-6050, ADXL345) and the polling source built on them.

The drivers take an ``smbus2.SMBus`` bus number (opened here, ``smbus2`` imported lazily)
or any object with ``read_byte_data``, ``write_byte_data`` and ``read_i2c_block_data``
(tests inject a fake). ``read()`` returns one ``(c,)`` float64 sample in the units the
driver declares: acceleration in g, angular rate converted to rad/s (the toolkit's schema).
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BackendNotAvailable, ConfigError, SourceError
from har_edge.runtime.live_sources import _PushSource
from har_edge.runtime.source_base import ACC_CHANNELS, DEFAULT_CHANNELS, DEFAULT_CHUNK_SAMPLES

__all__ = ["I2cBus", "I2cDevice", "Mpu6050", "Adxl345", "I2cSource", "open_i2c_source"]

logger = logging.getLogger(__name__)

# what a failed or garbled read raises: the bus (OSError), bytes()/struct on bad data, a short or odd result
_READ_ERRORS = (OSError, ValueError, TypeError, IndexError, struct.error)


class I2cBus(Protocol):
    """The subset of ``smbus2.SMBus`` the drivers use."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...


class I2cDevice(Protocol):
    """What :class:`I2cSource` polls."""

    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    sample_rate_hz: float

    def initialise(self) -> None: ...

    def read(self) -> NDArray[np.float64]: ...

    def close(self) -> None: ...


def _open_bus(bus: int | I2cBus) -> tuple[I2cBus, bool]:
    """``(bus object, owned)``; a bus number opens ``/dev/i2c-N`` through smbus2."""
    if isinstance(bus, bool) or not isinstance(bus, int):
        missing = [m for m in ("read_byte_data", "write_byte_data", "read_i2c_block_data") if not hasattr(bus, m)]
        if missing:
            raise ConfigError(f"bus={bus!r} is neither a bus number nor an SMBus-like object (lacks {missing})")
        return cast(I2cBus, bus), False
    try:
        from smbus2 import SMBus
    except ImportError:
        raise BackendNotAvailable('I2C sensors need smbus2: pip install "har-edge[i2c]"') from None
    try:
        return SMBus(bus), True
    except OSError as exc:
        raise SourceError(f"cannot open I2C bus {bus} (/dev/i2c-{bus}): {exc}; is I2C enabled (raspi-config)?") from None


def _choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}; expected one of {list(allowed)}")
    return value


class _Driver:
    """Bus ownership, register helpers and ``close()`` shared by the drivers."""

    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    sample_rate_hz: float

    def __init__(self, bus: int | I2cBus, address: int) -> None:
        if isinstance(address, bool) or not isinstance(address, int) or not 0x03 <= address <= 0x77:
            raise ConfigError(f"address={address!r}; expected a 7-bit I2C address 0x03..0x77")
        self.address = address
        self.bus_id = bus if isinstance(bus, int) else type(bus).__name__
        self._bus, self._owns_bus = _open_bus(bus)
        try:
            self.initialise()
        except BaseException:
            self.close()
            raise

    def initialise(self) -> None:
        """Program the chip (each driver); called by ``__init__`` once the bus is open."""
        raise NotImplementedError

    def _write(self, register: int, value: int) -> None:
        self._bus.write_byte_data(self.address, register, value)

    def _read_block(self, register: int, length: int) -> bytes:
        data = bytes(self._bus.read_i2c_block_data(self.address, register, length))
        if len(data) != length:
            raise OSError(f"short I2C read: {len(data)} of {length} bytes from register {register:#04x}")
        return data

    def _check_id(self, register: int, expected: int, chip: str) -> None:
        try:
            value = self._bus.read_byte_data(self.address, register)
        except OSError as exc:
            raise SourceError(
                f"no {chip} answered at {self.address:#04x} on I2C bus {self.bus_id}: {exc} (check wiring / i2cdetect)"
            ) from None
        if value != expected:
            raise SourceError(
                f"{chip} at {self.address:#04x}: ID register {register:#04x} reads {value:#04x}, expected {expected:#04x}"
            )

    def close(self) -> None:
        """Close the bus if this driver opened it."""
        if self._owns_bus:
            self._owns_bus = False
            close = getattr(self._bus, "close", None)
            if close is not None:
                close()


class Mpu6050(_Driver):
    """InvenSense MPU-6050 accelerometer + gyroscope.

    ``read()`` returns ``(6,)`` float64: acc_x..z in g, gyro_x..z in rad/s (converted from the
    chip's deg/s). The sample rate is 1 kHz / (1 + SMPLRT_DIV) with the digital low-pass
    filter set to the widest bandwidth below half the rate.
    """

    channel_names: tuple[str, ...] = DEFAULT_CHANNELS
    units: tuple[str, ...] = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
    PWR_MGMT_1, SMPLRT_DIV, CONFIG, GYRO_CONFIG, ACCEL_CONFIG = 0x6B, 0x19, 0x1A, 0x1B, 0x1C
    ACCEL_XOUT_H, WHO_AM_I = 0x3B, 0x75
    ACCEL_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
    GYRO_LSB_PER_DPS = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}
    DLPF_BANDWIDTH_HZ = {1: 184, 2: 94, 3: 44, 4: 21, 5: 10, 6: 5}  # DLPF_CFG -> accel bandwidth

    def __init__(
        self,
        bus: int | I2cBus = 1,
        address: int = 0x68,
        *,
        accel_range_g: int = 2,
        gyro_range_dps: int = 250,
        sample_rate_hz: float = 50.0,
        who_am_i: int = 0x68,
    ) -> None:
        self.accel_range_g = _choice("accel_range_g", accel_range_g, list(self.ACCEL_LSB_PER_G))
        self.gyro_range_dps = _choice("gyro_range_dps", gyro_range_dps, list(self.GYRO_LSB_PER_DPS))
        if not 1000 / 256 <= sample_rate_hz <= 1000:
            raise ConfigError(f"sample_rate_hz={sample_rate_hz!r}; the MPU-6050 supports 3.9..1000 Hz here")
        self._div = max(0, min(255, round(1000 / sample_rate_hz) - 1))
        self.sample_rate_hz = 1000 / (1 + self._div)
        fits = [cfg for cfg, bw in self.DLPF_BANDWIDTH_HZ.items() if bw <= self.sample_rate_hz / 2]
        self._dlpf = fits[0] if fits else 6
        self._who_am_i = who_am_i
        self._scale = np.array(
            [1 / self.ACCEL_LSB_PER_G[accel_range_g]] * 3
            + [math.pi / 180 / self.GYRO_LSB_PER_DPS[gyro_range_dps]] * 3
        )
        super().__init__(bus, address)

    def initialise(self) -> None:
        """Check WHO_AM_I, wake the chip (PLL clock) and program rate, filter and ranges."""
        self._check_id(self.WHO_AM_I, self._who_am_i, "MPU-6050")
        self._write(self.PWR_MGMT_1, 0x01)  # SLEEP=0, clock = PLL with X-gyro reference
        self._write(self.SMPLRT_DIV, self._div)
        self._write(self.CONFIG, self._dlpf)
        self._write(self.GYRO_CONFIG, list(self.GYRO_LSB_PER_DPS).index(self.gyro_range_dps) << 3)
        self._write(self.ACCEL_CONFIG, list(self.ACCEL_LSB_PER_G).index(self.accel_range_g) << 3)

    def read_raw(self) -> tuple[int, ...]:
        """Signed counts ``(ax, ay, az, temp, gx, gy, gz)`` from ACCEL_XOUT_H.. (big-endian)."""
        return struct.unpack(">7h", self._read_block(self.ACCEL_XOUT_H, 14))

    def read(self) -> NDArray[np.float64]:
        """One ``(6,)`` sample: acceleration in g, angular rate in rad/s."""
        raw = self.read_raw()
        sample: NDArray[np.float64] = np.array(raw[:3] + raw[4:], dtype=np.float64) * self._scale
        return sample


class Adxl345(_Driver):
    """Analog Devices ADXL345 accelerometer in full-resolution mode (3.9 mg/LSB at any range).

    ``read()`` returns ``(3,)`` float64 acc_x..z in g. The output data rate is the slowest
    of 3200 / 2^k Hz that is at least ``sample_rate_hz``.
    """

    channel_names: tuple[str, ...] = ACC_CHANNELS
    units: tuple[str, ...] = ("g", "g", "g")
    DEVID, BW_RATE, POWER_CTL, DATA_FORMAT, DATAX0 = 0x00, 0x2C, 0x2D, 0x31, 0x32
    G_PER_LSB = 0.0039
    RANGES_G = (2, 4, 8, 16)

    def __init__(
        self, bus: int | I2cBus = 1, address: int = 0x53, *, range_g: int = 2, sample_rate_hz: float = 50.0
    ) -> None:
        self.range_g = _choice("range_g", range_g, self.RANGES_G)
        codes = [c for c in range(16) if 3200 / 2 ** (15 - c) >= sample_rate_hz]
        if not codes or not sample_rate_hz > 0:
            raise ConfigError(f"sample_rate_hz={sample_rate_hz!r}; the ADXL345 supports up to 3200 Hz")
        self._rate_code = codes[0]
        self.sample_rate_hz = 3200 / 2 ** (15 - self._rate_code)
        super().__init__(bus, address)

    def initialise(self) -> None:
        """Check DEVID, set rate and full-resolution range, then enter measurement mode."""
        self._check_id(self.DEVID, 0xE5, "ADXL345")
        self._write(self.POWER_CTL, 0x00)  # standby while configuring
        self._write(self.BW_RATE, self._rate_code)
        self._write(self.DATA_FORMAT, 0x08 | self.RANGES_G.index(self.range_g))  # FULL_RES | range
        self._write(self.POWER_CTL, 0x08)  # Measure

    def read_raw(self) -> tuple[int, ...]:
        """Signed counts ``(x, y, z)`` from DATAX0.. (little-endian)."""
        return struct.unpack("<3h", self._read_block(self.DATAX0, 6))

    def read(self) -> NDArray[np.float64]:
        """One ``(3,)`` sample in g."""
        sample: NDArray[np.float64] = np.array(self.read_raw(), dtype=np.float64) * self.G_PER_LSB
        return sample


class I2cSource(_PushSource):
    """Polls an I2C device from a background thread on a ``time.monotonic`` schedule.

    Timestamps are ``time.monotonic()`` at each read; ``chunks()`` yields at ``chunk_samples``
    samples or ``max_latency_s``, so a slow consumer does not delay the polling. A failed read
    (``OSError``) is counted (reason ``i2c_read_error``) and skipped; after ``reinit_after``
    consecutive failures the device is re-initialised (retried with backoff up to 30 s). If
    polling falls behind by more than 5 periods the missed ticks are dropped (reason
    ``overrun``), not replayed.
    """

    def __init__(
        self,
        device: I2cDevice,
        *,
        sample_rate_hz: float | None = None,
        channel_names: Sequence[str] | None = None,
        axis_map: Mapping[str, str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        max_latency_s: float = 0.25,
        reinit_after: int = 25,
        reinit_backoff_s: float = 1.0,
    ) -> None:
        names = tuple(channel_names) if channel_names is not None else device.channel_names
        unknown = [n for n in names if n not in device.channel_names]
        if unknown or not names:
            raise ConfigError(f"channel_names={channel_names!r}: {type(device).__name__} provides {device.channel_names}")
        self._columns = [device.channel_names.index(n) for n in names]
        rate = float(sample_rate_hz if sample_rate_hz is not None else device.sample_rate_hz)
        if not rate > 0:
            raise ConfigError(f"sample_rate_hz={sample_rate_hz!r}; expected a positive rate")
        super().__init__(
            f"i2c:{type(device).__name__.lower()}",
            names,
            tuple(device.units[i] for i in self._columns),
            nominal_rate_hz=rate,
            chunk_samples=chunk_samples,
            axis_map=axis_map,
            max_latency_s=max_latency_s,
        )
        self.device = device
        self.reinit_after = reinit_after
        self.reinit_backoff_s = reinit_backoff_s
        self._io_lock = threading.Lock()  # close() never closes the bus in the middle of a read
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"har-edge-{self.name}", daemon=True)
            self._thread.start()

    def _reinitialise(self, backoff_s: float) -> float:
        """Try ``device.initialise()``; returns the next backoff (0 after success)."""
        try:
            with self._io_lock:
                self.device.initialise()
        except (*_READ_ERRORS, SourceError) as exc:
            logger.warning("%s: re-initialising failed (%s); retrying in %.1f s", self.name, exc, backoff_s)
            self._closed.wait(backoff_s)
            return min(max(backoff_s, 1e-3) * 2, 30.0)
        logger.warning("%s: device re-initialised after %d failed reads", self.name, self.reinit_after)
        return 0.0

    def _run(self) -> None:
        try:
            self._poll()
        except Exception as exc:  # a driver bug, not a bus hiccup: end the stream with it (one log line)
            logger.error("%s: polling failed: %s: %s", self.name, type(exc).__name__, exc)
            self._finish(SourceError(f"{self.name}: polling failed: {exc}"))
        else:
            self._finish()

    def _poll(self) -> None:
        period = 1.0 / float(self.nominal_rate_hz or 1.0)
        next_t = time.monotonic()
        failures, backoff = 0, self.reinit_backoff_s
        while not self.closed:
            delay = next_t - time.monotonic()
            if delay > 0 and self._closed.wait(delay):
                return
            now = time.monotonic()
            try:
                with self._io_lock:
                    if self.closed:
                        return
                    row = [now, *np.asarray(self.device.read(), dtype=np.float64)[self._columns].tolist()]
            except _READ_ERRORS as exc:  # a bus hiccup or a garbled read: count it, keep polling
                failures += 1
                self._count_bad("i2c_read_error", f"{type(exc).__name__}: {exc} ({failures} in a row)")
                if failures >= self.reinit_after:
                    backoff = self._reinitialise(backoff) or self.reinit_backoff_s
                    failures = 0
            else:
                failures, backoff = 0, self.reinit_backoff_s
                self._offer([row], block=False)
            next_t += period
            behind = time.monotonic() - next_t
            if behind > 5 * period:
                missed = int(behind / period)
                next_t += missed * period
                self._count_bad("overrun", f"polling fell {behind * 1e3:.0f} ms behind", missed)

    def close(self) -> None:
        """Stop polling and close the bus if the driver opened it."""
        super().close()
        with self._io_lock:
            self.device.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def open_i2c_source(
    chip: str,
    bus: int | I2cBus = 1,
    address: int | None = None,
    *,
    channel_names: Sequence[str] | None = None,
    units: Any = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    sample_rate_hz: float = 50.0,
    accel_range_g: int | None = None,
    gyro_range_dps: int = 250,
    range_g: int | None = None,
    axis_map: Mapping[str, str] | None = None,
    max_latency_s: float = 0.25,
    reinit_after: int = 25,
) -> I2cSource:
    """Open ``chip`` ("mpu6050" or "adxl345") on ``bus`` and wrap it in an :class:`I2cSource`."""
    if units is not None:
        raise ConfigError(f"units={units!r}: I2C sources report their own units; leave units unset")
    accel = accel_range_g if accel_range_g is not None else range_g if range_g is not None else 2
    device: I2cDevice
    if chip == "mpu6050":
        device = Mpu6050(
            bus, 0x68 if address is None else address, accel_range_g=accel, gyro_range_dps=gyro_range_dps,
            sample_rate_hz=sample_rate_hz,
        )
    elif chip == "adxl345":
        device = Adxl345(bus, 0x53 if address is None else address, range_g=accel, sample_rate_hz=sample_rate_hz)
    else:
        raise ConfigError(f"unknown I2C sensor {chip!r}; expected 'mpu6050' or 'adxl345'")
    try:
        return I2cSource(
            device, sample_rate_hz=sample_rate_hz, channel_names=channel_names, axis_map=axis_map,
            chunk_samples=chunk_samples, max_latency_s=max_latency_s, reinit_after=reinit_after,
        )
    except BaseException:
        device.close()
        raise
