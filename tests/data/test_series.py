"""The series loader: time columns, declared units, and the refusal / fill rules with their counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_edge.data.series import SeriesSpec, load_series, parse_step
from har_edge.errors import DataError

SAMPLE = Path(__file__).resolve().parents[2] / "training" / "sample_data"
MELBOURNE = SAMPLE / "weather_melbourne_daily" / "daily-min-temperatures.csv"


def _spec(path: Path, **kw: object) -> SeriesSpec:
    base: dict[str, object] = dict(path=str(path), columns=("v",), units=("degC",), target="v", time_column="t", step="1h")
    base.update(kw)
    return SeriesSpec(**base)  # type: ignore[arg-type]


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.csv"
    p.write_text(text)
    return p


def test_melbourne_missing_days_refused_by_default() -> None:
    spec = SeriesSpec(path=str(MELBOURNE), time_column="Date", columns=("Temp",), units=("°C",), target="Temp", step="1d")
    with pytest.raises(DataError, match=r"2 missing step\(s\) of 1d \(first at 1984-12-31"):
        load_series(spec)


def test_melbourne_missing_days_interpolated_and_counted() -> None:
    spec = SeriesSpec(path=str(MELBOURNE), time_column="Date", columns=("Temp",), units=("degC",), target="Temp", step="1d",
                      fill="interpolate")
    s = load_series(spec)
    assert len(s) == 3652 and s.report.rows_read == 3650
    assert (s.report.steps_missing, s.report.steps_filled, s.report.values_filled) == (2, 2, 0)
    assert s.report.first_filled_times == ("1984-12-31T00:00:00", "1988-12-31T00:00:00")
    i = s.index_at_or_before("1984-12-31")
    assert s.values[i, 0] == pytest.approx((s.values[i - 1, 0] + s.values[i + 1, 0]) / 2)
    assert s.units == ("degC",) and np.all(np.diff(s.times_s) == 86400)


def test_year_month_day_hour_parts_and_na_values(tmp_path: Path) -> None:
    p = _csv(tmp_path, "No,year,month,day,hour,v,w\n1,2010,1,1,0,1.0,NA\n2,2010,1,1,1,NA,2\n3,2010,1,1,2,3.0,3\n")
    spec = _spec(p, time_column="", time_parts=("year", "month", "day", "hour"), columns=("v", "w"), units=("degC", "hPa"))
    with pytest.raises(DataError, match=r"2 missing value\(s\)"):
        load_series(spec)
    s = load_series(_spec(p, time_column="", time_parts=("year", "month", "day", "hour"), columns=("v", "w"),
                          units=("degC", "hPa"), fill="ffill"))
    assert s.report.values_missing == 2 and s.report.values_filled == 2
    assert s.values.tolist() == [[1.0, 2.0], [1.0, 2.0], [3.0, 3.0]]  # w's first value takes the first good one
    assert s.times_s[0] == 1262304000.0  # 2010-01-01T00:00 read as UTC


def test_missing_hour_interpolated_linearly(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,v\n2020-01-01 00:00,0\n2020-01-01 01:00,1\n2020-01-01 04:00,4\n")
    with pytest.raises(DataError, match=r"2 missing step\(s\).*2020-01-01T02:00"):
        load_series(_spec(p))
    s = load_series(_spec(p, fill="interpolate"))
    assert s.values[:, 0].tolist() == [0, 1, 2, 3, 4] and s.report.steps_filled == 2


def test_rows_spacing_keeps_gaps_and_drop_zero_counts(tmp_path: Path) -> None:
    p = _csv(tmp_path, "Date,Close,Volume\n2024-01-05,10,5\n2024-01-08,11,0\n2024-01-09,12,7\n2024-01-10,13,1\n")
    s = load_series(_spec(p, time_column="Date", columns=("Close",), units=("IDR",), target="Close", step="1d", spacing="rows",
                          drop_zero=("Volume",)))
    assert s.values[:, 0].tolist() == [10, 12, 13] and s.report.rows_dropped_zero == 1
    assert s.report.largest_gap_s == 4 * 86400


@pytest.mark.parametrize("text, match", [
    ("t,v\n2020-01-01 00:00,1\n2020-01-01 00:00,2\n", "does not come after"),
    ("t,v\n2020-01-01 01:00,1\n2020-01-01 00:00,2\n", "does not come after"),
    ("t,v\n2020-01-01 00:00,1\n2020-01-01 00:30,2\n", "not on the 1h grid"),
    ("t,v\n2020-01-01 00:00,1\n2020-01-01 01:00,abc\n", r"line 3, column 'v': 'abc' is not a number"),
    ("t,v\nyesterday,1\n", "neither a date"),
    ("t,x\n2020-01-01,1\n", r"missing column\(s\) \['v'\]"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_series(_spec(_csv(tmp_path, text)))


def test_units_are_declared_and_checked(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,v\n2020-01-01,1\n")
    with pytest.raises(DataError, match="unknown unit 'furlong'"):
        load_series(_spec(p, units=("furlong",)))
    with pytest.raises(DataError, match="1 units for 2 columns"):
        _spec(p, columns=("v", "w")).check()


def test_parse_step() -> None:
    assert (parse_step("1h"), parse_step("30min"), parse_step("1d"), parse_step(15)) == (3600, 1800, 86400, 15)
    with pytest.raises(DataError):
        parse_step("soon")
