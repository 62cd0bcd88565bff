"""The clock policy alone (har_edge.data.clock), and a seeded proof that no window ever spans a gap or a clock epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import ConfigError
from har_edge.inference.classifier import Classifier
from har_edge.data.clock import ClockConfig, ClockPolicy, SegmentEvent
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.smoothing import ActivityEvent, SmoothingConfig
from har_edge.runtime.stream import StreamClassifier, StreamResult

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")


def _run_policy(t: list[float], chunk: int = 3, **kw: object) -> tuple[list[tuple[str | None, list[float]]], dict[str, int]]:
    policy = ClockPolicy(ClockConfig(**kw))  # type: ignore[arg-type]
    x = np.arange(len(t), dtype=float)[:, None]
    ta = np.asarray(t, dtype=float)
    out: list[tuple[str | None, list[float]]] = []
    drops: dict[str, int] = {}
    for i in range(0, len(t), chunk):
        pieces, d = policy.process(ta[i : i + chunk], x[i : i + chunk])
        for p in pieces:
            assert np.array_equal(ta[p.values[:, 0].astype(int)], p.timestamps_s)  # values travel with their times
            out.append((None if p.event is None else p.event.kind, p.timestamps_s.tolist()))
        for k, v in d.items():
            drops[k] = drops.get(k, 0) + v
    for k, v in policy.finish().items():
        drops[k] = drops.get(k, 0) + v
    return out, drops


def _flat(pieces: list[tuple[str | None, list[float]]]) -> list[float]:
    return [t for _, ts in pieces for t in ts]


def test_duplicates_and_lone_outliers_are_dropped() -> None:
    t = [0.0, 0.1, 0.1, 0.2, 0.05, 0.3, 99.0, 0.4, 0.5]
    pieces, drops = _run_policy(t, max_gap_s=0.5, confirm_samples=3)
    assert _flat(pieces) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] and all(kind is None for kind, _ in pieces)
    assert drops == {"duplicate_timestamp": 1, "non_increasing_timestamp": 1, "timestamp_jump": 1}


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_confirmed_jumps_start_segments_and_keep_their_samples(chunk: int) -> None:
    t = [0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 5.3, 1.0, 1.1, 1.2, 1.3]
    pieces, drops = _run_policy(t, chunk=chunk, max_gap_s=0.5, confirm_samples=3)
    kinds = [kind for kind, _ in pieces if kind is not None]
    assert kinds == ["gap", "clock_epoch"] and drops == {}
    assert _flat(pieces) == t  # nothing lost


def test_frozen_clock_never_confirms() -> None:
    pieces, drops = _run_policy([1.0] * 20, max_gap_s=0.5, confirm_samples=3)
    assert _flat(pieces) == [1.0] and drops == {"duplicate_timestamp": 19}


def test_unconfirmed_candidates_at_the_end_are_counted() -> None:
    pieces, drops = _run_policy([0.0, 0.1, 9.0, 9.1], max_gap_s=0.5, confirm_samples=3)
    assert _flat(pieces) == [0.0, 0.1] and drops == {"timestamp_jump": 2}


def test_clock_config_is_validated() -> None:
    for bad in ({"max_gap_s": 0}, {"max_gap_s": float("inf")}, {"confirm_samples": 0}, {"confirm_samples": 1.5}):
        with pytest.raises(ConfigError):
            ClockConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown key"):
        ClockConfig.from_dict({"max_gap": 1})


def test_max_gap_must_exceed_the_sample_period(float32_bundle: Path) -> None:
    with Classifier.from_bundle(float32_bundle) as clf, pytest.raises(ConfigError, match="max_gap_s"):
        StreamClassifier(clf, clock=ClockConfig(max_gap_s=0.1), source_rate_hz=10.0)


def _faulty_stream(rng: np.random.Generator, base: np.ndarray, n_faults: int) -> tuple[np.ndarray, np.ndarray]:
    """50 Hz samples with random faults: jumps forward (> max_gap) and back, duplicates, lone outliers, frozen runs,
    NaN and absurd values."""
    t = np.arange(len(base)) / 50.0
    x = base.copy()
    for pos in sorted(rng.choice(np.arange(100, len(base) - 10), n_faults, replace=False)):
        kind = rng.integers(0, 7)
        if kind == 0:
            t[pos:] += rng.uniform(0.6, 1e6)                  # a gap
        elif kind == 1:
            t[pos:] -= rng.uniform(0.1, 1e4)                  # a clock step back
        elif kind == 2:
            t[pos] = t[pos - 1]                               # duplicate
        elif kind == 3:
            t[pos] += rng.choice([-1, 1]) * rng.uniform(1, 1e9)  # a lone corrupt timestamp
        elif kind == 4:
            t[pos : pos + 4] = t[pos]                         # a short frozen run
        elif kind == 5:
            x[pos, rng.integers(0, 6)] = np.nan
        else:
            x[pos, rng.integers(0, 6)] = rng.choice([1e30, -1e5, 40.0 * 9])
    return t, x


@pytest.mark.parametrize("seed", range(6))
def test_no_window_spans_a_gap_or_epoch_change(float32_bundle: Path, heldout_recording, seed: int) -> None:
    """The proof: under random clock faults, every window lies inside one segment, every segment classifies from
    its first sample on, and every input sample is accounted for."""
    rng = np.random.default_rng(seed)
    base = heldout_recording.select_channels(RAW).signals[:6000].astype(np.float64)
    t, x = _faulty_stream(rng, base, 40)
    span = 63 / 50.0
    with Classifier.from_bundle(float32_bundle) as clf:
        s = StreamClassifier(clf, smoothing=SmoothingConfig(method="none", confidence_floor=0.0))
        items: list[object] = []
        i = 0
        while i < len(t):
            k = int(rng.integers(1, 300))
            items += s.feed_ordered(SampleChunk(t[i : i + k], x[i : i + k], RAW, UNITS))
            i += k
        s.finish()  # unconfirmed candidates at the end are counted too
    segment_start: float | None = None
    first_in_segment = True
    n_events = 0
    for item in items:
        if isinstance(item, SegmentEvent):
            segment_start, first_in_segment = item.timestamp, True
            n_events += 1
        elif isinstance(item, StreamResult):
            width = item.timestamp - item.window_start_s
            assert span - 1e-6 <= width < span + 0.5, (item.window_start_s, item.timestamp)  # < max_gap_s of slack
            if segment_start is not None:
                assert item.window_start_s >= segment_start  # inside the current segment
                if first_in_segment:  # the new segment classifies one window after its first sample
                    assert item.window_start_s == segment_start
            first_in_segment = False
        else:
            assert isinstance(item, ActivityEvent) and item.type == "end"
    st = s.stats
    assert n_events == st.gaps + st.clock_epochs > 0
    assert st.samples_in == len(t) == st.samples_used + st.bad_samples + st.out_of_order
    assert st.bad_samples == st.reasons.get("non_finite", 0) + st.reasons.get("implausible_value", 0)
