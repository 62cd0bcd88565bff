from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_edge.data.preprocessing import preprocess_recording
from har_edge.data.windowing import segment_windows
from har_edge.errors import ConfigError, DataError
from har_edge.inference.classifier import Classifier
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.smoothing import ActivityTracker, Smoother, SmoothingConfig
from har_edge.runtime.stream import StreamClassifier

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")


def _chunks(rec, size: int, *, t0: float = 0.0, names=RAW, units=UNITS, scale=None):
    t = t0 + np.arange(rec.n_samples) / rec.sample_rate_hz
    x = rec.signals.astype(np.float64) * (1 if scale is None else np.asarray(scale))
    for i in range(0, rec.n_samples, size):
        yield SampleChunk(t[i : i + size], x[i : i + size], names, units)


def _run(bundle: Path, chunks, **kw):
    with Classifier.from_bundle(bundle) as clf:
        s = StreamClassifier(clf, smoothing=SmoothingConfig(method="none", confidence_floor=0.0), **kw)
        out = [r for c in chunks for r in s.feed(c)]
        return out, s


def test_stream_equals_offline_training_path(float32_bundle: Path, heldout_recording) -> None:
    """No train/serve skew: the stream gives the same probabilities as the offline (training) pipeline."""
    rec = heldout_recording.select_channels(RAW)
    out, s = _run(float32_bundle, _chunks(rec, 37))
    with Classifier.from_bundle(float32_bundle) as clf:
        b = clf.bundle
        feats = preprocess_recording(rec, b.preprocessing)
        wins = segment_windows(feats.signals, b.window_samples, b.hop_samples)
        offline = clf.predict_normalised(b.normalisation.transform(wins))
    assert len(out) == len(wins) == (rec.n_samples - b.window_samples) // b.hop_samples + 1
    np.testing.assert_allclose(np.stack([r.raw.probabilities for r in out]), offline, atol=2e-5)
    assert [r.seq for r in out] == list(range(1, len(out) + 1))
    assert out[0].timestamp == pytest.approx((b.window_samples - 1) / 50)


@pytest.mark.parametrize("size", [1, 64, 5000])
def test_chunking_does_not_matter(float32_bundle: Path, heldout_recording, size: int) -> None:
    rec = heldout_recording.select_channels(RAW)
    short = type(rec)(rec.signals[:3000], rec.channel_names, rec.units, 50.0)
    ref, _ = _run(float32_bundle, _chunks(short, 1000))
    got, _ = _run(float32_bundle, _chunks(short, size))
    np.testing.assert_allclose([r.raw.probabilities for r in got], [r.raw.probabilities for r in ref], atol=1e-5)


def test_units_and_channel_order_are_converted(float32_bundle: Path, heldout_recording) -> None:
    rec = heldout_recording.select_channels(RAW)
    short = type(rec)(rec.signals[:2000], rec.channel_names, rec.units, 50.0)
    ref, _ = _run(float32_bundle, _chunks(short, 100))
    # the same data in m/s^2 and deg/s, columns reversed, plus an extra magnetometer column
    sig = short.signals.astype(np.float64) * np.array([9.80665] * 3 + [180 / np.pi] * 3)
    sig = np.concatenate([sig[:, ::-1], np.zeros((len(sig), 1))], axis=1)
    t = np.arange(len(sig)) / 50
    names = tuple(reversed(RAW)) + ("mag_x",)
    units = ("deg/s",) * 3 + ("m/s^2",) * 3 + ("g",)
    got, _ = _run(float32_bundle, [SampleChunk(t[i : i + 100], sig[i : i + 100], names, units) for i in range(0, 2000, 100)])
    np.testing.assert_allclose([r.raw.probabilities for r in got], [r.raw.probabilities for r in ref], atol=1e-4)


def test_resamples_a_faster_source(float32_bundle: Path, heldout_recording) -> None:
    from har_edge.data.resampling import resample_recording

    rec = heldout_recording.select_channels(RAW)
    ref, _ = _run(float32_bundle, _chunks(rec, 500))
    fast = resample_recording(rec, 100.0)
    got, s = _run(float32_bundle, _chunks(fast, 500), source_rate_hz=100.0)
    assert abs(len(got) - len(ref)) <= 1
    agree = np.mean([a.raw.label == b.raw.label for a, b in zip(got, ref)])
    assert agree > 0.9, agree


def test_missing_channel_is_a_config_error(float32_bundle: Path) -> None:
    with Classifier.from_bundle(float32_bundle) as clf:
        s = StreamClassifier(clf)
        with pytest.raises(ConfigError, match=r"missing \['gyro_x', 'gyro_y', 'gyro_z'\]"):
            s.feed(SampleChunk(np.arange(3.0), np.zeros((3, 3)), RAW[:3], UNITS[:3]))


def test_fuzzed_input_never_crashes_and_is_counted(float32_bundle: Path, heldout_recording) -> None:
    rng = np.random.default_rng(1)
    rec = heldout_recording.select_channels(RAW)
    n = 6000
    t = np.arange(n) / 50.0
    x = rec.signals[:n].astype(np.float64).copy()
    x[rng.choice(n, 40, replace=False), rng.integers(0, 6, 40)] = np.nan
    x[rng.choice(n, 20, replace=False), 0] = np.inf
    t = t.copy()
    dup = rng.choice(np.arange(1, n), 15, replace=False)
    t[dup] = t[dup - 1]  # duplicate timestamps
    back = rng.choice(np.arange(1, n), 15, replace=False)
    t[back] -= 0.5  # out of order
    t[3000:] += 5.0  # a 5 s gap
    with Classifier.from_bundle(float32_bundle) as clf:
        s = StreamClassifier(clf)
        results = []
        for i in range(0, n, 97):
            results += s.feed(SampleChunk(t[i : i + 97], x[i : i + 97], RAW, UNITS))
        # a malformed chunk (wrong width) is dropped and counted, not fatal
        results += s.feed(SampleChunk(np.arange(10.0) + 1e4, np.zeros((10, 4)), RAW, UNITS))
        s.finish()
    assert s.stats.bad_samples >= 60 - 1 and s.stats.out_of_order >= 15
    assert s.stats.reasons.get("malformed_chunk") == 10
    assert len(results) > 80 and all(np.isfinite(r.confidence) for r in results)


def test_classifier_rejects_bad_windows(float32_bundle: Path) -> None:
    with Classifier.from_bundle(float32_bundle) as clf:
        with pytest.raises(DataError, match=r"window shape \(3, 9\)"):
            clf.classify(np.zeros((3, 9)))
        w = np.zeros((clf.window_samples, clf.n_channels))
        w[0, 0] = np.nan
        with pytest.raises(DataError, match="NaN"):
            clf.classify(w)
        p = clf.classify(np.zeros((clf.window_samples, clf.n_channels)))
        assert p.label in clf.labels and p.latency_ms > 0 and abs(p.probabilities.sum() - 1) < 1e-4


def test_smoothing_and_events() -> None:
    labels = ("a", "b")
    sm = Smoother(labels, SmoothingConfig(method="mean", window=3, confidence_floor=0.55))
    seq = [np.array([0.9, 0.1]), np.array([0.1, 0.9]), np.array([0.2, 0.8]), np.array([0.1, 0.9])]
    out = [sm.update(p)[0] for p in seq]
    assert out == ["a", "uncertain", "b", "b"]
    vote = Smoother(labels, SmoothingConfig(method="vote", window=3, votes=2, confidence_floor=0.0))
    assert [vote.update(p)[0] for p in seq] == ["a", "uncertain", "b", "b"]
    tr = ActivityTracker()
    ev = tr.update("a", 1.0) + tr.update("a", 2.0) + tr.update("b", 3.5) + tr.finish(5.0)
    assert [(e.type, e.activity, e.duration_s) for e in ev] == [("start", "a", None), ("end", "a", 2.5), ("start", "b", None), ("end", "b", 1.5)]
    with pytest.raises(ConfigError):
        SmoothingConfig(method="median")


def test_each_window_starts_from_zero_state(float32_bundle: Path) -> None:
    """The fused LSTM op keeps state between invokes; the classifier resets it (in whichever backend runs here)."""
    rng = np.random.default_rng(5)
    with Classifier.from_bundle(float32_bundle) as clf:
        x = rng.standard_normal((clf.window_samples, clf.n_channels)).astype(np.float32)
        a = clf.probabilities_normalised(x)
        clf.probabilities_normalised(rng.standard_normal(x.shape).astype(np.float32) * 4)
        np.testing.assert_array_equal(a, clf.probabilities_normalised(x))


class _Recording:
    """Wraps a classifier and keeps every window the stream hands it."""

    def __init__(self, clf: Classifier) -> None:
        self.clf, self.windows = clf, []

    def __getattr__(self, name: str):
        return getattr(self.clf, name)

    def classify(self, window):
        self.windows.append(np.array(window, copy=True))
        return self.clf.classify(window)


@pytest.mark.parametrize("hop", [None, 100])
def test_online_windows_equal_offline_windows(float32_bundle: Path, heldout_recording, hop) -> None:
    """The stream cuts exactly the windows the offline pipeline cuts (same preprocessing, same windowing functions),
    also when the hop is longer than the window (samples between windows are skipped, across chunks)."""
    from dataclasses import replace

    rec = heldout_recording.select_channels(RAW)
    short = type(rec)(rec.signals[:4000], rec.channel_names, rec.units, 50.0)
    with Classifier.from_bundle(float32_bundle) as clf:
        b = clf.bundle
        if hop is not None:
            b = replace(b, manifest=dict(b.manifest, hop_samples=hop))
        with Classifier(b) as inner:
            spy = _Recording(inner)
            s = StreamClassifier(spy)  # type: ignore[arg-type]
            for chunk in _chunks(short, 37):
                s.feed(chunk)
        offline = segment_windows(preprocess_recording(short, b.preprocessing).signals, b.window_samples, b.hop_samples)
    assert len(spy.windows) == len(offline) == (4000 - b.window_samples) // b.hop_samples + 1
    np.testing.assert_allclose(np.stack(spy.windows), offline, atol=1e-5)


@pytest.mark.tf
def test_stream_probabilities_equal_keras_on_the_training_pipelines_windows(tiny_run: Path, tiny_exports: Path,
                                                                             heldout_recording) -> None:
    """No train/serve skew, end to end: Keras on the windows ``prepare_windows`` makes for training equals what the
    device stream computes for the same stretch of the held-out recording (float32 bundle, within float32 tolerance)."""
    from dataclasses import replace

    from har_edge.config import load_run_config
    from har_edge.data.datasets import prepare_windows
    from har_edge.models.run_dir import load_run_info
    from har_edge.models.training import load_keras_model, predict_probabilities
    from tests.fixtures.models import SAMPLE_ROOT

    info = load_run_info(tiny_run)
    cfg = info.config
    # continuous windowing starts at sample 0 with the run's hop: the device's grid (majority labels, so
    # every labelled window is kept)
    cfg = replace(cfg, data=replace(cfg.data, windowing="continuous", label_policy="majority", max_test_windows=None))
    assert cfg.preprocessing == load_run_config(Path(__file__).resolve().parents[2] / "tests/fixtures/tiny.toml").preprocessing
    test = prepare_windows(cfg, SAMPLE_ROOT).test
    mine = test.take(test.subject == heldout_recording.subject)
    keras = predict_probabilities(load_keras_model(tiny_run), info.normalisation.transform(mine.X))
    out, _ = _run(tiny_exports / "float32", _chunks(heldout_recording.select_channels(RAW), 53))
    hop = info.hop_samples
    assert len(mine) > 50 and (mine.extra["start"] % hop == 0).all()
    streamed = np.stack([out[int(start) // hop].raw.probabilities for start in mine.extra["start"]])
    np.testing.assert_allclose(streamed, keras, atol=2e-5)
