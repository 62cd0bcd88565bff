"""The clock policy of a stream: which samples continue the current segment, which start a new one, which are dropped.

Real sensor clocks jump: an NTP correction or an RTC reset steps them back, a phone app restarts its
session clock, a dropout (I2C overrun, MQTT outage) leaves a hole, and a single corrupt timestamp can sit
anywhere. The policy (``max_gap_s``, ``confirm_samples``):

* a sample continues the current segment when ``last < t <= last + max_gap_s``;
* any other sample — a duplicate, a step back, a jump forward beyond ``max_gap_s`` — is held as a
  *candidate*. If a later sample continues the current segment again, the candidates were outliers: they are
  dropped and counted ``out_of_order`` (reasons ``duplicate_timestamp``, ``non_increasing_timestamp``,
  ``timestamp_jump``). If instead ``confirm_samples`` candidates in a row continue each other (the same rule),
  the clock really moved: the current segment ends and the candidates start the next one — a ``gap`` event
  when the clock went forward, a ``clock_epoch`` event when it went back. Confirmed candidates are kept, not
  lost, so the stream classifies again one window after the jump;
* a frozen clock (every timestamp equal) never confirms and drops everything but the first sample.

The stream (:class:`~har_edge.runtime.stream.StreamClassifier`) resets its window buffer, causal filters,
resampler and smoothing at every segment start, so no window ever spans a gap or an epoch change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import ConfigError

__all__ = ["ClockConfig", "SegmentEvent", "ClockPolicy"]

_Array = NDArray[np.float64]


@dataclass(frozen=True)
class ClockConfig:
    """``max_gap_s``: the largest step between consecutive samples of one segment (a larger jump forward is a
    gap); ``confirm_samples``: consecutive samples that must agree before a jump is taken as the new clock."""

    max_gap_s: float = 0.5
    confirm_samples: int = 5

    def __post_init__(self) -> None:
        if not (isinstance(self.max_gap_s, (int, float)) and 0 < self.max_gap_s < float("inf")):
            raise ConfigError(f"clock max_gap_s={self.max_gap_s!r}; expected a positive number of seconds")
        if isinstance(self.confirm_samples, bool) or not isinstance(self.confirm_samples, int) or self.confirm_samples < 1:
            raise ConfigError(f"clock confirm_samples={self.confirm_samples!r}; expected an integer >= 1")

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> ClockConfig:
        """From a ``[clock]`` TOML table (keys as the fields)."""
        unknown = sorted(set(d) - {"max_gap_s", "confirm_samples"})
        if unknown:
            raise ConfigError(f"[clock]: unknown key(s) {unknown}; allowed: max_gap_s, confirm_samples")
        return cls(**d)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SegmentEvent:
    """A segment boundary: ``kind`` ``gap`` (the clock jumped forward) or ``clock_epoch`` (it went back).

    ``timestamp``: source time of the first sample of the new segment; ``previous``: of the last sample before.
    """

    kind: Literal["gap", "clock_epoch"]
    timestamp: float
    previous: float

    @property
    def jump_s(self) -> float:
        return self.timestamp - self.previous


@dataclass(frozen=True)
class Piece:
    """Consecutive accepted samples; ``event`` is set when they start a new segment."""

    event: SegmentEvent | None
    timestamps_s: _Array
    values: _Array


class ClockPolicy:
    """Applies the policy to ``(t, x)`` chunks, holding candidates across chunk boundaries."""

    def __init__(self, config: ClockConfig = ClockConfig()) -> None:
        self.config = config
        self.last: float | None = None
        self._cand_t: list[float] = []
        self._cand_x: list[_Array] = []

    @property
    def pending(self) -> int:
        """Candidates held, neither accepted nor dropped yet."""
        return len(self._cand_t)

    def _fits(self, prev: float, t: float) -> bool:
        return prev < t <= prev + self.config.max_gap_s

    def _drop_reason(self, t: float) -> str:
        last = t if self.last is None else self.last  # candidates exist only after a first sample
        if t == last:
            return "duplicate_timestamp"
        return "non_increasing_timestamp" if t < last else "timestamp_jump"

    def _drop_candidates(self, drops: dict[str, int]) -> None:
        for t in self._cand_t:
            reason = self._drop_reason(t)
            drops[reason] = drops.get(reason, 0) + 1
        self._cand_t, self._cand_x = [], []

    def process(self, t: _Array, x: _Array) -> tuple[list[Piece], dict[str, int]]:
        """Split ``t (n,)``, ``x (n, c)`` into accepted pieces; returns ``(pieces, dropped reason → count)``."""
        pieces: list[Piece] = []
        drops: dict[str, int] = {}
        n, i = len(t), 0
        run_start: int | None = None  # start of the current run of accepted samples in t

        def close_run(end: int) -> None:
            nonlocal run_start
            if run_start is not None and end > run_start:
                pieces.append(Piece(None, t[run_start:end], x[run_start:end]))
            run_start = None

        while i < n:
            if self.last is None:  # the very first sample starts the stream
                self.last, run_start = float(t[i]), i
                i += 1
                continue
            if not self._cand_t:  # fast path: the longest run from i that continues the segment
                prev = np.concatenate([[self.last], t[i : n - 1]])
                step = t[i:] - prev
                bad = np.flatnonzero((step <= 0) | (step > self.config.max_gap_s))
                k = int(bad[0]) if bad.size else n - i
                if k:
                    run_start = i if run_start is None else run_start
                    self.last = float(t[i + k - 1])
                    i += k
                    continue
                close_run(i)
                self._cand_t, self._cand_x = [float(t[i])], [x[i]]
                i += 1
                continue
            ti = float(t[i])
            if self._fits(self.last, ti):  # back on the current clock: the candidates were outliers
                self._drop_candidates(drops)
                continue  # accepted by the fast path
            if self._fits(self._cand_t[-1], ti):
                self._cand_t.append(ti)
                self._cand_x.append(x[i])
                i += 1
                if len(self._cand_t) >= self.config.confirm_samples:
                    first = self._cand_t[0]
                    kind: Literal["gap", "clock_epoch"] = "gap" if first > self.last else "clock_epoch"
                    pieces.append(Piece(SegmentEvent(kind, first, self.last), np.asarray(self._cand_t),
                                        np.stack(self._cand_x)))
                    self.last = self._cand_t[-1]
                    self._cand_t, self._cand_x = [], []
                continue
            self._drop_candidates(drops)  # neither clock: the older candidates were outliers
            self._cand_t, self._cand_x = [ti], [x[i]]
            i += 1
        close_run(n)
        return pieces, drops

    def finish(self) -> dict[str, int]:
        """End of stream: drop (and return the reasons of) candidates never confirmed."""
        drops: dict[str, int] = {}
        if self._cand_t:
            self._drop_candidates(drops)
        return drops
