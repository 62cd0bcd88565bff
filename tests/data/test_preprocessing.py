from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from har_edge.data.preprocessing import UCI_9CH, CausalPreprocessor, PreprocessingSpec, gravity_split_zero_phase, preprocess_recording
from har_edge.data.recording import Recording
from har_edge.errors import DataError


def _raw(n: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50
    acc = np.stack([1 + 0.3 * np.sin(2 * np.pi * 2 * t), 0.1 * np.cos(2 * np.pi * 1.5 * t), -0.05 + 0 * t], 1)
    gyro = 0.5 * rng.standard_normal((n, 3))
    return np.concatenate([acc + 0.02 * rng.standard_normal((n, 3)), gyro], 1)


def test_chunked_equals_whole() -> None:
    spec = PreprocessingSpec(sample_rate_hz=50)
    raw = _raw()
    whole = CausalPreprocessor(spec).process(raw)
    pre = CausalPreprocessor(spec)
    parts = [pre.process(raw[i : i + j]) for i, j in zip(range(0, 1000, 37), [37] * 28)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_causal_future_does_not_change_past() -> None:
    spec = PreprocessingSpec(sample_rate_hz=50)
    raw = _raw()
    changed = raw.copy()
    changed[600:] += 5.0
    a, b = CausalPreprocessor(spec).process(raw), CausalPreprocessor(spec).process(changed)
    np.testing.assert_array_equal(a[:600], b[:600])
    assert not np.allclose(a[600:], b[600:])


def test_gravity_and_body_split() -> None:
    spec = PreprocessingSpec(sample_rate_hz=50)
    out = CausalPreprocessor(spec).process(_raw(3000))
    names = list(UCI_9CH)
    body = out[:, names.index("body_acc_x")]
    total = out[:, names.index("total_acc_x")]
    assert abs(body[1000:].mean()) < 0.05  # gravity removed
    assert abs(total[1000:].mean() - 1.0) < 0.05
    # steady-state start: no start-up transient on a constant input
    const = np.tile([0.0, 0.0, 1.0, 0, 0, 0], (200, 1))
    out_c = CausalPreprocessor(spec).process(const)
    np.testing.assert_allclose(out_c[:, names.index("total_acc_z")], 1.0, atol=1e-6)
    np.testing.assert_allclose(out_c[:, names.index("body_acc_z")], 0.0, atol=1e-6)


def test_acc_only_spec_needs_no_gyro() -> None:
    spec = PreprocessingSpec(sample_rate_hz=50, output_channels=("total_acc_x", "total_acc_y", "total_acc_z"))
    assert spec.used_inputs == ("acc_x", "acc_y", "acc_z")
    assert CausalPreprocessor(spec).process(_raw()[:, :3]).shape == (1000, 3)


def test_spec_round_trip_and_errors() -> None:
    spec = PreprocessingSpec(sample_rate_hz=50)
    assert PreprocessingSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(DataError, match="unknown output channel"):
        PreprocessingSpec(sample_rate_hz=50, output_channels=("bogus_x",))
    with pytest.raises(DataError, match="noise_cutoff_hz"):
        PreprocessingSpec(sample_rate_hz=20, noise_cutoff_hz=20.0)
    with pytest.raises(DataError, match=r"expects \(n, 6\)"):
        CausalPreprocessor(spec).process(np.zeros((10, 3)))


def test_preprocess_recording_checks_rate_and_nan() -> None:
    spec = PreprocessingSpec(sample_rate_hz=50)
    raw = _raw(200).astype(np.float32)
    rec = Recording(raw, ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), ("g",) * 3 + ("rad/s",) * 3, 20.0, name="r.csv")
    with pytest.raises(DataError, match="r.csv: recorded at 20.0 Hz"):
        preprocess_recording(rec, spec)
    raw[50, 2] = np.nan
    rec = Recording(raw, rec.channel_names, rec.units, 50.0, name="r.csv")
    with pytest.raises(DataError, match="r.csv.*row 50"):
        preprocess_recording(rec, spec)


def test_zero_phase_split_matches_scipy() -> None:
    acc = _raw()[:, :3]
    grav, body = gravity_split_zero_phase(acc, 50.0)
    sos = sps.butter(3, 0.3, fs=50, output="sos")
    np.testing.assert_allclose(grav, sps.sosfiltfilt(sos, acc, axis=0), atol=1e-5)
    np.testing.assert_allclose(body + grav, acc, atol=1e-5)


def test_non_finite_filter_state_is_reset() -> None:
    from har_edge.data.preprocessing import CausalPreprocessor, PreprocessingSpec

    pre = CausalPreprocessor(PreprocessingSpec(sample_rate_hz=50.0))
    x = np.tile([0.0, 0.0, 1.0, 0.0, 0.0, 0.0], (50, 1))
    assert np.isfinite(pre.process(x)).all() and pre.resets == 0
    bad = x.copy()
    bad[10, 0] = 1e308  # overflows the filters
    out = pre.process(bad)
    assert pre.resets == 1 and np.isnan(out).all()  # the poisoned chunk is returned as NaN...
    np.testing.assert_allclose(pre.process(x), CausalPreprocessor(pre.spec).process(x))  # ...the next starts clean
