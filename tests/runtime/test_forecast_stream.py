"""ForecastStream's spacing rules (no model needed: a stub forecaster), and the series replay source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from har_edge.errors import ConfigError
from har_edge.inference.forecaster import Forecast
from har_edge.runtime.forecast_stream import ForecastStream, SeriesReplaySource
from har_edge.runtime.samples import SampleChunk

DAY = 86400.0


class StubForecaster:
    """Forecasts the last value for 2 steps; records the windows it was given."""

    def __init__(self, spacing: str, max_gap_s: float | None = None, history_rows: int = 3) -> None:
        self.step_s, self.spacing, self.max_gap_s, self.history_rows = DAY, spacing, max_gap_s, history_rows
        self.columns, self.column_units = ("Close",), ("IDR",)
        self.windows: list[np.ndarray] = []

    def forecast(self, times_s: Any, values: Any) -> Forecast:
        self.windows.append(np.asarray(times_s))
        return Forecast(values=np.repeat(values[-1, 0], 2), origin_time_s=float(times_s[-1]), step_s=self.step_s, latency_ms=0.0)


def _chunk(days: list[float], unit: str = "IDR") -> SampleChunk:
    t = np.asarray(days) * DAY
    return SampleChunk(t, (100 + np.arange(len(days), dtype=float))[:, None], ("Close",), (unit,))


def test_rows_spacing_accepts_weekends_and_holidays_up_to_the_data_gap() -> None:
    fc = StubForecaster("rows", max_gap_s=12 * DAY)
    stream = ForecastStream(fc)  # type: ignore[arg-type]
    out = stream.feed(_chunk([0, 1, 2, 5, 6, 18, 19, 40, 41, 42, 43]))  # weekend, 12-day holiday, then a 21-day hole
    assert stream.stats.gaps == 1 and [r.seq for r in out] == list(range(1, len(out) + 1))
    assert [r.forecast.origin_time_s / DAY for r in out] == [2, 5, 6, 18, 19, 42, 43]
    assert all(np.all(np.diff(w) <= 12 * DAY * 1.001) for w in fc.windows)  # no window spans the 21-day hole


def test_regular_spacing_and_bad_rows() -> None:
    stream = ForecastStream(StubForecaster("regular"))  # type: ignore[arg-type]
    out = stream.feed(_chunk([0, 1, 2, 2, 2.5, 3, 5, 6, 7]))
    s = stream.stats
    assert (s.out_of_order, s.off_grid, s.gaps, s.rows_in, s.rows_used) == (1, 1, 1, 9, 7)
    assert [r.forecast.origin_time_s / DAY for r in out] == [2, 3, 7]
    assert not stream.feed(SampleChunk(np.array([8 * DAY]), np.array([[np.nan]]), ("Close",), ("IDR",)))
    assert stream.stats.bad_values == 1
    with pytest.raises(ConfigError, match="do not convert"):
        stream.feed(_chunk([9], unit="degC"))


def test_series_replay_source_reads_dates(tmp_path: Path) -> None:
    from har_edge.data.series import SeriesSpec

    p = tmp_path / "s.csv"
    p.write_text("Date,Close,Volume\n2024-01-05,10,5\n2024-01-08,NA,3\n2024-01-09,12,7\n")
    spec = SeriesSpec(path=str(p), time_column="Date", columns=("Close",), units=("IDR",), target="Close", step="1d",
                      spacing="rows", fill="ffill")
    with SeriesReplaySource(spec, speed="max", chunk_samples=2) as src:
        chunks = list(src.chunks())
    assert [len(c) for c in chunks] == [2, 1] and chunks[0].values[:, 0].tolist() == [10, 10]
    assert src.stats.reasons == {"filled_values": 1} and src.stats.samples == 3
