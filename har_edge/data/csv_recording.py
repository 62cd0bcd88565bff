"""Generic CSV recordings — what a person records with a phone app.

Default schema (used across the toolkit)::

    timestamp,acc_x,acc_y,acc_z[,gyro_x,gyro_y,gyro_z][,label]

timestamp in seconds, acceleration in g, angular rate in rad/s. Other column names and units
are given by options; the rate is declared or inferred from the timestamps.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from har_edge.data.recording import UNLABELLED, Recording
from har_edge.data.units import convert_units, normalise_unit_name
from har_edge.errors import DataError

__all__ = ["DEFAULT_TIME_COLUMN", "DEFAULT_LABEL_COLUMN", "DEFAULT_UNITS", "load_csv_recording", "write_csv_recording"]

DEFAULT_TIME_COLUMN = "timestamp"
DEFAULT_LABEL_COLUMN = "label"
DEFAULT_UNITS = {"acc": "g", "gyro": "rad/s"}
_SENSOR_COLUMNS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def default_unit(channel: str) -> str:
    return DEFAULT_UNITS["gyro" if channel.startswith("gyro") else "acc"]


def load_csv_recording(
    path: str | Path,
    *,
    channels: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    time_column: str = DEFAULT_TIME_COLUMN,
    time_scale_s: float = 1.0,
    label_column: str | None = DEFAULT_LABEL_COLUMN,
    label_names: Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
    rate_tolerance: float = 0.05,
    subject: int | None = None,
) -> Recording:
    """Load a CSV recording strictly (any bad value raises).

    Args:
        channels: channels to read (default: the ``acc_*`` and, if present, ``gyro_*`` columns).
        columns: channel → CSV column name, for files with other headers.
        units: channel → unit of the file; values are converted to g and rad/s.
        time_scale_s: seconds per timestamp unit (1e-3 for milliseconds, 1e-9 for nanoseconds).
        label_column: optional column of activity names (empty = unlabelled); None to ignore.
        sample_rate_hz: declared rate; inferred from the median timestamp step when None. Timestamps
            must increase, and their median step must agree with a declared rate within ``rate_tolerance``.

    Returns:
        A :class:`Recording` with signals ``(n, c)`` in g / rad/s.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    columns = dict(columns or {})
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file; expected a header like 'timestamp,acc_x,acc_y,acc_z'") from None
        rows = list(reader)
    if channels is None:
        # the accelerometer triad is required; the gyroscope triad is read when any of it is present
        has_gyro = any(columns.get(c, c) in header for c in _SENSOR_COLUMNS[3:])
        channels = list(_SENSOR_COLUMNS[: 6 if has_gyro else 3])
    wanted = [time_column] + [columns.get(c, c) for c in channels]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
    idx = [header.index(c) for c in wanted]
    values = np.empty((len(rows), len(idx)), dtype=np.float64)
    for r, row in enumerate(rows):
        if len(row) != len(header):
            raise DataError(f"{path}: line {r + 2} has {len(row)} fields; expected {len(header)}")
        for j, i in enumerate(idx):
            try:
                values[r, j] = float(row[i])
            except ValueError:
                raise DataError(f"{path}: line {r + 2}, column {header[i]!r}: {row[i]!r} is not a number") from None
    bad = ~np.isfinite(values)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        raise DataError(f"{path}: line {r + 2}, column {wanted[j]!r}: value is NaN or inf")
    t = values[:, 0] * time_scale_s
    steps = np.diff(t)
    if (steps <= 0).any():
        r = int(np.argmax(steps <= 0))
        raise DataError(f"{path}: line {r + 3}: timestamp {float(t[r + 1])!r} does not increase (previous {float(t[r])!r})")
    if len(t) < 2:
        raise DataError(f"{path}: {len(t)} sample(s); need at least 2 to know the rate")
    inferred = 1.0 / float(np.median(steps))
    if sample_rate_hz is None:
        sample_rate_hz = round(inferred, 3)
    elif abs(inferred - sample_rate_hz) > rate_tolerance * sample_rate_hz:
        raise DataError(f"{path}: timestamps imply {inferred:.3f} Hz but sample_rate_hz={sample_rate_hz} was declared")
    file_units = [normalise_unit_name((units or {}).get(c, default_unit(c))) for c in channels]
    signals = convert_units(values[:, 1:], file_units, [default_unit(c) for c in channels])
    labels = None
    names: tuple[str, ...] = tuple(label_names or ())
    if label_column is not None and label_column in header:
        li = header.index(label_column)
        raw = [row[li].strip() for row in rows]
        if not names:
            names = tuple(sorted({v for v in raw if v}))
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted({v for v in raw if v and v not in lookup})
        if unknown:
            raise DataError(f"{path}: column {label_column!r} has unknown label(s) {unknown[:5]}; expected {list(names)}")
        labels = np.array([lookup.get(v, UNLABELLED) for v in raw], dtype=np.int16)
    return Recording(
        signals=signals,
        channel_names=tuple(channels),
        units=tuple(default_unit(c) for c in channels),
        sample_rate_hz=float(sample_rate_hz),
        labels=labels,
        label_names=names,
        subject=subject,
        name=str(path),
    )


def write_csv_recording(rec: Recording, path: str | Path, *, start_time_s: float = 0.0, decimals: int = 6) -> Path:
    """Write ``rec`` in the default schema (timestamp, channels, optional label)."""
    path = Path(path)
    t = start_time_s + np.arange(rec.n_samples) / rec.sample_rate_hz
    header = [DEFAULT_TIME_COLUMN, *rec.channel_names]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        has_labels = rec.labels is not None and len(rec.label_names) > 0
        w.writerow(header + ([DEFAULT_LABEL_COLUMN] if has_labels else []))
        for i in range(rec.n_samples):
            row = [f"{t[i]:.{decimals}f}", *(f"{v:.{decimals}f}" for v in rec.signals[i])]
            if has_labels:
                lab = int(rec.labels[i])  # type: ignore[index]
                row.append(rec.label_names[lab] if lab != UNLABELLED else "")
            w.writerow(row)
    return path
