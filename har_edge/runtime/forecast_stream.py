"""Serve a forecaster on a stream of rows: check their spacing, keep the history, forecast every step.

:class:`ForecastStream` takes :class:`~har_edge.runtime.samples.SampleChunk` rows from any source
(the series columns as channels) and, after each accepted row once the history holds
:attr:`~har_edge.inference.forecaster.Forecaster.history_rows` rows, forecasts the next H steps.

Spacing (the bundle's ``forecast.spacing``): ``regular`` rows must come ``step_s`` apart (±1 %);
``rows`` (business days) must come at least half a step and at most ``max_gap_steps`` steps apart (by
default the longest gap of the training file, ``forecast.max_gap_s`` in the manifest, else 7 steps).
A row at or before the previous one is dropped (``out_of_order``); a row too soon is dropped
(``off_grid``); a gap resets the history (``gaps``), so no forecast ever rests on a window with a
hole in it. A row with NaN is dropped (``bad_values``). Nothing here stops the stream.

:class:`SeriesReplaySource` replays a series CSV (dates, ``NA``, year/month/day/hour columns: the
forecasting loader :func:`~har_edge.data.series.load_series`) as a source, paced like ``csv:`` replay.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.csv_format import split_header
from har_edge.data.series import SeriesSpec, load_series
from har_edge.data.units import unit_scale
from har_edge.errors import ConfigError, DataError, SourceError
from har_edge.inference.forecaster import Forecast, Forecaster
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.source_base import _parse_speed, _SourceBase

__all__ = ["ForecastStream", "ForecastResult", "ForecastStreamStats", "SeriesReplaySource", "series_spec_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForecastResult:
    """A forecast issued after the row at ``forecast.origin_time_s``; ``seq`` counts forecasts of this stream."""

    forecast: Forecast
    seq: int


@dataclass
class ForecastStreamStats:
    rows_in: int = 0
    rows_used: int = 0
    forecasts: int = 0
    out_of_order: int = 0
    off_grid: int = 0
    gaps: int = 0
    bad_values: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _History:
    times: deque[float] = field(default_factory=deque)
    rows: deque[NDArray[np.float64]] = field(default_factory=deque)


class ForecastStream:
    """Rows in, forecasts out (see the module docstring for the spacing rules).

    Args:
        forecaster: an open :class:`Forecaster`.
        channel_names, units: of the incoming chunks when known at start (checked and mapped to the
            bundle's columns and units); otherwise taken from each chunk.
        max_gap_steps: ``rows`` spacing: the longest accepted gap in steps; default: the bundle's ``max_gap_s``
            (the longest gap in its data, e.g. a 12-day market holiday), else 7 steps.
    """

    def __init__(self, forecaster: Forecaster, *, max_gap_steps: float | None = None) -> None:
        self.forecaster = forecaster
        self.step_s = forecaster.step_s
        self.spacing = forecaster.spacing
        if max_gap_steps is None:
            max_gap_steps = 7.0 if not forecaster.max_gap_s else forecaster.max_gap_s / self.step_s * 1.001
        self.max_gap_steps = max_gap_steps
        self.need = forecaster.history_rows
        self.stats = ForecastStreamStats()
        self._hist = _History(deque(maxlen=self.need), deque(maxlen=self.need))
        self._mapping: tuple[tuple[str, ...], NDArray[np.intp], NDArray[np.float64]] | None = None
        self._logged = 0

    def _columns(self, chunk: SampleChunk) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Column indices and unit factors taking a chunk's channels to the bundle's columns."""
        key = chunk.channel_names + chunk.units
        if self._mapping is None or self._mapping[0] != key:
            cols, units = self.forecaster.columns, self.forecaster.column_units
            missing = [c for c in cols if c not in chunk.channel_names]
            if missing:
                raise ConfigError(f"the source lacks column(s) {missing} the forecaster needs (it gives {list(chunk.channel_names)})")
            idx = np.array([chunk.channel_names.index(c) for c in cols], dtype=np.intp)
            try:
                scale = np.array([unit_scale(chunk.units[i], u) for i, u in zip(idx, units)])
            except DataError as exc:
                raise ConfigError(f"source units {list(chunk.units)} do not convert to the forecaster's {list(units)}: {exc}") from None
            self._mapping = (key, idx, scale)
        return self._mapping[1], self._mapping[2]

    def _note(self, reason: str, detail: str) -> None:
        setattr(self.stats, reason, getattr(self.stats, reason) + 1)
        self._logged += 1
        if self._logged <= 5 or self._logged % 1000 == 0:
            log.warning("forecast stream: %s: %s [%d so far]", reason, detail, self._logged)

    def _accept(self, t: float) -> bool:
        """Spacing check of a row at ``t`` against the last kept row; resets the history on a gap."""
        h = self._hist
        if not h.times:
            return True
        dt = t - h.times[-1]
        if dt <= 0:
            self._note("out_of_order", f"row at {t} is not after {h.times[-1]}")
            return False
        steps = dt / self.step_s
        if self.spacing == "regular":
            if abs(steps - 1) <= 0.01:
                return True
            if steps < 1:
                self._note("off_grid", f"row {dt:g} s after the previous one; expected {self.step_s:g} s")
                return False
        elif 0.5 <= steps <= self.max_gap_steps:
            return True
        elif steps < 0.5:
            self._note("off_grid", f"row {dt:g} s after the previous one; expected about {self.step_s:g} s")
            return False
        self._note("gaps", f"{steps:.2f} steps since the previous row; history restarts (needs {self.need} rows)")
        h.times.clear()
        h.rows.clear()
        return True

    def feed(self, chunk: SampleChunk) -> list[ForecastResult]:
        """Accept a chunk's rows; returns the forecasts issued (one per accepted row once the history is full)."""
        idx, scale = self._columns(chunk)
        values = np.asarray(chunk.values, dtype=np.float64)[:, idx] * scale
        out = []
        for t, row in zip(np.asarray(chunk.timestamps_s, dtype=np.float64), values):
            self.stats.rows_in += 1
            if not np.isfinite(row).all() or not math.isfinite(t):
                self._note("bad_values", f"row at {t} has NaN or inf")
                continue
            if not self._accept(float(t)):
                continue
            self._hist.times.append(float(t))
            self._hist.rows.append(row)
            self.stats.rows_used += 1
            if len(self._hist.rows) < self.need:
                continue
            try:
                fc = self.forecaster.forecast(np.asarray(self._hist.times), np.stack(self._hist.rows))
            except DataError as exc:  # never stop the stream on one bad window
                self._note("errors", str(exc))
                continue
            self.stats.forecasts += 1
            out.append(ForecastResult(fc, self.stats.forecasts))
        return out


def series_spec_for(forecaster: Forecaster, csv_path: str | Path) -> SeriesSpec:
    """A :class:`SeriesSpec` reading a CSV with the bundle's columns and units; the time column is found in the header
    (``timestamp``/``time``/``date``/``Date``/``datetime``, or ``year,month,day[,hour]``). Nothing is filled: the
    stream checks the spacing."""
    path = Path(csv_path)
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    with path.open(encoding="utf-8-sig") as f:
        header = split_header(f.readline())
    time_col = next((c for c in ("timestamp", "time", "date", "Date", "datetime") if c in header), "")
    parts = tuple(c for c in ("year", "month", "day", "hour") if c in header)
    base: dict[str, Any] = {"path": str(path), "columns": forecaster.columns, "units": forecaster.column_units,
                            "target": forecaster.target, "step": f"{forecaster.step_s}s", "spacing": "rows", "fill": "ffill"}
    if time_col:
        return SeriesSpec(**base, time_column=time_col)
    if len(parts) >= 3:
        return SeriesSpec(**base, time_parts=parts)
    raise SourceError(f"{path}: no time column; expected one of timestamp, time, date, datetime or year,month,day[,hour] "
                      f"(header: {','.join(header)})")


class SeriesReplaySource(_SourceBase):
    """Replays a series CSV row by row (``speed`` 1.0 real time, k × faster, ``"max"`` unpaced).

    Rows keep their own times: missing steps are not filled here (the stream sees and counts the gap);
    missing values are carried forward and counted in ``stats.reasons["filled_values"]``.
    """

    def __init__(self, spec: SeriesSpec, *, speed: float | str = "max", chunk_samples: int = 64) -> None:
        self.speed = _parse_speed(speed)
        try:
            self.series = load_series(spec)
        except DataError as exc:
            raise SourceError(str(exc)) from None
        super().__init__(f"csv:{spec.path}", self.series.columns, self.series.units, nominal_rate_hz=1.0 / self.series.step_s,
                         chunk_samples=chunk_samples)
        if self.series.report.values_filled:
            self.stats.reasons["filled_values"] = self.series.report.values_filled

    def chunks(self) -> Iterator[SampleChunk]:
        s, step = self.series, self.chunk_samples
        t0_wall = time.monotonic()
        for start in range(0, len(s), step):
            if self.closed:
                return
            ts = s.times_s[start: start + step]
            if math.isfinite(self.speed):
                delay = t0_wall + (float(ts[-1]) - float(s.times_s[0])) / self.speed - time.monotonic()
                if delay > 0 and self._closed.wait(delay):
                    return
            yield self._chunk(ts, s.values[start: start + step])
