"""Streaming classification: samples in (any rate, units, chunking), one result per hop out.

Per chunk: drop bad rows (NaN/inf, and — the one timestamp check of the device path — samples
whose timestamp does not exceed every earlier one; counted, never fatal) → pick and convert the
channels the bundle's raw inputs need → resample to the model's rate if the source differs → the
bundle's **causal preprocessing** (:class:`~har_edge.data.preprocessing.CausalPreprocessor`, the same
code the model was trained with) → buffer → windows cut by :mod:`har_edge.data.windowing` (the
functions training uses: a window of ``window_samples`` every ``hop_samples``), each classified from
zero LSTM state — or, for a streaming bundle (``recurrent_state = "carried"``), from the state the
previous window left: its windows hold the hop's new samples plus the convolution's context, and the
state is zeroed only when a stream starts, with the context then set to the normalisation mean
(:func:`stream_start_buffer`) — → smoothing (:func:`~har_edge.runtime.decoding.make_smoother`;
a bundle's ``uncertain_labels`` show as ``uncertain``) → activity events.

``stats.reasons`` keys: ``malformed_chunk``, ``non_finite`` (bad samples); ``duplicate_timestamp``,
``non_increasing_timestamp`` (out of order); ``window_rejected`` (a window the classifier refused).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from har_edge.data.preprocessing import CausalPreprocessor
from har_edge.data.resampling import StreamResampler
from har_edge.data.units import unit_scale
from har_edge.data.windowing import count_windows, segment_windows, window_starts
from har_edge.errors import ConfigError, DataError
from har_edge.inference.bundle import Bundle
from har_edge.inference.classifier import Classifier, Prediction
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.decoding import make_smoother
from har_edge.runtime.smoothing import ActivityEvent, ActivityTracker, SmoothingConfig

__all__ = ["StreamResult", "StreamStats", "StreamClassifier", "increasing_timestamps", "stream_start_buffer"]

log = logging.getLogger(__name__)


def increasing_timestamps(timestamps_s: NDArray[np.float64], last_s: float | None) -> tuple[NDArray[np.bool_], int, int]:
    """Which samples to keep: those whose timestamp exceeds ``last_s`` and every earlier one in ``timestamps_s``.

    Returns ``(keep (n,), n_duplicate, n_backwards)``: dropped samples equal to the running maximum
    are duplicates, the others went back in time.
    """
    t = np.asarray(timestamps_s, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=bool), 0, 0
    prev = np.maximum.accumulate(np.concatenate([[-np.inf if last_s is None else last_s], t[:-1]]))
    keep = t > prev
    dup = int((~keep & (t == prev)).sum())
    return keep, dup, int((~keep).sum()) - dup


def stream_start_buffer(bundle: Bundle) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """What the window buffer holds when a stream starts: ``(features (n, C), timestamps (n,))``.

    Empty for a window classifier. A streaming model's first window starts with its convolutions'
    context (``window - hop`` samples) set to the normalisation mean — zero once normalised, which is
    what the causal padding of the training network sees — so the device computes what the network
    computed on the whole recording from its first sample on, and answers after one hop.
    """
    ctx = bundle.window_samples - bundle.hop_samples if bundle.carries_state else 0
    mean = np.asarray(bundle.normalisation.mean, dtype=np.float32)
    return np.tile(mean, (ctx, 1)).reshape(ctx, len(bundle.channel_names)), np.full(ctx, np.nan)


@dataclass(frozen=True)
class StreamResult:
    """One classification: ``timestamp`` is the source time of the window's last sample."""

    seq: int
    timestamp: float
    activity: str
    confidence: float
    probabilities: dict[str, float]
    raw: Prediction
    events: tuple[ActivityEvent, ...]


@dataclass
class StreamStats:
    samples_in: int = 0
    samples_used: int = 0
    bad_samples: int = 0
    out_of_order: int = 0
    classifications: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str, n: int = 1) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + n

    def as_dict(self) -> dict[str, object]:
        return {
            "samples_in": self.samples_in, "samples_used": self.samples_used, "bad_samples": self.bad_samples,
            "out_of_order": self.out_of_order, "classifications": self.classifications, "reasons": dict(self.reasons),
        }


class StreamClassifier:
    """Feed :class:`SampleChunk` s with :meth:`feed`; get :class:`StreamResult` s back.

    ``hop_samples`` (default: the bundle's) sets how often a window is classified.
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        smoothing: SmoothingConfig = SmoothingConfig(),
        source_rate_hz: float | None = None,
        rate_tolerance: float = 0.02,
        hop_samples: int | None = None,
    ) -> None:
        self.clf = classifier
        b = classifier.bundle
        self.labels = b.labels
        self.window = b.window_samples
        self.hop = b.hop_samples if hop_samples is None else int(hop_samples)
        if self.hop < 1:
            raise ConfigError(f"hop_samples={hop_samples}; expected a positive number of samples (the bundle's is {b.hop_samples})")
        if b.carries_state and self.hop != b.hop_samples:
            raise ConfigError(f"hop_samples={hop_samples}: this streaming model carries its LSTM state from window to window, "
                              f"so its hop is fixed at {b.hop_samples} samples")
        classifier.reset_state()  # a streaming model starts from zero state with its stream
        self.rate_hz = b.sample_rate_hz
        self.raw_names = tuple(n for n, _ in b.raw_inputs)
        self.raw_units = tuple(u for _, u in b.raw_inputs)
        pre = b.preprocessing
        self._pre = CausalPreprocessor(pre) if pre is not None else None
        if pre is not None and pre.used_inputs != self.raw_names:
            raise ConfigError(f"bundle raw inputs {self.raw_names} disagree with its preprocessing inputs {pre.used_inputs}")
        self._resampler: StreamResampler | None = None
        if source_rate_hz is not None and abs(source_rate_hz - self.rate_hz) > rate_tolerance * self.rate_hz:
            self._resampler = StreamResampler(self.rate_hz, source_rate_hz=source_rate_hz)
        self.smoother = make_smoother(self.labels, smoothing, uncertain_labels=b.uncertain_labels)
        self.tracker = ActivityTracker()
        self.stats = StreamStats()
        self._layout: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._cols: NDArray[np.int64] | None = None
        self._scale: NDArray[np.float64] | None = None
        self._buf, self._tbuf = stream_start_buffer(b)
        self._last_t: float | None = None
        self._skip = 0
        self._seq = 0

    def _bind(self, chunk: SampleChunk) -> None:
        """Map the source's channels/units onto the bundle's raw inputs (once per layout)."""
        layout = (chunk.channel_names, chunk.units)
        if layout == self._layout:
            return
        missing = [n for n in self.raw_names if n not in chunk.channel_names]
        if missing:
            raise ConfigError(
                f"the source provides {list(chunk.channel_names)} but the model needs {list(self.raw_names)} (missing {missing})"
            )
        idx = [chunk.channel_names.index(n) for n in self.raw_names]
        self._cols = np.asarray(idx)
        self._scale = np.array([unit_scale(chunk.units[i], u) for i, u in zip(idx, self.raw_units)])
        self._layout = layout

    def _clean(self, chunk: SampleChunk) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        t = np.asarray(chunk.timestamps_s, dtype=np.float64)
        x = np.asarray(chunk.values, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != t.shape[0] or x.shape[1] != len(chunk.channel_names):
            self.stats.bad_samples += len(t)
            self.stats.count("malformed_chunk", len(t))
            log.warning("dropped a malformed chunk: values %s for %d timestamps and %d channels", x.shape, len(t), len(chunk.channel_names))
            return np.zeros(0), np.zeros((0, len(self.raw_names)))
        if self._cols is None or self._scale is None:
            raise ConfigError("internal: channel layout not bound before cleaning a chunk")
        x = x[:, self._cols] * self._scale
        ok = np.isfinite(x).all(axis=1) & np.isfinite(t)
        if not ok.all():
            n_bad = int((~ok).sum())
            self.stats.bad_samples += n_bad
            self.stats.count("non_finite", n_bad)
            t, x = t[ok], x[ok]
        keep, n_dup, n_back = increasing_timestamps(t, self._last_t)
        if n_dup or n_back:
            self.stats.out_of_order += n_dup + n_back
            for reason, n in (("duplicate_timestamp", n_dup), ("non_increasing_timestamp", n_back)):
                if n:
                    self.stats.count(reason, n)
            t, x = t[keep], x[keep]
        if t.size:
            self._last_t = float(t[-1])
        return t, x

    def feed(self, chunk: SampleChunk) -> list[StreamResult]:
        """Process one chunk; returns the classifications completed by it (possibly none)."""
        self.stats.samples_in += len(chunk)
        if len(chunk) == 0:
            return []
        self._bind(chunk)
        t, x = self._clean(chunk)
        if t.size == 0:
            return []
        if self._resampler is not None:
            t, xr = self._resampler.process(t, x)
            x = xr.astype(np.float64)
            if t.size == 0:
                return []
        feats = self._pre.process(x) if self._pre is not None else x.astype(np.float32)
        self.stats.samples_used += int(t.size)
        return self._push(t, feats)

    def _push(self, t: NDArray[np.float64], feats: NDArray[np.float32]) -> list[StreamResult]:
        """Append to the buffer and classify every complete window, exactly as offline windowing cuts them."""
        if self._skip:  # a hop longer than the window: samples between windows are never used
            drop = min(self._skip, t.size)
            t, feats, self._skip = t[drop:], feats[drop:], self._skip - drop
        buf = np.concatenate([self._buf, feats]) if self._buf.size else feats
        tbuf = np.concatenate([self._tbuf, t]) if self._tbuf.size else t
        n = count_windows(buf.shape[0], self.window, self.hop)
        if n == 0:
            self._buf, self._tbuf = buf, tbuf
            return []
        ends = window_starts(buf.shape[0], self.window, self.hop) + self.window - 1
        out = [self._classify(w, float(tbuf[e])) for w, e in zip(segment_windows(buf, self.window, self.hop), ends)]
        consumed = n * self.hop
        self._skip = max(0, consumed - buf.shape[0])
        self._buf, self._tbuf = buf[consumed:].copy(), tbuf[consumed:].copy()
        return out

    def _classify(self, window: NDArray[np.float32], t_end: float) -> StreamResult:
        try:
            pred = self.clf.classify(window)
        except DataError as exc:  # e.g. a filter blew up on garbage that slipped through
            self.stats.count("window_rejected")
            log.warning("window ending at %.3f s rejected: %s", t_end, exc)
            probs = np.full(len(self.labels), 1.0 / len(self.labels), dtype=np.float32)
            pred = Prediction("uncertain", -1, 0.0, probs, 0.0)
        activity, conf, smoothed = self.smoother.update(pred.probabilities)
        events = tuple(self.tracker.update(activity, t_end))
        self._seq += 1
        self.stats.classifications += 1
        return StreamResult(
            seq=self._seq, timestamp=t_end, activity=activity, confidence=round(conf, 4),
            probabilities={l: round(float(p), 4) for l, p in zip(self.labels, smoothed)}, raw=pred, events=events,
        )

    def finish(self) -> list[ActivityEvent]:
        """End of stream: close the running activity."""
        return self.tracker.finish(self._last_t if self._last_t is not None else 0.0)

    def run(self, chunks: Iterable[SampleChunk]) -> Iterator[StreamResult]:
        for chunk in chunks:
            yield from self.feed(chunk)
