"""The one CSV reader of the project's recording schema, for training (strict) and replay / stdin (lenient).

Schema::

    timestamp,acc_x,acc_y,acc_z[,gyro_x,gyro_y,gyro_z][,label]

One header line, then one sample per line; other column names are mapped with ``columns`` (canonical
name → name in the file). :class:`CsvLayout` reads the header; :func:`read_csv_rows` parses the lines
in large numpy blocks (``np.loadtxt`` on the whole block, and only on a block with bad lines a
piecewise / line-by-line fallback) and yields :class:`CsvRows`. Each bad line either raises
:class:`~har_edge.errors.RecordError` naming file, line, column and value (``strict``: training
data) or is reported to ``on_bad`` with a reason and skipped (replay: a device never stops on one
bad line). Reasons: ``wrong_field_count``, ``non_numeric``, ``non_finite``. Blank lines are ignored.
Timestamps are returned as written (the caller scales and checks them).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError, RecordError

__all__ = [
    "ACC_CHANNELS",
    "GYRO_CHANNELS",
    "DEFAULT_CHANNELS",
    "TIME_COLUMN",
    "LABEL_COLUMN",
    "CsvLayout",
    "CsvRows",
    "split_header",
    "open_csv",
    "read_csv_rows",
]

ACC_CHANNELS = ("acc_x", "acc_y", "acc_z")
GYRO_CHANNELS = ("gyro_x", "gyro_y", "gyro_z")
DEFAULT_CHANNELS = ACC_CHANNELS + GYRO_CHANNELS
TIME_COLUMN = "timestamp"
LABEL_COLUMN = "label"
_BLOCK_BYTES = 4_000_000  # lines read and parsed per numpy call
_Array = NDArray[np.float64]
OnBad = Callable[[str, str, int], None]  # (reason, detail, count)


def split_header(line: str) -> list[str]:
    """Column names of a header line (whitespace and quotes stripped)."""
    return [h.strip().strip('"').strip() for h in line.strip().split(",")]


@dataclass(frozen=True)
class CsvLayout:
    """Which columns of a file hold the timestamp, each channel and the (optional) label."""

    header: tuple[str, ...]
    channel_names: tuple[str, ...]
    time_index: int
    channel_indices: tuple[int, ...]
    label_index: int | None

    @property
    def n_fields(self) -> int:
        return len(self.header)

    @classmethod
    def from_header(cls, header: Sequence[str], *, channel_names: Sequence[str] | None = None,
                    columns: Mapping[str, str] | None = None, time_column: str = TIME_COLUMN,
                    label_column: str | None = LABEL_COLUMN, where: str = "CSV") -> CsvLayout:
        """Plan the columns. ``channel_names`` None: the acc triad, plus the gyro triad when the file has any of it.

        Raises:
            DataError: duplicate or missing columns (the message shows the header found).
        """
        columns = dict(columns or {})
        found = {name: i for i, name in enumerate(header)}
        if len(found) != len(header):
            raise DataError(f"{where}: duplicate column names in header {','.join(header)}")

        def col(canonical: str) -> str:
            return columns.get(canonical, canonical)

        wanted: tuple[str, ...]
        if channel_names is None:
            wanted = DEFAULT_CHANNELS if any(col(c) in found for c in GYRO_CHANNELS) else ACC_CHANNELS
        else:
            wanted = tuple(channel_names)
        missing = [col(c) for c in wanted if col(c) not in found]
        if col(time_column) not in found:
            missing.insert(0, col(time_column))
        if missing:
            raise DataError(f"{where}: missing column(s) {missing}; header is {','.join(header)} (expected "
                            f"{time_column},{','.join(wanted)}[,{LABEL_COLUMN}]; map other names with columns={{...}}, "
                            "on the command line --columns timestamp=NAME,acc_x=NAME,...)")
        label = found.get(col(label_column)) if label_column is not None else None
        return cls(tuple(header), tuple(wanted), found[col(time_column)], tuple(found[col(c)] for c in wanted), label)

    def parse_line(self, line: str, lineno: int | None = None) -> list[float]:
        """``[t, v_1, ..., v_c]`` from one data line.

        Raises:
            RecordError: ``wrong_field_count``, ``non_numeric`` or ``non_finite`` (naming line and column).
        """
        where = f"line {lineno}" if lineno is not None else "line"
        fields = line.rstrip("\r\n").split(",")
        if len(fields) != self.n_fields:
            raise RecordError("wrong_field_count", f"{where} has {len(fields)} fields; expected {self.n_fields}: {line.strip()[:120]!r}")
        out = []
        for k in (self.time_index, *self.channel_indices):
            text = fields[k].strip()
            try:
                value = float(text)
            except ValueError:
                raise RecordError("non_numeric", f"{where}, column {self.header[k]!r}: {text[:40]!r} is not a number") from None
            if not math.isfinite(value):
                raise RecordError("non_finite", f"{where}, column {self.header[k]!r}: value is NaN or inf")
            out.append(value)
        return out

    def label_of(self, line: str) -> str:
        if self.label_index is None:
            return ""
        fields = line.rstrip("\r\n").split(",")
        return fields[self.label_index].strip() if self.label_index < len(fields) else ""


@dataclass(frozen=True)
class CsvRows:
    """Parsed good rows of one block: ``timestamps (m,)`` as written, ``values (m, c)``, ``labels (m,)`` or None."""

    timestamps: _Array
    values: _Array
    labels: NDArray[np.str_] | None
    line_numbers: NDArray[np.intp]


def open_csv(path: str | Path, *, channel_names: Sequence[str] | None = None, columns: Mapping[str, str] | None = None,
             time_column: str = TIME_COLUMN, label_column: str | None = LABEL_COLUMN) -> tuple[CsvLayout, int, list[str]]:
    """Read the header: ``(layout, header line number, up to ~64 kB of the first data lines)``.

    Raises:
        DataError: missing or empty file, no header (a first line of numbers), bad columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            header_line, lineno = "", 0
            while not header_line.strip():
                header_line = f.readline()
                lineno += 1
                if not header_line:
                    raise DataError(f"{path}: empty file; expected a header like '{TIME_COLUMN},{','.join(ACC_CHANNELS)}'")
            peek = f.readlines(64_000)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    header = split_header(header_line)
    try:
        float(header[0])
    except ValueError:
        pass
    else:
        raise DataError(f"{path}: no header (first line {header_line.strip()[:80]!r}); "
                        f"expected a first line like {TIME_COLUMN},{','.join(DEFAULT_CHANNELS)}")
    layout = CsvLayout.from_header(header, channel_names=channel_names, columns=columns, time_column=time_column,
                                   label_column=label_column, where=str(path))
    return layout, lineno, peek


class _BlockParser:
    """Parses one file's blocks with numpy, falling back to line-by-line only where lines are bad."""

    def __init__(self, layout: CsvLayout, on_bad: OnBad | None) -> None:
        self.layout = layout
        self.on_bad = on_bad
        self.dirty = False  # the previous block had unparsable lines
        self.cols = [layout.time_index, *layout.channel_indices]

    def bad(self, exc: RecordError, n: int = 1) -> None:
        if self.on_bad is None:
            raise exc
        self.on_bad(exc.reason, str(exc), n)

    def loadtxt(self, lines: list[str]) -> _Array:
        return np.loadtxt(io.StringIO("".join(lines)), delimiter=",", usecols=self.cols, dtype=np.float64,
                          ndmin=2, comments=None)

    def slow(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        out, idx = [], []
        for i, line in enumerate(lines):
            try:
                out.append(self.layout.parse_line(line, int(linenos[i])))
                idx.append(i)
            except RecordError as exc:
                self.bad(exc)
        return np.asarray(out, dtype=np.float64).reshape(-1, len(self.cols)), np.asarray(idx, np.intp)

    def parse(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        """Rows ``(m, 1 + c)`` (timestamp first) and their indices in ``lines``; a dirty block goes in pieces of 512."""
        if not self.dirty:
            try:
                return self.loadtxt(lines), np.arange(len(lines))
            except ValueError:
                self.dirty = True
        parts, dirty = [], False
        for s0 in range(0, len(lines), 512):
            rows, idx = self.piece(lines[s0 : s0 + 512], linenos[s0 : s0 + 512])
            parts.append((rows, idx + s0))
            dirty = dirty or len(idx) < len(lines[s0 : s0 + 512])
        self.dirty = dirty
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def piece(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        """numpy on the rest of the piece; at the row numpy's error names, keep the rows before it, check that row
        line by line, and resume after it (line by line after 8 bad rows: cheaper than more retries)."""
        parts = [(np.empty((0, len(self.cols))), np.empty(0, np.intp))]
        start, skipped = 0, 0
        while start < len(lines):
            if skipped >= 8:
                rows, idx = self.slow(lines[start:], linenos[start:])
                parts.append((rows, idx + start))
                break
            try:
                parts.append((self.loadtxt(lines[start:]), np.arange(start, len(lines))))
                break
            except ValueError as exc:
                match = re.search(r"at row (\d+)", str(exc))
                row = start + int(match[1]) if match else -1
            resume = start
            if start <= row < len(lines):
                try:
                    head = self.loadtxt(lines[start:row]) if row > start else None
                except ValueError:
                    head = None
                else:
                    resume = row
                    if head is not None:
                        parts.append((head, np.arange(start, row)))
                    parsed, _ = self.slow(lines[row : row + 1], linenos[row : row + 1])
                    if not len(parsed):  # confirmed bad (and reported): skip it
                        start, skipped = row + 1, skipped + 1
                        continue
            rows, idx = self.slow(lines[resume:], linenos[resume:])
            parts.append((rows, idx + resume))
            break
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def field_counts(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[list[str], NDArray[np.intp]]:
        """Drop blank lines and lines with the wrong number of fields (reported: the first 3 one by one, then the rest)."""
        want = self.layout.n_fields - 1
        counts = np.fromiter((ln.count(",") for ln in lines), np.intp, len(lines))
        if (counts == want).all():
            return lines, linenos
        wrong = [i for i in np.flatnonzero(counts != want) if lines[i].strip()]  # blank: skip silently
        for k, i in enumerate(wrong):
            exc = RecordError("wrong_field_count", f"line {linenos[i]} has {counts[i] + 1} fields; expected "
                                                   f"{self.layout.n_fields}: {lines[i].strip()[:120]!r}")
            self.bad(exc, 1 if k < 3 else len(wrong) - 3)
            if k >= 3:
                break
        good = np.flatnonzero(counts == want)
        return [lines[i] for i in good], linenos[good]

    def nonfinite(self, rows: _Array, idx: NDArray[np.intp], linenos: NDArray[np.intp]) -> NDArray[np.bool_]:
        finite: NDArray[np.bool_] = np.asarray(np.isfinite(rows).all(axis=1), dtype=bool)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            col = self.layout.header[self.cols[int(np.flatnonzero(~np.isfinite(rows[first]))[0])]]
            where = linenos[idx[~finite][:3]].tolist()
            detail = (f"line {where[0]}, column {col!r}: value is NaN or inf" if self.on_bad is None
                      else f"NaN or inf at lines {where}...")
            self.bad(RecordError("non_finite", detail), int((~finite).sum()))
        return finite


def read_csv_rows(path: str | Path, layout: CsvLayout, *, skip_lines: int, on_bad: OnBad | None = None,
                  stop: Callable[[], bool] | None = None, block_bytes: int = _BLOCK_BYTES) -> Iterator[CsvRows]:
    """Yield the good rows of ``path`` after its first ``skip_lines`` lines (the header), block by block.

    Args:
        on_bad: ``None``: strict, the first bad line raises :class:`~har_edge.errors.RecordError` (a
            ``DataError``) naming file, line and column; else called as ``on_bad(reason, detail, count)``
            and the line is skipped.
        stop: checked between blocks; return True to stop early (a closed source).
    """
    parser = _BlockParser(layout, on_bad)
    lineno = skip_lines + 1
    with Path(path).open(encoding="utf-8-sig", errors="replace") as f:
        for _ in range(skip_lines):
            f.readline()
        while stop is None or not stop():
            lines = f.readlines(block_bytes)
            if not lines:
                return
            linenos = np.arange(lineno, lineno + len(lines))
            lineno += len(lines)
            try:
                rows = _parse_block(parser, lines, linenos)
            except RecordError as exc:  # strict mode: name the file
                raise RecordError(exc.reason, f"{path}: {exc}") from None
            if rows is not None:
                yield rows


def _parse_block(parser: _BlockParser, lines: list[str], linenos: NDArray[np.intp]) -> CsvRows | None:
    lines, linenos = parser.field_counts(lines, linenos)
    if not lines:
        return None
    rows, idx = parser.parse(lines, linenos)
    finite = parser.nonfinite(rows, idx, linenos)
    rows, idx = rows[finite], idx[finite]
    if not len(rows):
        return None
    layout = parser.layout
    labels = None if layout.label_index is None else np.asarray([layout.label_of(lines[i]) for i in idx])
    return CsvRows(np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1:]), labels, linenos[idx])
