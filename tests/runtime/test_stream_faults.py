"""The stream under faults: clocks that jump or step back, dropouts, absurd values, filter blow-ups.

The reference for "what the stream should do" is always a fresh stream fed only the clean part: after a
gap or clock epoch the stream must give exactly what a freshly started one gives on the new segment
(buffer and causal filter state reset), and a dropped sample must change nothing but itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_edge.inference.classifier import Classifier
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.smoothing import SmoothingConfig
from har_edge.runtime.stream import StreamClassifier

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
NO_SMOOTHING = SmoothingConfig(method="none", confidence_floor=0.0)


def _feed(clf: Classifier, t: np.ndarray, x: np.ndarray, *, chunk: int = 50, **kw: object) -> tuple[list, StreamClassifier]:
    s = StreamClassifier(clf, smoothing=NO_SMOOTHING, **kw)  # type: ignore[arg-type]
    out = []
    for i in range(0, len(t), chunk):
        out += s.feed(SampleChunk(t[i : i + chunk], x[i : i + chunk], RAW, UNITS))
    return out, s


def _probs(results: list) -> np.ndarray:
    return np.stack([r.raw.probabilities for r in results]) if results else np.zeros((0, 6))


@pytest.fixture(scope="module")
def signal(heldout_recording) -> np.ndarray:
    return heldout_recording.select_channels(RAW).signals[:2101].astype(np.float64)


def _n_windows(n: int, window: int = 64, hop: int = 32) -> int:
    return 0 if n < window else (n - window) // hop + 1


def test_one_timestamp_far_in_the_future_costs_one_sample(float32_bundle: Path, signal: np.ndarray) -> None:
    """Problem 2: one sample at t + 1e6 s stopped classification for the rest of the stream."""
    t = np.arange(len(signal)) / 50.0
    t_bad = t.copy()
    t_bad[600] += 1e6
    with Classifier.from_bundle(float32_bundle) as clf:
        got, s = _feed(clf, t_bad, signal)
        ref, _ = _feed(clf, np.delete(t, 600), np.delete(signal, 600, axis=0))
    assert len(got) == len(ref) == _n_windows(2100)
    np.testing.assert_array_equal(_probs(got), _probs(ref))
    assert s.stats.out_of_order == 1 and s.stats.bad_samples == 0


@pytest.mark.parametrize("jump_s", [-100.0, -0.5, 3600.0, 5.0, 1e9])
def test_after_a_clock_jump_the_stream_classifies_again_within_one_window(
    float32_bundle: Path, signal: np.ndarray, jump_s: float
) -> None:
    """Problem 2 (a step back, e.g. an NTP correction) and problem 4 (a dropout / forward jump)."""
    t = np.arange(len(signal)) / 50.0
    t[600:] += jump_s
    with Classifier.from_bundle(float32_bundle) as clf:
        got, s = _feed(clf, t, signal)
        before, _ = _feed(clf, t[:600], signal[:600])
        after, _ = _feed(clf, t[600:], signal[600:])
    assert len(got) == _n_windows(600) + _n_windows(1501)
    np.testing.assert_array_equal(_probs(got), _probs(before + after))  # no window spans the jump; state reset
    first_after = got[len(before)]
    assert first_after.timestamp == pytest.approx(t[600 + 63])  # the first full window after the jump
    assert s.stats.out_of_order == 0 and s.stats.bad_samples == 0


@pytest.mark.parametrize("source_rate_hz", [50.0, 100.0])
def test_no_window_spans_a_dropout(float32_bundle: Path, heldout_recording, source_rate_hz: float) -> None:
    """Problem 4: at the model's rate, samples before and after a dropout were joined into one window."""
    from har_edge.data.resampling import resample_recording

    rec = resample_recording(heldout_recording.select_channels(RAW), source_rate_hz)
    x = rec.signals[: int(60 * source_rate_hz)].astype(np.float64)
    t = np.arange(len(x)) / source_rate_hz
    cut = int(20 * source_rate_hz)
    t[cut:] += 2.0  # a 2 s dropout (I2C overrun, MQTT outage)
    with Classifier.from_bundle(float32_bundle) as clf:
        got, _ = _feed(clf, t, x, source_rate_hz=source_rate_hz)
        before, _ = _feed(clf, t[:cut], x[:cut], source_rate_hz=source_rate_hz)
        after, _ = _feed(clf, t[cut:], x[cut:], source_rate_hz=source_rate_hz)
    np.testing.assert_array_equal(_probs(got), _probs(before + after))
    for r in got:
        assert r.timestamp < t[cut] or r.timestamp >= t[cut] + 63 / 50 - 1e-9, r.timestamp


@pytest.mark.parametrize("value", [1e30, 1e308, 1e10, -1e5])
def test_one_absurd_value_is_dropped_and_counted(float32_bundle: Path, signal: np.ndarray, value: float) -> None:
    """Problem 3: one finite but absurd value poisoned every later window (the filter state never recovered)."""
    t = np.arange(len(signal)) / 50.0
    x = signal.copy()
    x[600, 0] = value
    with Classifier.from_bundle(float32_bundle) as clf:
        got, s = _feed(clf, t, x)
        ref, _ = _feed(clf, np.delete(t, 600), np.delete(signal, 600, axis=0))
    np.testing.assert_array_equal(_probs(got), _probs(ref))
    assert (s.stats.bad_samples, s.stats.reasons) == (1, {"implausible_value": 1})


class _ListSource:
    channel_names, units, nominal_rate_hz = RAW, UNITS, 50.0

    def __init__(self, t: np.ndarray, x: np.ndarray, chunk: int = 100) -> None:
        from har_edge.runtime.samples import SourceStats

        self.t, self.x, self.chunk, self.stats = t, x, chunk, SourceStats()

    def chunks(self):  # type: ignore[no-untyped-def]
        for i in range(0, len(self.t), self.chunk):
            yield SampleChunk(self.t[i : i + self.chunk], self.x[i : i + self.chunk], RAW, UNITS)

    def close(self) -> None:
        pass


def test_gaps_and_clock_steps_are_published_as_events_and_counted(float32_bundle: Path, signal: np.ndarray) -> None:
    from har_edge.cli.service import PublisherSink, run_service
    from har_edge.transport.memory import InMemoryPublisher

    t = np.arange(len(signal)) / 50.0 + 1_700_000_000.0  # Unix times: payload timestamps are the source's own
    t[700:] += 30.0   # a 30 s gap
    t[1400:] -= 600.0  # then the clock steps back 10 minutes
    x = signal.copy()
    x[100, 1] = 1e30
    pub = InMemoryPublisher()
    with Classifier.from_bundle(float32_bundle) as clf:
        stream = StreamClassifier(clf)
        summary = run_service(_ListSource(t, x), stream, PublisherSink(pub, model_hash="h", device_id="har-edge"),
                              stats_interval_s=0)
    events = pub.decoded("har/har-edge/event")
    kinds = [e["type"] for e in events]
    gap = next(e for e in events if e["type"] == "gap")
    epoch = next(e for e in events if e["type"] == "clock_epoch")
    assert gap["jump_s"] == pytest.approx(30.02) and gap["timestamp"] == pytest.approx(t[700])
    assert epoch["jump_s"] == pytest.approx(-599.98) and epoch["timestamp"] == pytest.approx(t[1400])
    # the running activity ends at the last sample before each jump, and a new one starts after it
    assert kinds[kinds.index("gap") - 1] == "end" and kinds[kinds.index("gap") + 1] == "start"
    assert kinds[kinds.index("clock_epoch") - 1] == "end" and kinds.count("start") == kinds.count("end")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    stats = pub.decoded("har/har-edge/stats")[-1]
    assert {k: stats["counters"][k] for k in ("gaps", "clock_epochs", "bad_samples", "out_of_order")} == {
        "gaps": 1, "clock_epochs": 1, "bad_samples": 1, "out_of_order": 0}
    assert stats["reasons"] == {"implausible_value": 1}
    assert summary.classifications == _n_windows(699) + _n_windows(700) + _n_windows(701)


def test_a_non_finite_filter_state_is_reset_and_counted(float32_bundle: Path, signal: np.ndarray) -> None:
    """With the plausibility check off, 1e308 overflows the causal filters: their state is reset and counted,
    and the stream recovers (instead of carrying NaN forever)."""
    t = np.arange(len(signal)) / 50.0
    x = signal.copy()
    x[600, 0] = 1e308
    with Classifier.from_bundle(float32_bundle) as clf:
        got, s = _feed(clf, t, x, plausibility=None)  # chunks of 50: the poisoned one is samples 600..649
        before, _ = _feed(clf, t[:600], signal[:600], plausibility=None)
        after, _ = _feed(clf, t[650:], signal[650:], plausibility=None)
    assert s.stats.filter_resets == 1 and s.stats.reasons == {"filter_reset": 50} and s.stats.bad_samples == 50
    assert s.stats.rejected_windows == 0
    np.testing.assert_array_equal(_probs(got), _probs(before + after))  # then exactly a fresh stream
