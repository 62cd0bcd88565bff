"""The streaming resampler's values (not only its grid): interpolation, anti-aliasing, gaps, chunking."""

from __future__ import annotations

import numpy as np
import pytest

from har_edge.data.resampling import StreamResampler
from har_edge.errors import DataError


def _feed(r: StreamResampler, t: np.ndarray, x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    outs = [r.process(t[i : i + size], x[i : i + size]) for i in range(0, len(t), size)]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def test_upsampling_a_ramp_is_exact_and_chunking_does_not_matter() -> None:
    t = np.arange(0, 4, 0.04)  # 25 Hz
    x = np.column_stack([2 * t + 1, -t])
    for size in (1, 7, 1000):
        tg, xg = _feed(StreamResampler(50.0, source_rate_hz=25.0), t, x, size)
        np.testing.assert_allclose(tg, np.arange(len(tg)) * 0.02, atol=1e-9)
        assert tg[-1] == pytest.approx(t[-1])  # the grid never runs past the last input sample
        np.testing.assert_allclose(xg, np.column_stack([2 * tg + 1, -tg]), atol=1e-5)  # float32 output


def test_jittered_timestamps_are_interpolated_onto_the_grid() -> None:
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.015, 0.025, 400))  # ~50 Hz with jitter
    x = (3 * t - 2)[:, None]
    tg, xg = _feed(StreamResampler(50.0, source_rate_hz=50.0), t, x, 33)
    assert tg[0] == t[0] and np.allclose(np.diff(tg), 0.02)
    np.testing.assert_allclose(xg[:, 0], 3 * tg - 2, atol=1e-4)


def test_downsampling_filters_out_aliases_and_keeps_the_signal() -> None:
    t = np.arange(0, 20, 0.005)  # 200 Hz
    slow = np.sin(2 * np.pi * 1.0 * t)  # 1 Hz: kept
    fast = 0.5 * np.sin(2 * np.pi * 45.0 * t)  # 45 Hz: above the 25 Hz Nyquist of 50 Hz, would alias to 5 Hz
    dc = np.full_like(t, 0.98)
    tg, xg = _feed(StreamResampler(50.0, source_rate_hz=200.0), t, np.column_stack([slow + fast, dc]), 97)
    steady = tg > 2.0  # after the anti-alias filter settles
    np.testing.assert_allclose(xg[:, 1], 0.98, atol=1e-4)  # DC passes unchanged from the first sample (steady-state start)
    amplitude = np.sqrt(2) * xg[steady, 0].std()
    assert amplitude == pytest.approx(1.0, abs=0.03)  # the 1 Hz tone keeps its amplitude, the 45 Hz one is gone
    spectrum = np.abs(np.fft.rfft(xg[steady, 0]))
    freqs = np.fft.rfftfreq(int(steady.sum()), 0.02)
    assert spectrum[np.argmin(np.abs(freqs - 5.0))] < 0.02 * spectrum.max()


def test_a_gap_restarts_the_grid_without_fabricated_samples() -> None:
    r = StreamResampler(50.0)
    t1, x1 = r.process(np.array([0.0, 0.1]), np.array([[0.0], [1.0]]))
    t2, x2 = r.process(np.array([5.0, 5.1]), np.array([[7.0], [8.0]]))
    np.testing.assert_allclose(t1, np.arange(6) * 0.02)
    np.testing.assert_allclose(x1[:, 0], np.arange(6) * 0.2, atol=1e-6)
    np.testing.assert_allclose(t2, 5.0 + np.arange(6) * 0.02)
    np.testing.assert_allclose(x2[:, 0], 7.0 + np.arange(6) * 0.2, atol=1e-5)  # not interpolated from 1.0 at 0.1 s
    assert r.gaps == 1


def test_bad_rate_is_refused() -> None:
    with pytest.raises(DataError, match="target_rate_hz=0"):
        StreamResampler(0)
