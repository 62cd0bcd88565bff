"""Causal preprocessing that the device repeats on a live stream — the one place it lives.

The deployable model is trained on raw streams passed through :class:`CausalPreprocessor`, and the
runtime feeds its live samples through the same class, so training and serving see identical
features. Everything is causal (a sample's output depends only on it and earlier samples) and
stateful across calls, so a stream can be processed chunk by chunk with the same result as all at
once.

Pipeline for input ``acc_{x,y,z}`` (g) [+ ``gyro_{x,y,z}`` (rad/s)]:

1. optional low-pass (Butterworth, ``noise_cutoff_hz``, ``noise_order``) on every input channel
   → ``total_acc_*`` and ``body_gyro_*``;
2. gravity = low-pass (Butterworth, ``gravity_cutoff_hz`` = 0.3 Hz, order 3) of ``total_acc``;
   ``body_acc = total_acc − gravity`` (the UCI HAR gravity/body split, made causal);
3. output the channels named in ``output_channels``.

Filters are ``scipy.signal`` second-order sections run with ``sosfilt`` and carried state; the state
starts at the steady state of the first sample (no start-up transient). Should a filter's state ever go
non-finite (an input so large it overflows), :meth:`CausalPreprocessor.process` resets it, counts it in
``resets`` and returns that chunk's rows as NaN, so a caller drops them instead of carrying the poison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal as sps

from har_edge.data.recording import Recording, channel_indices, check_finite
from har_edge.errors import DataError

__all__ = [
    "RAW_CHANNELS",
    "DERIVED_CHANNELS",
    "UCI_9CH",
    "PreprocessingSpec",
    "CausalPreprocessor",
    "preprocess_recording",
    "gravity_split_zero_phase",
]

RAW_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
RAW_UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
_AXES = ("x", "y", "z")
DERIVED_CHANNELS = tuple(
    f"{kind}_{a}" for kind in ("body_acc", "body_gyro", "total_acc", "gravity") for a in _AXES
)
UCI_9CH = tuple(f"{kind}_{a}" for kind in ("body_acc", "body_gyro", "total_acc") for a in _AXES)
_UNIT_OF = {"body_acc": "g", "total_acc": "g", "gravity": "g", "body_gyro": "rad/s"}


def derived_unit(channel: str) -> str:
    return _UNIT_OF[channel.rsplit("_", 1)[0]]


@dataclass(frozen=True)
class PreprocessingSpec:
    """What the device must do to raw samples before normalisation; stored in every bundle."""

    sample_rate_hz: float
    output_channels: tuple[str, ...] = UCI_9CH
    input_channels: tuple[str, ...] = RAW_CHANNELS
    input_units: tuple[str, ...] = RAW_UNITS
    gravity_cutoff_hz: float = 0.3
    gravity_order: int = 3
    noise_cutoff_hz: float | None = 20.0
    noise_order: int = 3
    kind: str = "causal_gravity_split"

    def __post_init__(self) -> None:
        unknown = [c for c in self.output_channels if c not in DERIVED_CHANNELS]
        if unknown:
            raise DataError(f"unknown output channel(s) {unknown}; expected names from {list(DERIVED_CHANNELS)}")
        needs_gyro = any(c.startswith("body_gyro") for c in self.output_channels)
        missing = [c for c in RAW_CHANNELS[: 6 if needs_gyro else 3] if c not in self.input_channels]
        if missing:
            raise DataError(f"output channels {list(self.output_channels)} need input channel(s) {missing}")
        nyq = self.sample_rate_hz / 2
        if not 0 < self.gravity_cutoff_hz < nyq:
            raise DataError(f"gravity_cutoff_hz={self.gravity_cutoff_hz} must be in (0, {nyq})")
        if self.noise_cutoff_hz is not None and not 0 < self.noise_cutoff_hz < nyq:
            raise DataError(f"noise_cutoff_hz={self.noise_cutoff_hz} must be in (0, {nyq}) at {self.sample_rate_hz} Hz")

    @property
    def output_units(self) -> tuple[str, ...]:
        return tuple(derived_unit(c) for c in self.output_channels)

    @property
    def used_inputs(self) -> tuple[str, ...]:
        needs_gyro = any(c.startswith("body_gyro") for c in self.output_channels)
        return RAW_CHANNELS[: 6 if needs_gyro else 3]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sample_rate_hz": self.sample_rate_hz,
            "input_channels": list(self.input_channels),
            "input_units": list(self.input_units),
            "output_channels": list(self.output_channels),
            "gravity_cutoff_hz": self.gravity_cutoff_hz,
            "gravity_order": self.gravity_order,
            "noise_cutoff_hz": self.noise_cutoff_hz,
            "noise_order": self.noise_order,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PreprocessingSpec":
        if d.get("kind", "causal_gravity_split") != "causal_gravity_split":
            raise DataError(f"unknown preprocessing kind {d.get('kind')!r}; expected 'causal_gravity_split'")
        try:
            return cls(
                sample_rate_hz=float(d["sample_rate_hz"]),
                output_channels=tuple(d["output_channels"]),
                input_channels=tuple(d.get("input_channels", RAW_CHANNELS)),
                input_units=tuple(d.get("input_units", RAW_UNITS)),
                gravity_cutoff_hz=float(d.get("gravity_cutoff_hz", 0.3)),
                gravity_order=int(d.get("gravity_order", 3)),
                noise_cutoff_hz=None if d.get("noise_cutoff_hz") is None else float(d["noise_cutoff_hz"]),
                noise_order=int(d.get("noise_order", 3)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"preprocessing spec is incomplete or malformed: {exc}") from exc


@dataclass
class _SosState:
    sos: NDArray[np.float64]
    zi: NDArray[np.float64] | None = None  # (sections, 2, channels)

    def run(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.zi is None:
            base = sps.sosfilt_zi(self.sos)  # (sections, 2), steady state for a unit step
            self.zi = base[:, :, None] * x[0][None, None, :]
        y, self.zi = sps.sosfilt(self.sos, x, axis=0, zi=self.zi)
        return y


@dataclass
class CausalPreprocessor:
    """Stateful, causal feature extraction for a stream; ``process`` chunk by chunk.

    ``process(raw)`` takes ``(n, len(spec.used_inputs))`` samples (columns in
    ``spec.used_inputs`` order, units ``g`` / ``rad/s``) and returns ``(n, len(spec.output_channels))``
    float32.
    """

    spec: PreprocessingSpec
    _noise: _SosState | None = field(init=False, default=None)
    _gravity: _SosState = field(init=False)
    resets: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the filter state (start of a new stream)."""
        fs = self.spec.sample_rate_hz
        self._noise = None
        if self.spec.noise_cutoff_hz is not None:
            self._noise = _SosState(sps.butter(self.spec.noise_order, self.spec.noise_cutoff_hz, fs=fs, output="sos"))
        self._gravity = _SosState(sps.butter(self.spec.gravity_order, self.spec.gravity_cutoff_hz, fs=fs, output="sos"))

    def _features(self, x: NDArray[np.float64]) -> NDArray[np.float32]:
        if self._noise is not None:
            x = self._noise.run(x)
        total_acc = x[:, :3]
        gravity = self._gravity.run(total_acc)
        parts = {"total_acc": total_acc, "gravity": gravity, "body_acc": total_acc - gravity}
        if x.shape[1] == 6:
            parts["body_gyro"] = x[:, 3:6]
        cols = []
        for name in self.spec.output_channels:
            kind, axis = name.rsplit("_", 1)
            cols.append(parts[kind][:, _AXES.index(axis)])
        return np.stack(cols, axis=1).astype(np.float32)

    def process(self, raw: NDArray[np.floating]) -> NDArray[np.float32]:
        n_in = len(self.spec.used_inputs)
        if raw.ndim != 2 or raw.shape[1] != n_in:
            raise DataError(f"preprocessing expects (n, {n_in}) samples {list(self.spec.used_inputs)}; got {raw.shape}")
        if raw.shape[0] == 0:
            return np.zeros((0, len(self.spec.output_channels)), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below, not warned about
            out = self._features(np.asarray(raw, dtype=np.float64))
        states = [s.zi for s in (self._noise, self._gravity) if s is not None and s.zi is not None]
        if not (np.isfinite(out).all() and all(np.isfinite(z).all() for z in states)):
            self.reset()  # the poison stays in this chunk: the next one starts from a clean state
            self.resets += 1
            out[:] = np.nan
        return out


def preprocess_recording(rec: Recording, spec: PreprocessingSpec) -> Recording:
    """Run a whole raw recording through a fresh :class:`CausalPreprocessor` (training side)."""
    if rec.sample_rate_hz != spec.sample_rate_hz:
        raise DataError(
            f"{rec.name}: recorded at {rec.sample_rate_hz} Hz but preprocessing is for {spec.sample_rate_hz} Hz; resample first"
        )
    idx = channel_indices(rec.channel_names, spec.used_inputs, where=rec.name)
    check_finite(rec.signals[:, idx], where=rec.name)
    out = CausalPreprocessor(spec).process(rec.signals[:, idx])
    return Recording(
        signals=out,
        channel_names=spec.output_channels,
        units=spec.output_units,
        sample_rate_hz=rec.sample_rate_hz,
        labels=rec.labels,
        label_names=rec.label_names,
        subject=rec.subject,
        name=rec.name,
    )


def gravity_split_zero_phase(
    total_acc: NDArray[np.floating], sample_rate_hz: float, *, cutoff_hz: float = 0.3, order: int = 3
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Offline (non-causal, forward-backward) UCI recipe: returns ``(gravity, body_acc)``, each ``(n, 3)``.

    For analysis and for rebuilding UCI-style windows; the device path uses :class:`CausalPreprocessor`.
    """
    sos = sps.butter(order, cutoff_hz, fs=sample_rate_hz, output="sos")
    gravity = sps.sosfiltfilt(sos, np.asarray(total_acc, dtype=np.float64), axis=0)
    return gravity.astype(np.float32), (total_acc - gravity).astype(np.float32)
