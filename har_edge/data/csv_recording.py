"""Generic CSV recordings — what a person records with a phone app.

Default schema (used across the toolkit)::

    timestamp,acc_x,acc_y,acc_z[,gyro_x,gyro_y,gyro_z][,label]

timestamp in seconds, acceleration in g, angular rate in rad/s. Other column names and units
are given by options; the rate is declared or inferred from the timestamps.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from har_edge.data.csv_format import LABEL_COLUMN, TIME_COLUMN, open_csv, read_csv_rows
from har_edge.data.recording import UNLABELLED, Recording
from har_edge.data.units import convert_units, normalise_unit_name
from har_edge.errors import DataError

__all__ = ["DEFAULT_TIME_COLUMN", "DEFAULT_LABEL_COLUMN", "DEFAULT_UNITS", "CsvSamples", "read_csv_samples", "load_csv_recording",
           "label_indices", "write_csv_recording"]

DEFAULT_TIME_COLUMN = TIME_COLUMN
DEFAULT_LABEL_COLUMN = LABEL_COLUMN
DEFAULT_UNITS = {"acc": "g", "gyro": "rad/s"}


def default_unit(channel: str) -> str:
    return DEFAULT_UNITS["gyro" if channel.startswith("gyro") else "acc"]


@dataclass(frozen=True)
class CsvSamples:
    """The good rows of a CSV file as written: ``timestamps (n,)``, ``values (n, c)``, ``labels (n,)`` strings or None,
    ``line_numbers (n,)``; ``channel_names`` in column order."""

    timestamps: NDArray[np.float64]
    values: NDArray[np.float64]
    labels: NDArray[np.str_] | None
    line_numbers: NDArray[np.intp]
    channel_names: tuple[str, ...]


def read_csv_samples(
    path: str | Path,
    *,
    channels: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    time_column: str = DEFAULT_TIME_COLUMN,
    label_column: str | None = DEFAULT_LABEL_COLUMN,
) -> CsvSamples:
    """Read every row strictly (a bad line raises :class:`DataError` naming file, line and column); nothing converted."""
    path = Path(path)
    layout, header_lines, _ = open_csv(path, channel_names=channels, columns=columns, time_column=time_column,
                                       label_column=label_column)
    blocks = list(read_csv_rows(path, layout, skip_lines=header_lines))
    if not blocks:
        raise DataError(f"{path}: no samples after the header")
    labels = None
    if layout.label_index is not None:
        labels = np.concatenate([b.labels for b in blocks if b.labels is not None])
    return CsvSamples(np.concatenate([b.timestamps for b in blocks]), np.concatenate([b.values for b in blocks]), labels,
                      np.concatenate([b.line_numbers for b in blocks]), layout.channel_names)


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
    """Load a CSV recording strictly (any bad value raises), with the reader replay uses (:mod:`~har_edge.data.csv_format`).

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

    Raises:
        DataError: naming the file, line, column and value.
    """
    path = Path(path)
    rows = read_csv_samples(path, channels=channels, columns=columns, time_column=time_column, label_column=label_column)
    t = rows.timestamps * time_scale_s
    steps = np.diff(t)
    if (steps <= 0).any():
        r = int(np.argmax(steps <= 0))
        raise DataError(f"{path}: line {rows.line_numbers[r + 1]}: timestamp {float(t[r + 1])!r} does not increase "
                        f"(previous {float(t[r])!r})")
    if len(t) < 2:
        raise DataError(f"{path}: {len(t)} sample(s); need at least 2 to know the rate")
    inferred = 1.0 / float(np.median(steps))
    if sample_rate_hz is None:
        sample_rate_hz = round(inferred, 3)
    elif abs(inferred - sample_rate_hz) > rate_tolerance * sample_rate_hz:
        raise DataError(f"{path}: timestamps imply {inferred:.3f} Hz but sample_rate_hz={sample_rate_hz} was declared")
    names = rows.channel_names
    file_units = [normalise_unit_name((units or {}).get(c, default_unit(c))) for c in names]
    signals = convert_units(rows.values, file_units, [default_unit(c) for c in names])
    labels, label_set = None, tuple(label_names or ())
    if rows.labels is not None:
        labels, label_set = label_indices(rows.labels, label_set, f"{path}: column {label_column!r}")
    return Recording(signals=signals, channel_names=names, units=tuple(default_unit(c) for c in names),
                     sample_rate_hz=float(sample_rate_hz), labels=labels, label_names=label_set, subject=subject,
                     name=str(path))


def label_indices(raw: np.ndarray, names: tuple[str, ...], where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-sample label strings ``(n,)`` → int16 indices into ``names`` (sorted distinct values when empty); '' is unlabelled."""
    if not names:
        names = tuple(sorted({str(v) for v in raw if v}))
    lookup = {n: i for i, n in enumerate(names)}
    unknown = sorted({str(v) for v in raw if v and v not in lookup})
    if unknown:
        raise DataError(f"{where} has unknown label(s) {unknown[:5]}; expected {list(names)}")
    return np.array([lookup.get(str(v), UNLABELLED) for v in raw], dtype=np.int16), names


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
