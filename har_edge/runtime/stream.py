"""Streaming classification: samples in (any rate, units, chunking), one result per hop out.

Per chunk: pick and convert the channels the bundle's raw inputs need → drop bad rows (NaN/inf, values
outside the physical range of :mod:`~har_edge.runtime.plausibility`) → the **clock policy**
(:mod:`~har_edge.data.clock`, the one timestamp check of the device path: duplicates and unconfirmed
jumps are dropped, a confirmed gap or clock step ends the segment) → resample to the model's rate if the
source differs → the bundle's **causal preprocessing** (:class:`~har_edge.data.preprocessing.CausalPreprocessor`,
the same code the model was trained with) → buffer → windows cut by :mod:`har_edge.data.windowing` (the
functions training uses: a window of ``window_samples`` every ``hop_samples``), each classified from
zero LSTM state — or, for a streaming bundle (``recurrent_state = "carried"``), from the state the
previous window left: its windows hold the hop's new samples plus the convolution's context, and the
state is zeroed only when a segment starts, with the context then set to the normalisation mean
(:func:`stream_start_buffer`) — → smoothing (:func:`~har_edge.runtime.decoding.make_smoother`;
a bundle's ``uncertain_labels`` show as ``uncertain``) → activity events. Every segment starts afresh
(buffer, LSTM state, resampler, filters, smoothing, the running activity), so no window spans a gap or a
clock epoch; :meth:`StreamClassifier.take_events` hands out the segment events and the ``end`` of the
activity a gap interrupted.

Nothing here is fatal: every rejected sample is counted once in ``stats`` under a reason of
:mod:`~har_edge.runtime.counters` (``malformed_chunk``, ``non_finite``, ``implausible_value``,
``filter_reset``: bad samples; ``duplicate_timestamp``, ``non_increasing_timestamp``, ``timestamp_jump``:
out of order), plus ``gaps``, ``clock_epochs``, ``filter_resets`` and ``rejected_windows`` (a window the
classifier refused, reason ``window_rejected``).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Union

import numpy as np
from numpy.typing import NDArray

from har_edge.data.preprocessing import CausalPreprocessor
from har_edge.data.resampling import StreamResampler
from har_edge.data.units import unit_scale
from har_edge.data.windowing import count_windows, segment_windows, window_starts
from har_edge.errors import ConfigError, DataError
from har_edge.inference.bundle import Bundle
from har_edge.inference.classifier import Classifier, Prediction
from har_edge.data.clock import ClockConfig, ClockPolicy, SegmentEvent
from har_edge.runtime.counters import counter_for
from har_edge.runtime.plausibility import PlausibilityLimits
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.decoding import make_smoother
from har_edge.runtime.smoothing import ActivityEvent, ActivityTracker, SmoothingConfig

__all__ = ["StreamResult", "StreamStats", "StreamClassifier", "StreamEvent", "stream_start_buffer"]

log = logging.getLogger(__name__)

StreamEvent = Union[ActivityEvent, SegmentEvent]
"""What :meth:`StreamClassifier.take_events` returns: an activity ``end`` cut by a segment end, or the segment event."""


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
    """One classification: ``timestamp`` is the source time of the window's last sample, ``window_start_s`` of its first."""

    seq: int
    timestamp: float
    activity: str
    confidence: float
    probabilities: dict[str, float]
    raw: Prediction
    events: tuple[ActivityEvent, ...]
    window_start_s: float = float("nan")


@dataclass
class StreamStats:
    """Counters of one stream; ``samples_in = samples_used + bad_samples + out_of_order + pending`` (pending:
    candidates of the clock policy not yet accepted or dropped)."""

    samples_in: int = 0
    samples_used: int = 0
    bad_samples: int = 0
    out_of_order: int = 0
    classifications: int = 0
    gaps: int = 0
    clock_epochs: int = 0
    filter_resets: int = 0
    rejected_windows: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str, n: int = 1) -> None:
        """Count ``n`` samples under ``reason`` and its counter (``bad_samples`` or ``out_of_order``)."""
        if n <= 0:
            return
        if counter_for(reason) == "out_of_order":
            self.out_of_order += n
        else:
            self.bad_samples += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n

    def as_dict(self) -> dict[str, object]:
        return {
            "samples_in": self.samples_in, "samples_used": self.samples_used, "bad_samples": self.bad_samples,
            "out_of_order": self.out_of_order, "classifications": self.classifications, "gaps": self.gaps,
            "clock_epochs": self.clock_epochs, "filter_resets": self.filter_resets,
            "rejected_windows": self.rejected_windows, "reasons": dict(self.reasons),
        }


class _EveryNth:
    """One log line for the first few occurrences, then one per ``every`` (a stream full of faults stays quiet)."""

    def __init__(self, first: int = 5, every: int = 1000) -> None:
        self.first, self.every, self.n = first, every, 0

    def __call__(self) -> bool:
        self.n += 1
        return self.n <= self.first or self.n % self.every == 0


class StreamClassifier:
    """Feed :class:`SampleChunk` s with :meth:`feed`; get :class:`StreamResult` s back.

    Args:
        classifier: the bundle's classifier.
        smoothing: prediction smoothing.
        source_rate_hz: the source's nominal rate; resampled to the model's when it differs by more than
            ``rate_tolerance``.
        clock: the clock policy (``max_gap_s``, ``confirm_samples``).
        plausibility: physical ranges of the raw inputs; ``None`` disables the check.
        hop_samples: how often a window is classified (default: the bundle's; a streaming bundle's is fixed).
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        smoothing: SmoothingConfig = SmoothingConfig(),
        source_rate_hz: float | None = None,
        rate_tolerance: float = 0.02,
        clock: ClockConfig = ClockConfig(),
        plausibility: PlausibilityLimits | None = PlausibilityLimits(),
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
        self.rate_hz = b.sample_rate_hz
        self.raw_names = tuple(n for n, _ in b.raw_inputs)
        self.raw_units = tuple(u for _, u in b.raw_inputs)
        for what, rate in (("the model's", self.rate_hz), ("the source's", source_rate_hz)):
            if rate is not None and rate > 0 and 2.0 / rate > clock.max_gap_s:
                raise ConfigError(f"clock max_gap_s={clock.max_gap_s} s is shorter than two periods at {what} "
                                  f"{rate:g} Hz; every sample would look like a gap (raise [clock] max_gap_s, "
                                  "or check that the timestamps are in seconds)")
        pre = b.preprocessing
        self._pre = CausalPreprocessor(pre) if pre is not None else None
        if pre is not None and pre.used_inputs != self.raw_names:
            raise ConfigError(f"bundle raw inputs {self.raw_names} disagree with its preprocessing inputs {pre.used_inputs}")
        self._resampler: StreamResampler | None = None
        if source_rate_hz is not None and abs(source_rate_hz - self.rate_hz) > rate_tolerance * self.rate_hz:
            self._resampler = StreamResampler(self.rate_hz, source_rate_hz=source_rate_hz, max_gap_s=clock.max_gap_s)
        self.clock = ClockPolicy(clock)
        self._bounds = (plausibility or PlausibilityLimits(enabled=False)).bounds(self.raw_names, self.raw_units)
        self.smoother = make_smoother(self.labels, smoothing, uncertain_labels=b.uncertain_labels, output_step=b.output_step)
        self.tracker = ActivityTracker()
        self.stats = StreamStats()
        self._layout: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._cols: NDArray[np.int64] | None = None
        self._scale: NDArray[np.float64] | None = None
        self._events: deque[StreamEvent] = deque(maxlen=1000)  # for feed() callers; the newest kept if never taken
        self._log_segment = _EveryNth()
        self._last_t: float | None = None
        self._seq = 0
        self._clear_buffer()

    def _clear_buffer(self) -> None:
        """A segment starts: the buffer as a stream starts (:func:`stream_start_buffer`), a streaming model's state zeroed."""
        self._buf, self._tbuf = stream_start_buffer(self.clf.bundle)
        self._skip = 0
        self.clf.reset_state()

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
        """The chunk's rows in the model's raw units, without malformed, non-finite or implausible samples."""
        t = np.asarray(chunk.timestamps_s, dtype=np.float64)
        x = np.asarray(chunk.values, dtype=np.float64)
        if t.ndim != 1 or x.ndim != 2 or x.shape[0] != t.shape[0] or x.shape[1] != len(chunk.channel_names):
            self.stats.count("malformed_chunk", len(chunk))
            log.warning("dropped a malformed chunk: values %s for timestamps %s and %d channels", x.shape, t.shape,
                        len(chunk.channel_names))
            return np.zeros(0), np.zeros((0, len(self.raw_names)))
        if self._cols is None or self._scale is None:
            raise ConfigError("internal: channel layout not bound before cleaning a chunk")
        with np.errstate(over="ignore", invalid="ignore"):
            x = x[:, self._cols] * self._scale
        finite = np.isfinite(x).all(axis=1) & np.isfinite(t)
        plausible = (np.abs(np.where(np.isfinite(x), x, 0.0)) <= self._bounds).all(axis=1)
        if not (finite & plausible).all():
            self.stats.count("non_finite", int((~finite).sum()))
            self.stats.count("implausible_value", int((finite & ~plausible).sum()))
            keep = finite & plausible
            t, x = t[keep], x[keep]
        return t, x

    def feed(self, chunk: SampleChunk) -> list[StreamResult]:
        """Process one chunk; returns the classifications completed by it (possibly none).

        Events not tied to a classification (a gap, the activity it ended) wait for :meth:`take_events`;
        :meth:`feed_ordered` returns them in line instead.
        """
        out: list[StreamResult] = []
        for item in self.feed_ordered(chunk):
            if isinstance(item, StreamResult):
                out.append(item)
            else:
                self._events.append(item)
        return out

    def feed_ordered(self, chunk: SampleChunk) -> list[StreamResult | StreamEvent]:
        """Like :meth:`feed`, with the segment events (and the activity ``end`` a gap causes) in stream order."""
        self.stats.samples_in += len(chunk)
        if len(chunk) == 0:
            return []
        self._bind(chunk)
        t, x = self._clean(chunk)
        if t.size == 0:
            return []
        pieces, dropped = self.clock.process(t, x)
        for reason, n in dropped.items():
            self.stats.count(reason, n)
        out: list[StreamResult | StreamEvent] = []
        for piece in pieces:
            if piece.event is not None:
                out += self._new_segment(piece.event)
            out += self._run(piece.timestamps_s, piece.values)
        return out

    def _new_segment(self, event: SegmentEvent) -> list[StreamEvent]:
        """A confirmed gap or clock step: end the running activity and start afresh; returns the events."""
        if event.kind == "gap":
            self.stats.gaps += 1
        else:
            self.stats.clock_epochs += 1
        events: list[StreamEvent] = [*self.tracker.finish(event.previous), event]
        self._reset_state()
        if self._log_segment():
            log.warning("stream: %s of %+.3f s at source time %.3f: segment ended, windows and filters restart "
                        "[%d gaps, %d clock epochs so far]", "gap" if event.kind == "gap" else "clock step",
                        event.jump_s, event.timestamp, self.stats.gaps, self.stats.clock_epochs)
        return events

    def _reset_state(self) -> None:
        self._clear_buffer()
        if self._pre is not None:
            self._pre.reset()
        if self._resampler is not None:
            self._resampler.reset()
        self.smoother.reset()

    def _run(self, t: NDArray[np.float64], x: NDArray[np.float64]) -> list[StreamResult]:
        """Accepted samples of one segment → resample → causal preprocessing → windows."""
        self.stats.samples_used += int(t.size)
        self._last_t = float(t[-1])
        if self._resampler is not None:
            t, xr = self._resampler.process(t, x)
            x = xr.astype(np.float64)
            if t.size == 0:
                return []
        if self._pre is None:
            return self._push(t, x.astype(np.float32))
        resets = self._pre.resets
        feats = self._pre.process(x)
        if self._pre.resets != resets:  # a filter state went non-finite: this piece is lost, the segment restarts
            self.stats.filter_resets += 1
            self.stats.count("filter_reset", int(t.size))
            self.stats.samples_used -= int(t.size)
            self._clear_buffer()
            log.warning("stream: a causal filter state went non-finite at source time %.3f; reset (%d so far)",
                        float(t[0]), self.stats.filter_resets)
            return []
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
        starts = window_starts(buf.shape[0], self.window, self.hop)
        out = [self._classify(w, float(tbuf[s0]), float(tbuf[s0 + self.window - 1]))
               for w, s0 in zip(segment_windows(buf, self.window, self.hop), starts)]
        consumed = n * self.hop
        self._skip = max(0, consumed - buf.shape[0])
        self._buf, self._tbuf = buf[consumed:].copy(), tbuf[consumed:].copy()
        return out

    def _classify(self, window: NDArray[np.float32], t_start: float, t_end: float) -> StreamResult:
        try:
            pred = self.clf.classify(window)
        except DataError as exc:  # e.g. a filter blew up on garbage that slipped through
            self.stats.rejected_windows += 1
            self.stats.reasons["window_rejected"] = self.stats.reasons.get("window_rejected", 0) + 1
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
            window_start_s=t_start,
        )

    def take_events(self) -> list[StreamEvent]:
        """Events not tied to a classification (segment events, activity ends at a gap), oldest first; clears them."""
        events = list(self._events)
        self._events.clear()
        return events

    def finish(self) -> list[ActivityEvent]:
        """End of stream: drop unconfirmed clock candidates (counted) and close the running activity."""
        for reason, n in self.clock.finish().items():
            self.stats.count(reason, n)
        return self.tracker.finish(self._last_t if self._last_t is not None else 0.0)

    def run(self, chunks: Iterable[SampleChunk]) -> Iterator[StreamResult]:
        for chunk in chunks:
            yield from self.feed(chunk)
