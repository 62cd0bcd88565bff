"""Resampling to the model's rate: offline (polyphase, scipy.signal) and streaming (causal)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import NDArray
from scipy import signal as sps

from har_edge.data.recording import Recording
from har_edge.errors import DataError

__all__ = ["resample_recording", "StreamResampler"]


def resample_recording(rec: Recording, target_rate_hz: float) -> Recording:
    """Resample a whole recording with ``scipy.signal.resample_poly`` (anti-aliased).

    Labels (if any) follow by nearest sample. Returns ``rec`` unchanged if the rate already matches.
    """
    if target_rate_hz <= 0:
        raise DataError(f"target_rate_hz={target_rate_hz}; expected a positive rate")
    if abs(rec.sample_rate_hz - target_rate_hz) < 1e-9:
        return rec
    ratio = Fraction(target_rate_hz / rec.sample_rate_hz).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    out = sps.resample_poly(rec.signals.astype(np.float64), up, down, axis=0, padtype="line").astype(np.float32)
    labels = None
    if rec.labels is not None:
        src = np.minimum((np.arange(out.shape[0]) * down / up).round().astype(np.int64), rec.n_samples - 1)
        labels = rec.labels[src]
    return Recording(
        signals=out,
        channel_names=rec.channel_names,
        units=rec.units,
        sample_rate_hz=float(target_rate_hz),
        labels=labels,
        label_names=rec.label_names,
        subject=rec.subject,
        name=rec.name,
    )


class StreamResampler:
    """Causal resampling of timestamped samples onto a uniform grid at ``target_rate_hz``.

    Linear interpolation between consecutive input samples; when the source is faster than the
    target, a causal Butterworth anti-alias low-pass (``0.4 × target``) runs first. Handles jitter.
    A gap longer than ``max_gap_s`` restarts the grid (no fabricated samples across a dropout).
    """

    def __init__(self, target_rate_hz: float, *, source_rate_hz: float | None = None, max_gap_s: float = 1.0) -> None:
        if target_rate_hz <= 0:
            raise DataError(f"target_rate_hz={target_rate_hz}; expected a positive rate")
        self.target_rate_hz = float(target_rate_hz)
        self.period_s = 1.0 / self.target_rate_hz
        self.max_gap_s = max_gap_s
        self._sos = None
        if source_rate_hz is not None and source_rate_hz > self.target_rate_hz * 1.05:
            self._sos = sps.butter(4, 0.4 * self.target_rate_hz, fs=source_rate_hz, output="sos")
        self._zi: NDArray[np.float64] | None = None
        self._last_t: float | None = None
        self._last_x: NDArray[np.float64] | None = None
        self._next_t: float | None = None
        self.gaps = 0

    def reset(self) -> None:
        self._zi = None
        self._last_t = self._last_x = self._next_t = None

    def process(
        self, timestamps_s: NDArray[np.float64], values: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """Feed ``(n,)`` increasing timestamps and ``(n, c)`` values; returns grid ``(m,)``, ``(m, c)``."""
        t = np.asarray(timestamps_s, dtype=np.float64)
        x = np.asarray(values, dtype=np.float64)
        if t.size == 0:
            return np.zeros(0), np.zeros((0, x.shape[1] if x.ndim == 2 else 0), dtype=np.float32)
        if self._sos is not None:
            if self._zi is None:
                self._zi = sps.sosfilt_zi(self._sos)[:, :, None] * x[0][None, None, :]
            x, self._zi = sps.sosfilt(self._sos, x, axis=0, zi=self._zi)
        if self._last_t is not None and self._last_x is not None:
            t = np.concatenate([[self._last_t], t])
            x = np.concatenate([self._last_x[None, :], x])
        else:
            self._next_t = float(t[0])
        next_t = float(self._next_t if self._next_t is not None else t[0])
        out_t: list[NDArray[np.floating]] = []
        out_x: list[NDArray[np.floating]] = []
        # split at gaps: restart the grid at the first sample after a gap
        gap_at = np.flatnonzero(np.diff(t) > self.max_gap_s) + 1
        bounds = [0, *gap_at.tolist(), t.size]
        for k in range(len(bounds) - 1):
            seg_t, seg_x = t[bounds[k] : bounds[k + 1]], x[bounds[k] : bounds[k + 1]]
            if k > 0:
                self.gaps += 1
                next_t = float(seg_t[0])
            n_out = int(np.floor((seg_t[-1] - next_t) / self.period_s + 1e-9)) + 1
            if n_out > 0:
                grid = next_t + np.arange(n_out) * self.period_s
                out_t.append(grid)
                out_x.append(np.stack([np.interp(grid, seg_t, seg_x[:, c]) for c in range(seg_x.shape[1])], axis=1))
                next_t = float(grid[-1] + self.period_s)
        self._next_t = next_t
        self._last_t, self._last_x = float(t[-1]), x[-1].copy()
        if not out_t:
            return np.zeros(0), np.zeros((0, x.shape[1]), dtype=np.float32)
        return np.concatenate(out_t), np.concatenate(out_x).astype(np.float32)
